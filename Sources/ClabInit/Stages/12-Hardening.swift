import CShims
import ClabSpec
import ClabSys
import Glibc

/// Stage 12, inside: after stage 4's pivot_root, init hides and freezes parts of /proc, makes
/// the cgroup (and optionally time) namespace, then, as the very last thing before execve,
/// gives up capabilities, sets no_new_privs and installs the seccomp filter. Last, so that
/// clab-init's own setup (mount, pivot_root, sethostname) is neither refused nor filtered.
enum HardeningStage {
    /// The filesystem half: run after pivot_root, inside the container's root and its /proc.
    static func secureFilesystem(_ h: Hardening) throws {
        try step(12) {
            for path in h.maskedPaths { try mask(path) }
            for path in h.readonlyPaths { try makeReadOnly(path) }
            if h.readOnlyRoot { try readOnlyRoot() }
        }
    }

    /// A directory gets an empty read-only tmpfs, a file the empty /dev/null. Missing: nothing to hide.
    static func mask(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return }
            throw SyscallError("stat \(path)")
        }
        if st.st_mode & S_IFMT == S_IFDIR {
            try check(
                mount("tmpfs", path, "tmpfs", UInt(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), "size=0,mode=555"),
                "mount -t tmpfs -o ro tmpfs \(path) (mask)")
        } else {
            try check(mount("/dev/null", path, nil, UInt(MS_BIND), nil), "mount --bind /dev/null \(path) (mask)")
            // The host's /dev/null inode: read-only, or chmod /proc/keys would change the host's.
            try check(
                mount(nil, path, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | lockedFlags(path), nil),
                "mount -o remount,bind,ro \(path) (mask)")
        }
    }

    /// Bind onto itself, then remount that bind read-only, keeping the flags the kernel locked
    /// (a user namespace may not clear nosuid/nodev/noexec it inherited: EPERM).
    static func makeReadOnly(_ path: String) throws {
        guard access(path, F_OK) == 0 else { return }
        try check(mount(path, path, nil, UInt(MS_BIND | MS_REC), nil), "mount --bind \(path) \(path)")
        try check(
            mount(nil, path, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | lockedFlags(path), nil),
            "mount -o remount,bind,ro \(path)")
    }

    /// `--read-only`: a writable tmpfs on /tmp first, then the root mount read-only.
    static func readOnlyRoot() throws {
        var st = stat()
        if lstat("/tmp", &st) != 0 || st.st_mode & S_IFMT != S_IFDIR {
            throw ClabError("--read-only: the image has no /tmp directory for the writable tmpfs", exitCode: 125)
        }
        try check(
            mount("tmpfs", "/tmp", "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=1777,size=64m"),
            "mount -t tmpfs tmpfs /tmp")
        try check(
            mount(nil, "/", nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | lockedFlags("/"), nil),
            "mount -o remount,bind,ro /")
    }

    static func lockedFlags(_ path: String) -> UInt {
        var fs = statvfs()
        guard statvfs(path, &fs) == 0 else { return 0 }
        // statvfs's ST_* bits (glibc's anonymous enum, not visible from Swift) and their MS_* twins.
        let pairs: [(UInt, Int)] = [
            (2, Int(MS_NOSUID)), (4, Int(MS_NODEV)), (8, Int(MS_NOEXEC)), (1024, Int(MS_NOATIME)),
            (2048, Int(MS_NODIRATIME)), (4096, Int(MS_RELATIME)),
        ]
        return pairs.reduce(0) { fs.f_flag & $1.0 != 0 ? $0 | UInt($1.1) : $0 }
    }

    /// The namespaces made from inside: a cgroup namespace (after clab moved us into our cgroup,
    /// so that cgroup is its root), and a time namespace whose offsets must be written before
    /// any process is in it: unshare makes it for our children, we write the offsets, then
    /// setns moves init itself in.
    static func enterNamespaces(_ h: Hardening) throws {
        try step(12) {
            if h.cgroupNamespace { try check(clab_unshare(CLONE_NEWCGROUP), "unshare(CLONE_NEWCGROUP)") }
            guard let offsets = h.timeOffsets else { return }
            try check(clab_unshare(CLONE_NEWTIME), "unshare(CLONE_NEWTIME)")
            try FS.write(
                "monotonic \(offsets.monotonic) 0\nboottime \(offsets.boottime) 0\n", to: "/proc/self/timens_offsets")
            let fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SyscallError("open /proc/self/ns/time_for_children") }
            defer { close(fd) }
            try check(clab_setns(fd, CLONE_NEWTIME), "setns(time_for_children, CLONE_NEWTIME)")
        }
    }

    /// seccomp(SECCOMP_SET_MODE_FILTER) with the compiled profile; nothing when unconfined.
    static func installFilter(_ h: Hardening) throws {
        guard !h.seccompFilter.isEmpty else { return }
        let count = h.seccompFilter.count / 8
        let result = h.seccompFilter.withUnsafeBytes { clab_seccomp_install($0.baseAddress, UInt16(count)) }
        try check(result, "seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=\(count)}) [\(h.seccompName)]")
    }

    /// The last steps before execve, in the order that keeps each possible: the limits; the
    /// bounding set (dropping needs CAP_SETPCAP, still held); the ambient set; capset (root's
    /// execve recomputes permitted from inheritable and bounding, both now the kept set);
    /// no_new_privs; and the seccomp filter, which needs no_new_privs (or CAP_SYS_ADMIN).
    /// An OCI bundle (`oci`) brings its own rlimits, user and inheritable set. `switchUser`
    /// (`clab exec -u`): run after the bounding set is cut, with the permitted set kept through
    /// the uid change (PR_SET_KEEPCAPS) so capset still works, as runc does.
    static func lockDown(_ h: Hardening, oci: OCISetup? = nil, switchUser: (() throws -> Void)? = nil) throws {
        try step(12) {
            var limit = rlimit()
            let nofile = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
            if let oci {
                try BundleMounts.setLimits(oci.rlimits)
            } else if getrlimit(nofile, &limit) == 0 {
                let hard = min(limit.rlim_max, rlim_t(Hardening.fileLimit.hard))
                limit = rlimit(rlim_cur: min(hard, rlim_t(Hardening.fileLimit.soft)), rlim_max: hard)
                try check(setrlimit(nofile, &limit), "setrlimit(RLIMIT_NOFILE)")
            }
            // Without no_new_privs the kernel installs a filter only for a holder of
            // CAP_SYS_ADMIN: then the filter goes first, while init still has it (as runc does),
            // and must allow the calls below (Docker's profile does).
            if !h.noNewPrivileges { try installFilter(h) }
            // EINVAL: a capability newer than this kernel, which nobody holds anyway.
            for cap in Capability.allCases where !h.capabilities.contains(cap) {
                if clab_capbset_drop(Int32(cap.rawValue)) != 0 && errno != EINVAL {
                    throw SyscallError("prctl(PR_CAPBSET_DROP, CAP_\(cap.name))")
                }
            }
            try check(clab_ambient_clear_all(), "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)")
            if let oci { try BundleMounts.becomeUser(oci.user) }
            if let switchUser {
                try check(clab_set_keepcaps(1), "prctl(PR_SET_KEEPCAPS, 1)")
                try switchUser()
                try check(clab_set_keepcaps(0), "prctl(PR_SET_KEEPCAPS, 0)")
            }
            let kept = Capability.mask(h.capabilities)
            // An OCI bundle may give its own effective and permitted sets, and an ambient set
            // (raised after capset: each must be permitted and inheritable by then).
            let sets = oci?.capabilitySets
            try check(
                clab_capset(sets?.effective ?? kept, sets?.permitted ?? kept, oci?.inheritable ?? kept), "capset")
            for cap in Capability.allCases where (sets?.ambient ?? 0) & Capability.mask([cap]) != 0 {
                try check(clab_ambient_raise(Int32(cap.rawValue)), "prctl(PR_CAP_AMBIENT_RAISE, CAP_\(cap.name))")
            }
            if let oci { umask(mode_t(oci.umask)) }
            if h.noNewPrivileges {
                try check(clab_set_no_new_privs(), "prctl(PR_SET_NO_NEW_PRIVS, 1)")
                try installFilter(h)
            }
        }
    }
}
