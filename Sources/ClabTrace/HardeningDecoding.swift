import ClabSpec

/// Stage 12's vocabulary, as strace prints it: capabilities by name (`1<<CAP_CHOWN|…`),
/// prctl's capability and no_new_privs options, resource limits, and seccomp's filter install
/// (`seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=123, filter=0x…})`).
extension Flags {
    /// A capability set: one `1<<CAP_NAME` per bit (capget(2)'s masks).
    static let capabilityBits: Table = Capability.allCases.map { (1 << UInt64($0.rawValue), "1<<CAP_" + $0.name) }

    /// One capability by number: `CAP_SYS_ADMIN`, or `0x29 /* CAP_??? */` past the known ones.
    static func capability(_ value: UInt64) -> String {
        guard value <= UInt64(Int.max), let cap = Capability(rawValue: Int(value)) else {
            return hex(value) + " /* CAP_??? */"
        }
        return "CAP_" + cap.name
    }

    static let capabilityVersions: Table = [
        (0x1998_0330, "_LINUX_CAPABILITY_VERSION_1"), (0x2007_1026, "_LINUX_CAPABILITY_VERSION_2"),
        (0x2008_0522, "_LINUX_CAPABILITY_VERSION_3"),
    ]

    static let ambient: Table = [
        (1, "PR_CAP_AMBIENT_IS_SET"), (2, "PR_CAP_AMBIENT_RAISE"), (3, "PR_CAP_AMBIENT_LOWER"),
        (4, "PR_CAP_AMBIENT_CLEAR_ALL"),
    ]

    static let seccompModes: Table = [
        (0, "SECCOMP_MODE_DISABLED"), (1, "SECCOMP_MODE_STRICT"), (2, "SECCOMP_MODE_FILTER"),
    ]

    static let seccompOp: Table = [
        (0, "SECCOMP_SET_MODE_STRICT"), (1, "SECCOMP_SET_MODE_FILTER"), (2, "SECCOMP_GET_ACTION_AVAIL"),
        (3, "SECCOMP_GET_NOTIF_SIZES"),
    ]

    static let seccompFilterFlags: Table = [
        (1, "SECCOMP_FILTER_FLAG_TSYNC"), (2, "SECCOMP_FILTER_FLAG_LOG"), (4, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
        (8, "SECCOMP_FILTER_FLAG_NEW_LISTENER"), (16, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH"),
        (32, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
    ]

    static let rlimit: Table = [
        (0, "RLIMIT_CPU"), (1, "RLIMIT_FSIZE"), (2, "RLIMIT_DATA"), (3, "RLIMIT_STACK"), (4, "RLIMIT_CORE"),
        (5, "RLIMIT_RSS"), (6, "RLIMIT_NPROC"), (7, "RLIMIT_NOFILE"), (8, "RLIMIT_MEMLOCK"), (9, "RLIMIT_AS"),
        (10, "RLIMIT_LOCKS"), (11, "RLIMIT_SIGPENDING"), (12, "RLIMIT_MSGQUEUE"), (13, "RLIMIT_NICE"),
        (14, "RLIMIT_RTPRIO"), (15, "RLIMIT_RTTIME"),
    ]

    /// prctl's arguments after the option (`i`: 1...4), by option as strace shows them; nil: not shown.
    static func prctlArg(_ i: Int, _ call: Syscall) -> String? {
        let v = call.args[i]
        switch call.args[0] {
        case 1 where i == 1: return signal(v)  // PR_SET_PDEATHSIG
        case 23, 24: return i == 1 ? capability(v) : nil  // PR_CAPBSET_READ, PR_CAPBSET_DROP
        case 47:  // PR_CAP_AMBIENT: the operation, then a capability for IS_SET, RAISE and LOWER
            if i == 1 { return value(v, ambient, signed: false) }
            if i == 2 && (1...3).contains(call.args[1]) { return capability(v) }
            return String(v)
        case 38, 39: return String(v)  // PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS: plain numbers
        case 22 where i == 1: return value(v, seccompModes, signed: false)  // PR_SET_SECCOMP
        default: return v == 0 ? "NULL" : hex(v)
        }
    }
}

extension Decoder {
    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        guard at + 4 <= bytes.count else { return 0 }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
    }

    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        guard at + 8 <= bytes.count else { return 0 }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) }
    }

    /// `{version=_LINUX_CAPABILITY_VERSION_3, pid=0}`.
    static func capHeader(_ bytes: [UInt8]) -> String {
        let version = UInt64(u32(bytes, 0))
        let name = Flags.capabilityVersions.first { $0.value == version }?.name ?? Flags.hex(version)
        return "{version=\(name), pid=\(Int32(bitPattern: u32(bytes, 4)))}"
    }

    /// `{effective=1<<CAP_CHOWN|…, permitted=…, inheritable=0}`: versions 2 and 3 split each
    /// 64-bit set over two structs (low 32 bits first); version 1 has only the first.
    static func capData(_ bytes: [UInt8], _ call: Syscall) -> String {
        let version = call.string(0).map { u32($0, 0) }
        let wide = version != 0x1998_0330
        func set(_ field: Int) -> String {
            let low = UInt64(u32(bytes, field * 4))
            let high = wide ? UInt64(u32(bytes, 12 + field * 4)) : 0
            return Flags.bits(low | high << 32, Flags.capabilityBits)
        }
        return "{effective=\(set(0)), permitted=\(set(1)), inheritable=\(set(2))}"
    }

    /// struct sock_fprog for SECCOMP_SET_MODE_FILTER: `{len=123, filter=0x…}` (strace without -v).
    static func seccompArgs(_ bytes: [UInt8], _ call: Syscall) -> String {
        guard call.args[0] == 1 else { return Flags.hex(call.args[2]) }
        let length = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
        return "{len=\(length), filter=" + Flags.hex(u64(bytes, 8)) + "}"
    }

    /// `{rlim_cur=1024, rlim_max=512*1024}`: strace's multiples of 1024, and the infinity's name.
    static func rlimit(_ bytes: [UInt8], infinity: String) -> String {
        func limit(_ v: UInt64) -> String {
            if v == .max { return infinity }
            return v > 1024 && v % 1024 == 0 ? "\(v / 1024)*1024" : String(v)
        }
        return "{rlim_cur=\(limit(u64(bytes, 0))), rlim_max=\(limit(u64(bytes, 8)))}"
    }
}
