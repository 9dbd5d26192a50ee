import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 3: a PID 1 that does PID 1's two jobs, made by hand. It must be PID 1 of a PID namespace
/// of its own, catch SIGTERM (the kernel drops a signal to a namespace's init that has no
/// handler for it, so without one `kill` and `docker stop` do nothing), and reap orphans: the
/// kernel hands every orphan in the namespace to its PID 1, and only a wait(2) there frees it.
/// The handler is read from /proc/<pid>/status; the reaping is tried for real by
/// `clab-init --probe orphan`, which makes one orphan in the namespace (clab's own code, no
/// program of the learner's) and watches whether it is reaped.
public enum Lab3Verifier {
    /// SIGTERM is signal 15: bit 14 of the SigCgt mask.
    static let sigtermBit: UInt64 = 1 << (UInt64(SIGTERM) - 1)

    public static func verify(pid: Int32, layouts: [StateLayout]) throws -> [ProbeResult] {
        let p = try ProcessInspector(pid: pid)
        var r = LabResults(byHand: pid, layouts: layouts, stage: 3)
        let byHand = r.results[0]
        let ownPID = r.addOwns(
            p, .pid, "own PID namespace",
            fix: "unshare --pid --fork --mount-proc: the forked child is the first process of the new namespace")
        let chain = p.nsPids
        let isInit = ownPID && chain.count > 1 && chain.last == 1
        r.add(
            "lab3.pid1", "it is PID 1 inside", isInit, "NSpid: \(chain.map(String.init).joined(separator: " "))",
            fix: ownPID
                ? "give the pid of the namespace's first process, unshare's child (pgrep -P UNSHARE_PID), not unshare itself"
                : "it is in the host's PID namespace: start it with unshare --pid --fork")

        let handler = ProbeName(id: "lab3.catches-sigterm", wording: "it catches SIGTERM")
        let status = Host.status(pid: "\(pid)") ?? [:]
        if let caught = status["SigCgt"].flatMap({ UInt64($0, radix: 16) }) {
            let catches = caught & sigtermBit != 0
            let ignored = (status["SigIgn"].flatMap { UInt64($0, radix: 16) } ?? 0) & sigtermBit != 0
            r.add(
                handler, catches,
                "/proc/\(pid)/status SigCgt: \(status["SigCgt"] ?? "?") (SIGTERM \(catches ? "caught" : ignored ? "ignored" : "not caught: the kernel drops it, as PID 1 has no handler"))",
                fix: ignored
                    ? "it ignores SIGTERM: catch it instead and end, in sh: trap 'exit 0' TERM"
                    : "a namespace's PID 1 gets no default action: a signal it has no handler for is dropped, so kill PID does nothing. Install one, in sh: trap 'exit 0' TERM"
            )
        } else {
            r.notChecked(handler, "cannot read /proc/\(pid)/status", fix: "give the pid of a running process")
        }

        let reaps = ProbeName(id: "lab3.reaps-orphans", wording: "it reaps orphans")
        if !byHand.passed {
            // A zombie the probe leaves under a PID 1 that does not reap stays until that PID 1
            // ends: never in a container of clab's, which may be someone's running service.
            r.notChecked(
                reaps, "the verifier makes no orphan in a container clab made",
                fix: "start your own PID 1 with unshare --pid --fork --mount-proc")
        } else if !isInit {
            r.notChecked(
                reaps, "an orphan goes to its namespace's PID 1, and this process is not one",
                fix: "give the host pid of your namespace's PID 1")
        } else {
            let tried = try p.probe("orphan")
            let said = tried.output.trimmed
            let zombies = Self.zombieChildren(of: pid)
            let now =
                "; zombies among its children now (/proc/\(pid)/task/*/children): \(zombies.isEmpty ? "none" : zombies.map(String.init).joined(separator: " "))"
            switch tried.status {
            case 0: r.add(reaps, true, "the verifier made an orphan in its namespace: \(said)\(now)", fix: "")
            case 1:
                r.add(
                    reaps, false,
                    "the verifier made an orphan in its namespace: \(said)\(now); they stay until your PID 1 ends",
                    fix:
                        "PID 1 must wait(2) for every child, its own and the orphans the kernel hands it: run a loop that waits, in sh: while :; do sleep 1 & wait; done (sleep, or any program that never calls wait, only collects zombies)"
                )
            default:
                r.notChecked(
                    reaps, said.isEmpty ? "the probe failed (exit \(tried.status))" : said,
                    fix: "give the host pid of a running PID 1 of a PID namespace of its own")
            }
        }
        return r.results
    }

    /// The host pids of `pid`'s children that are zombies (state Z), from every thread's
    /// children list.
    static func zombieChildren(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let children = tasks.flatMap { task in
            (FS.read("/proc/\(pid)/task/\(task)/children") ?? "").split(separator: " ").compactMap { Int32($0) }
        }
        return children.filter { Host.status(pid: "\($0)")?["State"]?.hasPrefix("Z") == true }.sorted()
    }
}
