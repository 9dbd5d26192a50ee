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
