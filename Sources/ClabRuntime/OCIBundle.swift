import ClabCgroups
import ClabDevices
import ClabHost
import ClabImages
import ClabSeccomp
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// OCI runtime bundles: a directory with config.json (runtime-spec 1.x) and a root
/// filesystem, which runc, crun and `clab run --bundle` all run.
///
/// Reading (`Runtime.prepare(bundle:)`) is strict: config.json and its rootfs are the user's but
/// may come from anywhere. Every key is known or refused (a typo must not silently drop a
/// limit), every field clab does not implement is one error line naming it, strings are
/// checked for NUL and `=` as everywhere else (SpecValidation.swift), bind sources must exist
/// and are staged like `-v` (nosuid, nodev, read-only locked), mount targets are resolved
/// inside the root by clab-init, and sizes are bounded.
///
/// User namespaces: clab never runs a container's binary with host credentials (README:
/// Security model), so a bundle always runs in a user namespace mapping 0 → 100000 (65536
/// ids), clab's range. A config that gives one must give exactly that mapping; a config with
/// none (`runc spec` writes none) gets it added, with a note. When root.path is then not owned
/// by uid 100000 (a root-owned rootfs, as `runc spec` users unpack it), there are two ways:
///
/// - **In place, through an idmapped mount**, when and only when root.path is inside the
///   bundle, owned by host root, and reachable by no other host user: a strict ancestor of it
///   (outside the mount, which the container could chmod) is a root-owned directory without
///   search permission for group and others, as Go's MkdirTemp (runtime-tools) and podman's
///   storage make them (0700); and the filesystem supports idmapped mounts. open_tree clones
///   root.path, mount_setattr gives the clone MOUNT_ATTR_IDMAP (a user namespace mapping
///   0 → 100000, 65536, from a short-lived child) and nodev, and move_mount puts it in the
///   container's state directory (`bundle-root/tree`), which every cleanup unmounts first (exit,
///   delete, Ctrl-C, `clab gc`). The promise holds: the process still runs in clab's user
///   namespace, never with host credentials. What changes is that a file it creates is owned
///   by host root on disk; a setuid file it leaves is there, but only root can reach it (the
///   guard directory), and a device node it could make or find there opens nothing (nodev).
///   Its writes stay in the bundle, as with runc.
/// - **A copy shifted to the range** otherwise (a rootfs any user can reach, a filesystem
///   without idmapped mounts), made in the container's state directory and removed at exit:
///   its writes are not written back, and device nodes other than the harmless few are refused.
///
/// `clab bundle` writes bundles with the mapping and a rootfs owned by it, so runc, crun and
/// clab run them alike, with neither.
public enum OCIBundle {
    /// The runtime-spec version `clab bundle` writes (runc 1.1 and crun 1.8 read it).
    public static let ociVersion = "1.0.2"
    /// config.json is a few KB, a seccomp profile included; beyond this it is not a config.
    public static let maxConfigBytes = 4 << 20

    static func fail(_ message: String) -> ClabError { ClabError("config.json: \(message)", exitCode: 2) }
}

// MARK: - Reading config.json

/// One JSON object of config.json, every key checked against the fields clab reads and the
/// runtime-spec fields it knows but does not implement.
struct OCIFields {
    let path: String
    let fields: [String: JSON]
    /// Keys neither known nor unsupported, when the caller ignores them (`ignoringUnknown`).
    private(set) var unknown: [String] = []

    init(
        _ value: JSON?, at path: String, known: Set<String>, unsupported: Set<String> = [],
        ignoringUnknown: Bool = false
    ) throws {
        guard let fields = value?.fields else {
            throw OCIBundle.fail("\(path) is \(value?.kind ?? "missing"), expected an object")
        }
        self.path = path
        self.fields = fields
        for key in fields.keys.sorted() {
            if unsupported.contains(key), fields[key] != .null {
                throw OCIBundle.fail("\(at(key)) is not supported by clab")
            }
            if !known.contains(key) && !unsupported.contains(key) {
                guard ignoringUnknown else {
                    throw OCIBundle.fail("\(at(key)) is not a runtime-spec field clab knows (a typo?)")
                }
                unknown.append(key)
            }
        }
    }

    func at(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func value(_ key: String) -> JSON? {
        guard let v = fields[key], v != .null else { return nil }
        return v
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw OCIBundle.fail("\(at(key)) is \(v.kind), expected a string") }
        try ContainerSpec.checkText(s, "config.json: \(at(key))")
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw OCIBundle.fail("\(at(key)) is \(v.kind), expected true or false") }
        return b
    }

    func unsigned(_ key: String, max: UInt64 = .max) throws -> UInt64? {
        guard let v = value(key) else { return nil }
        guard case .unsigned(let n) = v, n <= max else {
            throw OCIBundle.fail("\(at(key)) is \(v.shown), expected a whole number from 0 to \(max)")
        }
        return n
    }

    /// A signed 64-bit number (memory limits use -1 for "unlimited").
    func signed(_ key: String) throws -> Int64? {
        guard let v = value(key) else { return nil }
        switch v {
        case .unsigned(let n) where n <= UInt64(Int64.max): return Int64(n)
        case .signed(let n): return n
        default: throw OCIBundle.fail("\(at(key)) is \(v.shown), expected a whole number")
        }
    }

    func array(_ key: String, max: Int = 4096) throws -> [JSON] {
        guard let v = value(key) else { return [] }
        guard case .array(let items) = v else { throw OCIBundle.fail("\(at(key)) is \(v.kind), expected a list") }
        guard items.count <= max else { throw OCIBundle.fail("\(at(key)) has \(items.count) entries, at most \(max)") }
        return items
    }

    func strings(_ key: String, max: Int = 4096) throws -> [String] {
        try array(key, max: max).enumerated().map { i, item in
            guard case .string(let s) = item else {
                throw OCIBundle.fail("\(at(key))[\(i)] is \(item.kind), expected a string")
            }
            try ContainerSpec.checkText(s, "config.json: \(at(key))[\(i)]")
            return s
        }
    }
}

