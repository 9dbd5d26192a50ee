import Foundation
import Glibc
import Testing

/// `clab trace` with real BPF: needs root and the kernel's BTF.
let tracerAvailable = ConditionTrait.enabled(
    if: TestEnv.isRoot && access("/sys/kernel/btf/vmlinux", R_OK) == 0, "needs root and /sys/kernel/btf/vmlinux")

/// A trace read back from `--json`.
struct JSONTrace {
    let lines: [[String: Any]]

    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        lines = try text.split(separator: "\n").map {
            guard let object = try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] else {
                throw CocoaError(.coderReadCorrupt)
            }
            return object
        }
    }

    var syscalls: [[String: Any]] { lines.filter { $0["type"] as? String == "syscall" } }

    var counts: [String: Int] {
        var result: [String: Int] = [:]
        for call in syscalls { result[call["syscall"] as? String ?? "?", default: 0] += 1 }
        return result
    }

    var lost: Int? { lines.last.flatMap { $0["type"] as? String == "end" ? $0["lost"] as? Int : nil } }
}

/// `strace -f -c -o FILE`: calls per syscall.
func straceCounts(_ command: [String]) throws -> [String: Int] {
    let file = TestEnv.root + "/strace-\(UUID().uuidString.prefix(8)).txt"
    let out = try runProcess(["/usr/bin/strace", "-f", "-c", "-o", file, "--"] + command)
    #expect(out.status == 0, "\(out.stderr)")
    var result: [String: Int] = [:]
    for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
        let fields = line.split(separator: " ")
        // "% time seconds usecs/call calls [errors] syscall"
        guard fields.count >= 5, Double(fields[0]) != nil, let name = fields.last, name != "total",
            let calls = Int(fields[3])
        else { continue }
        result[String(name)] = calls
    }
    return result
}

@Suite("trace · host commands", tracerAvailable)
struct TraceHostTests {
    func trace(_ command: [String], extra: [String] = []) throws -> (Output, JSONTrace) {
        let file = TestEnv.root + "/trace-\(UUID().uuidString.prefix(8)).jsonl"
        let out = try runProcess([TestEnv.clab, "trace", "--host", "--json", file] + extra + ["--"] + command)
        return (out, try JSONTrace(path: file))
    }

