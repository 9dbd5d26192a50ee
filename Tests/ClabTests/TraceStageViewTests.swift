import CLibBPF
import ClabSpec
import Foundation
import Glibc
import Testing

@testable import ClabTrace

/// The stage view (issue 12, item 5; issue 9: from clab-init's markers): each call under the
/// stage that does it, the PATH look-up under its own label, clab's side from its calls.
@Suite("trace · stage view labels")
struct TraceStageLabelTests {
    static func nr(_ name: String) -> Int32 { Int32(SyscallCatalog.number(name) ?? -1) }
    static func c(_ s: String?) -> [UInt8]? { s.map { Array(($0 + "\0").utf8) } }

    static func mount(_ source: String?, _ target: String, _ fstype: String?, flags: UInt64 = 0) -> Syscall {
        Syscall(nr: nr("mount"), args: [1, 2, 3, flags, 0], strings: [c(source), c(target), c(fstype), nil])
    }
    static func path(_ name: String, _ file: String, fd: UInt64 = UInt64(bitPattern: -100)) -> Syscall {
        Syscall(nr: nr(name), args: [fd, 1, 2, 0], strings: [c(file)])
    }

    /// clab-init's calls take its last marker (ClabSpec's StageMark, from ClabInit's `step`): the call
    /// itself says nothing about its stage any more.
    @Test func clabInitsCallsTakeItsLastMarker() {
        let phases = Phases(stage: 12, command: ["echo", "hi"])
        let initProcess = TracedProcess(pid: 11, comm: "clab-init", nsPid: 1, nsLevel: 1, fds: [:], phase: .initSetup)
        func label(_ call: Syscall) -> String? { phases.label(call, in: initProcess, path: { _ in nil })?.title }
        func stage(_ call: Syscall) -> Int? { phases.label(call, in: initProcess, path: { _ in nil })?.stage }
        func mark(_ m: StageMark) { phases.mark(m.value, tid: initProcess.pid, in: initProcess) }
        let root = "/tmp/r/run/containers/abc/rootfs"
        let hostname = Syscall(nr: Self.nr("sethostname"), args: [1, 3], strings: [Self.c("abc")])
        // Before the first marker: the Swift runtime's start-up and the spec, init's own.
        #expect(label(Self.path("openat", "/proc/self/maps")) == StageLabel.initStart.title)
        mark(.stage(2))
        #expect(stage(hostname) == 2)
        #expect(stage(Syscall(nr: Self.nr("getpid"))) == 2)  // whatever the call, until the next marker
        mark(.stage(4))
        #expect(stage(Self.mount(nil, "/", nil, flags: 0x44000)) == 4)  // MS_REC|MS_PRIVATE
        mark(.stage(9))
        #expect(stage(Self.mount("overlay", root, "overlay")) == 9)
        // No guessing from the call: a sethostname under stage 9's marker is stage 9's.
        #expect(stage(hostname) == 9)
        mark(.stage(4))
        #expect(stage(Self.path("openat", root)) == 4)
        mark(.stage(3))
        #expect(stage(Self.mount("proc", "/proc/self/fd/5", "proc")) == 3)
        mark(.stage(10))
        #expect(stage(Self.mount("/tmp/r/run/containers/abc/volumes/0", "/proc/self/fd/9", nil, flags: 4096)) == 10)
        mark(.stage(4))
        #expect(stage(Syscall(nr: Self.nr("pivot_root"), args: [1, 2], strings: [Self.c("."), Self.c(".")])) == 4)
        mark(.stage(12))
        #expect(label(Self.path("newfstatat", "/proc/kcore")) == "stage 12 · hardening")
        mark(.commandLookup)
        #expect(label(Self.path("newfstatat", "/bin/echo")) == "clab-init · finds the command in PATH")
        #expect(stage(Self.path("newfstatat", "/bin/echo")) == nil)
        mark(.stage(12))
        #expect(stage(Syscall(nr: Self.nr("prlimit64"), args: [0, 7, 0x1000, 0])) == 12)
        mark(.execute)
        #expect(label(Syscall(nr: Self.nr("execve"), ret: -2)) == StageLabel.execute.title)
        mark(.plumbing)
        #expect(label(Syscall(nr: Self.nr("sendto"))) == StageLabel.initStart.title)
        // A value no StageMark has changes nothing.
        phases.mark(555, tid: initProcess.pid, in: initProcess)
        #expect(label(Syscall(nr: Self.nr("sendto"))) == StageLabel.initStart.title)
    }

