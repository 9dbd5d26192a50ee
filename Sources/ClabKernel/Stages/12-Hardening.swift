import CShims
import Glibc

/// What stage 12 takes away from the container's root, decided by clab (the host half:
/// `--cap-add`, `--security-opt`, the seccomp profile compiled with libseccomp) and carried to
/// init in the spec.
public struct Hardening: Codable, Sendable, Equatable {
    /// Kept in the bounding, permitted, effective and inheritable sets; every other one is gone
    /// from all of them, and the ambient set is empty.
    public var capabilities: Set<Capability> = Capability.dockerDefault
    /// prctl(PR_SET_NO_NEW_PRIVS): execve never grants more (setuid bits and file
    /// capabilities are ignored). Docker's `--security-opt no-new-privileges`; on by default here.
    public var noNewPrivileges = true
    /// The compiled seccomp filter: `struct sock_filter` records, 8 bytes each. Empty: unconfined.
    public var seccompFilter: [UInt8] = []
    /// A name for the filter in banners and errors ("Docker's default", a file's path).
    public var seccompName = "unconfined"
    /// Hidden: a directory gets an empty read-only tmpfs on top, a file /dev/null.
    public var maskedPaths: [String] = Hardening.dockerMaskedPaths
    /// Bound onto themselves read-only.
    public var readonlyPaths: [String] = Hardening.dockerReadonlyPaths
    /// `--read-only`: the root filesystem read-only, with a writable tmpfs on /tmp.
    public var readOnlyRoot = false
    /// The container's /proc/self/cgroup shows "/": its own cgroup is the namespace's root.
    public var cgroupNamespace = true
    /// `--time-offset`: a time namespace whose clocks are shifted by these seconds (nil: the host's).
    public var timeOffsets: TimeOffsets?

    public init() {}

    /// The kernel's limit on one classic-BPF program (BPF_MAXINSNS).
    public static let maxFilterLength = 4096

    /// moby's oci/defaults.go: what leaks the host's hardware, keys and timers.
    public static let dockerMaskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ]
    /// What would change the whole kernel: sysctls, the magic SysRq key, interrupt routing.
    public static let dockerReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// Docker's default open-files limit for containers (soft, hard), capped at clab's own hard limit.
    public static let fileLimit: (soft: UInt, hard: UInt) = (1024, 524_288)
}

/// Seconds added to CLOCK_MONOTONIC and CLOCK_BOOTTIME inside a time namespace (`uptime` reads
/// CLOCK_BOOTTIME through /proc/uptime).
public struct TimeOffsets: Codable, Sendable, Equatable {
    public var monotonic: Int64
    public var boottime: Int64

    public init(monotonic: Int64 = 0, boottime: Int64 = 0) {
        self.monotonic = monotonic
        self.boottime = boottime
    }

    /// "boottime=86400,monotonic=3600" (seconds; each optional, either order; `d`/`h`/`m`/`s` units).
    public static func parse(_ text: String) throws -> TimeOffsets {
        var offsets = TimeOffsets()
        let usage = "use --time-offset boottime=SECONDS,monotonic=SECONDS (units s, m, h, d allowed: boottime=3d)"
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let seconds = Self.seconds(kv[1]) else {
                throw ClabError("--time-offset \(text): '\(part)' is not CLOCK=SECONDS: \(usage)", exitCode: 2)
            }
            switch kv[0] {
            case "boottime": offsets.boottime = seconds
            case "monotonic": offsets.monotonic = seconds
            default:
                throw ClabError(
                    "--time-offset \(text): no clock '\(kv[0])' (a time namespace shifts boottime and monotonic): \(usage)",
                    exitCode: 2)
            }
        }
        return offsets
    }

    static func seconds(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var number = Substring(text)
        var unit: Int64 = 1
        if let last = text.last, let u = units[last] {
            unit = u
            number = number.dropLast()
        }
        // Ten years either way: far beyond any lesson, far from overflowing a timespec.
        guard let n = Int64(number), abs(n) <= 315_360_000 / unit else { return nil }
        return n * unit
    }
}

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
