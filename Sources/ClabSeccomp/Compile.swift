import CSeccomp
import ClabSpec
import ClabSys
import Glibc

extension SeccompProfile {
    /// Builds the filter for a container that keeps `capabilities` and returns the kernel's
    /// program: `struct sock_filter` records, 8 bytes each, in the machine's byte order — what
    /// seccomp(SECCOMP_SET_MODE_FILTER, flags, &(struct sock_fprog){len, filter}) takes.
    ///
    /// libseccomp resolves names per architecture (x86_64, plus x86 and x32 as Docker's archMap
    /// says: a 32-bit binary must not bypass the filter through the other syscall table).
    /// no_new_privs is left to clab-init, which sets it itself before installing the bytes.
    public func compile(
        capabilities: Set<Capability>, kernel: SeccompKernelVersion? = SeccompProfile.hostKernel
    ) throws -> [UInt8] {
        do throws(ProfileIssue) {
            try check()
        } catch {
            throw ClabError("seccomp profile: \(error.message)", exitCode: 2)
        }
        let all = rules(for: capabilities, kernel: kernel)
        if let refused = Self.refusedEssentials(defaultAction: defaultAction, rules: all).first {
            throw ClabError(
                "seccomp profile: it refuses \(refused), which clab-init calls after installing the filter (\(refused == "execve" ? "to start the container's command" : "to end when the command cannot start")): allow \(refused), as Docker's default does",
                exitCode: 2)
        }
        let arches = filterArchitectures
        // i386 reaches socket() also through socketcall(SYS_SOCKET, args in memory), which no
        // filter can inspect, and libseccomp turns a `socket` rule into an unconditional allow
        // of that socketcall: `int $0x80` would bypass Docker's refusal of AF_VSOCK. So when a
        // rule looks at socket's arguments, x86 gets a filter of its own (merged below) in
        // which socket's argument rules are left out and socketcall allows every operation but
        // SYS_SOCKET: 32-bit programs cannot create sockets (x86_64 and x32 programs can).
        let splitX86 =
            arches.contains("SCMP_ARCH_X86") && all.contains { $0.names.contains("socket") && !$0.args.isEmpty }
        let ctx = try context(arches: splitX86 ? arches.filter { $0 != "SCMP_ARCH_X86" } : arches, rules: all)
        defer { seccomp_release(ctx) }
        if splitX86 {
            let x86 = try context(arches: ["SCMP_ARCH_X86"], rules: Self.x86Rules(all), withoutNative: true)
            let rc = seccomp_merge(ctx, x86)
            if rc != 0 { seccomp_release(x86) }  // on success the merged filter owns it
            try libseccomp(rc, "seccomp_merge(x86)")
        }
        let program = try export(ctx)
        // BPF_MAXINSNS: the kernel refuses a longer program with EINVAL.
        guard program.count / 8 <= 4096 else {
            throw ClabError(
                "seccomp profile: the filter has \(program.count / 8) instructions, the kernel takes at most 4096: list fewer rules",
                exitCode: 2)
        }
        return program
    }

    /// The calls clab-init makes once the filter is on: execve (the command), and exit_group
    /// (when execve fails). A profile refusing either made init spin (exit_group refused, glibc's
    /// _exit loops) and clab wait forever. An action other than refusing, or a rule with
    /// argument conditions, counts as allowing: clab cannot know the arguments.
    static func refusedEssentials(defaultAction: SeccompAction, rules: [SeccompRule]) -> [String] {
        // A killed exit_group still ends the process; an errno (or a trace with no tracer) does not.
        let refusing: [String: Set<SeccompAction>] = [
            "execve": [.errno, .trace, .kill, .killThread, .killProcess, .trap], "exit_group": [.errno, .trace],
        ]
        return ["execve", "exit_group"].filter { name in
            let actions = refusing[name] ?? []
            let named = rules.filter { $0.names.contains(name) }
            if named.isEmpty { return actions.contains(defaultAction) }
            return named.allSatisfy { actions.contains($0.action) && $0.args.isEmpty }
        }
    }

