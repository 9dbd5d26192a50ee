import Foundation
import Glibc
import Testing

@testable import ClabTrace

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