    /// clab's host side marks per thread: one thread's stage is not another's; plumbing ends
    /// it. The command's markers mean nothing.
    @Test func clabsMarkersArePerThread() {
        let phases = Phases(stage: 12, command: ["sh"])
        let clab = TracedProcess(pid: 10, comm: "clab", nsPid: 10, nsLevel: 0, fds: [:], phase: .clab)
        let command = TracedProcess(pid: 11, comm: "sh", nsPid: 1, nsLevel: 1, fds: [:], phase: .command)
        func label(_ tid: UInt32, _ p: TracedProcess) -> StageLabel? {
            phases.label(Syscall(nr: Self.nr("getpid"), pid: p.pid, tid: tid), in: p, path: { _ in nil })
        }
        #expect(label(10, clab) == StageLabel.clab)
        phases.mark(StageMark.stage(11).value, tid: 10, in: clab)
        phases.mark(StageMark.stage(8).value, tid: 12, in: clab)
        #expect(label(10, clab) == StageLabel.stage(11))
        #expect(label(12, clab) == StageLabel.stage(8))
        #expect(label(13, clab) == StageLabel.clab)
        phases.mark(StageMark.plumbing.value, tid: 10, in: clab)
        #expect(label(10, clab) == StageLabel.clab)
        #expect(label(12, clab) == StageLabel.stage(8))
        // The C child between clone3 and execve marks its id calls as stage 7.
        let child = TracedProcess(pid: 20, comm: "clab", nsPid: 1, nsLevel: 1, fds: [:], phase: .child)
        phases.mark(StageMark.stage(7).value, tid: 20, in: child)
        #expect(label(20, child) == StageLabel.stage(7))
        phases.mark(StageMark.plumbing.value, tid: 20, in: child)
        #expect(label(20, child) == StageLabel.child)
        phases.mark(StageMark.stage(4).value, tid: 11, in: command)
        #expect(label(11, command) == phases.commandLabel)
    }

    /// Without the uprobe, clab-init's calls all get one label: no stage is made up for them.
    @Test func withoutMarkersClabInitHasOneLabel() {
        var phases = Phases(stage: 12, command: ["sh"])
        phases.marked = false
        let initProcess = TracedProcess(pid: 11, comm: "clab-init", nsPid: 1, nsLevel: 1, fds: [:], phase: .initSetup)
        for call in [
            Syscall(nr: Self.nr("sethostname"), args: [1, 3], strings: [Self.c("abc")]),
            Self.mount("overlay", "/tmp/r/rootfs", "overlay"),
            Syscall(nr: Self.nr("pivot_root"), args: [1, 2], strings: [Self.c("."), Self.c(".")]),
        ] {
            #expect(phases.label(call, in: initProcess, path: { _ in nil }) == StageLabel.initUnmarked)
        }
    }