    /// A libseccomp filter for `arches` with `rules`. `withoutNative`: only the listed ones
    /// (seccomp_init always starts with the native architecture).
    private func context(arches: [String], rules: [SeccompRule], withoutNative: Bool = false) throws
        -> scmp_filter_ctx
    {
        let defaultValue = Self.actionValue(defaultAction, defaultErrnoRet)
        guard let ctx = seccomp_init(defaultValue) else {
            throw ClabError("seccomp: libseccomp could not start a filter (seccomp_init failed)")
        }
        do {
            try libseccomp(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set(SCMP_FLTATR_CTL_NNP)")
            for arch in arches {
                let rc = seccomp_arch_add(ctx, Self.archToken(arch))
                if rc != -EEXIST { try libseccomp(rc, "seccomp_arch_add(\(arch))") }
            }
            if withoutNative { try libseccomp(seccomp_arch_remove(ctx, 0), "seccomp_arch_remove(native)") }
            for rule in rules {
                let action = Self.actionValue(rule.action, rule.errnoRet)
                // libseccomp refuses a rule that repeats the default; it would change nothing.
                if action == defaultValue { continue }
                for name in rule.names {
                    let number = seccomp_syscall_resolve_name(name)
                    // Only names check() let through: real syscalls newer than this libseccomp.
                    if number == __NR_SCMP_ERROR { continue }
                    for conditions in Self.conditionSets(rule.args) {
                        let rc = conditions.withUnsafeBufferPointer {
                            seccomp_rule_add_array(ctx, action, number, UInt32($0.count), $0.baseAddress)
                        }
                        try libseccomp(rc, "the rule for '\(name)'")
                    }
                }
            }
        } catch {
            seccomp_release(ctx)
            throw error
        }
        return ctx
    }

    /// The rules of the x86 filter (see `compile`): socket's argument rules left out, and an
    /// unconditional socketcall allowed for every operation but SYS_SOCKET (1).
    static func x86Rules(_ rules: [SeccompRule]) -> [SeccompRule] {
        rules.flatMap { rule -> [SeccompRule] in
            var rest = rule
            if !rule.args.isEmpty { rest.names.removeAll { $0 == "socket" } }
            guard rule.args.isEmpty, rule.action == .allow, rule.names.contains("socketcall") else {
                return rest.names.isEmpty ? [] : [rest]
            }
            rest.names.removeAll { $0 == "socketcall" }
            var socketcall = rule
            socketcall.names = ["socketcall"]
            socketcall.args = [SeccompArg(index: 0, value: 1, op: .notEqual)]
            return (rest.names.isEmpty ? [] : [rest]) + [socketcall]
        }
    }

    /// Checks what JSON alone cannot: every syscall a rule for this architecture names, and
    /// every architecture, must be known to libseccomp.
    ///
    /// A name libseccomp does not know is an error (a typo would otherwise leave the syscall
    /// at the default action), with two deliberate exceptions: rules that cannot apply on this
    /// architecture (`includes.arches` without it) and names Docker's own default profile lists,
    /// which are real syscalls newer than Debian's libseccomp 2.5.4 (mseal, listmount, …).
    /// Those are skipped when compiling, as runc skips them, so they get the default action.
    func check() throws(ProfileIssue) {
        for arch in filterArchitectures where Self.archToken(arch) == 0 {
            throw ProfileIssue("architecture \(arch) is not supported by this libseccomp")
        }
        for (i, rule) in syscalls.enumerated() where appliesToArch(rule) {
            for name in rule.names where !Self.isKnown(name) && !Self.dockerDefaultNames.contains(name) {
                throw ProfileIssue(
                    "syscall '\(name)' (syscalls[\(i)]) is not known on \(Self.nativeArch.kernel) (check the name in `man 2 syscalls`)"
                )
            }
        }
    }

    /// Names in the profile that this libseccomp cannot resolve and that `compile` therefore skips.
    public var skippedNames: [String] {
        var seen: Set<String> = []
        return syscalls.filter { appliesToArch($0) }.flatMap(\.names).filter {
            !Self.isKnown($0) && seen.insert($0).inserted
        }
    }

    static func isKnown(_ name: String) -> Bool { seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR }

    static let dockerDefaultNames: Set<String> = Set(dockerDefault.syscalls.flatMap(\.names))

    /// libseccomp's name is the runtime spec's without the prefix, lowercased: "x86_64".
    static func archToken(_ arch: String) -> UInt32 {
        guard arch.hasPrefix("SCMP_ARCH_") else { return 0 }
        return seccomp_arch_resolve_name(String(arch.dropFirst("SCMP_ARCH_".count)).lowercased())
    }

    /// The action's 32-bit value (seccomp.h's SCMP_ACT_*; ERRNO and TRACE carry 16 bits of data).
    static func actionValue(_ action: SeccompAction, _ errnoRet: UInt32?) -> UInt32 {
        switch action {
        case .kill, .killThread: return 0x0000_0000
        case .killProcess: return 0x8000_0000
        case .trap: return 0x0003_0000
        case .errno: return 0x0005_0000 | ((errnoRet ?? UInt32(EPERM)) & 0xffff)
        case .trace: return 0x7ff0_0000 | ((errnoRet ?? UInt32(EPERM)) & 0xffff)
        case .log: return 0x7ffc_0000
        case .allow: return 0x7fff_0000
        }
    }

    /// libseccomp ANDs the comparisons of one rule but takes at most one per argument; several
    /// on the same argument become one rule each (OR), as runc does.
    static func conditionSets(_ args: [SeccompArg]) -> [[scmp_arg_cmp]] {
        let conditions = args.map {
            scmp_arg_cmp(arg: $0.index, op: comparison($0.op), datum_a: $0.value, datum_b: $0.valueTwo)
        }
        let indices = args.map(\.index)
        if Set(indices).count == indices.count { return [conditions] }
        return conditions.map { [$0] }
    }

    static func comparison(_ op: SeccompOperator) -> scmp_compare {
        switch op {
        case .notEqual: return SCMP_CMP_NE
        case .lessThan: return SCMP_CMP_LT
        case .lessOrEqual: return SCMP_CMP_LE
        case .equal: return SCMP_CMP_EQ
        case .greaterOrEqual: return SCMP_CMP_GE
        case .greaterThan: return SCMP_CMP_GT
        case .maskedEqual: return SCMP_CMP_MASKED_EQ
        }
    }

    /// The running kernel's version ("6.18"), for `minKernel`.
    public static let hostKernel: SeccompKernelVersion? = {
        var names = utsname()
        guard uname(&names) == 0 else { return nil }
        let release = withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return SeccompKernelVersion(release: release)
    }()

    /// seccomp_export_bpf writes to a file descriptor: a memfd, read back whole.
    private func export(_ ctx: scmp_filter_ctx) throws -> [UInt8] {
        let fd = clab_seccomp_memfd()
        guard fd >= 0 else { throw SyscallError("memfd_create") }
        defer { close(fd) }
        try libseccomp(seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0, lseek(fd, 0, SEEK_SET) == 0 else { throw SyscallError("lseek") }
        guard let bytes = FS.readExactly(fd, count: Int(size)) else { throw SyscallError("read (seccomp filter)") }
        guard !bytes.isEmpty, bytes.count % 8 == 0 else {
            throw ClabError("seccomp: libseccomp exported \(bytes.count) bytes, not whole BPF instructions")
        }
        return bytes
    }

    /// libseccomp returns -errno.
    private func libseccomp(_ rc: Int32, _ what: String) throws {
        guard rc < 0 else { return }
        throw ClabError("seccomp profile: libseccomp refused \(what): \(errnoDescription(-rc))", exitCode: 2)
    }
}
