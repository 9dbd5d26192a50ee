import CShims
import Glibc

/// Stage 4: a mount namespace (CLONE_NEWNS) and pivot_root(2).
///
/// 1. Make every mount private (MS_REC|MS_PRIVATE on "/"): the namespace starts as a copy of
///    the host's, still joined to it by shared propagation; pivot_root refuses a shared root
///    (EINVAL), and our mounts must not travel back to the host.
/// 2. Bind the image onto containers/<id>/rootfs: pivot_root needs a mount point.
/// 3. Mount proc (the PID namespace's view) and a minimal /dev while the old root is still
///    there: in a user namespace, the kernel allows a new proc mount only where a full one is
///    already visible.
/// 4. pivot_root(".", "."): the new root goes on top, the old root underneath it at the same
///    place; umount2(".", MNT_DETACH) then drops the old root from the namespace entirely.
///    Nothing above the new root is left to climb to: the chroot escape fails.
enum MountStage {
    static func pivotIntoImage(_ spec: ContainerSpec) throws {
        let root = spec.rootfsMountPoint
        try step(4) {
            try check(mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil), "mount --make-rprivate /")
        }
        if let overlay = spec.overlay {
            try OverlayStage.mountLayers(overlay, at: root)
        } else {
            try step(4) {
                try check(
                    mount(spec.imageRoot, root, nil, UInt(MS_BIND | MS_REC), nil),
                    "mount --bind \(spec.imageRoot) \(root)")
            }
        }
        try PIDStage.mountProc(at: root + "/proc")
        try step(4) { try mountMinimalDev(root + "/dev") }
        if !spec.cgroupMounts.isEmpty { try CgroupStage.showLimits(spec.cgroupMounts, root: root) }
        if !spec.volumes.isEmpty { try VolumeStage.mountVolumes(spec.volumes, root: root) }
        try step(4) {
            try check(chdir(root), "chdir \(root)")
            try check(clab_pivot_root(".", "."), "pivot_root")
            try check(umount2(".", Int32(MNT_DETACH)), "umount2 old root")
            try check(chdir("/"), "chdir /")
        }
    }

    /// A tmpfs /dev with the host's harmless devices bind-mounted in. Binding, not mknod: in a
    /// user namespace mknod is refused, and nodes on a filesystem mounted there would not open.
    static func mountMinimalDev(_ dev: String) throws {
        try check(
            mount("tmpfs", dev, "tmpfs", UInt(MS_NOSUID | MS_NOEXEC), "mode=755,size=64k"),
            "mount -t tmpfs tmpfs \(dev)")
        for name in ["null", "zero", "full", "random", "urandom", "tty"] {
            let target = dev + "/" + name
            let fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0o666)
            guard fd >= 0 else { throw SyscallError("create \(target)") }
            close(fd)
            try check(mount("/dev/" + name, target, nil, UInt(MS_BIND), nil), "mount --bind /dev/\(name) \(target)")
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            try check(symlink(target, dev + "/" + name), "symlink \(dev)/\(name)")
        }
        // POSIX shared memory (shm_open) lives in /dev/shm, not in the IPC namespace.
        try check(mkdir(dev + "/shm", 0o1777), "mkdir \(dev)/shm")
        try check(
            mount("shm", dev + "/shm", "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=1777,size=16m"),
            "mount -t tmpfs shm \(dev)/shm")
    }
}
