import ClabSpec
import ClabSys
import Glibc

/// A problem in a profile, said without the file name (the caller adds it).
struct ProfileIssue: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Reads one JSON object, remembering where it is ("syscalls[3].args[0]") for the message.
private struct Fields {
    let path: String
    let fields: [String: JSON]

    init(_ value: JSON, at path: String, allowed: Set<String>) throws(ProfileIssue) {
        guard let fields = value.fields else {
            throw ProfileIssue("\(path.isEmpty ? "the profile" : path) is \(value.kind), expected an object")
        }
        self.path = path
        self.fields = fields
        if let unknown = fields.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw ProfileIssue(
                "\(where_(unknown)): unknown field (known here: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func where_(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// nil for absent and for JSON null (Docker writes `"subArchitectures": null`).
    func value(_ key: String) -> JSON? {
        guard let v = fields[key], v != .null else { return nil }
        return v
    }

    func string(_ key: String) throws(ProfileIssue) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw ProfileIssue("\(where_(key)) is \(v.kind), expected a string") }
        return s
    }

    func unsigned(_ key: String, max: UInt64 = .max) throws(ProfileIssue) -> UInt64? {
        guard let v = value(key) else { return nil }
        guard case .unsigned(let n) = v else {
            throw ProfileIssue("\(where_(key)) is \(v.shown), expected a whole number from 0 to \(max)")
        }
        guard n <= max else { throw ProfileIssue("\(where_(key)) is \(n), more than \(max)") }
        return n
    }

    func list(_ key: String) throws(ProfileIssue) -> [JSON] {
        guard let v = value(key) else { return [] }
        guard case .array(let items) = v else { throw ProfileIssue("\(where_(key)) is \(v.kind), expected a list") }
        return items
    }

    func strings(_ key: String) throws(ProfileIssue) -> [String] {
        var result: [String] = []
        for (i, item) in try list(key).enumerated() {
            guard case .string(let s) = item else {
                throw ProfileIssue("\(where_(key))[\(i)] is \(item.kind), expected a string")
            }
            result.append(s)
        }
        return result
    }
}

extension SeccompProfile {
    /// Reads and checks a profile file; every problem is one line naming the file, exit status 2.
    public static func load(path: String) throws -> SeccompProfile {
        guard let bytes = readFile(path) else {
            let why = errno == EINVAL ? "not a regular file" : errnoDescription(errno)
            throw ClabError(
                "seccomp profile \(path): cannot read it (\(why)): give a JSON file as `docker run --security-opt seccomp=` takes",
                exitCode: 2)
        }
        return try parse(bytes, source: path)
    }

    /// Parses Docker's or OCI's JSON and checks it against libseccomp (syscall names, architectures).
    public static func parse(_ json: [UInt8], source: String) throws -> SeccompProfile {
        do throws(ProfileIssue) {
            let profile = try decode(json)
            try profile.check()
            return profile
        } catch {
            throw ClabError("seccomp profile \(source): \(error.message)", exitCode: 2)
        }
    }

    static func decode(_ json: [UInt8]) throws(ProfileIssue) -> SeccompProfile {
        let value: JSON
        do throws(JSON.ParseError) { value = try JSON.parse(json) } catch { throw ProfileIssue(error.description) }
        return try profile(value)
    }

    static func profile(_ value: JSON) throws(ProfileIssue) -> SeccompProfile {
        let top = try Fields(
            value, at: "",
            allowed: [
                "defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls", "flags", "listenerPath",
                "listenerMetadata",
            ])
        guard let defaultName = try top.string("defaultAction") else {
            // Docker reads a profile without one as "no seccomp at all": refuse instead.
            throw ProfileIssue(
                "no defaultAction: say what unlisted syscalls get, e.g. \"defaultAction\": \"SCMP_ACT_ERRNO\" (or run with --security-opt seccomp=unconfined)"
            )
        }
        let defaultAction = try action(defaultName, at: "defaultAction")
        let defaultErrnoRet = try top.unsigned("defaultErrnoRet", max: 4095).map(UInt32.init)
        if defaultErrnoRet != nil && !defaultAction.takesErrno {
            throw ProfileIssue("defaultErrnoRet only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE")
        }
        for key in ["listenerPath", "listenerMetadata"] {
            if let text = try top.string(key), !text.isEmpty {
                throw ProfileIssue("\(key): clab runs no seccomp agent (SCMP_ACT_NOTIFY is not supported)")
            }
        }
        let flags = try top.strings("flags")
        for (i, flag) in flags.enumerated() where knownFlags[flag] == nil {
            throw ProfileIssue(
                "flags[\(i)]: unknown flag '\(flag)' (one of \(knownFlags.keys.sorted().joined(separator: ", ")))")
        }
        let architectures = try top.strings("architectures")
        for (i, arch) in architectures.enumerated() { try checkArch(arch, at: "architectures[\(i)]") }
        var archMap: [SeccompArchMap] = []
        for (i, item) in try top.list("archMap").enumerated() {
            let f = try Fields(item, at: "archMap[\(i)]", allowed: ["architecture", "subArchitectures"])
            guard let arch = try f.string("architecture") else {
                throw ProfileIssue("archMap[\(i)]: no architecture")
            }
            try checkArch(arch, at: f.where_("architecture"))
            let subs = try f.strings("subArchitectures")
            for (j, sub) in subs.enumerated() { try checkArch(sub, at: f.where_("subArchitectures[\(j)]")) }
            archMap.append(SeccompArchMap(arch, subs))
        }
        if !architectures.isEmpty && !archMap.isEmpty {
            throw ProfileIssue("both 'architectures' and 'archMap' are given: use one (as Docker requires)")
        }
        var rules: [SeccompRule] = []
        for (i, item) in try top.list("syscalls").enumerated() {
            rules.append(try rule(item, at: "syscalls[\(i)]", defaultAction: defaultAction))
        }
        return SeccompProfile(
            defaultAction: defaultAction, defaultErrnoRet: defaultErrnoRet, architectures: architectures,
            archMap: archMap, syscalls: rules, flags: flags)
    }

