import Foundation
import Glibc
import Testing

/// Issue 12, items 1 and 4: the tracer keeps up with a fast syscall loop, says where it lost
/// anything, and ends cleanly however it is stopped. Serialized: the dd runs need the CPU.
@Suite("trace · loss and robust runs", .serialized, tracerAvailable)
struct TraceRobustTests {
    static let dd = ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=300000"]

    func file(_ name: String) -> String { TestEnv.root + "/\(name)-\(UUID().uuidString.prefix(8))" }

    /// The lines of type `lost`, and what they add up to.
    func lostLines(_ trace: JSONTrace) -> (lines: [[String: Any]], total: Int) {
        let lines = trace.lines.filter { $0["type"] as? String == "lost" }
        return (lines, lines.reduce(0) { $0 + ($1["count"] as? Int ?? 0) })
    }

    /// A ring of 64 KiB (and the 2 MiB queue that comes with it) cannot hold the burst: the
    /// loss is reported where it happened, in JSON and in the text, and adds up to the total.
    /// The old tracer only counted it at the end.
    @Test func aTinyBufferReportsWhereItLost() throws {
        let path = file("tiny") + ".jsonl"
        defer { unlink(path) }
        let out = try runProcess([TestEnv.clab, "trace", "--host", "--buffer", "64k", "--json", path, "--"] + Self.dd)
        #expect(out.status == 0)
        let trace = try JSONTrace(path: path)
        let lost = lostLines(trace)
        #expect((trace.lost ?? 0) > 0)
        #expect(!lost.lines.isEmpty)
        #expect(lost.total == trace.lost)
        for line in lost.lines {
            #expect((line["count"] as? Int ?? 0) > 0 && line["ts_ns"] is Int && line["last_ns"] is Int)
        }
        // Between the calls, not all at the end: a syscall line follows the first gap.
        let first = trace.lines.firstIndex { $0["type"] as? String == "lost" } ?? trace.lines.count
        #expect(trace.lines[first...].contains { $0["type"] as? String == "syscall" })
        // The hint names a size that would have held the records.
        #expect(out.stderr.contains("LOST") && out.stderr.contains("try --buffer"), "\(out.stderr)")

        let textPath = file("tiny") + ".txt"
        defer { unlink(textPath) }
        _ = try runProcess(
            [
                "/bin/sh", "-c", "out=$0 clab=$1; shift; exec \"$clab\" trace --host --buffer 64k -- \"$@\" 2>\"$out\"",
                textPath, TestEnv.clab,
            ]
                + Self.dd)
        let text = try String(contentsOfFile: textPath, encoding: .utf8)
        let markers = text.split(separator: "\n").filter { $0.hasPrefix("--- lost ") && $0.hasSuffix(" events ---") }
        let marked = markers.reduce(0) { $0 + (Int($1.split(separator: " ")[2]) ?? 0) }
        #expect(!markers.isEmpty)
        // The markers add up to the total the last line gives.
        #expect(marked > 0 && text.contains(", \(marked) LOST: the ring buffer was full"), "\(text.suffix(300))")
    }

    /// `timeout` stops the trace: the old clab died with the JSON unwritten (still in its
    /// buffer) and the command running on, untraced. Now the command clab started gets the
    /// signal, and the file ends with its exit and the end record.
    @Test func sigtermEndsTheTraceCleanly() throws {
        let path = file("term") + ".jsonl"
        let started = Date()
        let out = try runProcess([
            "/usr/bin/timeout", "-s", "TERM", "1", TestEnv.clab, "trace", "--host", "--json", path, "--", "sleep", "30",
        ])
        #expect(Date().timeIntervalSince(started) < 6)
        #expect(out.status == 124)
        let trace = try JSONTrace(path: path)
        #expect(trace.lines.last?["type"] as? String == "end")
        let exit = trace.lines.first { $0["type"] as? String == "exit" && $0["comm"] as? String == "sleep" }
        #expect(exit?["signal"] as? String == "SIGTERM")
        let pid = exit?["pid"] as? Int ?? 0
        #expect(pid > 0 && kill(pid_t(pid), 0) != 0)
    }

