import ClabSys

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