    private static func rule(
        _ value: JSON, at path: String, defaultAction: SeccompAction
    ) throws(ProfileIssue) -> SeccompRule {
        let f = try Fields(
            value, at: path,
            allowed: ["names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"])
        var names = try f.strings("names")
        if let name = try f.string("name") {
            guard names.isEmpty else {
                throw ProfileIssue("\(path): both 'name' and 'names' are given: use 'names' (as Docker requires)")
            }
            names = [name]
        }
        guard !names.isEmpty else { throw ProfileIssue("\(path): no syscall names (\"names\": [\"mkdir\", …])") }
        for (i, name) in names.enumerated() where name.isEmpty {
            throw ProfileIssue("\(f.where_("names"))[\(i)] is empty")
        }
        guard let actionName = try f.string("action") else {
            throw ProfileIssue("\(path): no action (e.g. \"action\": \"SCMP_ACT_ALLOW\")")
        }
        let act = try action(actionName, at: f.where_("action"))
        let errnoRet = try f.unsigned("errnoRet", max: 4095).map(UInt32.init)
        if errnoRet != nil && !act.takesErrno {
            throw ProfileIssue("\(f.where_("errnoRet")) only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE")
        }
        var args: [SeccompArg] = []
        for (i, item) in try f.list("args").enumerated() {
            let a = try Fields(item, at: f.where_("args[\(i)]"), allowed: ["index", "value", "valueTwo", "op"])
            guard let index = try a.unsigned("index", max: UInt64.max) else {
                throw ProfileIssue("\(a.path): no index (the argument's position, 0 to 5)")
            }
            guard index <= 5 else {
                throw ProfileIssue("\(a.where_("index")) is \(index): a syscall has six arguments, index 0 to 5")
            }
            guard let opName = try a.string("op") else {
                throw ProfileIssue("\(a.path): no op (e.g. \"op\": \"SCMP_CMP_EQ\")")
            }
            guard let op = SeccompOperator(rawValue: opName) else {
                throw ProfileIssue(
                    "\(a.where_("op")): unknown operator '\(opName)' (one of \(SeccompOperator.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            args.append(
                SeccompArg(
                    index: UInt32(index), value: try a.unsigned("value") ?? 0,
                    valueTwo: try a.unsigned("valueTwo") ?? 0,
                    op: op))
        }
        return SeccompRule(
            names, act, errnoRet: errnoRet, args: args, comment: try f.string("comment"),
            includes: try condition(f.value("includes"), at: f.where_("includes")),
            excludes: try condition(f.value("excludes"), at: f.where_("excludes")))
    }

    private static func condition(_ value: JSON?, at path: String) throws(ProfileIssue) -> SeccompCondition? {
        guard let value else { return nil }
        let f = try Fields(value, at: path, allowed: ["caps", "arches", "minKernel"])
        var caps: [Capability] = []
        for (i, name) in try f.strings("caps").enumerated() {
            guard let cap = Capability(name: name) else {
                throw ProfileIssue(
                    "\(f.where_("caps"))[\(i)]: no such capability '\(name)' (names as in `man 7 capabilities`, e.g. CAP_SYS_ADMIN)"
                )
            }
            caps.append(cap)
        }
        let arches = try f.strings("arches")
        for (i, arch) in arches.enumerated() where !dockerArches.contains(arch) {
            throw ProfileIssue(
                "\(f.where_("arches"))[\(i)]: unknown architecture '\(arch)' (Docker's names: \(dockerArches.sorted().joined(separator: ", ")))"
            )
        }
        var minKernel: SeccompKernelVersion?
        if let text = try f.string("minKernel"), !text.isEmpty {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let k = UInt8(parts[0]), let m = UInt8(parts[1]), k > 0 || m > 0 else {
                throw ProfileIssue(
                    "\(f.where_("minKernel")) is '\(text)', expected \"<kernel>.<major>\" such as \"4.8\"")
            }
            minKernel = SeccompKernelVersion(k, m)
        }
        let result = SeccompCondition(caps: caps, arches: arches, minKernel: minKernel)
        return result.isEmpty ? nil : result
    }

    private static func action(_ name: String, at path: String) throws(ProfileIssue) -> SeccompAction {
        if let action = SeccompAction(rawValue: name) { return action }
        if name == "SCMP_ACT_NOTIFY" {
            throw ProfileIssue("\(path): SCMP_ACT_NOTIFY needs a seccomp agent, and clab runs none")
        }
        throw ProfileIssue(
            "\(path): unknown action '\(name)' (one of \(SeccompAction.allCases.map(\.rawValue).joined(separator: ", ")))"
        )
    }

    private static func checkArch(_ arch: String, at path: String) throws(ProfileIssue) {
        guard scmpArches.contains(arch) else {
            throw ProfileIssue(
                "\(path): unknown architecture '\(arch)' (e.g. SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_AARCH64)")
        }
    }

    private static func readFile(_ path: String) -> [UInt8]? {
        // O_NONBLOCK: opening a FIFO must not wait for a writer; then only a regular file is read.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        guard st.st_mode & S_IFMT == S_IFREG else {
            errno = st.st_mode & S_IFMT == S_IFDIR ? EISDIR : EINVAL
            return nil
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { return bytes }
            bytes += buffer[0..<n]
            // A profile is a few tens of KB; refuse to read a device or a huge file whole.
            if bytes.count > 16 << 20 {
                errno = EFBIG
                return nil
            }
        }
    }
}