extension OCIBundle {
    /// config.json of `dir`: a regular file (not followed through a symlink), at most
    /// `maxConfigBytes`, strict JSON.
    static func readConfig(_ dir: String) throws -> JSON {
        let path = dir + "/config.json"
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            throw ClabError(
                "bundle \(dir): cannot open config.json (\(errnoDescription(errno))): a bundle is a directory with config.json and its rootfs (`clab bundle` or `runc spec` writes one)",
                exitCode: 2)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw ClabError("bundle \(dir): config.json is not a regular file", exitCode: 2)
        }
        guard st.st_size <= maxConfigBytes else {
            throw ClabError(
                "bundle \(dir): config.json is \(st.st_size) bytes, more than \(maxConfigBytes)", exitCode: 2)
        }
        guard let bytes = FS.readExactly(fd, count: Int(st.st_size)) else {
            throw ClabError("bundle \(dir): reading config.json: \(errnoDescription(errno))")
        }
        return try JSON.parse(bytes, source: "config.json")
    }

    /// `options` of a mount: MS_* flags, a propagation mode, bind/rbind, and what the
    /// filesystem reads (joined with ",").
    static func mountOptions(_ options: [String], at path: String) throws -> (
        flags: UInt32, propagation: UInt32, bind: Bool, data: [String]
    ) {
        let set: [String: Int] = [
            "ro": Int(MS_RDONLY), "nosuid": Int(MS_NOSUID), "nodev": Int(MS_NODEV), "noexec": Int(MS_NOEXEC),
            "sync": Int(MS_SYNCHRONOUS), "dirsync": Int(MS_DIRSYNC), "noatime": Int(MS_NOATIME),
            "nodiratime": Int(MS_NODIRATIME), "relatime": Int(MS_RELATIME), "strictatime": Int(MS_STRICTATIME),
            "lazytime": Int(MS_LAZYTIME), "mand": Int(MS_MANDLOCK), "silent": Int(MS_SILENT),
        ]
        let clear: [String: Int] = [
            "rw": Int(MS_RDONLY), "suid": Int(MS_NOSUID), "dev": Int(MS_NODEV), "exec": Int(MS_NOEXEC),
            "async": Int(MS_SYNCHRONOUS), "atime": Int(MS_NOATIME), "diratime": Int(MS_NODIRATIME),
            "norelatime": Int(MS_RELATIME), "nostrictatime": Int(MS_STRICTATIME), "nolazytime": Int(MS_LAZYTIME),
            "nomand": Int(MS_MANDLOCK), "loud": Int(MS_SILENT), "defaults": 0,
        ]
        let propagation: [String: Int] = [
            "private": Int(MS_PRIVATE), "rprivate": Int(MS_PRIVATE | MS_REC), "slave": Int(MS_SLAVE),
            "rslave": Int(MS_SLAVE | MS_REC), "shared": Int(MS_SHARED), "rshared": Int(MS_SHARED | MS_REC),
            "unbindable": Int(MS_UNBINDABLE), "runbindable": Int(MS_UNBINDABLE | MS_REC),
        ]
        var flags = 0
        var prop = 0
        var bind = false
        var data: [String] = []
        for (i, option) in options.enumerated() {
            if let f = set[option] {
                flags |= f
            } else if let f = clear[option] {
                flags &= ~f
            } else if let p = propagation[option] {
                prop = p
            } else if option == "bind" || option == "rbind" {
                bind = true
            } else if option.isEmpty || option.contains(",") {
                throw fail("\(path).options[\(i)] \"\(option)\" is not one mount option")
            } else {
                data.append(option)
            }
        }
        return (UInt32(flags), UInt32(prop), bind, data)
    }
}