    @Test(arguments: [
        ["ls", "/"],
        ["cat", "/etc/hostname"],
        ["sh", "-c", "echo hi | cat"],
    ])
    func countsMatchStrace(command: [String]) throws {
        let (out, trace) = try trace(command)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(trace.lost == 0)
        let ours = trace.counts
        let theirs = try straceCounts(command)
        #expect(!theirs.isEmpty)
        for (name, calls) in theirs {
            if name == "rt_sigreturn" {
                // One per signal handled: two SIGCHLDs that arrive together are handled once,
                // and strace's stops at every syscall spread them apart. Timing, not tracing.
                #expect((1...calls).contains(ours[name] ?? 0), "rt_sigreturn: strace \(calls), clab \(ours[name] ?? 0)")
                continue
            }
            if name == "clone" {
                // A fork that a SIGCHLD interrupts is restarted by the kernel (ERESTARTNOINTR):
                // strace -c, which stops the shell at every call, then counts one more. Timing.
                #expect(
                    (calls - 1...calls).contains(ours[name] ?? 0), "clone: strace \(calls), clab \(ours[name] ?? 0)")
                continue
            }
            #expect(ours[name] == calls, "\(name): strace \(calls), clab \(ours[name] ?? 0)")
        }
        // strace -c leaves exit_group out; we report it, once per process.
        #expect(ours["exit_group"] ?? 0 >= 1)
    }

    @Test func missingCommandShowsTheFailingExecve() throws {
        let (out, trace) = try trace(["no-such-command-clab"])
        #expect(out.status == 127)
        let first = trace.syscalls.first
        #expect(first?["syscall"] as? String == "execve")
        #expect(first?["errno"] as? String == "ENOENT")
        #expect((first?["args"] as? [String])?.first == "\"no-such-command-clab\"")
        #expect(trace.lost == 0)
    }

    @Test func eventsCarryDecodedAndRawArguments() throws {
        let (_, trace) = try trace(["cat", "/etc/hostname"])
        let open = trace.syscalls.first {
            ($0["syscall"] as? String) == "openat" && ($0["args"] as? [String])?[1] == "\"/etc/hostname\""
        }
        #expect(open?["ret"] as? Int == 3)
        #expect((open?["raw"] as? [Any])?.count == 6)
        #expect(open?["comm"] as? String == "cat")
        // The fd is named after the file it was opened from.
        let read = trace.syscalls.first { ($0["args"] as? [String])?.first == "3</etc/hostname>" }
        #expect(read != nil)
        #expect(trace.lines.first?["type"] as? String == "start")
    }

    @Test func summaryIsCountedInTheKernel() throws {
        let out = try runProcess([TestEnv.clab, "trace", "--host", "--summary", "--", "cat", "/etc/hostname"])
        #expect(out.status == 0)
        let rows = out.stderr.split(separator: "\n")
        #expect(rows.contains { $0.hasPrefix("% time") })
        let execve = rows.first { $0.hasSuffix(" execve") }?.split(separator: " ")
        #expect(execve?[3] == "1")
        #expect(out.stderr.contains("counted in the kernel, 0 lost"))
    }

    @Test func filterKeepsOnlyTheNamedCalls() throws {
        let (_, trace) = try trace(["cat", "/etc/hostname"], extra: ["--filter", "openat,close"])
        #expect(Set(trace.counts.keys) == ["openat", "close"])
    }

    @Test func attachesToARunningProcessAndItsChildren() throws {
        // A shell that waits, then becomes cat: attach while it waits (two seconds: loading the
        // BPF program on a loaded 2-core machine took more than the half second this had).
        let started = try runProcess([
            "/bin/sh", "-c", "sh -c 'sleep 2; exec cat /etc/hostname' >/dev/null 2>&1 </dev/null & echo $!",
        ])
        let pid = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let file = TestEnv.root + "/trace-pid-\(UUID().uuidString.prefix(8)).jsonl"
        let out = try runProcess([TestEnv.clab, "trace", "--pid", pid, "--json", file])
        #expect(out.status == 0, "\(out.stderr)")
        let trace = try JSONTrace(path: file)
        #expect(
            trace.syscalls.contains {
                $0["syscall"] as? String == "execve" && $0["ret"] as? Int == 0
                    && ($0["args"] as? [String])?.first?.hasSuffix("/cat\"") == true
            })
        // sleep, its child, was followed too.
        #expect(trace.lines.contains { $0["type"] as? String == "exit" && $0["comm"] as? String == "sleep" })
        #expect(trace.lost == 0)
    }

    /// A process whose exit came before its mark (here: a zombie) sends no exit event: the
    /// trace used to wait for it forever.
    @Test func attachingToAProcessThatAlreadyExitedEnds() throws {
        let out = try runProcess([
            "/bin/sh", "-c",
            "(sleep 0 & echo $! > \"$0\"; exec sleep 5) >/dev/null 2>&1 & sleep 0.5; timeout 4 \"$1\" trace --pid $(cat \"$0\"); echo status=$?",
            TestEnv.root + "/zombie-\(UUID().uuidString.prefix(8))", TestEnv.clab,
        ])
        #expect(out.stdout.contains("status=0"), "\(out.stdout) \(out.stderr)")
    }

    @Test func withoutRootItSaysSoInOneLine() throws {
        let out = try runProcess([
            "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TestEnv.clab, "trace", "--host",
            "--", "true",
        ])
        #expect(out.status != 0)
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(out.stderr.contains("trace: needs root"))
    }

    @Test func withoutBTFItSaysSoInOneLine() throws {
        let out = try runProcess(
            [TestEnv.clab, "trace", "--host", "--", "true"], env: ["CLAB_TRACE_BTF": "/nonexistent/vmlinux"])
        #expect(out.status != 0)
        #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
        #expect(out.stderr.contains("BTF"))
    }
}

