import ClabSpec
import ClabSys
import Glibc

/// Stage 3: a PID namespace (CLONE_NEWPID). The first process in it is PID 1, and it sees only
/// its descendants. /proc shows the PID namespace of whoever mounted it, so the container needs
/// a proc mount of its own.
///
/// Without a mount namespace (stage 4) that mount lands in the host's mount table: the host can
/// see it while the container runs, and clab must remove it afterwards. To keep concurrent
/// containers apart, each one gets its own bind of the image at containers/<id>/rootfs.
enum PIDStage {
    static func chrootWithOwnProc(_ spec: ContainerSpec) throws {
        let root = spec.rootfsMountPoint
        try step(3) {
            try check(mount(spec.imageRoot, root, nil, UInt(MS_BIND), nil), "mount --bind \(spec.imageRoot) \(root)")
            let inRoot = try InRoot(root)
            defer { inRoot.close() }
            try mountProc(in: inRoot)
        }
        try ChrootStage.enter(root)
    }

    /// proc on the root's /proc, found inside the root (see InRoot).
    static func mountProc(in root: InRoot) throws {
        try step(3) {
            let target = try root.resolveCreating("/proc", .directory)
            defer { close(target) }
            try check(
                mount("proc", InRoot.procPath(target), "proc", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), nil),
                "mount -t proc proc /proc")
        }
    }
}
