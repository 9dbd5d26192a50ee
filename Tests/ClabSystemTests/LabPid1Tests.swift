import ClabChecks
import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// Lab 3: PID 1's two jobs by hand. The reference solution (a sh that traps SIGTERM and waits in
/// a loop) passes and ends on SIGTERM; the bad attempt (`sleep` as PID 1) fails on the handler
/// and on reaping, with the fixes; the orphan probe leaves no process of its own behind; a probe
/// that cannot run, or a process that is no namespace's PID 1, is a failure, never a pass.
@Suite("lab 3 · PID 1's two jobs by hand", needsRoot, .serialized)
struct Lab3Tests {
    func start(_ script: String) throws -> Int32 {
        let out = try labScript(3, script)
        let pid = Int32(out.stdout.trimmed)
        #expect(out.status == 0 && pid != nil, "\(script): \(out.stdout)\(out.stderr)")
        return pid ?? -1
    }

    /// The host pids whose parent is `pid`, with their state letter.
    func children(of pid: Int32) -> [(pid: Int32, state: String)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let pids = tasks.flatMap { task in
            (FS.read("/proc/\(pid)/task/\(task)/children") ?? "").split(separator: " ").compactMap { Int32($0) }
        }
        return pids.map { ($0, String(Host.status(pid: "\($0)")?["State"]?.prefix(1) ?? "?")) }
    }

    @Test func solutionPassesAndEndsOnSIGTERM() throws {
        let pid = try start("solution.sh")
        defer { killAndWaitForExit([pid]) }
        let out = try clab("lab", "check", "3", "--pid", "\(pid)")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 5 properties hold: lab 3 done"), "\(out.stdout)")
        #expect(out.stdout.contains("was adopted by PID 1 and reaped within"), "\(out.stdout)")
        #expect(out.stdout.contains("zombies among its children now (/proc/\(pid)/task/*/children): none"))
        // The probe left nothing: PID 1's children are its own sleeps, none a zombie.
        let left = children(of: pid)
        #expect(left.allSatisfy { $0.state != "Z" && FS.read("/proc/\($0.pid)/comm")?.trimmed == "sleep" }, "\(left)")
        // The handler works: SIGTERM from the host ends it (cleanup says so when it had to SIGKILL).
        let cleanup = try labScript(3, "solution.sh", "cleanup", "\(pid)")
        #expect(cleanup.status == 0 && !cleanup.stderr.contains("did not end on SIGTERM"), "\(cleanup.stderr)")
        #expect(eventually { !Host.isAlive(pid: pid, startTime: nil) })
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        let pid = try start("bad-attempt.sh")
        defer {
            let out = try? labScript(3, "bad-attempt.sh", "cleanup", "\(pid)")
            #expect(out?.status == 0)
        }
        let results = try LabVerifiers.verify(lab: 3, input: LabInput(pid: pid))
        let failed = failedProperties(results)
        #expect(Set(failed.keys) == ["lab3.catches-sigterm", "lab3.reaps-orphans"], "\(results)")
        #expect(failed["lab3.catches-sigterm"]?.contains("trap 'exit 0' TERM") == true)
        #expect(failed["lab3.reaps-orphans"]?.contains("while :; do sleep 1 & wait; done") == true)
        let reaps = results.first { $0.id == "lab3.reaps-orphans" }
        #expect(reaps?.evidence.contains("is still a zombie (state Z)") == true, "\(reaps?.evidence ?? "")")
        // What stays is the zombie sleep would not collect: no process of the probe runs.
        let left = children(of: pid)
        #expect(left.count == 1 && left.first?.state == "Z", "\(left)")
        #expect(
            reaps?.evidence.contains(
                "zombies among its children now (/proc/\(pid)/task/*/children): \(left.first?.pid ?? 0)")
                == true, "\(reaps?.evidence ?? "")")
        // It goes with its PID 1: the kernel reaps a dying namespace.
        killAndWaitForExit([pid])
        if let zombie = left.first?.pid {
            #expect(eventually { Host.status(pid: "\(zombie)") == nil })
        }
    }

    /// A PID 1 in a user namespace without maps: the probe cannot become its root, so it
    /// makes no orphan there. "Not checked" is a failure, not a pass.
    @Test func aProbeThatCannotRunIsAFailure() throws {
        let out = try runProcess(
            [
                "/bin/sh", "-c",
                "unshare --user --pid --fork sh -c 'trap \"exit 0\" TERM; while :; do sleep 1 & wait; done' </dev/null >/dev/null 2>&1 & echo $!",
            ])
        let unsharePid = Int32(out.stdout.trimmed) ?? -1
        defer { killAndWaitForExit([unsharePid]) }
        var pid: Int32 = -1
        #expect(
            eventually {
                pid = children(of: unsharePid).first?.pid ?? -1
                return pid > 0 && FS.read("/proc/\(pid)/comm")?.trimmed == "sh"
            })
        defer { killAndWaitForExit([pid]) }
        let results = try LabVerifiers.verify(lab: 3, input: LabInput(pid: pid))
        let reaps = results.first { $0.id == "lab3.reaps-orphans" }
        #expect(reaps?.passed == false && reaps?.evidence.hasPrefix("not checked: ") == true, "\(results)")
        #expect(results.first { $0.id == "lab3.pid1" }?.passed == true)

        // unshare itself is in the host's namespace: no orphan is made there.
        let outside = try LabVerifiers.verify(lab: 3, input: LabInput(pid: unsharePid))
        #expect(
            failedProperties(outside).keys.sorted() == [
                "lab3.catches-sigterm", "lab3.ns-own.pid", "lab3.pid1", "lab3.reaps-orphans",
            ], "\(outside)")
        let notChecked = outside.first { $0.id == "lab3.reaps-orphans" }
        #expect(notChecked?.evidence.hasPrefix("not checked: ") == true)
    }
}
