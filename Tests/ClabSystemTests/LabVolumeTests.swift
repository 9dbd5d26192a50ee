import ClabChecks
import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// Lab 10: volumes and bind mounts by hand. The reference solution passes; the bad attempt
/// (chmod a-w where a read-only mount was needed) fails with the fix, because the probe really
/// writes; a container whose /data is not the volume fails the sharing line; processes in the
/// host's mount namespace are never written in.
@Suite("lab 10 · volumes and bind mounts by hand", needsRoot, .serialized)
struct Lab10Tests {
    /// Outside the state root: work inside clab's state is not "by hand".
    static var dir: String { "/tmp/clab-tests-lab10-\(getpid())" }

    func start(_ script: String) throws -> [Int32] {
        try TestEnv.ensureImage()
        let out = try labScript(10, script, Self.dir)
        let pids = out.stdout.split(separator: " ").compactMap { Int32($0.trimmed) }
        #expect(out.status == 0 && pids.count == 2, "\(script): \(out.stdout)\(out.stderr)")
        return pids
    }

    func stop(_ pids: [Int32]) {
        killAndWaitForExit(pids)
        let out = try? labScript(10, "solution.sh", Self.dir, "cleanup")
        #expect(out?.status == 0, "\(out?.stderr ?? "")")
        #expect(!FS.exists(Self.dir))
        #expect(!(FS.read("/proc/self/mountinfo") ?? "").contains(Self.dir))
    }

    func verify(_ pids: [Int32]) throws -> [ProbeResult] {
        try LabVerifiers.verify(lab: 10, input: LabInput(dir: Self.dir, pids: pids), runtime: TestEnv.runtime)
    }

    @Test func solutionPasses() throws {
        let pids = try start("solution.sh")
        defer { stop(pids) }
        let out = try clab("lab", "check", "10", "--pid", "\(pids[0])", "--pid", "\(pids[1])", "--dir", Self.dir)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 12 properties hold: lab 10 done"), "\(out.stdout)")
        #expect(out.stdout.contains("EROFS (Read-only file system)"))
        // The probes left nothing behind in the learner's directories.
        #expect((try FileManager.default.contentsOfDirectory(atPath: Self.dir + "/data")).isEmpty)
        #expect((try FileManager.default.contentsOfDirectory(atPath: Self.dir + "/site")) == ["index.html"])
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        let pids = try start("bad-attempt.sh")
        defer { stop(pids) }
        let failed = failedProperties(try verify(pids))
        #expect(
            Set(failed.keys) == [
                "lab10.bind-ro.a", "lab10.write-refused.a", "lab10.bind-ro.b", "lab10.write-refused.b",
            ],
            "\(failed)")
        #expect(
            failed["lab10.write-refused.a"]?.contains("chmod and file modes do not stop root") == true
        )
        #expect(
            failed["lab10.bind-ro.a"]?.contains(
                "mount -o remount,bind,ro \(Self.dir)/a/www") == true)
        // The probe's file was removed again.
        #expect((try FileManager.default.contentsOfDirectory(atPath: Self.dir + "/site")) == ["index.html"])
    }

    @Test func aContainerWithoutTheVolumeDoesNotShare() throws {
        let pids = try start("solution.sh")
        defer { stop(pids) }
        // B's /data unmounted: B sees its copy's empty directory, not the volume.
        let out = try runProcess(
            ["/usr/bin/nsenter", "--target", "\(pids[1])", "--mount", "umount", Self.dir + "/b/data"])
        #expect(out.status == 0, "\(out.stderr)")
        let failed = failedProperties(try verify(pids))
        #expect(
            Set(failed.keys) == ["lab10.bind-rw.b", "lab10.volume-shared"], "\(failed)")
        #expect(
            failed["lab10.volume-shared"]?.contains(
                "B reads nothing") == true, "\(failed)")
    }

    /// Two processes in the host's mount namespace: the write probes refuse to run (they would
    /// write as host root in the host's view), and that is a failure with its reason.
    @Test func hostProcessesAreNeverWrittenIn() throws {
        let results = try verify([getpid(), getpid()])
        for id in ["lab10.write-refused.a", "lab10.volume-shared"] {
            let r = results.first { $0.id == id }
            #expect(r?.passed == false, "\(id): \(results)")
            #expect(r?.evidence.contains("not checked: ") == true, "\(r?.evidence ?? "")")
            #expect(r?.evidence.contains("shares the host's mount namespace") == true, "\(r?.evidence ?? "")")
        }
        #expect(
            results.filter(\.passed).map(\.id) == ["made-by-hand", "lab10.binds-stay-inside"])
    }

    @Test func lab10TakesTwoPidsAndADirectory() throws {
        let one = try clab("lab", "check", "10", "--pid", "1", "--dir", "/tmp")
        #expect(one.status == 2)
        #expect(one.stderr.contains("give both host pids, --pid A --pid B"), "\(one.stderr)")
        let two = try clab("lab", "check", "7", "--pid", "1", "--pid", "2")
        #expect(two.status == 2)
        #expect(two.stderr.contains("lab 7 inspects one process, you gave 2 --pid"), "\(two.stderr)")
        let noDir = try clab("lab", "check", "10", "--pid", "1", "--pid", "2")
        #expect(noDir.status == 2 && noDir.stderr.contains("--dir DIR"), "\(noDir.stderr)")
    }
}

/// Kills processes the test started (by pid) and waits until each has exited: gone, or a zombie
/// its new parent has not reaped yet (a zombie holds no namespace and no mount any more).
func killAndWaitForExit(_ pids: [Int32]) {
    for pid in pids where pid > 0 { kill(pid, SIGKILL) }
    #expect(
        eventually {
            pids.allSatisfy { pid in
                pid <= 0 || Host.status(pid: "\(pid)").map { $0["State"]?.hasPrefix("Z") == true } ?? true
            }
        })
}
