import ClabSpec

/// A seccomp profile as `docker run --security-opt seccomp=FILE` reads it (moby's
/// profiles/seccomp types), which is a superset of the OCI runtime spec's `linux.seccomp`: the
/// same fields plus `archMap`, the old single `name`, comments, and rules that apply only with
/// some capabilities, on some architectures or from some kernel on (`includes`/`excludes`).
///
/// A profile is plain data; `compile(capabilities:)` turns it into the BPF program the kernel runs.
public struct SeccompProfile: Equatable, Sendable {
    /// What every syscall no rule names gets: Docker's default is EPERM.
    public var defaultAction: SeccompAction
    /// The errno for an `SCMP_ACT_ERRNO` (or the message for `SCMP_ACT_TRACE`) default; EPERM if nil.
    public var defaultErrnoRet: UInt32?
    /// OCI form: the architectures (`SCMP_ARCH_X86_64`, …) the filter accepts besides the native one.
    public var architectures: [String]
    /// Docker form: per native architecture, the sub-architectures it also runs (x86_64 runs x86
    /// and x32 binaries). Only the entry for the machine's own architecture is used.
    public var archMap: [SeccompArchMap]
    public var syscalls: [SeccompRule]
    /// OCI `flags` (`SECCOMP_FILTER_FLAG_LOG`, …): for the installer, see `installFlags`.
    public var flags: [String]

    public init(
        defaultAction: SeccompAction, defaultErrnoRet: UInt32? = nil, architectures: [String] = [],
        archMap: [SeccompArchMap] = [], syscalls: [SeccompRule], flags: [String] = []
    ) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.architectures = architectures
        self.archMap = archMap
        self.syscalls = syscalls
        self.flags = flags
    }
}

public struct SeccompArchMap: Equatable, Sendable {
    public var architecture: String
    public var subArchitectures: [String]

    public init(_ architecture: String, _ subArchitectures: [String] = []) {
        self.architecture = architecture
        self.subArchitectures = subArchitectures
    }
}

/// One entry of `syscalls`: these names get this action (when the arguments match), if the
/// conditions hold for this container.
public struct SeccompRule: Equatable, Sendable {
    public var names: [String]
    public var action: SeccompAction
    public var errnoRet: UInt32?
    /// All must hold (AND); a syscall has six arguments, index 0…5.
    public var args: [SeccompArg]
    public var comment: String?
    /// The rule applies only if every listed capability is kept, the machine's architecture is
    /// listed, and the kernel is at least `minKernel`.
    public var includes: SeccompCondition?
    /// The rule is dropped if any listed capability is kept, the architecture is listed, or the
    /// kernel is at least `minKernel`.
    public var excludes: SeccompCondition?

    public init(
        _ names: [String], _ action: SeccompAction, errnoRet: UInt32? = nil, args: [SeccompArg] = [],
        comment: String? = nil, includes: SeccompCondition? = nil, excludes: SeccompCondition? = nil
    ) {
        self.names = names
        self.action = action
        self.errnoRet = errnoRet
        self.args = args
        self.comment = comment
        self.includes = includes
        self.excludes = excludes
    }
}

public struct SeccompCondition: Equatable, Sendable {
    public var caps: [Capability]
    /// Docker's architecture names, as Go spells them: "amd64", "x86", "x32", "arm64", "s390x", …
    public var arches: [String]
    public var minKernel: SeccompKernelVersion?

    public init(caps: [Capability] = [], arches: [String] = [], minKernel: SeccompKernelVersion? = nil) {
        self.caps = caps
        self.arches = arches
        self.minKernel = minKernel
    }

    var isEmpty: Bool { caps.isEmpty && arches.isEmpty && minKernel == nil }
}

/// "4.8": Docker compares only the version and major revision of the running kernel.
public struct SeccompKernelVersion: Equatable, Comparable, Sendable, CustomStringConvertible {
    public var kernel: UInt8
    public var major: UInt8

    public init(_ kernel: UInt8, _ major: UInt8) {
        self.kernel = kernel
        self.major = major
    }

    /// "6.18.3-amd64" → 6.18, or nil.
    public init?(release: String) {
        let parts = release.split(separator: ".", maxSplits: 2)
        guard parts.count >= 2, let kernel = UInt8(parts[0]),
            let major = UInt8(parts[1].prefix(while: { $0.isASCII && $0.isNumber }))
        else { return nil }
        self.init(kernel, major)
    }

    public var description: String { "\(kernel).\(major)" }

    public static func < (a: Self, b: Self) -> Bool { (a.kernel, a.major) < (b.kernel, b.major) }
}

/// The actions of the runtime spec (`SCMP_ACT_*`). `SCMP_ACT_NOTIFY` is refused when read: it
/// hands the syscall to a user-space agent, and clab runs none.
public enum SeccompAction: String, CaseIterable, Equatable, Sendable {
    case kill = "SCMP_ACT_KILL"
    case killThread = "SCMP_ACT_KILL_THREAD"
    case killProcess = "SCMP_ACT_KILL_PROCESS"
    case trap = "SCMP_ACT_TRAP"
    case errno = "SCMP_ACT_ERRNO"
    case trace = "SCMP_ACT_TRACE"
    case allow = "SCMP_ACT_ALLOW"
    case log = "SCMP_ACT_LOG"