    /// The marker values are StageMark's, one place for clab-init and the tracer.
    @Test func markerValuesRoundTrip() {
        let marks: [StageMark] = [.plumbing, .stage(1), .stage(12), .stage(99), .commandLookup, .execute]
        #expect(Set(marks.map(\.value)).count == marks.count)
        for m in marks { #expect(StageMark(value: m.value) == m) }
        #expect(StageMark(value: -1) == nil)
        #expect(StageMark(value: 102) == nil)
    }

    /// A thread's marker ends with the thread, and no marker is carried past lost records (the
    /// closing one may be among them).
    @Test func threadMarksEndWithTheThreadAndAtAGap() {
        let session = TraceSession(
            outputs: SessionOutputs(json: nil, live: nil, summarize: false, filter: nil, focus: false),
            phases: Phases(stage: 12, command: ["sh"]))
        session.table.addRoot(pid: 10, comm: "clab", phase: .clab)
        func feed<T>(_ record: T) {
            withUnsafeBytes(of: record) { raw in raw.baseAddress.map { session.handle($0, raw.count) } }
        }
        func mark(tid: UInt32, _ m: StageMark) {
            var record = clab_mark_event()
            record.kind = UInt16(CLAB_EV_MARK.rawValue)
            record.pid = 10
            record.tid = tid
            record.mark = m.value
            feed(record)
        }
        mark(tid: 10, .stage(11))
        mark(tid: 12, .stage(8))
        #expect(session.table.process(10).threadStages == [10: 11, 12: 8])
        var exit = clab_proc_event()
        exit.kind = UInt16(CLAB_EV_EXIT.rawValue)
        exit.flags = UInt16(CLAB_F_THREAD.rawValue)
        exit.pid = 10
        exit.tid = 12
        feed(exit)
        #expect(session.table.process(10).threadStages == [10: 11])
        session.lost(3, firstTs: 1, lastTs: 2)
        #expect(session.table.process(10).threadStages.isEmpty)
    }

    /// A CLAB_EV_MARK record, as the BPF program writes it, reaches the process's label; an
    /// execve starts the new program without one.
    @Test func markRecordsAreParsedAndApplied() {
        let session = TraceSession(
            outputs: SessionOutputs(json: nil, live: nil, summarize: false, filter: nil, focus: false),
            phases: Phases(stage: 12, command: ["sh"]))
        session.table.addRoot(pid: 11, comm: "clab", phase: .child)
        session.handle(.exec(ts: 1, pid: 11, oldTid: 11, nsPid: 1, nsLevel: 1, comm: "clab-init"))
        var record = clab_mark_event()
        record.kind = UInt16(CLAB_EV_MARK.rawValue)
        record.pid = 11
        record.tid = 11
        record.mark = StageMark.stage(9).value
        withUnsafeBytes(of: record) { raw in
            guard let base = raw.baseAddress else { return }
            guard case .mark(let pid, let tid, let mark) = RecordParser.parse(base, raw.count) else {
                Issue.record("not a mark record")
                return
            }
            #expect(pid == 11 && tid == 11 && mark == 9)
            session.handle(base, raw.count)
        }
        #expect(session.table.process(11).label == StageLabel.stage(9))
        session.handle(.exec(ts: 2, pid: 11, oldTid: 11, nsPid: 1, nsLevel: 1, comm: "sh"))
        #expect(session.table.process(11).label == nil)
        #expect(session.table.process(11).phase == .command)
    }
}

/// A real run: `clab trace --step N` takes what `clab step N` takes, and it reaches the
/// container; the trace can go to standard output; the cgroup move follows its write.
@Suite("trace · stage view of a real run", tracerAvailable)
struct TraceStageViewRunTests {
    /// The long option names a command's --help lists.
    static func options(_ args: [String]) throws -> Set<String> {
        let help = try runProcess([TestEnv.clab] + args + ["--help"]).stdout
        var names = Set<String>()
        for word in help.split(whereSeparator: { " ,\n\t<>=".contains($0) }) where word.hasPrefix("--") {
            names.insert(String(word))
        }
        return names
    }

    @Test func traceStepTakesEveryOptionOfStep() throws {
        let step = try Self.options(["step"])
        let trace = try Self.options(["trace", "run"])
        #expect(step.count > 10)
        #expect(step.subtracting(trace).isEmpty, "clab trace lacks \(step.subtracting(trace).sorted())")
    }