extension Runtime {
    /// `clab run --bundle DIR`: reads DIR/config.json and turns it into a stage-12 container
    /// that runs DIR's rootfs, with nothing made on the host yet but (for a config without a
    /// user namespace, over a rootfs not owned by clab's range) the shifted copy of the rootfs
    /// in the container's state directory. Run it with `run(_:)` or `makeContainer(_:)`, as a
    /// prepared `clab step`. `name`: the container's name (as `--name`); notes tell the user
    /// what clab decided for them (the user namespace it added).
    public func prepare(bundle dir: String, name: String? = nil, log: (String) -> Void) throws -> PreparedContainer {
        try ContainerSpec.checkText(dir, "the bundle directory")
        guard let real = realpath(dir, nil) else {
            throw ClabError("bundle \(dir): \(errnoDescription(errno))", exitCode: 2)
        }
        let bundle = String(cString: real)
        free(real)
        let top = try OCIFields(
            try OCIBundle.readConfig(bundle), at: "",
            known: [
                "ociVersion", "process", "root", "hostname", "domainname", "mounts", "linux", "annotations", "hooks",
            ],
            unsupported: ["windows", "solaris", "vm", "zos"], ignoringUnknown: true)
        guard let version = try top.string("ociVersion"), version.hasPrefix("1.") else {
            throw OCIBundle.fail("ociVersion is \((try? top.string("ociVersion")) ?? "missing"), expected 1.x")
        }
        var annotations: [String: String] = [:]
        if let value = top.value("annotations") { annotations = try checkAnnotations(value) }
        if let name {
            try KeptContainers.validateName(name)
            if ContainerState.running(in: layout).contains(where: { $0.name == name }) {
                throw ClabError("a running container is already named \(name): pick another --name", exitCode: 2)
            }
        }
        let id = ContainerSpec.newID()
        var notes: [String] = []
        var oci = OCISetup()
        // runtime-spec config.md, "Extensibility": unknown properties MUST be ignored. At the
        // top level clab ignores them and says so; inside an object it still refuses one (a
        // misspelt limit there would silently not apply).
        if !top.unknown.isEmpty {
            notes.append(
                "config.json: ignoring \(top.unknown.joined(separator: ", ")): not a runtime-spec field clab knows")
        }
        oci.stateID = name ?? id
        oci.bundlePath = bundle
        oci.annotations = annotations
        if let hooks = top.value("hooks") { oci.hooks = try OCIBundle.hooks(hooks) }
        if let domain = try top.string("domainname"), !domain.isEmpty {
            do {
                try ContainerSpec.validateHostname(domain)
            } catch {
                throw OCIBundle.fail(
                    "domainname \"\(domain)\" is not a valid domain name (letters, digits, '-' and '.')")
            }
            oci.domainname = domain
        }

        // root
        let root = try OCIFields(top.value("root"), at: "root", known: ["path", "readonly"])
        guard let rootPath = try root.string("path"), !rootPath.isEmpty else {
            throw OCIBundle.fail("root.path is missing")
        }
        let imageRoot = rootPath.hasPrefix("/") ? rootPath : bundle + "/" + rootPath
        guard FS.isDirectory(imageRoot) else {
            throw OCIBundle.fail("root.path \(rootPath) is not a directory (\(imageRoot))")
        }
        oci.readOnlyRoot = try root.bool("readonly") ?? false

        // process
        let process = try OCIFields(
            top.value("process"), at: "process",
            known: [
                "terminal", "user", "args", "env", "cwd", "capabilities", "rlimits", "noNewPrivileges", "oomScoreAdj",
            ],
            unsupported: [
                "consoleSize", "apparmorProfile", "selinuxLabel", "ioPriority", "scheduler", "commandLine",
                "execCPUAffinity",
            ])
        _ = try process.bool("terminal")  // clab gives a pseudo-terminal exactly when its own stdio is one
        let args = try process.strings("args")
        guard !args.isEmpty else { throw OCIBundle.fail("process.args is empty: give the command to run") }
        let env = try process.strings("env")
        for (i, entry) in env.enumerated() { try ContainerSpec.checkEnvEntry(entry, "config.json: process.env[\(i)]") }
        try ContainerSpec.checkExec(command: args, env: env)
        guard let cwd = try process.string("cwd"), cwd.hasPrefix("/") else {
            throw OCIBundle.fail("process.cwd must be an absolute path")
        }
        let mapping = IDMapping.defaultRange
        if let userValue = process.value("user") {
            let user = try OCIFields(
                userValue, at: "process.user", known: ["uid", "gid", "additionalGids", "umask"],
                unsupported: ["username"])
            if let umask = try user.unsigned("umask", max: 0o777) { oci.umask = UInt32(umask) }
            let most = UInt64(mapping.count - 1)
            func mapped(_ key: String) throws -> UInt32 {
                guard let n = try user.unsigned(key, max: most) else { return 0 }
                return UInt32(n)
            }
            oci.user.uid = try mapped("uid")
            oci.user.gid = try mapped("gid")
            for (i, item) in try user.array("additionalGids", max: 1024).enumerated() {
                guard case .unsigned(let gid) = item, gid <= most else {
                    throw OCIBundle.fail("process.user.additionalGids[\(i)] is \(item.shown): ids 0-\(most) are mapped")
                }
                oci.user.additionalGids.append(UInt32(gid))
            }
        }
        var hardening = Hardening()
        hardening.readOnlyRoot = false
        hardening.noNewPrivileges = try process.bool("noNewPrivileges") ?? false
        let notRaised: [String]
        (hardening.capabilities, oci.inheritable, oci.capabilitySets, notRaised) = try Self.capabilities(
            process.value("capabilities"))
        if !notRaised.isEmpty {
            notes.append(
                "process.capabilities.ambient: \(notRaised.joined(separator: ", ")) not raised (the kernel raises only capabilities both permitted and inheritable; runc skips them too)"
            )
        }
        if let adj = try process.signed("oomScoreAdj") {
            guard (-1000...1000).contains(adj) else {
                throw OCIBundle.fail("process.oomScoreAdj \(adj) is not -1000 to 1000")
            }
            oci.oomScoreAdj = Int32(adj)
        }
        oci.rlimits = try Self.rlimits(try process.array("rlimits", max: ResourceLimit.names.count))

        // linux
        let linux = try OCIFields(
            top.value("linux") ?? .object([]), at: "linux",
            known: [
                "namespaces", "uidMappings", "gidMappings", "resources", "cgroupsPath", "seccomp", "maskedPaths",
                "readonlyPaths", "devices", "rootfsPropagation", "sysctl",
            ],
            unsupported: ["timeOffsets", "mountLabel", "intelRdt", "personality", "memoryPolicy"])
        oci.devices = try OCIBundle.devices(try linux.array("devices", max: 256))
        if let propagation = try linux.string("rootfsPropagation") {
            let modes = try OCIBundle.mountOptions([propagation], at: "linux.rootfsPropagation")
            guard modes.propagation != 0 else {
                throw OCIBundle.fail(
                    "linux.rootfsPropagation \"\(propagation)\" is not a propagation mode (shared, slave, private, unbindable)"
                )
            }
            oci.rootfsPropagation = modes.propagation & ~UInt32(MS_REC)
        }
        var kinds: [String: Int] = [:]
        for (i, item) in try linux.array("namespaces", max: 16).enumerated() {
            let ns = try OCIFields(item, at: "linux.namespaces[\(i)]", known: ["type", "path"])
            guard let type = try ns.string("type"),
                ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"].contains(type)
            else { throw OCIBundle.fail("linux.namespaces[\(i)].type is not a namespace type") }
            guard kinds.updateValue(i, forKey: type) == nil else {
                throw OCIBundle.fail("linux.namespaces[\(i)].type \"\(type)\" is given twice")
            }
            if try ns.string("path") != nil {
                throw OCIBundle.fail(
                    "linux.namespaces[\(i)].type \"\(type)\" with a path is not supported (clab makes every namespace new)"
                )
            }
            if type == "time" {
                throw OCIBundle.fail("linux.namespaces[\(i)].type \"time\" is not supported (needs linux.timeOffsets)")
            }
        }
        for required in ["pid", "mount", "ipc", "uts"] where kinds[required] == nil {
            throw OCIBundle.fail(
                "linux.namespaces has no \"\(required)\": clab always gives a container its own \(required) namespace; add {\"type\": \"\(required)\"}"
            )
        }
        hardening.cgroupNamespace = kinds["cgroup"] != nil
        if kinds["user"] != nil {
            for key in ["uidMappings", "gidMappings"] {
                let entries = try linux.array(key, max: 340)
                guard entries.count == 1 else {
                    throw OCIBundle.fail(
                        "linux.\(key) has \(entries.count) entries: clab maps one range, 0 → 100000 (65536 ids)")
                }
                let m = try OCIFields(entries[0], at: "linux.\(key)[0]", known: ["containerID", "hostID", "size"])
                guard try m.unsigned("containerID") == 0, try m.unsigned("hostID") == UInt64(mapping.host),
                    try m.unsigned("size") == UInt64(mapping.count)
                else {
                    throw OCIBundle.fail(
                        "linux.\(key)[0] must map containerID 0 to hostID \(mapping.host), size \(mapping.count): clab's containers run as its own id range (README: Security model)"
                    )
                }
            }
        } else {
            for key in ["uidMappings", "gidMappings"] where !(try linux.array(key)).isEmpty {
                throw OCIBundle.fail("linux.\(key) is given without a user namespace in linux.namespaces")
            }
            notes.append(
                "config.json has no user namespace: clab adds one, 0 → \(mapping.host) (\(mapping.count) ids), as it never runs a container's programs as the host's root"
            )
        }
        oci.sysctls = try OCIBundle.sysctls(linux.value("sysctl"), namespaces: Set(kinds.keys))
        var limits = CgroupLimits(memoryBytes: nil, pids: nil)
        var deviceRules = DeviceRule.dockerDefault
        if let resources = linux.value("resources") { (limits, deviceRules) = try Self.resources(resources) }
        var cgroupsPath = try linux.string("cgroupsPath")
        if let path = cgroupsPath {
            let parts = path.split(separator: "/")
            guard !parts.isEmpty, !parts.contains(".."), !parts.contains("."), !path.contains(":") else {
                throw OCIBundle.fail(
                    "linux.cgroupsPath \"\(path)\" must name a cgroup (\"a/b\", beneath clab's own cgroup); systemd's slice:prefix:name form is not supported"
                )
            }
            // An absolute path names a cgroup from each hierarchy's root, among cgroups clab did
            // not create (the machine's own management lives there): clab makes its cgroups
            // only beneath its own.
            // An absolute path is checked once placed (below): it must lie beneath clab's own
            // cgroup in every hierarchy, as it does inside a cgroup namespace rooted there.
            cgroupsPath = (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
        }
        if let seccomp = linux.value("seccomp") {
            let profile = try SeccompProfile.parse(oci: seccomp, source: "config.json: linux.seccomp")
            hardening.seccompFilter = try profile.compile(capabilities: hardening.capabilities)
            hardening.seccompName = "config.json's linux.seccomp"
        } else {
            hardening.seccompFilter = []
            hardening.seccompName = "unconfined"
        }
        hardening.maskedPaths = try linux.strings("maskedPaths")
        hardening.readonlyPaths = try linux.strings("readonlyPaths")
        for (i, path) in (hardening.maskedPaths + hardening.readonlyPaths).enumerated() where !path.hasPrefix("/") {
            throw OCIBundle.fail("masked or read-only path \(i + 1), \(path), is not absolute")
        }

        // hostname, network
        let hostname = try top.string("hostname") ?? id
        if !hostname.isEmpty { try ContainerSpec.validateHostname(hostname) }

        var spec = ContainerSpec(
            id: id, stageNumber: 12, hostname: hostname.isEmpty ? id : hostname, imageRoot: imageRoot,
            bundleDir: layout.containerDir(id), command: args, env: env, idMapping: mapping)
        spec.workdir = cwd
        spec.network = kinds["network"] == nil ? .host : .own

        // mounts
        for (i, item) in try top.array("mounts", max: OCISetup.maxMounts).enumerated() {
            let at = "mounts[\(i)]"
            let m = try OCIFields(
                item, at: at, known: ["destination", "type", "source", "options"],
                unsupported: ["uidMappings", "gidMappings"])
            guard let target = try m.string("destination"), target.hasPrefix("/"),
                let cleaned = ContainerSpec.volumeTarget(target)
            else {
                throw OCIBundle.fail("\(at).destination must be an absolute path below /")
            }
            let options = try OCIBundle.mountOptions(try m.strings("options", max: 64), at: at)
            let typeName = try m.string("type") ?? (options.bind ? "bind" : "")
            let type: MountType
            if options.bind && (typeName == "bind" || typeName == "none" || typeName.isEmpty) {
                type = .bind
            } else if let known = MountType(rawValue: typeName), known != .bind || options.bind || typeName == "bind" {
                type = known
            } else {
                throw OCIBundle.fail(
                    "\(at).type \"\(typeName)\" is not supported (bind, tmpfs, proc, sysfs, devpts, mqueue, cgroup)")
            }
            let source = try m.string("source") ?? typeName
            if type == .bind {
                // Filesystem options ("mode=755") mean nothing to a bind mount: mount(2) ignores
                // its data, and runc passes them along unused. Said, not refused.
                if !options.data.isEmpty {
                    notes.append("\(at): \(options.data.joined(separator: ",")) ignored (not options of a bind mount)")
                }
                let path = source.hasPrefix("/") ? source : bundle + "/" + source
                guard FS.exists(path) else {
                    throw OCIBundle.fail("\(at).source \(source) does not exist (clab never creates a bind source)")
                }
                spec.volumes.append(
                    VolumeSpec(source: path, target: cleaned, readOnly: options.flags & UInt32(MS_RDONLY) != 0))
                oci.mounts.append(
                    MountSpec(
                        type: .bind, source: "", target: cleaned, flags: options.flags,
                        propagation: options.propagation, volume: spec.volumes.count - 1))
            } else {
                oci.mounts.append(
                    MountSpec(
                        type: type, source: source, target: cleaned, flags: options.flags,
                        data: options.data.joined(separator: ","), propagation: options.propagation))
            }
        }
        spec.oci = oci
        spec.hardening = hardening
        try spec.validate()

        // The host: state directories, the rootfs copy if one is needed, the cgroup (made at start).
        if let why = Host.userNamespacesAvailable() { throw ClabError("a bundle needs user namespaces, but \(why)") }
        try layout.prepare()
        try Self.requireSearchable(layout.containersDir)
        try Self.requireSearchable(initPath)
        let driver = try CgroupDriver.detect()
        // cgroupsPath is the container's own cgroup, as in runc and crun (the suite reads its
        // limits there): clab makes it, records it (exec, pause, stats, delete and gc act on
        // the recorded directories) and removes it with the levels above it that it made.
        let placement =
            try cgroupsPath.map { try driver.place(cgroupsPath: $0, devices: true, cpuset: limits.usesCpuset) }
            ?? driver.place(id: id, parent: nil, devices: true, cpuset: limits.usesCpuset)
        if let path = cgroupsPath, path.hasPrefix("/") {
            // An absolute path names a cgroup from each hierarchy's root, where the machine's own
            // management lives: clab makes its cgroups only beneath its own.
            if let (controller, caller) = driver.firstOutsideOwn(placement) {
                throw OCIBundle.fail(
                    "linux.cgroupsPath \"\(path)\" is absolute and the \(controller.isEmpty ? "cgroup2" : controller) hierarchy's \(path) is not beneath clab's own cgroup there (\(caller)): clab creates cgroups only beneath its own; give a relative path, or run clab in a cgroup namespace"
                )
            }
        }
        if let taken = placement.allDirs.first(where: FS.exists) {
            throw OCIBundle.fail(
                "linux.cgroupsPath: \(taken) already exists: clab makes a container's cgroup and removes it at exit, and never adopts another's"
            )
        }
        for (controller, dir) in placement.dirs { spec.cgroupMounts[controller] = dir }
        // The name atomically (two runs at once: one wins); given back if the copy below fails.
        if let name { try ContainerNames.reserve(name, id: id, layout: layout) }
        var st = stat()
        if kinds["user"] == nil, stat(imageRoot, &st) == 0, st.st_uid != mapping.host {
            do {
                // The copy makes the range the owner of copies of root's files: of a root.path
                // naming a host directory ("/root", "/etc"), the container would read what only
                // root may (an ssh key, /etc/shadow). So only a rootfs inside the bundle is copied.
                guard let real = realpath(imageRoot, nil) else {
                    throw OCIBundle.fail("root.path \(rootPath): \(errnoDescription(errno))")
                }
                let resolved = String(cString: real)
                free(real)
                guard resolved == bundle || resolved.hasPrefix(bundle + "/") else {
                    throw OCIBundle.fail(
                        "root.path \(rootPath) is outside the bundle directory (\(resolved)) and not owned by uid \(mapping.host): clab copies a rootfs for that range only from inside its bundle; move it into \(bundle)"
                    )
                }
                let inPlace = try Self.idmappedBundleRoot(resolved, into: spec.bundleDir, mapping: mapping)
                if let root = inPlace.root {
                    spec.imageRoot = root
                    notes.append(
                        "root.path is owned by root: the container runs on it in place through an idmapped mount (0 → \(mapping.host)); what it writes there is owned by root on the host, below \(inPlace.guardDir ?? "?"), which only root can enter"
                    )
                } else {
                    spec.imageRoot = try Self.shiftedBundleRoot(
                        imageRoot, into: spec.bundleDir, mapping: mapping, log: log)
                    notes.append(
                        "root.path is not owned by uid \(mapping.host) and cannot run in place (\(inPlace.why ?? "?")): the container runs on a copy shifted to that range (its changes are not written back)"
                    )
                }
            } catch {
                if let name { ContainerNames.release(name, id: id, layout: layout) }
                throw error
            }
        } else {
            try Self.requireSearchable(imageRoot, otherwise: "or move the bundle below a searchable directory")
        }
        let cgroup = ContainerCgroup(placement: placement, limits: limits, deviceRules: deviceRules)
        var prepared = PreparedContainer(
            spec: spec, cgroup: cgroup, cgroupLayout: driver.layout, notes: notes + (placement.note.map { [$0] } ?? []))
        prepared.name = name
        return prepared
    }

    private func checkAnnotations(_ value: JSON) throws -> [String: String] {
        guard let fields = value.fields, fields.count <= 1024 else {
            throw OCIBundle.fail("annotations must be an object of at most 1024 strings")
        }
        var result: [String: String] = [:]
        for (key, v) in fields {
            guard case .string(let s) = v else {
                throw OCIBundle.fail("annotations.\(key) is \(v.kind), expected a string")
            }
            try ContainerSpec.checkText(key + s, "config.json: annotations.\(key)")
            result[key] = s
        }
        return result
    }

    /// A root-owned rootfs in place (see OCIBundle): an idmapped mount of it at
    /// `bundleDir/bundle-root/tree`, when its guard directory allows and the filesystem supports
    /// idmapped mounts; else nil and why not (then it is copied).
    static func idmappedBundleRoot(_ rootfs: String, into bundleDir: String, mapping: IDMapping) throws -> (
        root: String?, guardDir: String?, why: String?
    ) {
        let (refusal, guardDir) = IdmappedRoot.guardDirectory(of: rootfs)
        if let refusal { return (nil, nil, refusal) }
        let scratch = bundleDir + "/bundle-root"
        do {
            try FS.makeDirectories(scratch)
            guard chown(scratch, 0, mapping.host) == 0, chmod(scratch, 0o710) == 0 else {
                throw SyscallError("chmod \(scratch)")
            }
            if let why = try IdmappedRoot.mount(rootfs, at: scratch + "/tree", mapping: mapping) {
                Container.remove(bundleDir: bundleDir)
                return (nil, nil, why)
            }
            return (scratch + "/tree", guardDir, nil)
        } catch let error as SyscallError {
            // Unmounted first: a recursive delete must never walk into the user's rootfs.
            Container.remove(bundleDir: bundleDir)
            if [EINVAL, EOPNOTSUPP, ENOSYS, EPERM].contains(error.errno) {
                return (nil, nil, "no idmapped mount here: \(error)")
            }
            throw ClabError("root.path \(rootfs): \(error)")
        }
    }

    /// The copy of a root-owned rootfs the container runs on (see OCIBundle): in
    /// `bundleDir/bundle-root/tree`, searchable only by root and the mapped root's group.
    static func shiftedBundleRoot(_ source: String, into bundleDir: String, mapping: IDMapping, log: (String) -> Void)
        throws -> String
    {
        try FS.makeDirectories(bundleDir)
        let scratch = bundleDir + "/bundle-root"
        log("copying \(source) for uid \(mapping.host)")
        do {
            let tree = try ShiftedCopy.copyAside(source, scratch: scratch, shift: .init(from: 0, to: mapping.host))
            guard chown(scratch, 0, mapping.host) == 0, chmod(scratch, 0o710) == 0 else {
                throw SyscallError("chmod \(scratch)")
            }
            return tree
        } catch {
            try? FS.removeTree(bundleDir)
            throw error
        }
    }

    /// `process.capabilities`: the bounding set is what clab keeps; effective and permitted
    /// are the process's own (effective within permitted); inheritable lies within the bounding
    /// set; ambient is raised where the kernel allows it (permitted and inheritable), the rest
    /// named in a note (the last result). A config without capabilities gets none, as in runc.
    static func capabilities(_ value: JSON?) throws -> (Set<Capability>, UInt64, CapabilitySets?, [String]) {
        guard let value else { return ([], 0, nil, []) }
        let f = try OCIFields(
            value, at: "process.capabilities", known: ["bounding", "effective", "inheritable", "permitted", "ambient"])
        func set(_ key: String) throws -> Set<Capability> {
            Set(
                try f.strings(key, max: 64).enumerated().map { i, name in
                    guard name.hasPrefix("CAP_"), let cap = Capability(name: name) else {
                        throw OCIBundle.fail(
                            "process.capabilities.\(key)[\(i)] \"\(name)\" is not a capability (CAP_CHOWN, ...)")
                    }
                    return cap
                })
        }
        let bounding = try set("bounding")
        let effective = try set("effective")
        let permitted = try set("permitted")
        let inheritable = try set("inheritable")
        let ambient = try set("ambient")
        guard effective.isSubset(of: permitted) else {
            throw OCIBundle.fail("process.capabilities.effective has capabilities permitted lacks")
        }
        guard permitted.isSubset(of: bounding) else {
            throw OCIBundle.fail(
                "process.capabilities.permitted has capabilities the bounding set lacks (an execve would drop them)")
        }
        guard inheritable.isSubset(of: bounding) else {
            throw OCIBundle.fail("process.capabilities.inheritable has capabilities the bounding set lacks")
        }
        // The kernel raises an ambient capability only if it is permitted and inheritable.
        // `runc spec` (1.1) writes ambient capabilities without an inheritable set, and runc
        // raises what it can and ignores the rest: so does clab, saying so.
        let raisable = ambient.intersection(permitted).intersection(inheritable)
        let sets = CapabilitySets(
            effective: Capability.mask(effective), permitted: Capability.mask(permitted),
            ambient: Capability.mask(raisable))
        let dropped = ambient.subtracting(raisable).map { "CAP_" + $0.name }.sorted()
        return (bounding, Capability.mask(inheritable), sets, dropped)
    }

    /// `process.rlimits`: known names, each once, soft ≤ hard, and a hard limit no higher than
    /// clab's own (a user namespace cannot raise it: setrlimit would fail with EPERM).
    static func rlimits(_ items: [JSON]) throws -> [ResourceLimit] {
        var result: [ResourceLimit] = []
        for (i, item) in items.enumerated() {
            let f = try OCIFields(item, at: "process.rlimits[\(i)]", known: ["type", "soft", "hard"])
            guard let type = try f.string("type"), let n = ResourceLimit.names.firstIndex(of: type) else {
                throw OCIBundle.fail("process.rlimits[\(i)].type is not an RLIMIT_* name this kernel has")
            }
            guard !result.contains(where: { $0.resource == UInt32(n) }) else {
                throw OCIBundle.fail("process.rlimits[\(i)]: \(type) is given twice")
            }
            guard let soft = try f.unsigned("soft"), let hard = try f.unsigned("hard"), soft <= hard else {
                throw OCIBundle.fail("process.rlimits[\(i)] (\(type)) needs soft and hard, soft ≤ hard")
            }
            var own = rlimit()
            if getrlimit(__rlimit_resource_t(UInt32(n)), &own) == 0, hard > UInt64(own.rlim_max) {
                throw OCIBundle.fail(
                    "process.rlimits[\(i)]: \(type) hard \(hard) is above clab's own hard limit \(own.rlim_max), which a user namespace cannot raise"
                )
            }
            result.append(ResourceLimit(resource: UInt32(n), soft: soft, hard: hard))
        }
        return result
    }

    /// `linux.resources`: memory (limit, swap), cpu (shares, quota with a 100000 µs period),
    /// pids (limit), and devices: the device cgroup's rules (DeviceRules).
    static func resources(_ value: JSON) throws -> (CgroupLimits, [DeviceRule]) {
        let f = try OCIFields(
            value, at: "linux.resources", known: ["memory", "cpu", "pids", "devices"],
            unsupported: ["blockIO", "hugepageLimits", "network", "rdma", "unified"])
        var limits = CgroupLimits(memoryBytes: nil, pids: nil)
        let rules = try deviceRules(try f.array("devices", max: 256))
        if let memory = f.value("memory") {
            let m = try OCIFields(
                memory, at: "linux.resources.memory", known: ["limit", "swap"],
                unsupported: [
                    "reservation", "kernel", "kernelTCP", "swappiness", "disableOOMKiller", "useHierarchy",
                    "checkBeforeUpdate",
                ])
            if let limit = try m.signed("limit"), limit != -1 {
                guard limit >= CgroupLimits.minimumMemory else {
                    throw OCIBundle.fail(
                        "linux.resources.memory.limit \(limit) is below \(CgroupLimits.minimumMemory) bytes, too little for the container's init"
                    )
                }
                limits.memoryBytes = limit
            }
            if let swap = try m.signed("swap"), swap != -1 {
                guard let limit = limits.memoryBytes, swap >= limit else {
                    throw OCIBundle.fail(
                        "linux.resources.memory.swap must be at least memory.limit (it counts memory plus swap)")
                }
                limits.memorySwapBytes = swap
            }
        }
        if let cpu = f.value("cpu") {
            let c = try OCIFields(
                cpu, at: "linux.resources.cpu", known: ["shares", "quota", "period", "cpus", "mems"],
                unsupported: ["realtimeRuntime", "realtimePeriod", "idle", "burst"])
            for key in ["cpus", "mems"] {
                guard let list = try c.string(key), !list.isEmpty else { continue }
                guard CgroupLimits.isCpuList(list) else {
                    throw OCIBundle.fail(
                        "linux.resources.cpu.\(key) \"\(list)\" is not a list of \(key == "cpus" ? "CPUs" : "memory nodes") (\"0-1\", \"0,2\")"
                    )
                }
                if key == "cpus" { limits.cpusetCpus = list } else { limits.cpusetMems = list }
            }
            if let shares = try c.unsigned("shares", max: 262_144) {
                guard shares >= 2 else { throw OCIBundle.fail("linux.resources.cpu.shares must be 2-262144") }
                limits.cpuShares = Int(shares)
            }
            let period = try c.unsigned("period") ?? 100_000
            guard period == 100_000 else {
                throw OCIBundle.fail("linux.resources.cpu.period \(period) is not supported: clab uses 100000 µs")
            }
            if let quota = try c.signed("quota"), quota != -1 {
                guard quota >= 1000, quota <= 100_000 * 1024 else {
                    throw OCIBundle.fail("linux.resources.cpu.quota must be 1000-102400000 µs per period (or -1)")
                }
                limits.cpus = Double(quota) / 100_000
            }
        }
        if let pids = f.value("pids") {
            let p = try OCIFields(pids, at: "linux.resources.pids", known: ["limit"])
            if let limit = try p.signed("limit"), limit > 0 { limits.pids = Int(limit) }
        }
        return (limits, rules)
    }

    /// `linux.resources.devices`, in order, onto clab's allow-list (v1 devices.allow, v2's BPF
    /// table): a rule denying everything starts over; an allow rule is added, before clab's
    /// defaults (the nodes every container gets, as runc appends its own), in the config's
    /// order (runtime-spec: "applied in the listed order"); a deny rule for one device or
    /// class removes the allow rules it equals. A deny that only overlaps an earlier allow (deny
    /// c 1:3 after allow c *:*) has no allow-list form and is refused.
    static func deviceRules(_ items: [JSON]) throws -> [DeviceRule] {
        var allowed: [DeviceRule] = []
        for (i, item) in items.enumerated() {
            let at = "linux.resources.devices[\(i)]"
            let d = try OCIFields(item, at: at, known: ["allow", "type", "major", "minor", "access"])
            guard let allow = try d.bool("allow") else { throw OCIBundle.fail("\(at).allow is missing") }
            let kindName = try d.string("type") ?? "a"
            guard let kind = DeviceRule.Kind(rawValue: kindName) else {
                throw OCIBundle.fail("\(at).type must be a, b or c")
            }
            func number(_ key: String) throws -> UInt32? {
                guard let n = try d.signed(key), n != -1 else { return nil }
                guard n >= 0, n < 0xFFFF_FFFF else { throw OCIBundle.fail("\(at).\(key) \(n) is not a device number") }
                return UInt32(n)
            }
            let rule = DeviceRule(
                kind, kind == .all ? nil : try number("major"), kind == .all ? nil : try number("minor"),
                try accessBits(try d.string("access") ?? "rwm", at: at))
            if allow {
                allowed.append(rule)
            } else if kind == .all && rule.access == .rwm {
                allowed = []
            } else {
                let overlapping = allowed.filter { $0 != rule && covers($0, rule) }
                guard overlapping.isEmpty else {
                    throw OCIBundle.fail(
                        "\(at) denies \(rule) inside the earlier allow rule \(overlapping[0]): clab keeps an allow-list, which cannot subtract from a wider rule"
                    )
                }
                allowed.removeAll { $0 == rule }
            }
        }
        return allowed + DeviceRule.dockerDefault.filter { !allowed.contains($0) }
    }

    static func accessBits(_ text: String, at: String) throws -> DeviceRule.Access {
        var access: DeviceRule.Access = []
        for c in text {
            switch c {
            case "r": access.insert(.read)
            case "w": access.insert(.write)
            case "m": access.insert(.mknod)
            default: throw OCIBundle.fail("\(at).access \"\(text)\" must be letters of rwm")
            }
        }
        guard !access.isEmpty else { throw OCIBundle.fail("\(at).access is empty") }
        return access
    }

    /// Whether allow rule `wide` reaches any device `narrow` names.
    static func covers(_ wide: DeviceRule, _ narrow: DeviceRule) -> Bool {
        (wide.kind == .all || narrow.kind == .all || wide.kind == narrow.kind)
            && (wide.major == nil || narrow.major == nil || wide.major == narrow.major)
            && (wide.minor == nil || narrow.minor == nil || wide.minor == narrow.minor)
            && !wide.access.isDisjoint(with: narrow.access)
    }
}

// MARK: - hooks, devices, sysctl

extension OCIBundle {
    /// `hooks`: every phase of runtime-spec 1.x, each a list of {path, args, env, timeout}.
    static func hooks(_ value: JSON) throws -> OCIHooks {
        let f = try OCIFields(value, at: "hooks", known: Set(OCIHooks.Phase.allCases.map(\.rawValue)))
        var hooks = OCIHooks()
        for phase in OCIHooks.Phase.allCases {
            for (i, item) in try f.array(phase.rawValue, max: OCIHooks.maxPerPhase).enumerated() {
                let at = "hooks.\(phase.rawValue)[\(i)]"
                let h = try OCIFields(item, at: at, known: ["path", "args", "env", "timeout"])
                guard let path = try h.string("path"), path.hasPrefix("/") else {
                    throw fail("\(at).path must be an absolute path")
                }
                let timeout = try h.signed("timeout")
                if let t = timeout, t <= 0 || t > 86400 {
                    throw fail("\(at).timeout \(t) must be 1-86400 seconds")
                }
                hooks[phase].append(
                    OCIHooks.Hook(
                        path: path, args: try h.strings("args"), env: try h.strings("env"),
                        timeout: timeout.map { Int($0) }))
            }
        }
        return hooks
    }