// MARK: - Writing Docker's JSON

extension SeccompProfile {
    /// The profile in the JSON `docker run --security-opt seccomp=` reads (tab-indented like
    /// moby's default.json); `parse` reads it back into an equal profile.
    public func dockerJSON() -> String {
        var out = "{\n"
        var top: [String] = ["\t\"defaultAction\": \(JSONText.quoted(defaultAction.rawValue))"]
        if let defaultErrnoRet { top.append("\t\"defaultErrnoRet\": \(defaultErrnoRet)") }
        if !architectures.isEmpty { top.append("\t\"architectures\": " + list(architectures, indent: 1)) }
        if !archMap.isEmpty {
            let items = archMap.map { entry in
                "\t\t{\n\t\t\t\"architecture\": \(JSONText.quoted(entry.architecture)),\n\t\t\t\"subArchitectures\": "
                    + (entry.subArchitectures.isEmpty ? "null" : list(entry.subArchitectures, indent: 3)) + "\n\t\t}"
            }
            top.append("\t\"archMap\": [\n" + items.joined(separator: ",\n") + "\n\t]")
        }
        if !flags.isEmpty { top.append("\t\"flags\": " + list(flags, indent: 1)) }
        let rules = syscalls.map { rule -> String in
            var fields = [
                "\t\t\t\"names\": " + list(rule.names, indent: 3),
                "\t\t\t\"action\": \(JSONText.quoted(rule.action.rawValue))",
            ]
            if let errnoRet = rule.errnoRet { fields.append("\t\t\t\"errnoRet\": \(errnoRet)") }
            if !rule.args.isEmpty {
                let args = rule.args.map {
                    "\t\t\t\t{\n\t\t\t\t\t\"index\": \($0.index),\n\t\t\t\t\t\"value\": \($0.value),\n"
                        + "\t\t\t\t\t\"valueTwo\": \($0.valueTwo),\n\t\t\t\t\t\"op\": \(JSONText.quoted($0.op.rawValue))\n\t\t\t\t}"
                }
                fields.append("\t\t\t\"args\": [\n" + args.joined(separator: ",\n") + "\n\t\t\t]")
            }
            if let comment = rule.comment { fields.append("\t\t\t\"comment\": \(JSONText.quoted(comment))") }
            if let includes = rule.includes { fields.append("\t\t\t\"includes\": " + condition(includes)) }
            if let excludes = rule.excludes { fields.append("\t\t\t\"excludes\": " + condition(excludes)) }
            return "\t\t{\n" + fields.joined(separator: ",\n") + "\n\t\t}"
        }
        top.append("\t\"syscalls\": [\n" + rules.joined(separator: ",\n") + "\n\t]")
        out += top.joined(separator: ",\n") + "\n}\n"
        return out
    }

    private func condition(_ c: SeccompCondition) -> String {
        var fields: [String] = []
        if !c.caps.isEmpty { fields.append("\t\t\t\t\"caps\": " + list(c.caps.map(\.kernelName), indent: 4)) }
        if !c.arches.isEmpty { fields.append("\t\t\t\t\"arches\": " + list(c.arches, indent: 4)) }
        if let min = c.minKernel { fields.append("\t\t\t\t\"minKernel\": \(JSONText.quoted(min.description))") }
        return "{\n" + fields.joined(separator: ",\n") + "\n\t\t\t}"
    }

    private func list(_ items: [String], indent: Int) -> String {
        let pad = String(repeating: "\t", count: indent)
        return "[\n" + items.map { pad + "\t" + JSONText.quoted($0) }.joined(separator: ",\n") + "\n" + pad + "]"
    }

}
