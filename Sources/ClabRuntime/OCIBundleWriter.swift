import CShims
import ClabCgroups
import ClabHost
import ClabImages
import ClabSeccomp
import ClabSpec
import ClabSys
import Glibc

/// What `clab bundle` writes.
public struct BundleRequest: Sendable {
    public var image: String
    public var directory: String
    /// nil: the image's CMD (or /bin/sh).
    public var command: [String]?
    public var hostname: String?

    public init(image: String, directory: String, command: [String]? = nil, hostname: String? = nil) {
        self.image = image
        self.directory = directory
        self.command = command
        self.hostname = hostname
    }
}

extension OCIBundle {
    /// config.json for the container `clab step 12` would build from this image: Docker's 14
    /// capabilities (bounding, effective, permitted and inheritable alike, as stage 12 sets
    /// them), no_new_privs, Docker's seccomp profile decided for those capabilities on this
    /// machine, Docker's masked and read-only paths, clab's default memory and pids limits and
    /// open-files limit, the user namespace 0 → 100000 (65536), and the mounts Docker gives
    /// runc (proc, a tmpfs /dev with devpts, shm and mqueue, sysfs, the cgroups read-only).
    /// No cgroupsPath: each runtime places the container itself.
    static func config(
        command: [String], env: [String], cwd: String, hostname: String, seccomp: SeccompProfile
    ) -> String {
        let caps = JSON.strings(Capability.dockerDefault.sorted().map(\.kernelName))
        var nofile = rlimit()
        _ = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &nofile)
        let hard = min(UInt64(nofile.rlim_max), UInt64(Hardening.fileLimit.hard))
        let soft = min(hard, UInt64(Hardening.fileLimit.soft))
        func mount(_ target: String, _ type: String, _ source: String, _ options: [String]) -> JSON {
            .object([
                ("destination", .string(target)), ("type", .string(type)), ("source", .string(source)),
                ("options", .strings(options)),
            ])
        }
        let mapping = IDMapping.defaultRange
        let idMap = JSON.array([
            .object([
                ("containerID", .unsigned(0)), ("hostID", .unsigned(UInt64(mapping.host))),
                ("size", .unsigned(UInt64(mapping.count))),
            ])
        ])
        let config = JSON.object([
            ("ociVersion", .string(ociVersion)),
            (
                "process",
                .object([
                    ("terminal", .bool(false)),
                    ("user", .object([("uid", .unsigned(0)), ("gid", .unsigned(0))])),
                    ("args", .strings(command)),
                    ("env", .strings(env)),
                    ("cwd", .string(cwd)),
                    (
                        "capabilities",
                        .object([
                            ("bounding", caps), ("effective", caps), ("inheritable", caps), ("permitted", caps),
                        ])
                    ),
                    (
                        "rlimits",
                        .array([
                            .object([
                                ("type", .string("RLIMIT_NOFILE")), ("hard", .unsigned(hard)),
                                ("soft", .unsigned(soft)),
                            ])
                        ])
                    ),
                    ("noNewPrivileges", .bool(true)),
                ])
            ),
            ("root", .object([("path", .string("rootfs")), ("readonly", .bool(false))])),
            ("hostname", .string(hostname)),
            (
                "mounts",
                .array([
                    mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
                    mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
                    mount(
                        "/dev/pts", "devpts", "devpts",
                        ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
                    mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
                    mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
                    mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
                    mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
                ])
            ),
            (
                "linux",
                .object([
                    ("uidMappings", idMap), ("gidMappings", idMap),
                    (
                        "resources",
                        .object([
                            ("devices", .array([.object([("allow", .bool(false)), ("access", .string("rwm"))])])),
                            ("memory", .object([("limit", .signed(CgroupLimits.defaultMemory))])),
                            ("pids", .object([("limit", .signed(Int64(CgroupLimits.defaultPids)))])),
                        ])
                    ),
                    (
                        "namespaces",
                        .array(
                            ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"].map {
                                .object([("type", .string($0))])
                            })
                    ),
                    ("seccomp", seccompJSON(seccomp)),
                    ("maskedPaths", .strings(Hardening.dockerMaskedPaths)),
                    ("readonlyPaths", .strings(Hardening.dockerReadonlyPaths)),
                ])
            ),
        ])
        return config.indented + "\n"
    }

    static func seccompJSON(_ p: SeccompProfile) -> JSON {
        var fields: [(String, JSON)] = [("defaultAction", .string(p.defaultAction.rawValue))]
        if let e = p.defaultErrnoRet { fields.append(("defaultErrnoRet", .unsigned(UInt64(e)))) }
        fields.append(("architectures", .strings(p.architectures)))
        fields.append(
            (
                "syscalls",
                .array(
                    p.syscalls.map { rule in
                        var r: [(String, JSON)] = [
                            ("names", .strings(rule.names)), ("action", .string(rule.action.rawValue)),
                        ]
                        if let e = rule.errnoRet { r.append(("errnoRet", .unsigned(UInt64(e)))) }
                        if !rule.args.isEmpty {
                            r.append(
                                (
                                    "args",
                                    .array(
                                        rule.args.map {
                                            .object([
                                                ("index", .unsigned(UInt64($0.index))), ("value", .unsigned($0.value)),
                                                ("valueTwo", .unsigned($0.valueTwo)), ("op", .string($0.op.rawValue)),
                                            ])
                                        })
                                ))
                        }
                        return .object(r)
                    })
            ))
        return .object(fields)
    }
}