@Suite("trace · a container run", tracerAvailable)
struct TraceStepTests {
    @Test func stage4ShowsCloneThenPivotRootThenTheCommand() throws {
        try TestEnv.ensureImage()
        let file = TestEnv.root + "/trace-step-\(UUID().uuidString.prefix(8)).jsonl"
        let out = try runProcess([TestEnv.clab, "trace", "--step", "4", "--quiet", "--json", file, "--", "/bin/true"])
        #expect(out.status == 0, "\(out.stderr)")
        // The uprobe on clab-init's clab_mark attached: its calls are labelled by its markers.
        #expect(!out.stderr.contains("stage labels inside clab-init are unavailable"), "\(out.stderr)")
        let trace = try JSONTrace(path: file)
        #expect(trace.lost == 0)
        let calls = trace.syscalls
        let clone = calls.firstIndex {
            guard $0["syscall"] as? String == "clone3", let flags = ($0["args"] as? [String])?.first else {
                return false
            }
            return ["CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWUTS"].allSatisfy { flags.contains($0) }
        }
        let pivot = calls.firstIndex { $0["syscall"] as? String == "pivot_root" }
        let exec = calls.firstIndex {
            $0["syscall"] as? String == "execve" && ($0["args"] as? [String])?.first == "\"/bin/true\""
        }
        guard let clone, let pivot, let exec else {
            Issue.record(
                "missing: clone3 \(String(describing: clone)), pivot_root \(String(describing: pivot)), execve")
            return
        }
        #expect(clone < pivot && pivot < exec)
        // The clone3 returns the child's host pid; pivot_root and the execve succeed.
        #expect((calls[clone]["ret"] as? Int ?? 0) > 0)
        #expect(calls[pivot]["ret"] as? Int == 0)
        #expect(calls[exec]["ret"] as? Int == 0)
        // Labelled by stage, with the lesson to read; the container's pid namespace shows.
        #expect(calls[pivot]["stage"] as? String == "stage 4 · mount namespace + pivot_root")
        // The number is written as the tracer knows it, not left for a reader to parse back.
        #expect(calls[pivot]["stage_number"] as? Int == 4)
        #expect(calls[exec]["stage_number"] is NSNull)
        #expect(calls[pivot]["lesson"] as? String == "clab lesson 4")
        #expect(calls[exec]["stage"] as? String == "container · /bin/true")
        #expect(calls[exec]["ns_pid"] as? Int == 1)
        #expect(
            calls.contains {
                $0["syscall"] as? String == "sethostname" && $0["stage"] as? String == "stage 2 · UTS namespace"
            })
    }

    @Test func stage7ShowsTheIdMapsAndTheUidChange() throws {
        try TestEnv.ensureImage()
        let file = TestEnv.root + "/trace-step7-\(UUID().uuidString.prefix(8)).jsonl"
        let out = try runProcess([TestEnv.clab, "trace", "--step", "7", "--quiet", "--json", file, "--", "/bin/true"])
        #expect(out.status == 0, "\(out.stderr)")
        let calls = try JSONTrace(path: file).syscalls
        let mapWrite = calls.first {
            $0["syscall"] as? String == "write" && (($0["args"] as? [String])?.first?.hasSuffix("/uid_map>") ?? false)
        }
        #expect(mapWrite?["stage"] as? String == "stage 7 · user namespace")
        #expect((mapWrite?["args"] as? [String])?[1] == #""0 100000 65536\n""#)
        // The C child's id calls, marked by the child itself.
        #expect(
            calls.contains {
                $0["syscall"] as? String == "setresuid" && $0["ret"] as? Int == 0
                    && $0["stage"] as? String == "stage 7 · user namespace"
            })
    }

    /// clab's host side marks each stage's host half (`StageMark.host`): the writable layer is
    /// stage 9's, the volume's staging bind stage 10's, the cgroup join (on a thread of its own)
    /// stage 8's, and the state file is no stage's.
    @Test func hostSideStagesComeFromMarkers() throws {
        try TestEnv.ensureImage()
        let tag = UUID().uuidString.prefix(8)
        let dir = TestEnv.root + "/trace-bind-\(tag)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = TestEnv.root + "/trace-step10-\(tag).jsonl"
        let out = try runProcess([
            TestEnv.clab, "trace", "--step", "10", "--quiet", "--json", file, "-v", "\(dir):/data", "--", "/bin/true",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        let calls = try JSONTrace(path: file).syscalls.filter { $0["comm"] as? String == "clab" }
        func stage(_ name: String, _ arg: (String) -> Bool) -> String? {
            calls.first { $0["syscall"] as? String == name && (($0["args"] as? [String]) ?? []).contains(where: arg) }?[
                "stage"] as? String
        }
        #expect(stage("mkdir") { $0.hasSuffix("/upper\"") } == "stage 9 · overlay image layers")
        #expect(stage("mount") { $0 == "\"\(dir)\"" } == "stage 10 · volumes")
        #expect(stage("write") { $0.hasPrefix("\"") == false && $0.contains("/cgroup.procs>") } == "stage 8 · cgroups")
        #expect(stage("openat") { $0.hasSuffix("/state.json\"") }?.hasPrefix("clab · host side") == true)
    }

    @Test func liveViewGroupsByStage() throws {
        try TestEnv.ensureImage()
        let out = try runProcess([TestEnv.clab, "trace", "--step", "4", "--quiet", "--", "/bin/true"])
        #expect(out.status == 0)
        #expect(out.stderr.contains("── stage 4 · mount namespace + pivot_root  (clab lesson 4)"))
        #expect(out.stderr.contains(#"pivot_root(".", ".") = 0"#))
        #expect(out.stderr.contains("── container · /bin/true"))
        #expect(out.stderr.contains(", 0 lost"))
    }

    @Test func anOOMKillIsAKernelEvent() throws {
        try TestEnv.ensureImage()
        let file = TestEnv.root + "/trace-oom-\(UUID().uuidString.prefix(8)).jsonl"
        let out = try runProcess([
            TestEnv.clab, "trace", "--step", "8", "--quiet", "--memory", "16M", "--json", file, "--", "tail",
            "/dev/zero",
        ])
        #expect(out.status == 128 + SIGKILL)
        let trace = try JSONTrace(path: file)
        let oom = trace.lines.first { $0["type"] as? String == "oom" }
        #expect(oom?["comm"] as? String == "tail")
        #expect(oom?["ns_pid"] as? Int == 1)
        // Before it ran, the container's process was moved into its cgroups.
        #expect(
            trace.lines.contains {
                $0["type"] as? String == "cgroup" && ($0["path"] as? String)?.contains("clab/") == true
            })
        #expect(trace.lost == 0)
    }

    @Test func viewRerendersASavedTrace() throws {
        try TestEnv.ensureImage()
        let file = TestEnv.root + "/trace-view-\(UUID().uuidString.prefix(8)).jsonl"
        let run = try runProcess([TestEnv.clab, "trace", "--step", "4", "--quiet", "--json", file, "--", "ls", "/"])
        #expect(run.status == 0)
        let view = try runProcess([TestEnv.clab, "trace", "view", file, "--filter", "clone3,pivot_root"])
        #expect(view.status == 0, "\(view.stderr)")
        #expect(view.stdout.contains("── stage 4 · mount namespace + pivot_root  (clab lesson 4)"))
        #expect(view.stdout.contains(#"pivot_root(".", ".") = 0"#))
        #expect(!view.stdout.contains("mount("))
        let summary = try runProcess([TestEnv.clab, "trace", "view", file, "--summary"])
        #expect(summary.stdout.split(separator: "\n").contains { $0.hasSuffix(" pivot_root") })
        let bad = try runProcess([TestEnv.clab, "trace", "view", "/etc/hostname"])
        #expect(bad.status != 0 && bad.stderr.split(separator: "\n").count == 1)
    }

    /// The page is self-contained and renders: headless Chromium runs its script, and the DOM
    /// it dumps has the command in the title, a lane per thread named by the programs it ran,
    /// stage bands with their names, a time axis, a mark per syscall, and the exit and signal ends.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium-headless-shell")))
    func htmlViewRendersInChromium() throws {
        try TestEnv.ensureImage()
        let file = TestEnv.root + "/trace-html-\(UUID().uuidString.prefix(8)).jsonl"
        let page = file + ".html"
        // The inner sh kills itself: a signal end; the outer one exits 0.
        let command = ["sh", "-c", "sh -c 'kill -KILL $$'; ls / >/dev/null"]
        #expect(
            try runProcess([TestEnv.clab, "trace", "--step", "4", "--quiet", "--json", file, "--"] + command).status
                == 0)
        #expect(try runProcess([TestEnv.clab, "trace", "view", file, "--html", page]).status == 0)
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://"))  // nothing fetched from the network
        let dom = try runProcess([
            "/usr/bin/chromium-headless-shell", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(file).profile",
            "--dump-dom", "file://" + page,
        ]).stdout
        defer { try? FileManager.default.removeItem(atPath: file + ".profile") }
        func attribute(_ name: String) -> Int? {
            guard let r = dom.range(of: "data-\(name)=\"") else { return nil }
            return Int(dom[r.upperBound...].prefix { $0.isNumber })
        }
        #expect(dom.contains(#"data-rendered="yes""#), "\(dom.prefix(300))")
        #expect(dom.contains("<title>clab trace --step 4 -- sh -c sh -c 'kill -KILL $$'; ls / &gt;/dev/null</title>"))
        let tids = Set(try JSONTrace(path: file).syscalls.compactMap { $0["tid"] as? Int })
        #expect(attribute("lanes") == tids.count)
        #expect(dom.contains("clab → clab-init → sh "))
        #expect(dom.contains(">stage 4 · mount namespace + pivot_root<"))
        #expect(dom.contains(#"class="swatch""#))
        #expect((attribute("bands") ?? 0) >= 4)
        #expect((attribute("ticks") ?? 0) >= 4)
        #expect(dom.contains(">0 ms<") || dom.contains(">0.00 ms<"))
        #expect(dom.contains(">killed by SIGKILL<"))
        #expect(dom.contains(">exit 0<"))
        #expect(dom.components(separatedBy: "class=\"call").count > 50)
    }
}
