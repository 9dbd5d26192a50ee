import CShims
import ClabSpec
import ClabSys
import Glibc

/// The bundle's filesystem, made by init where stage 4 would mount proc, /dev and /sys: every
/// config.json mount in order, each target resolved inside the root (InRoot: an image's
/// symlink cannot send a mount onto the host), then the host's harmless device nodes bound
/// into /dev and its symlinks (what runc adds to every container), and the terminal at
/// /dev/console.
enum BundleMounts {
    static func mountAll(_ oci: OCISetup, _ spec: ContainerSpec, in root: InRoot) throws {
        try step(4) {
            for m in oci.mounts { try step(stage(of: m)) { try mount(m, spec, in: root) } }
            try defaultDevices(in: root)
            for d in oci.devices { try device(d, in: root) }
        }
        // createContainer: in the container's namespaces, its mounts made, before pivot_root
        // (so the hook's path is still the host's, as the spec says).
        if !oci.hooks.createContainer.isEmpty {
            try step(4) {
                try OCIHooks.runInContainer(
                    oci.hooks.createContainer, phase: .createContainer, state: oci.hookState(status: "creating"))
            }
        }
    }

    /// The stage whose work a config.json mount is, as clab's own are: a bind is a volume (10),
    /// proc stage 3's, the cgroup directories stage 8's; the rest is the mount namespace's (4).
    static func stage(of m: MountSpec) -> Int {
        switch m.type {
        case .bind: 10
        case .proc: 3
        case .cgroup: 8
        default: 4
        }
    }

