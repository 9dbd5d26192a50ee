import ClabChecks
import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// Lab 5: IPC and network namespaces by hand. The reference solution passes; the bad attempt
/// (`unshare --net` alone) fails on the IPC properties with the fix; a probe that cannot enter
/// the namespaces is a failure with its reason, never a pass.
@Suite("lab 5 · IPC and network namespaces by hand", needsRoot, .serialized)
struct Lab5Tests {
    func start(_ script: String) throws -> Int32 {
        let out = try labScript(5, script)
        let pid = Int32(out.stdout.trimmed)
        #expect(out.status == 0 && pid != nil, "\(script): \(out.stdout)\(out.stderr)")
        return pid ?? -1
    }

    @Test func solutionPasses() throws {
        let pid = try start("solution.sh")
        defer { killAndWaitForExit([pid]) }
        let out = try clab("lab", "check", "5", "--pid", "\(pid)")
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("all 8 properties hold: lab 5 done"), "\(out.stdout)")
        #expect(out.stdout.contains("(read from inside its IPC namespace): 1 segment"), "\(out.stdout)")
    }

    @Test func badAttemptFailsWithATeachingMessage() throws {
        let pid = try start("bad-attempt.sh")
        defer {
            // The bad attempt's segment is in the host's IPC namespace: remove it.
            let out = try? labScript(5, "bad-attempt.sh", "cleanup", "\(pid)")
            #expect(out?.status == 0)
        }
        let failed = failedProperties(try LabVerifiers.verify(lab: 5, input: LabInput(pid: pid)))
        #expect(
            Set(failed.keys) == ["lab5.ns-own.ipc", "lab5.segment-inside", "lab5.segment-hidden"], "\(failed)")
        #expect(failed["lab5.segment-hidden"]?.contains("its segments are the host's") == true)
        #expect(
            failed["lab5.segment-hidden"]?.contains("unshare --ipc, then ipcmk -M 4096 inside") == true)
    }

    /// A user namespace without maps: the probe cannot become its root, so it cannot join the
    /// IPC and network namespaces. Those properties are "not checked", failures, not passes.
    @Test func aProbeThatCannotRunIsAFailure() throws {
        let out = try runProcess(
            [
                "/bin/sh", "-c",
                "unshare --user --ipc --net sleep 60 </dev/null >/dev/null 2>&1 & echo $!",
            ])
        let pid = Int32(out.stdout.trimmed) ?? -1
        defer { killAndWaitForExit([pid]) }
        #expect(eventually { FS.read("/proc/\(pid)/comm")?.trimmed == "sleep" })
        let results = try LabVerifiers.verify(lab: 5, input: LabInput(pid: pid))
        for id in ["lab5.segment-inside", "lab5.lo-up"] {
            let r = results.first { $0.id == id }
            #expect(r?.passed == false, "\(id): \(results)")
            #expect(r?.evidence.hasPrefix("not checked: ") == true, "\(id): \(r?.evidence ?? "")")
        }
        #expect(results.first { $0.id == "lab5.ns-own.ipc" }?.passed == true)
    }

    @Test func theHostItselfFailsEveryNamespaceProperty() throws {
        let results = try LabVerifiers.verify(lab: 5, input: LabInput(pid: getpid()))
        #expect(results.filter { !$0.passed }.count == 7, "\(results)")
        #expect(results.first { $0.id == "lab5.lo-up" }?.fix?.contains("that is the host's lo") == true)
    }
}