    /// The JSON is written as the trace goes (each reader pass), not only at the end.
    @Test func jsonIsWrittenWhileTheTraceRuns() throws {
        let path = file("live") + ".jsonl"
        let out = try runProcess([
            "/bin/sh", "-c", "\"$1\" trace --host --json \"$0\" -- sleep 1.5 & sleep 1; wc -l < \"$0\"; wait", path,
            TestEnv.clab,
        ])
        let linesSoFar = Int(out.stdout.split(separator: "\n").first ?? "") ?? 0
        #expect(linesSoFar >= 10, "\(out.stdout)")
    }

    /// Processes forked while the BPF program loaded (after the first /proc walk) used to be
    /// named "?": a shell forking /bin/true in a loop always has one.
    @Test func attachNamesEveryProcess() throws {
        let loop = try runProcess([
            "/bin/sh", "-c", "sh -c 'while :; do /bin/true; done' >/dev/null 2>&1 </dev/null & echo $!",
        ])
        let pid = pid_t(loop.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(pid > 0)
        defer { if pid > 0 { kill(pid, SIGKILL) } }
        let path = file("attach") + ".jsonl"
        let out = try runProcess([
            "/usr/bin/timeout", "--preserve-status", "-s", "INT", "1", TestEnv.clab, "trace", "--pid", "\(pid)",
            "--json", path,
        ])
        #expect(out.status == 0, "\(out.stderr)")
        let trace = try JSONTrace(path: path)
        #expect(trace.syscalls.count > 10)
        let unnamed = trace.syscalls.filter { $0["comm"] as? String == "?" }
        #expect(unnamed.isEmpty, "\(unnamed.prefix(3))")
    }

    /// CAP_BPF and CAP_PERFMON without root: what the error message says suffices, does.
    @Test func capabilitiesWithoutRootSuffice() throws {
        let dir = file("caps")
        mkdir(dir, 0o777)
        chmod(dir, 0o777)
        let path = dir + "/t.jsonl"
        let out = try runProcess([
            "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+bpf,+perfmon",
            "--ambient-caps=+bpf,+perfmon", TestEnv.clab, "trace", "--host", "--json", path, "--", "cat",
            "/etc/hostname",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        let trace = try JSONTrace(path: path)
        #expect(trace.lost == 0)
        #expect(trace.syscalls.contains { ($0["args"] as? [String])?.contains("\"/etc/hostname\"") == true })
    }

    /// Traced data in the HTML page cannot end its script (`</script>`) or change how the
    /// parser reads it (`<!--<script>`): the embedded JSON has no "<" at all.
    @Test func htmlEmbedsNoAngleBracket() throws {
        let path = file("html") + ".jsonl"
        let page = path + ".html"
        let run = try runProcess([
            TestEnv.clab, "trace", "--host", "--json", path, "--", "/bin/echo", "</script><script>alert(1)</script>",
            "<!--<script>",
        ])
        #expect(run.status == 0)
        #expect(try runProcess([TestEnv.clab, "trace", "view", path, "--html", page]).status == 0)
        let html = try String(contentsOfFile: page, encoding: .utf8)
        let data = html.components(separatedBy: "const events = ").last?.split(separator: "\n").first ?? ""
        #expect(data.contains("alert(1)"))
        #expect(!data.contains("<"))
        #expect(html.components(separatedBy: "</script>").count == 2)
    }

    /// `end.events` is what was written: with --filter, the calls kept.
    @Test func filterCountsWhatWasWritten() throws {
        let path = file("filter") + ".jsonl"
        let out = try runProcess([
            TestEnv.clab, "trace", "--host", "--filter", "openat,close", "--json", path, "--", "cat", "/etc/hostname",
        ])
        #expect(out.status == 0)
        let trace = try JSONTrace(path: path)
        #expect(trace.syscalls.count > 0)
        #expect(trace.lines.last?["events"] as? Int == trace.syscalls.count)
        #expect(out.stderr.contains("clab trace: \(trace.syscalls.count) syscalls"))
    }
}

extension Timing {
    /// The tracer keeps up with dd at the default buffer: measured alone, with nothing else on
    /// the CPUs (make test runs the Timing suites after the others).
    @Suite("trace · lossless at the default buffer", tracerAvailable)
    struct TraceLossless {
        static let dd = TraceRobustTests.dd

        func file(_ name: String) -> String { TestEnv.root + "/\(name)-\(UUID().uuidString.prefix(8))" }

        func lostLines(_ trace: JSONTrace) -> (lines: [[String: Any]], total: Int) {
            TraceRobustTests().lostLines(trace)
        }

        /// The measurement needs both CPUs (dd and the reader): wait, at most 30 s, until the
        /// machine's busy share over half a second is under a quarter. Once in CI, right after the
        /// cgroup-v2 VM suite, all three text-view runs lost events; alone they lose none.
        func waitForQuietCPUs() {
            func ticks() -> (busy: Double, total: Double) {
                let fields = ((try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? "").split(separator: "\n")
                    .first?.split(separator: " ")
                let values = (fields ?? []).dropFirst().compactMap { Double($0) }
                guard values.count >= 5 else { return (0, 1) }
                let total = values.reduce(0, +)
                return (total - values[3] - values[4], total)
            }
            for _ in 0..<60 {
                let a = ticks()
                usleep(500_000)
                let b = ticks()
                if b.total > a.total, (b.busy - a.busy) / (b.total - a.total) < 0.25 { return }
            }
        }

        /// 600,000 syscalls in about a second: the old reader, decoding on the ring-buffer thread,
        /// lost most of them (78% with this debug build, up to half in release). Alone (Timing): with
        /// other suites on the two CPUs the reader can fall behind. Even alone, about one run in
        /// four of this debug build loses (measured: 6 of 24, each losing most of its records at
        /// half the usual rate, as when the VM's host takes the CPUs for a while), so a run that
        /// loses is tried up to four more times: a reader that could not keep up loses every time.
        @Test func ddLosesNothingToJSON() throws {
            let path = file("dd") + ".jsonl"
            defer { unlink(path) }
            waitForQuietCPUs()
            var out = try runProcess([TestEnv.clab, "trace", "--host", "--json", path, "--"] + Self.dd)
            for _ in 0..<4 where try JSONTrace(path: path).lost != 0 {
                waitForQuietCPUs()
                out = try runProcess([TestEnv.clab, "trace", "--host", "--json", path, "--"] + Self.dd)
            }
            #expect(out.status == 0, "\(out.stderr)")
            let trace = try JSONTrace(path: path)
            #expect(trace.lines.last?["events"] as? Int == trace.syscalls.count)
            #expect(trace.lost == 0, "\(out.stderr)")
            #expect(trace.counts["read"] ?? 0 >= 300_000 && trace.counts["write"] ?? 0 >= 300_000)
            #expect(lostLines(trace).lines.isEmpty)
        }

        /// The text view, written to a file: the old one wrote (and built strings) per line and
        /// lost about three quarters. Retried as the JSON run is.
        @Test func ddLosesNothingToTheTextView() throws {
            let path = file("dd") + ".txt"
            defer { unlink(path) }
            let run =
                [
                    "/bin/sh", "-c", "out=$0 clab=$1; shift; exec \"$clab\" trace --host -- \"$@\" 2>\"$out\"", path,
                    TestEnv.clab,
                ] + Self.dd
            waitForQuietCPUs()
            var out = try runProcess(run)
            for _ in 0..<4 where try String(contentsOfFile: path, encoding: .utf8).contains("--- lost") {
                waitForQuietCPUs()
                out = try runProcess(run)
            }
            #expect(out.status == 0)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let lines = text.split(separator: "\n")
            #expect(lines.last?.hasSuffix("syscalls, 0 lost") == true, "\(lines.last ?? "")")
            #expect(lines.filter { $0.hasPrefix("dd ") }.count >= 600_000)
            #expect(!text.contains("--- lost"))
        }
    }
}