    /// `linux.devices`: nodes below /dev. Container root is uid 100000 on the host, so a bound
    /// host node opens only as far as its mode lets others (a disk, 0660 root:disk, stays shut
    /// even with a cgroup rule allowing it). A FIFO is made in the container; a character or block
    /// device must exist on the host at the same path with the same type and numbers, and is
    /// bound in (mknod of a device is refused in the user namespace every bundle runs in, and a
    /// node there would not open anyway).
    static func devices(_ items: [JSON]) throws -> [DeviceNode] {
        try items.enumerated().map { i, item in
            let at = "linux.devices[\(i)]"
            let d = try OCIFields(item, at: at, known: ["type", "path", "major", "minor", "fileMode", "uid", "gid"])
            guard let path = try d.string("path"), path.hasPrefix("/dev/"),
                !path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().contains(where: {
                    $0.isEmpty || $0 == "." || $0 == ".."
                })
            else {
                throw fail("\(at).path must be a clean absolute path below /dev")
            }
            guard let type = try d.string("type"), ["c", "b", "u", "p"].contains(type) else {
                throw fail("\(at).type must be c, b, u or p")
            }
            let major = try d.signed("major") ?? 0
            let minor = try d.signed("minor") ?? 0
            let mode = try d.unsigned("fileMode", max: 0o7777) ?? 0o666
            let most = UInt64(IDMapping.defaultRange.count - 1)
            let uid = try d.unsigned("uid", max: most) ?? 0
            let gid = try d.unsigned("gid", max: most) ?? 0
            if type != "p" {
                var st = stat()
                let kind = type == "b" ? S_IFBLK : S_IFCHR
                guard lstat(path, &st) == 0, st.st_mode & S_IFMT == kind,
                    Self.major(st.st_rdev) == major, Self.minor(st.st_rdev) == minor
                else {
                    throw fail(
                        "\(at) (\(path) \(type) \(major):\(minor)) is not a device node of this host: clab binds the host's node into the container (mknod of a device is refused in its user namespace), so it must exist here with that type and numbers"
                    )
                }
            }
            return DeviceNode(
                type: type, path: path, major: major, minor: minor, mode: UInt32(mode), uid: UInt32(uid),
                gid: UInt32(gid))
        }
    }

