import CShims
import ClabSpec
import ClabSys
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
    /// The whole of it is stage 4's step: the stages it mounts for (9's layers, 3's proc, 8's
    /// cgroups, 10's volumes) are steps nested in it, and what is between them is stage 4's.
    static func pivotIntoImage(_ spec: ContainerSpec) throws {
        let root = spec.rootfsMountPoint
        try step(4) {
            try makePrivate()
            if let overlay = spec.overlay {
                try OverlayStage.mountLayers(overlay, at: root)
            } else {
                try check(
                    mount(spec.imageRoot, root, nil, UInt(MS_BIND | MS_REC), nil),
                    "mount --bind \(spec.imageRoot) \(root)")
            }
            // Every path below is looked up inside the new root (InRoot): an image's symlinks must
            // not lead init, still in the host's root, to the host's files.
            let inRoot = try InRoot(root)
            defer { inRoot.close() }
            if let oci = spec.oci {
                // An OCI bundle: exactly its config.json mounts (OCISetup.swift), not clab's own.
                try BundleMounts.mountAll(oci, spec, in: inRoot)
            } else {
                try standardMounts(spec, in: inRoot)
            }
            try pivot(into: root)
        }
    }

    /// Step 1: no mount event travels between this namespace and the host's any more.
    static func makePrivate(calls: some StageCalls = KernelCalls()) throws {
        try check(calls.mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil), "mount --make-rprivate /")
    }

    /// Step 4: `root` (a mount point, with everything mounted in it) becomes "/", and the old
    /// root is gone from the namespace.
    static func pivot(into root: String, calls: some StageCalls = KernelCalls()) throws {
        try check(calls.chdir(root), "chdir \(root)")
        try check(calls.pivotRoot(".", "."), "pivot_root")
        try check(calls.umount2(".", Int32(MNT_DETACH)), "umount2 old root")
        try check(calls.chdir("/"), "chdir /")
    }

    /// proc, a minimal /dev, the cgroup limits and the volumes: clab's stages' own mounts.
    static func standardMounts(_ spec: ContainerSpec, in inRoot: InRoot) throws {
        try PIDStage.mountProc(in: inRoot)
        try step(4) { try mountMinimalDev(in: inRoot) }
        if !spec.cgroupMounts.isEmpty { try CgroupStage.showLimits(spec.cgroupMounts, in: inRoot) }
        if !spec.volumes.isEmpty { try VolumeStage.mountVolumes(spec.volumes, in: inRoot) }
    }

    /// A tmpfs /dev with the host's harmless devices bind-mounted in. Binding, not mknod: in a
    /// user namespace mknod is refused, and nodes on a filesystem mounted there would not open.
    static func mountMinimalDev(in root: InRoot) throws {
        let mountPoint = try root.resolveCreating("/dev", .directory)
        defer { close(mountPoint) }
        try check(
            mount("tmpfs", InRoot.procPath(mountPoint), "tmpfs", UInt(MS_NOSUID | MS_NOEXEC), "mode=755,size=64k"),
            "mount -t tmpfs tmpfs /dev")
        // The tmpfs is a new mount on top: look it up again, as a directory we create in.
        let devPath = try root.resolveCreating("/dev", .directory)
        defer { close(devPath) }
        let dev = openat(devPath, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dev >= 0 else { throw SyscallError("open /dev") }
        defer { close(dev) }
        for name in ["null", "zero", "full", "random", "urandom", "tty"] {
            let file = openat(dev, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0o666)
            guard file >= 0 else { throw SyscallError("create /dev/\(name)") }
            defer { close(file) }
            try check(
                mount("/dev/" + name, InRoot.procPath(file), nil, UInt(MS_BIND), nil),
                "mount --bind /dev/\(name) /dev/\(name)")
            try remountReadOnly(dev, name)
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            try check(symlinkat(target, dev, name), "symlink /dev/\(name)")
        }
        if try !bindTerminal(into: dev) { try mountPtys(into: dev) }
        // POSIX shared memory (shm_open) lives in /dev/shm, not in the IPC namespace.
        try check(mkdirat(dev, "shm", 0o1777), "mkdir /dev/shm")
        let shm = openat(dev, "shm", CLAB_O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC)
        guard shm >= 0 else { throw SyscallError("open /dev/shm") }
        defer { close(shm) }
        try check(
            mount("shm", InRoot.procPath(shm), "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=1777,size=16m"),
            "mount -t tmpfs shm /dev/shm")
    }

    /// The bind is the host's own device inode: read-only, so that root in the container
    /// (real root under `--userns host`, with CAP_FOWNER and CAP_CHOWN) cannot chmod or chown
    /// the host's /dev/null. Reading and writing the device itself still work on a read-only mount.
    static func remountReadOnly(_ dir: Int32, _ name: String) throws {
        let bound = openat(dir, name, CLAB_O_PATH | O_NOFOLLOW | O_CLOEXEC)
        guard bound >= 0 else { throw SyscallError("open /dev/\(name)") }
        defer { close(bound) }
        let path = InRoot.procPath(bound)
        try check(
            mount(nil, path, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | HardeningStage.lockedFlags(path), nil),
            "mount -o remount,bind,ro /dev/\(name)")
    }

    /// The container's terminal (the pty clab made, see Console) at its own name under /dev/pts,
    /// so ttyname(3) finds it: `tty` prints /dev/pts/N instead of "not a tty". False: init has
    /// no terminal.
    static func bindTerminal(into dev: Int32) throws -> Bool {
        let terminal = (Int32(0)...2).first { isatty($0) != 0 }
        guard let fd = terminal, let link = FS.readLink("/proc/self/fd/\(fd)"), link.hasPrefix("/dev/pts/") else {
            return false
        }
        let name = Path.basename(link)
        try check(mkdirat(dev, "pts", 0o755), "mkdir /dev/pts")
        let pts = openat(dev, "pts", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard pts >= 0 else { throw SyscallError("open /dev/pts") }
        defer { close(pts) }
        let file = openat(pts, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0o620)
        guard file >= 0 else { throw SyscallError("create /dev/pts/\(name)") }
        defer { close(file) }
        try check(mount(link, InRoot.procPath(file), nil, UInt(MS_BIND), nil), "mount --bind \(link) /dev/pts/\(name)")
        return true
    }

    /// Without a terminal of init's: a devpts of the container's own (a new instance: none of
    /// the host's ptys are in it), as runc mounts one, so `clab exec -t` and `docker exec -it`
    /// open their terminal there (ExecProcess.takeContainerTerminal) and `tty` names it.
    static func mountPtys(into dev: Int32) throws {
        try check(mkdirat(dev, "pts", 0o755), "mkdir /dev/pts")
        let pts = openat(dev, "pts", CLAB_O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC)
        guard pts >= 0 else { throw SyscallError("open /dev/pts") }
        defer { close(pts) }
        try check(
            mount(
                "devpts", InRoot.procPath(pts), "devpts", UInt(MS_NOSUID | MS_NOEXEC),
                "newinstance,ptmxmode=0666,mode=0620"),
            "mount -t devpts -o newinstance devpts /dev/pts")
        try check(symlinkat("pts/ptmx", dev, "ptmx"), "symlink /dev/ptmx")
    }
}