    /// Whether `errnoRet` means something for this action.
    public var takesErrno: Bool { self == .errno || self == .trace }
}

public enum SeccompOperator: String, CaseIterable, Equatable, Sendable {
    case notEqual = "SCMP_CMP_NE"
    case lessThan = "SCMP_CMP_LT"
    case lessOrEqual = "SCMP_CMP_LE"
    case equal = "SCMP_CMP_EQ"
    case greaterOrEqual = "SCMP_CMP_GE"
    case greaterThan = "SCMP_CMP_GT"
    /// `(arg & value) == valueTwo`.
    case maskedEqual = "SCMP_CMP_MASKED_EQ"
}

/// A comparison of one syscall argument (a 64-bit register) with `value`.
public struct SeccompArg: Equatable, Sendable {
    public var index: UInt32
    public var value: UInt64
    public var valueTwo: UInt64
    public var op: SeccompOperator

    public init(index: UInt32, value: UInt64, valueTwo: UInt64 = 0, op: SeccompOperator) {
        self.index = index
        self.value = value
        self.valueTwo = valueTwo
        self.op = op
    }
}

extension SeccompProfile {
    /// The OCI flags, as the `flags` argument of seccomp(SECCOMP_SET_MODE_FILTER, flags, prog).
    public var installFlags: UInt32 {
        flags.reduce(0) { $0 | (Self.knownFlags[$1] ?? 0) }
    }

    static let knownFlags: [String: UInt32] = [
        "SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    ]

    /// The architecture clab runs on, in the three spellings profiles and people use.
    public struct NativeArch: Sendable {
        /// Docker's `includes.arches` name (Go's GOARCH as libseccomp-golang maps it): "amd64".
        public let docker: String
        /// The runtime spec's: "SCMP_ARCH_X86_64".
        public let scmp: String
        /// The kernel's (`uname -m`): "x86_64".
        public let kernel: String
    }

    #if arch(x86_64)
        public static let nativeArch = NativeArch(docker: "amd64", scmp: "SCMP_ARCH_X86_64", kernel: "x86_64")
    #elseif arch(arm64)
        public static let nativeArch = NativeArch(docker: "arm64", scmp: "SCMP_ARCH_AARCH64", kernel: "aarch64")
    #elseif arch(s390x)
        public static let nativeArch = NativeArch(docker: "s390x", scmp: "SCMP_ARCH_S390X", kernel: "s390x")
    #else
        public static let nativeArch = NativeArch(docker: "riscv64", scmp: "SCMP_ARCH_RISCV64", kernel: "riscv64")
    #endif

    /// The runtime spec's architectures (libseccomp's name is the lowercased rest).
    static let scmpArches: Set<String> = [
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    ]

    /// Docker's names in `includes.arches`/`excludes.arches` (moby's goToNative, plus the
    /// sub-architectures its default profile names).
    static let dockerArches: Set<String> = [
        "x86", "amd64", "x32", "arm", "arm64", "loong64", "loongarch64", "mips", "mipsle", "mipsel", "mips64",
        "mips64n32", "mipsel64", "mipsel64n32", "mips3l64n32", "ppc", "ppc64", "ppc64le", "riscv64", "s390", "s390x",
        "parisc", "parisc64",
    ]

    /// The rules that apply to a container keeping `capabilities`, on this architecture and
    /// kernel, with `name` folded into `names` — what moby's setupSeccomp hands to runc.
    public func rules(
        for capabilities: Set<Capability>, arch: String = nativeArch.docker,
        kernel: SeccompKernelVersion? = SeccompProfile.hostKernel
    ) -> [SeccompRule] {
        syscalls.filter { rule in
            if let ex = rule.excludes {
                if ex.arches.contains(arch) { return false }
                if ex.caps.contains(where: capabilities.contains) { return false }
                if let min = ex.minKernel, let kernel, kernel >= min { return false }
            }
            if let inc = rule.includes {
                if !inc.arches.isEmpty && !inc.arches.contains(arch) { return false }
                if !inc.caps.allSatisfy(capabilities.contains) { return false }
                if let min = inc.minKernel, !(kernel.map { $0 >= min } ?? false) { return false }
            }
            return true
        }
    }

    /// Whether a rule can apply on this architecture at all (capabilities and kernel aside).
    func appliesToArch(_ rule: SeccompRule, _ arch: String = nativeArch.docker) -> Bool {
        if let ex = rule.excludes, ex.arches.contains(arch) { return false }
        if let inc = rule.includes, !inc.arches.isEmpty, !inc.arches.contains(arch) { return false }
        return true
    }

    /// The architectures the filter accepts: the native one always (libseccomp starts with it),
    /// then the OCI list, or the sub-architectures `archMap` gives the native one.
    public var filterArchitectures: [String] {
        var result = [Self.nativeArch.scmp]
        let listed =
            architectures.isEmpty
            ? archMap.first(where: { $0.architecture == Self.nativeArch.scmp }).map {
                [$0.architecture] + $0.subArchitectures
            } ?? [] : architectures
        for arch in listed where !result.contains(arch) { result.append(arch) }
        return result
    }
}
