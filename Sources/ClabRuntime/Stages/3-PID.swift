import ClabHost
import ClabSpec
import Glibc

/// Stage 3's host half: at stage 3 the container has a PID namespace but still the host's
/// mount namespace, so clab-init's mounts (the image's root bind and its /proc, ClabInit's
/// `Stages/3-PID.swift`) are made in the host's namespace and must be unmounted by clab. From
/// stage 4 on they live in the container's own mount namespace and go with it; stages 1-2 make
/// none.
extension Container {
    func unmountHostSide() {
        guard spec.stage.has(.pid) && !spec.stage.has(.mnt) else { return }
        let root = spec.rootfsMountPoint
        StageMark.host(3) {
            _ = umount2(root + "/proc", Int32(MNT_DETACH))
            _ = umount2(root, Int32(MNT_DETACH))
        }
    }
}

/// Stage 3's consequence for Ctrl-C: a PID namespace's first process gets only the signals it
/// has a handler for (the kernel drops the others, lesson 3), so a relayed Ctrl-C may do
/// nothing. `Container.wait` then sends SIGKILL after its grace period: the kernel delivers that
/// one to a namespace's init from outside. Below stage 3 the command is an ordinary process:
/// the signal did its work, or the command chose to ignore it.
extension Container {
    var escalatesIgnoredSignals: Bool { spec.stage.has(.pid) }

    /// A typed Ctrl-C went to the pty's foreground group; it is ignored when that group is
    /// PID 1's own and PID 1 has no SIGINT handler (the kernel drops it, lesson 3). A shell at
    /// its prompt catches SIGINT, and a foreground job in its own group dies of it: no escalation.
    func interruptIgnoredByInit(_ console: Console) -> Bool {
        console.acknowledgeInterrupt()
        guard spec.stage.has(.pid), console.foregroundGroup == pid,
            let caught = Host.status(pid: "\(pid)")?["SigCgt"].flatMap({ UInt64($0, radix: 16) })
        else { return false }
        return caught & (1 << (UInt64(SIGINT) - 1)) == 0
    }
}
