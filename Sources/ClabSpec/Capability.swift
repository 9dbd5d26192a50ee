import ClabSys

/// Linux capabilities (capabilities(7)): root's power, split into 41 pieces the kernel checks
/// one at a time. Stage 12 keeps Docker's default 14 and drops the rest from every set.
///
/// The raw value is the kernel's bit number (include/uapi/linux/capability.h).
public enum Capability: Int, CaseIterable, Codable, Sendable, Comparable {
    case chown = 0
    case dacOverride
    case dacReadSearch
    case fowner
    case fsetid
    case kill
    case setgid
    case setuid
    case setpcap
    case linuxImmutable
    case netBindService
    case netBroadcast
    case netAdmin
    case netRaw
    case ipcLock
    case ipcOwner
    case sysModule
    case sysRawio
    case sysChroot
    case sysPtrace
    case sysPacct
    case sysAdmin
    case sysBoot
    case sysNice
    case sysResource
    case sysTime
    case sysTtyConfig
    case mknod
    case lease
    case auditWrite
    case auditControl
    case setfcap
    case macOverride
    case macAdmin
    case syslog
    case wakeAlarm
    case blockSuspend
    case auditRead
    case perfmon
    case bpf
    case checkpointRestore

    public static func < (a: Capability, b: Capability) -> Bool { a.rawValue < b.rawValue }

    /// The kernel's name without "CAP_", as `docker run --cap-add` spells it: "NET_ADMIN".
    public var name: String {
        switch self {
        case .chown: return "CHOWN"
        case .dacOverride: return "DAC_OVERRIDE"
        case .dacReadSearch: return "DAC_READ_SEARCH"
        case .fowner: return "FOWNER"
        case .fsetid: return "FSETID"
        case .kill: return "KILL"
        case .setgid: return "SETGID"
        case .setuid: return "SETUID"
        case .setpcap: return "SETPCAP"
        case .linuxImmutable: return "LINUX_IMMUTABLE"
        case .netBindService: return "NET_BIND_SERVICE"
        case .netBroadcast: return "NET_BROADCAST"
        case .netAdmin: return "NET_ADMIN"
        case .netRaw: return "NET_RAW"
        case .ipcLock: return "IPC_LOCK"
        case .ipcOwner: return "IPC_OWNER"
        case .sysModule: return "SYS_MODULE"
        case .sysRawio: return "SYS_RAWIO"
        case .sysChroot: return "SYS_CHROOT"
        case .sysPtrace: return "SYS_PTRACE"
        case .sysPacct: return "SYS_PACCT"
        case .sysAdmin: return "SYS_ADMIN"
        case .sysBoot: return "SYS_BOOT"
        case .sysNice: return "SYS_NICE"
        case .sysResource: return "SYS_RESOURCE"
        case .sysTime: return "SYS_TIME"
        case .sysTtyConfig: return "SYS_TTY_CONFIG"
        case .mknod: return "MKNOD"
        case .lease: return "LEASE"
        case .auditWrite: return "AUDIT_WRITE"
        case .auditControl: return "AUDIT_CONTROL"
        case .setfcap: return "SETFCAP"
        case .macOverride: return "MAC_OVERRIDE"
        case .macAdmin: return "MAC_ADMIN"
        case .syslog: return "SYSLOG"
        case .wakeAlarm: return "WAKE_ALARM"
        case .blockSuspend: return "BLOCK_SUSPEND"
        case .auditRead: return "AUDIT_READ"
        case .perfmon: return "PERFMON"
        case .bpf: return "BPF"
        case .checkpointRestore: return "CHECKPOINT_RESTORE"
        }
    }

    /// "CAP_NET_ADMIN", as /usr/include/linux/capability.h, capsh and OCI's config.json spell it.
    public var kernelName: String { "CAP_" + name }

    public var bit: UInt64 { 1 << UInt64(rawValue) }

    /// Docker's default set (moby's `oci/caps/defaults.go`): what a container's root may still do.
    /// Everything else — SYS_ADMIN (mount, most namespaces), SYS_MODULE, SYS_PTRACE, NET_ADMIN,
    /// DAC_READ_SEARCH (open_by_handle_at) — is gone.
    public static let dockerDefault: Set<Capability> = [
        .chown, .dacOverride, .fsetid, .fowner, .mknod, .netRaw, .setgid, .setuid, .setfcap, .setpcap,
        .netBindService, .sysChroot, .kill, .auditWrite,
    ]

    /// Parses "NET_ADMIN", "net_admin" or "CAP_NET_ADMIN". `ALL` is handled by `Capability.resolve`.
    public init?(name: String) {
        var upper = name.uppercased()
        if upper.hasPrefix("CAP_") { upper.removeFirst(4) }
        guard let found = Capability.allCases.first(where: { $0.name == upper }) else { return nil }
        self = found
    }

    /// The set a container keeps, as Docker computes it: `--cap-add ALL` keeps everything but the
    /// drops; `--cap-drop ALL` keeps only the adds (`--cap-drop ALL --cap-add NET_BIND_SERVICE`
    /// keeps exactly one); otherwise `base` minus the drops plus the adds.
    public static func resolve(base: Set<Capability>, add: [String], drop: [String]) throws -> Set<Capability> {
        func parse(_ names: [String], _ flag: String) throws -> (all: Bool, caps: Set<Capability>) {
            var all = false
            var caps: Set<Capability> = []
            for raw in names {
                if raw.uppercased() == "ALL" {
                    all = true
                } else if let cap = Capability(name: raw) {
                    caps.insert(cap)
                } else {
                    throw ClabError(
                        "\(flag) \(raw): no such capability (names as in `man 7 capabilities`, e.g. NET_ADMIN or CAP_NET_ADMIN, or ALL)",
                        exitCode: 2)
                }
            }
            return (all, caps)
        }
        let dropped = try parse(drop, "--cap-drop")
        let added = try parse(add, "--cap-add")
        if added.all { return Set(Capability.allCases).subtracting(dropped.caps) }
        if dropped.all { return added.caps }
        return base.subtracting(dropped.caps).union(added.caps)
    }

    /// A 64-bit mask as /proc/<pid>/status prints CapEff ("00000000a80425fb") → the set.
    public static func set(fromMask mask: UInt64) -> Set<Capability> {
        Set(allCases.filter { mask & $0.bit != 0 })
    }

    public static func mask(_ caps: Set<Capability>) -> UInt64 { caps.reduce(0) { $0 | $1.bit } }
}