    /// glibc's major()/minor() (macros, not imported).
    static func major(_ dev: dev_t) -> Int64 { Int64((dev >> 8) & 0xfff | (dev >> 32) & ~0xfff) }
    static func minor(_ dev: dev_t) -> Int64 { Int64(dev & 0xff | (dev >> 12) & ~0xff) }

    /// `linux.sysctl`: only those the container's own namespaces hold (IPC's, and net.* with a
    /// network namespace of its own); any other would change the host for everyone.
    static func sysctls(_ value: JSON?, namespaces: Set<String>) throws -> [Sysctl] {
        guard let value else { return [] }
        guard let fields = value.fields, fields.count <= 256 else {
            throw fail("linux.sysctl must be an object of at most 256 strings")
        }
        return try fields.keys.sorted().map { key in
            guard case .string(let v) = fields[key] ?? .null else {
                throw fail("linux.sysctl.\(key) is not a string")
            }
            try ContainerSpec.checkText(v, "config.json: linux.sysctl.\(key)")
            guard Sysctl.isWellFormed(key) else { throw fail("linux.sysctl \"\(key)\" is not a sysctl name") }
            guard let ns = Sysctl.namespace(of: key) else {
                throw fail(
                    "linux.sysctl \"\(key)\" is not namespaced: it would change the whole host (allowed: net.*, kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*)"
                )
            }
            guard namespaces.contains(ns) else {
                throw fail(
                    "linux.sysctl \"\(key)\" belongs to the \(ns) namespace, which the container shares with the host: add {\"type\": \"\(ns)\"} to linux.namespaces"
                )
            }
            return Sysctl(key: key, value: v)
        }
    }
}

// MARK: - On the host, during create

extension OCIBundle {
    /// What a bundle adds before init runs (after the cgroup is joined: these are appended
    /// last to `beforeGo`): process.oomScoreAdj, written from the host (container root may
    /// only raise it), then the prestart and createRuntime hooks, in clab's namespaces, with the
    /// container's namespaces made and its pid known ("creating"). A failing hook fails the
    /// create: Container.start kills the child and removes what it made.
    static func hookLifecycle(_ oci: OCISetup, spec: ContainerSpec, into container: Container) {
        if let adj = oci.oomScoreAdj {
            container.beforeGo.append { pid in
                let path = "/proc/\(pid)/oom_score_adj"
                do {
                    try FS.write("\(adj)\n", to: path)
                } catch {
                    // Below the current value needs CAP_SYS_RESOURCE (EACCES without it).
                    let why = adj < 0 ? " (a negative value needs CAP_SYS_RESOURCE, which clab may lack here)" : ""
                    throw ClabError("process.oomScoreAdj \(adj): writing \(path): \(error)\(why)")
                }
            }
        }
        if !oci.hooks.prestart.isEmpty || !oci.hooks.createRuntime.isEmpty {
            container.beforeGo.append { pid in
                try OCIHookRunner.run(.prestart, of: spec, status: "creating", pid: pid)
                try OCIHookRunner.run(.createRuntime, of: spec, status: "creating", pid: pid)
            }
        }
    }
}

// MARK: - After start, after delete

extension OCIBundle {
    /// poststart, once the process runs: each failure is a warning on stderr, and the
    /// container keeps running (runtime.md: "the runtime MUST log a warning").
    public static func afterStart(_ spec: ContainerSpec, pid: Int32) {
        guard let oci = spec.oci, !oci.hooks.poststart.isEmpty else { return }
        for line in OCIHookRunner.runWarning(.poststart, of: spec, status: "running", pid: pid) {
            try? FS.writeAll(2, Array("clab: \(line)\n".utf8), what: "stderr")
        }
    }

    /// poststop, once the container is deleted: failures are warnings, delete still succeeds.
    public static func afterDelete(_ spec: ContainerSpec) {
        guard let oci = spec.oci, !oci.hooks.poststop.isEmpty else { return }
        for line in OCIHookRunner.runWarning(.poststop, of: spec, status: "stopped", pid: 0) {
            try? FS.writeAll(2, Array("clab: \(line)\n".utf8), what: "stderr")
        }
    }
}