    /// One `linux.devices` node. A FIFO is made (mknod allows it in a user namespace); a
    /// device node is the host's node of the same path bound in (the host half checked that
    /// it has the config's type, major and minor), as mknod of a device is refused here.
    /// Made inside the root (InRoot): a symlink in the image cannot send it elsewhere.
    static func device(_ d: DeviceNode, in root: InRoot) throws {
        let parts = InRoot.components(d.path)
        guard let name = parts.last else { throw ClabError("linux.devices: \(d.path) names no file") }
        let parent = try root.resolveCreating("/" + parts.dropLast().joined(separator: "/"), .directory)
        defer { close(parent) }
        let dir = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw SyscallError("open the directory of \(d.path)") }
        defer { close(dir) }
        if d.type == "p" {
            if mknodat(dir, name, S_IFIFO | mode_t(d.mode & 0o777), 0) != 0 {
                // Only a FIFO may already be there: the chmod below follows a symlink, and the
                // image's symlink would lead it out of the root (init still sees the host's).
                var st = stat()
                guard errno == EEXIST, fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFIFO
                else { throw SyscallError("mknod \(d.path) p (something else is there)", errno: EEXIST) }
            }
        } else {
            let file = openat(dir, name, O_CREAT | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0o600)
            guard file >= 0 else { throw SyscallError("create \(d.path)") }
            defer { close(file) }
            try check(
                Glibc.mount(d.path, InRoot.procPath(file), nil, UInt(MS_BIND), nil), "mount --bind \(d.path)")
        }
        // Owner and mode as the config says (ids inside the user namespace), for the FIFO
        // made here (mknod applied the umask); a bound host node keeps the host's.
        if d.type == "p" {
            try check(fchownat(dir, name, d.uid, d.gid, AT_SYMLINK_NOFOLLOW), "chown \(d.path)")
            try check(fchmodat(dir, name, mode_t(d.mode & 0o7777), 0), "chmod \(d.path)")
        }
    }

    /// `linux.rootfsPropagation`, recursive, once every mount, mask and read-only bind is made
    /// (as crun does: an unbindable root would refuse the masks' binds).
    static func setRootPropagation(_ oci: OCISetup) throws {
        guard oci.rootfsPropagation != 0 else { return }
        try step(12) {
            try check(
                Glibc.mount(nil, "/", nil, UInt(oci.rootfsPropagation | UInt32(MS_REC)), nil),
                "mount --make-r\(propagationName(oci.rootfsPropagation)) /")
        }
    }

    /// After pivot_root, before stage 12's masks: the namespaced sysctls, written through the
    /// container's own /proc/sys.
    static func afterPivot(_ oci: OCISetup) throws {
        try step(12) {
            for s in oci.sysctls {
                let fd = open(s.procPath, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_TRUNC)
                guard fd >= 0 else {
                    throw SyscallError(
                        "open \(s.procPath) for linux.sysctl \(s.key) (the config must mount proc at /proc)")
                }
                defer { close(fd) }
                let bytes = Array(s.value.utf8)
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard n == bytes.count else { throw SyscallError("write \(s.value) to \(s.procPath)") }
            }
        }
    }

    static func propagationName(_ flag: UInt32) -> String {
        switch Int(flag & ~UInt32(MS_REC)) {
        case Int(MS_SHARED): "shared"
        case Int(MS_SLAVE): "slave"
        case Int(MS_UNBINDABLE): "unbindable"
        default: "private"
        }
    }

    static func mount(_ m: MountSpec, _ spec: ContainerSpec, in root: InRoot) throws {
        let shown = "\(m.type.rawValue) on \(m.target)"
        switch m.type {
        case .bind:
            let source = spec.volumes[m.volume].source
            let target = try root.resolveCreating(m.target, FS.isDirectory(source) ? .directory : .file)
            defer { close(target) }
            let path = InRoot.procPath(target)
            try check(Glibc.mount(source, path, nil, UInt(MS_BIND | MS_REC), nil), "mount --rbind \(m.target)")
            // The atime mode of a bind is its source mount's: the staged source is locked by
            // the user namespace, and a remount that changes atime flags there gets EPERM.
            let atime = UInt32(MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)
            if m.flags & ~atime != 0 {
                let fresh = try root.resolveCreating(m.target, .directory)
                defer { close(fresh) }
                let p = InRoot.procPath(fresh)
                try check(
                    Glibc.mount(
                        nil, p, nil,
                        UInt(MS_BIND | MS_REMOUNT) | UInt(m.flags & ~atime) | HardeningStage.lockedFlags(p),
                        nil),
                    "mount -o remount,bind \(m.target)")
            }
        case .cgroup:
            try cgroups(m, spec.cgroupMounts, in: root)
        default:
            let target = try root.resolveCreating(m.target, .directory)
            defer { close(target) }
            try check(
                Glibc.mount(m.source, InRoot.procPath(target), m.type.rawValue, UInt(m.flags), m.data),
                "mount -t \(m.type.rawValue) \(m.source) \(m.target)\(m.data.isEmpty ? "" : " -o " + m.data)")
        }
        if m.propagation != 0 {
            let fresh = try root.resolveCreating(m.target, .directory)
            defer { close(fresh) }
            try check(
                Glibc.mount(nil, InRoot.procPath(fresh), nil, UInt(m.propagation), nil), "propagation of \(shown)")
        }
    }

    /// runc's cgroup v1 mount: a tmpfs, and the container's own cgroup of each controller
    /// bound beneath it read-only (stage 8's directories); then the tmpfs read-only too.
    static func cgroups(_ m: MountSpec, _ dirs: [String: String], in root: InRoot) throws {
        let top = try root.resolveCreating(m.target, .directory)
        defer { close(top) }
        let base = UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)
        try check(
            Glibc.mount("tmpfs", InRoot.procPath(top), "tmpfs", base, "mode=755,size=64k"),
            "mount -t tmpfs tmpfs \(m.target)")
        for (name, hostDir) in dirs.sorted(by: { $0.key < $1.key }) {
            let path = name.isEmpty ? m.target : m.target + "/" + name
            let target = try root.resolveCreating(path, .directory)
            defer { close(target) }
            try check(Glibc.mount(hostDir, InRoot.procPath(target), nil, UInt(MS_BIND), nil), "mount --bind \(path)")
            let bound = try root.resolveCreating(path, .directory)
            defer { close(bound) }
            try check(
                Glibc.mount(nil, InRoot.procPath(bound), nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | base, nil),
                "mount -o remount,bind,ro \(path)")
        }
        if m.flags & UInt32(MS_RDONLY) != 0 {
            let again = try root.resolveCreating(m.target, .directory)
            defer { close(again) }
            try check(
                Glibc.mount(nil, InRoot.procPath(again), nil, UInt(MS_REMOUNT | MS_RDONLY) | base, "mode=755,size=64k"),
                "mount -o remount,ro \(m.target)")
        }
    }

    /// What runc puts in every container's /dev: null, zero, full, random, urandom and tty
    /// (bound from the host read-only, as stage 4 does: mknod is refused in a user namespace),
    /// the fd/stdin/stdout/stderr links, ptmx pointing at pts/ptmx, and the terminal at
    /// /dev/console. Nothing when the root has no /dev.
    static func defaultDevices(in root: InRoot) throws {
        let devFD = root.lookup("/dev")
        guard devFD >= 0 else { return }
        close(devFD)
        for name in ["null", "zero", "full", "random", "urandom", "tty"] {
            let node = try root.resolveCreating("/dev/" + name, .file)
            defer { close(node) }
            let path = InRoot.procPath(node)
            try check(Glibc.mount("/dev/" + name, path, nil, UInt(MS_BIND), nil), "mount --bind /dev/\(name)")
            let bound = try root.resolveCreating("/dev/" + name, .file)
            defer { close(bound) }
            let p = InRoot.procPath(bound)
            try check(
                Glibc.mount(nil, p, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | HardeningStage.lockedFlags(p), nil),
                "mount -o remount,bind,ro /dev/\(name)")
        }
        let devPath = try root.resolveCreating("/dev", .directory)
        defer { close(devPath) }
        let dev = openat(devPath, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dev >= 0 else { throw SyscallError("open /dev") }
        defer { close(dev) }
        var links = [
            ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore"),
        ]
        let pts = root.lookup("/dev/pts/ptmx")
        if pts >= 0 {
            close(pts)
            links.append(("ptmx", "pts/ptmx"))
        }
        for (name, target) in links where symlinkat(target, dev, name) != 0 && errno != EEXIST {
            throw SyscallError("symlink /dev/\(name)")
        }
        let terminal = (Int32(0)...2).first { isatty($0) != 0 }
        if let fd = terminal, let link = FS.readLink("/proc/self/fd/\(fd)"), link.hasPrefix("/dev/pts/") {
            let console = try root.resolveCreating("/dev/console", .file)
            defer { close(console) }
            try check(
                Glibc.mount(link, InRoot.procPath(console), nil, UInt(MS_BIND), nil),
                "mount --bind \(link) /dev/console")
        }
    }

    /// `root.readonly`: after every mount and mask, as runc does last.
    static func readOnlyRoot() throws {
        try step(12) {
            try check(
                Glibc.mount(
                    nil, "/", nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | HardeningStage.lockedFlags("/"), nil),
                "mount -o remount,bind,ro /")
        }
    }

    /// `process.rlimits`, just before the user change and the capabilities go. A user
    /// namespace cannot raise a hard limit above clab's own (the host half refuses that first).
    static func setLimits(_ limits: [ResourceLimit]) throws {
        try step(12) {
            for l in limits {
                var value = rlimit(rlim_cur: rlim_t(l.soft), rlim_max: rlim_t(l.hard))
                try check(
                    setrlimit(__rlimit_resource_t(l.resource), &value),
                    "setrlimit(\(ResourceLimit.names[Int(l.resource)]), \(l.soft), \(l.hard))")
            }
        }
    }

    /// `process.user`: groups, gid, then uid, keeping the permitted capabilities across the
    /// change from uid 0 (PR_SET_KEEPCAPS) so lockDown's capset can still give the kept ones.
    static func becomeUser(_ user: ProcessUser) throws {
        try check(clab_set_keepcaps(1), "prctl(PR_SET_KEEPCAPS, 1)")
        let groups = user.additionalGids.map { gid_t($0) }
        try check(groups.withUnsafeBufferPointer { setgroups($0.count, $0.baseAddress) }, "setgroups")
        try check(clab_setresgid(gid_t(user.gid)), "setresgid(\(user.gid))")
        try check(clab_setresuid(uid_t(user.uid)), "setresuid(\(user.uid))")
        try check(clab_set_keepcaps(0), "prctl(PR_SET_KEEPCAPS, 0)")
    }
}
