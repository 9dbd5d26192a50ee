import ClabChecks
import ClabCore
import Foundation
import Glibc
import Testing

/// Lab 1: the reference solution passes the verifier; the known-bad attempt fails it with the
/// lines a learner needs.
@Suite("lab 1 · a container by hand", needsRoot, .serialized)
struct Lab1Tests {
    /// Runs a lab script (it leaves the container running and prints its PID 1's host pid).
    func startScript(_ name: String) throws -> Int32 {
        try TestEnv.ensureImage()
        let lab = try Lab.numbered(1)
        let out = try runProcess(
            ["/bin/bash", lab.directory + "/" + name],
            env: ["PATH": "\(Path.dirname(TestEnv.clab)):/usr/sbin:/usr/bin:/sbin:/bin"])
        let pid = Int32(out.stdout.trimmed)
        #expect(out.status == 0 && pid != nil, "\(name): \(out.stdout)\(out.stderr)")
        return pid ?? -1
    }

    func stop(_ pid: Int32) {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        #expect(eventually { !Host.isAlive(pid: pid, startTime: nil) })
    }

    @Test func solutionPasses() throws {
        let pid = try startScript("solution.sh")
        defer { stop(pid) }
        let out = try clab("lab", "check", "1", "--pid", "\(pid)")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 9 properties hold"))
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        let pid = try startScript("bad-attempt.sh")
        defer { stop(pid) }
        let results = try LabVerifiers.verify(lab: 1, pid: pid)
        let failed = results.filter { !$0.passed }
        #expect(
            Set(failed.map(\.property)) == ["the host's root is gone from its mount table", "breakout is contained"])
        #expect(failed.contains { $0.evidence.contains("use pivot_root . . and umount -l .") })
        let out = try clab("lab", "check", "1", "--pid", "\(pid)")
        #expect(out.status == 1)
        #expect(out.stdout.contains("✗ breakout is contained"))
    }

    @Test func hostShellFailsEverything() throws {
        // Not a container at all: the verifier's own parent.
        let results = try LabVerifiers.verify(lab: 1, pid: getpid())
        for property in [
            "its root is the busybox image", "own UTS namespace", "own PID namespace", "own mount namespace",
        ] {
            #expect(results.first { $0.property == property }?.passed == false, "\(property)")
        }
    }

    @Test func listAndShow() throws {
        let list = try clab("lab", "list")
        #expect(list.stdout.contains("1  A container by hand"))
        let show = try clab("lab", "show", "1")
        #expect(show.stdout.contains("pivot_root"))
        #expect(!show.stdout.hasPrefix("---"))
        let missing = try clab("lab", "check", "1", "--pid", "999999999")
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no process 999999999"))
    }
}
