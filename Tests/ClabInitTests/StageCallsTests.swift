import ClabSys
import Glibc
import Testing

@testable import ClabInit

/// Records the calls a stage makes instead of making them, and refuses the one named in
/// `refuse` (errno EPERM), as the kernel refuses a call.
final class RecordedCalls: StageCalls {
    var calls: [String] = []
    let refuse: String?

    init(refusing refuse: String? = nil) { self.refuse = refuse }

    private func record(_ call: String) -> Int32 {
        calls.append(call)
        guard let refuse, call.hasPrefix(refuse) else { return 0 }
        errno = EPERM
        return -1
    }

    func chdir(_ path: String) -> Int32 { record("chdir \(path)") }
    func chroot(_ path: String) -> Int32 { record("chroot \(path)") }
    func sethostname(_ name: String) -> Int32 { record("sethostname \(name)") }
    func mount(_ source: String?, _ target: String, _ type: String?, _ flags: UInt, _ data: String?) -> Int32 {
        record("mount \(source ?? "-") \(target) \(type ?? "-") \(flags) \(data ?? "-")")
    }
    func pivotRoot(_ newRoot: String, _ putOld: String) -> Int32 { record("pivot_root \(newRoot) \(putOld)") }
    func umount2(_ target: String, _ flags: Int32) -> Int32 { record("umount2 \(target) \(flags)") }
    func linkUp(_ name: String) -> Int32 { record("link up \(name)") }
}

/// Stages 1, 2, 4 and 6 through a recording `StageCalls` (the seam youki calls `Syscall`): the
/// order of the kernel calls each makes, and that a refused call ends its stage with an error
/// that names the stage and the call, before any later call. No root, no namespace.
@Suite("init stages: the kernel calls, recorded")
struct StageCallsTests {
    @Test func chrootEntersTheRootThroughItsDirectory() throws {
        let calls = RecordedCalls()
        try ChrootStage.enter("/images/busybox/rootfs", calls: calls)
        // chdir first, then chroot("."): the order `breakout` exploits when a stage skips chdir("/").
        #expect(calls.calls == ["chdir /images/busybox/rootfs", "chroot .", "chdir /"])
    }

    @Test func aRefusedChrootIsStageOnesErrorAndNothingFollows() {
        let calls = RecordedCalls(refusing: "chroot")
        let error = #expect(throws: StageFailure.self) { try ChrootStage.enter("/r", calls: calls) }
        #expect(error?.description == "stage 1: chroot /r: \(errnoDescription(EPERM))")
        #expect(calls.calls == ["chdir /r", "chroot ."])
    }

    @Test func theHostnameIsOneCall() throws {
        let calls = RecordedCalls()
        try UTSStage.setHostname("web", calls: calls)
        #expect(calls.calls == ["sethostname web"])
        let refused = RecordedCalls(refusing: "sethostname")
        let error = #expect(throws: StageFailure.self) { try UTSStage.setHostname("web", calls: refused) }
        #expect(error?.description == "stage 2: sethostname \"web\": \(errnoDescription(EPERM))")
    }

    @Test func everyMountBecomesPrivateRecursively() throws {
        let calls = RecordedCalls()
        try MountStage.makePrivate(calls: calls)
        #expect(calls.calls == ["mount - / - \(UInt(MS_REC | MS_PRIVATE)) -"])
    }

    @Test func pivotPutsTheOldRootUnderTheNewAndDetachesIt() throws {
        let calls = RecordedCalls()
        try MountStage.pivot(into: "/run/clab/c1/rootfs", calls: calls)
        #expect(
            calls.calls == [
                "chdir /run/clab/c1/rootfs", "pivot_root . .", "umount2 . \(MNT_DETACH)", "chdir /",
            ])
    }

    @Test func aRefusedPivotLeavesTheOldRootAlone() {
        let calls = RecordedCalls(refusing: "pivot_root")
        let error = #expect(throws: SyscallError.self) { try MountStage.pivot(into: "/r", calls: calls) }
        #expect(error?.description == "pivot_root: \(errnoDescription(EPERM))")
        // No umount2: with pivot_root refused, "." is still the host's root's view.
        #expect(calls.calls == ["chdir /r", "pivot_root . ."])
    }

    @Test func loopbackComesUpAndARefusalIsStageSixs() throws {
        let calls = RecordedCalls()
        try NetworkStage.bringUpLoopback(calls: calls)
        #expect(calls.calls == ["link up lo"])
        let refused = RecordedCalls(refusing: "link up")
        let error = #expect(throws: StageFailure.self) { try NetworkStage.bringUpLoopback(calls: refused) }
        #expect(error?.description == "stage 6: ip link set lo up (SIOCSIFFLAGS): \(errnoDescription(EPERM))")
    }
}