extension Runtime {
    /// `clab bundle IMAGE DIR [-- CMD]`: DIR (new, or an empty directory) gets config.json and
    /// rootfs/, the image's layers flattened and owned by the mapped range (0 → 100000), so
    /// that runc, crun and `clab run --bundle` run the same container. Returns what was written.
    /// On failure nothing is left in DIR.
    public func writeBundle(_ request: BundleRequest, log: (String) -> Void) throws -> String {
        let dir = request.directory
        try ContainerSpec.checkText(dir, "the bundle directory")
        if let hostname = request.hostname { try ContainerSpec.validateHostname(hostname) }
        var created = false
        if FS.exists(dir) {
            guard FS.isDirectory(dir), (try? FileManagerLite.entries(dir))?.isEmpty == true else {
                throw ClabError("bundle \(dir): not an empty directory: give a new or empty one", exitCode: 2)
            }
        } else {
            guard mkdir(dir, 0o711) == 0 else {
                throw ClabError("bundle \(dir): mkdir: \(errnoDescription(errno))", exitCode: 2)
            }
            created = true
        }
        do {
            return try fillBundle(request, log: log)
        } catch {
            if created {
                try? FS.removeTree(dir)
            } else {
                for name in (try? FileManagerLite.entries(dir)) ?? [] { try? FS.removeTree(dir + "/" + name) }
            }
            throw error
        }
    }

    private func fillBundle(_ request: BundleRequest, log: (String) -> Void) throws -> String {
        let dir = request.directory
        try layout.prepare()
        try images.ensureBase(log: log)
        let (_, image) = try images.resolve(request.image)
        try image.validate("image \(request.image)")
        let mapping = IDMapping.defaultRange
        let hostname = request.hostname ?? ContainerSpec.newID()
        var env = ["PATH=\(ContainerSpec.defaultPath)", "HOME=/root", "HOSTNAME=\(hostname)"]
        for entry in image.env {
            env = env.filter { !$0.hasPrefix(entry.prefix { $0 != "=" } + "=") } + [entry]
        }
        let command = request.command.flatMap { $0.isEmpty ? nil : $0 } ?? image.cmd ?? ["/bin/sh"]
        try ContainerSpec.checkExec(command: command, env: env)
        let lowers = try image.layers.reversed().map { try images.layerStore.shifted($0, base: mapping.host, log: log) }
        try flatten(lowers, into: dir + "/rootfs", scratch: dir + "/.clab-rootfs")
        let seccomp = SeccompProfile.dockerDefault.resolvedForOCI(capabilities: Capability.dockerDefault)
        let text = OCIBundle.config(
            command: command, env: env, cwd: image.workdir ?? "/", hostname: hostname, seccomp: seccomp)
        try FS.write(text, to: dir + "/config.json")
        return dir + "/config.json"
    }

    /// The layers (top first) as one tree: read through a read-only overlay of them (which
    /// applies whiteouts and opaque directories; userxattr, as stage 9 wrote those markers),
    /// copied with owners kept, aside first, then renamed into place.
    private func flatten(_ lowers: [String], into target: String, scratch: String) throws {
        let same = ShiftedCopy.Shift(from: 0, to: 0)
        guard lowers.count > 1 else {
            guard let only = lowers.first else { throw ClabError("the image has no layers") }
            let tree = try ShiftedCopy.copyAside(only, scratch: scratch, shift: same)
            defer { try? FS.removeTree(scratch) }
            guard rename(tree, target) == 0 else { throw SyscallError("rename \(tree) \(target)") }
            return
        }
        let point = layout.runDir + "/bundle-\(getpid())-\(ContainerSpec.newID())"
        guard mkdir(point, 0o700) == 0 else { throw SyscallError("mkdir \(point)") }
        defer { rmdir(point) }
        let options = "lowerdir=\(lowers.joined(separator: ":")),userxattr"
        guard mount("overlay", point, "overlay", UInt(MS_RDONLY | MS_NOSUID | MS_NODEV), options) == 0 else {
            throw SyscallError("mount -t overlay -o ro,\(options) \(point)")
        }
        defer { umount2(point, Int32(MNT_DETACH)) }
        let tree = try ShiftedCopy.copyAside(point, scratch: scratch, shift: same)
        defer { try? FS.removeTree(scratch) }
        guard rename(tree, target) == 0 else { throw SyscallError("rename \(tree) \(target)") }
    }
}

/// Directory entries without Foundation's FileManager (which ClabRuntime reaches only through
/// FoundationEssentials' subset).
enum FileManagerLite {
    static func entries(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else { throw SyscallError("opendir \(dir)") }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