    @Test func stepOptionsReachTheTracedContainer() throws {
        try TestEnv.ensureImage()
        let id = UUID().uuidString.prefix(8)
        let volume = TestEnv.root + "/trace-vol-\(id)"
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        try "from-the-volume\n".write(toFile: volume + "/f", atomically: false, encoding: .utf8)
        let file = TestEnv.root + "/trace-opts-\(id).jsonl"
        let out = try runProcess([
            TestEnv.clab, "trace", "--step", "12", "--quiet", "--json", file, "-v", volume + ":/data",
            "--memory", "48M", "--hostname", "traced-\(id)", "--net", "none", "--image", "busybox", "--cap-drop",
            "NET_RAW",
            "--read-only", "--", "sh", "-c", "cat /data/f; touch /x 2>/dev/null || echo read-only-root",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "from-the-volume\nread-only-root\n")
        let trace = try JSONTrace(path: file)
        let calls = trace.syscalls
        func args(_ call: [String: Any]) -> [String] { call["args"] as? [String] ?? [] }
        func stage(_ call: [String: Any]?) -> String? { call?["stage"] as? String }
        #expect(calls.contains { $0["syscall"] as? String == "sethostname" && args($0).first == "\"traced-\(id)\"" })
        #expect(
            calls.contains {
                $0["syscall"] as? String == "write" && args($0).count > 1 && args($0)[1] == "\"50331648\""
            })
        let capset = calls.first { $0["syscall"] as? String == "capset" }
        #expect(args(capset ?? [:]).last?.contains("CAP_NET_RAW") == false)
        #expect(args(capset ?? [:]).last?.contains("CAP_CHOWN") == true)

        let mounts = calls.filter { $0["syscall"] as? String == "mount" && $0["comm"] as? String == "clab-init" }
        let overlay = mounts.first { args($0).count > 2 && args($0)[2] == "\"overlay\"" }
        #expect(stage(overlay) == "stage 9 · overlay image layers")
        let cgroupBind = mounts.first { args($0).first?.hasPrefix("\"/sys/fs/cgroup/") == true }
        #expect(stage(cgroupBind) == "stage 8 · cgroups")
        let volumeBind = mounts.first { args($0).first?.contains("/volumes/0") == true }
        #expect(stage(volumeBind) == "stage 10 · volumes")
        let lookup = calls.first {
            $0["syscall"] as? String == "newfstatat" && args($0).count > 1 && args($0)[1] == "\"/bin/sh\""
        }
        #expect(stage(lookup) == "clab-init · finds the command in PATH")

        // clab-init's headers, in order: each stage once, none cut in two by a look-up.
        var runs: [String] = []
        for call in calls where call["comm"] as? String == "clab-init" {
            if let s = stage(call), runs.last != s { runs.append(s) }
        }
        let numbers = runs.map { $0.hasPrefix("stage ") ? String($0.dropFirst(6).prefix { $0.isNumber }) : $0 }
        // Stage 4's step holds the others it mounts for (9, 3, 8, 10): between them, its own
        // calls (the new root's descriptor after the overlay, /dev, pivot_root).
        #expect(
            numbers == [
                StageLabel.initStart.title, "2", "6", "4", "9", "4", "3", "4", "8", "10", "4", "12",
                "clab-init · finds the command in PATH", "12",
            ], "\(runs)")

        // The move into a cgroup comes after the write to cgroup.procs that made it.
        let lines = trace.lines
        let move = lines.firstIndex { $0["type"] as? String == "cgroup" }
        let write = lines.firstIndex {
            $0["syscall"] as? String == "write" && args($0).first?.hasSuffix("/cgroup.procs>") == true
        }
        if let move, let write { #expect(write < move) } else { Issue.record("no cgroup move or no write") }
    }

    @Test func theTraceGoesToStandardOutput() throws {
        let text = try runProcess([TestEnv.clab, "trace", "--host", "-o", "-", "--", "/bin/true"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains(#"execve("/bin/true", ["/bin/true"]"#))
        #expect(!text.stderr.contains("execve("))
        let json = try runProcess([TestEnv.clab, "trace", "--host", "--json", "-", "--", "/bin/true"])
        #expect(json.status == 0, "\(json.stderr)")
        let lines = json.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix(#"{"type":"start""#) == true)
        #expect(lines.last?.hasPrefix(#"{"type":"end""#) == true)
        let file = TestEnv.root + "/trace-out-\(UUID().uuidString.prefix(8)).txt"
        #expect(try runProcess([TestEnv.clab, "trace", "--host", "--output", file, "--", "/bin/true"]).status == 0)
        #expect(try String(contentsOfFile: file, encoding: .utf8).contains("exit_group(0)"))
        let bad = try runProcess([TestEnv.clab, "trace", "--host", "-o", "/nonexistent/dir/x", "--", "/bin/true"])
        #expect(bad.status != 0 && bad.stderr.contains("--output /nonexistent/dir/x"))
    }
}
