import CShims
import ClabSys
import Glibc

/// What an OCI bundle's config.json asks of the container beyond clab's stages (`clab run
/// --bundle`, ClabRuntime's OCIBundle.swift reads it): exactly the config's mounts instead of
/// clab's own proc, /dev and /sys, its rlimits instead of clab's default open-files limit, the
/// process's uid, gid and groups, its inheritable capabilities, and a read-only root without
/// clab's `--read-only` tmpfs on /tmp. The container is otherwise a stage-12 one: namespaces,
/// user namespace, cgroups, capabilities, no_new_privs, seccomp, masked and read-only paths.
public struct OCISetup: Codable, Sendable, Equatable {
    /// config.json's `mounts`, in order.
    public var mounts: [MountSpec] = []
    /// `process.rlimits`: set just before execve, in this order.
    public var rlimits: [ResourceLimit] = []
    public var user = ProcessUser()
    /// `process.capabilities.inheritable` (a mask; stage 12 keeps it equal to the bounding set).
    public var inheritable: UInt64 = 0
    /// `root.readonly`: the root mount remounted read-only once everything is mounted.
    public var readOnlyRoot = false
    /// `process.capabilities` effective, permitted and ambient; nil: stage 12's sets (effective
    /// and permitted are the bounding set, ambient is empty).
    public var capabilitySets: CapabilitySets?
    /// `domainname`: the UTS namespace's NIS domain name ("" leaves it as it is, "(none)").
    public var domainname = ""
    /// `process.user.umask`; runc's default, 022, when the config has none.
    public var umask: UInt32 = 0o022
    /// `process.oomScoreAdj`: written by clab on the host into /proc/PID/oom_score_adj before
    /// init runs (a lower value needs CAP_SYS_RESOURCE of the host, which container root lacks).
    public var oomScoreAdj: Int32?
    /// `linux.rootfsPropagation` (MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE, with MS_REC)
    /// set on "/" after pivot_root; 0: clab's rprivate. The container's mount namespace was made
    /// private from the host's first, so "shared" shares only within the container.
    public var rootfsPropagation: UInt32 = 0
    /// `linux.sysctl`: only sysctls that belong to the container's own namespaces (Sysctl).
    public var sysctls: [Sysctl] = []
    /// `linux.devices`: nodes made in the container's /dev (DeviceNode).
    public var devices: [DeviceNode] = []
    /// `hooks` (OCIHooks.swift): the host runs most; init runs createContainer and startContainer.
    public var hooks = OCIHooks()
    /// What a hook's state JSON says (OCIHooks.stateJSON): the container's OCI id (the name
    /// its caller gave), the bundle directory, config.json's annotations, and the container's
    /// pid on the host (filled in by clab once the child exists, before the spec is sent).
    public var stateID = ""
    public var bundlePath = ""
    public var annotations: [String: String] = [:]
    public var hostPID: Int32 = 0

    public init() {}

    /// More would be no container anyone writes by hand; the kernel's own limit on mounts in a
    /// namespace (fs.mount-max) is 100000.
    public static let maxMounts = 1024
}

/// `process.capabilities` beyond bounding and inheritable: each a mask of Capability bits.
public struct CapabilitySets: Codable, Sendable, Equatable {
    public var effective: UInt64
    public var permitted: UInt64
    public var ambient: UInt64

    public init(effective: UInt64, permitted: UInt64, ambient: UInt64) {
        self.effective = effective
        self.permitted = permitted
        self.ambient = ambient
    }
}

/// One `linux.sysctl` entry, as "net.ipv4.ip_forward" = "1". Only sysctls the container's own
/// namespaces hold (runc's list: IPC's kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, and
/// net.* with its own network namespace): any other would change the whole host.
public struct Sysctl: Codable, Sendable, Equatable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    /// The namespace that holds `key`, or nil for a host-wide sysctl.
    public static func namespace(of key: String) -> String? {
        let ipc: Set<String> = [
            "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
            "kernel.shmmni", "kernel.shm_rmid_forced",
        ]
        if ipc.contains(key) || key.hasPrefix("fs.mqueue.") { return "ipc" }
        if key.hasPrefix("net.") { return "network" }
        return nil
    }

    /// Letters, digits, '_', '-' and dots between parts: nothing that walks out of /proc/sys.
    public static func isWellFormed(_ key: String) -> Bool {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count >= 2 && key.utf8.count <= 255
            && parts.allSatisfy { part in
                !part.isEmpty
                    && part.utf8.allSatisfy { c in
                        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 95 || c == 45
                    }
            }
    }

    /// Its file below /proc/sys ("net/ipv4/ip_forward").
    public var procPath: String { "/proc/sys/" + key.split(separator: ".").joined(separator: "/") }
}

/// One `linux.devices` entry: a node clab-init makes at `path` in the container. In a user
/// namespace mknod makes only FIFOs (the kernel refuses device nodes there), so a character or
/// block device is the host's own node bound in, after clab checked on the host that a node
/// with that type, major and minor exists at the same path (`hostPath`).
public struct DeviceNode: Codable, Sendable, Equatable {
    /// "c", "b", "u" (character, unbuffered) or "p" (FIFO).
    public var type: String
    public var path: String
    public var major: Int64
    public var minor: Int64
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32

    public init(type: String, path: String, major: Int64, minor: Int64, mode: UInt32, uid: UInt32, gid: UInt32) {
        self.type = type
        self.path = path
        self.major = major
        self.minor = minor
        self.mode = mode
        self.uid = uid
        self.gid = gid
    }
}

/// One entry of config.json's `mounts`. For a bind, the source is `volumes[volume]` of the
/// spec: clab stages every bind on the host, nosuid and nodev (and read-only for `ro`) locked
/// there, as it does `-v` (ClabInit's Stages/10-Volumes.swift), so container root cannot lift them.
public struct MountSpec: Codable, Sendable, Equatable {
    public var type: MountType
    /// The filesystem's source name ("proc", "tmpfs"); for a bind, unused (see `volume`).
    public var source: String
    /// Inside the container, resolved in its root (InRoot).
    public var target: String
    /// MS_* flags from `options` (MS_RDONLY, MS_NOSUID, ...). A bind applies them by a remount.
    public var flags: UInt32
    /// The options the filesystem itself reads ("mode=755,size=65536k").
    public var data: String
    /// MS_PRIVATE, MS_SLAVE, MS_SHARED or MS_UNBINDABLE, with MS_REC; 0 for none.
    public var propagation: UInt32
    /// A bind: the index into the spec's volumes (its staged source); a bind without `rbind`
    /// is still recursive (the staged source is a recursive bind).
    public var volume: Int

    public init(
        type: MountType, source: String, target: String, flags: UInt32 = 0, data: String = "",
        propagation: UInt32 = 0, volume: Int = -1
    ) {
        self.type = type
        self.source = source
        self.target = target
        self.flags = flags
        self.data = data
        self.propagation = propagation
        self.volume = volume
    }

    /// The flags a mount's options may set; the rest of MS_* (MS_MOVE, MS_REMOUNT, ...) are not options.
    public static let allowedFlags = UInt32(
        MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_SYNCHRONOUS | MS_DIRSYNC | MS_NOATIME | MS_NODIRATIME
            | MS_RELATIME | MS_STRICTATIME | MS_LAZYTIME | MS_MANDLOCK | MS_SILENT)
    public static let allowedPropagation: Set<UInt32> = Set(
        [MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE].flatMap { [UInt32($0), UInt32($0 | MS_REC)] } + [0])
}

/// The filesystems a bundle may mount: what `runc spec` and Docker write. (`cgroup` is the
/// container's own cgroups, bound read-only beneath a tmpfs, as runc does on cgroup v1.)
public enum MountType: String, Codable, Sendable, CaseIterable {
    case bind, tmpfs, proc, sysfs, devpts, mqueue, cgroup
}

/// One `process.rlimits` entry: RLIMIT_* number, soft and hard (RLIM_INFINITY is UInt64.max).
public struct ResourceLimit: Codable, Sendable, Equatable {
    public var resource: UInt32
    public var soft: UInt64
    public var hard: UInt64

    public init(resource: UInt32, soft: UInt64, hard: UInt64) {
        self.resource = resource
        self.soft = soft
        self.hard = hard
    }

    /// RLIMIT_CPU ... RLIMIT_RTTIME, in the kernel's order (asm-generic/resource.h).
    public static let names = [
        "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC",
        "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
    ]
}

/// `process.user`: who the command runs as, inside the user namespace.
public struct ProcessUser: Codable, Sendable, Equatable {
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var additionalGids: [UInt32] = []

    public init(uid: UInt32 = 0, gid: UInt32 = 0, additionalGids: [UInt32] = []) {
        self.uid = uid
        self.gid = gid
        self.additionalGids = additionalGids
    }

    /// NGROUPS_MAX.
    public static let maxGroups = 65536
}

// MARK: - Wire (tag 15, SpecWire.swift)

extension OCISetup {
    /// u8 flags (1 read-only root), u32 x2 inheritable (low, high), u32 uid, u32 gid, u32 n +
    /// n x u32 groups, u32 n rlimits + n x (u32 resource, u32 x2 soft, u32 x2 hard), u32 n
    /// mounts + n x (u8 type, str source, str target, u32 flags, str data, u32 propagation,
    /// u32 volume + 1: 0 for none).
    func encode(_ w: inout WireWriter) {
        w.bytes.append(readOnlyRoot ? 1 : 0)
        w.u64(inheritable)
        w.u32(Int(user.uid))
        w.u32(Int(user.gid))
        w.u32(user.additionalGids.count)
        for gid in user.additionalGids { w.u32(Int(gid)) }
        w.u32(rlimits.count)
        for limit in rlimits {
            w.u32(Int(limit.resource))
            w.u64(limit.soft)
            w.u64(limit.hard)
        }
        w.u32(mounts.count)
        for m in mounts {
            w.bytes.append(UInt8(MountType.allCases.firstIndex(of: m.type) ?? 0))
            w.str(m.source)
            w.str(m.target)
            w.u32(Int(m.flags))
            w.str(m.data)
            w.u32(Int(m.propagation))
            w.u32(m.volume + 1)
        }
        w.bytes.append((capabilitySets != nil ? 1 : 0) | (oomScoreAdj != nil ? 2 : 0))
        for mask in [capabilitySets?.effective, capabilitySets?.permitted, capabilitySets?.ambient] {
            w.u64(mask ?? 0)
        }
        w.u32(Int(UInt32(bitPattern: oomScoreAdj ?? 0)))
        w.str(domainname)
        w.u32(Int(umask))
        w.u32(Int(rootfsPropagation))
        w.u32(sysctls.count)
        for s in sysctls {
            w.str(s.key)
            w.str(s.value)
        }
        w.u32(devices.count)
        for d in devices {
            w.str(d.type)
            w.str(d.path)
            w.u64(UInt64(bitPattern: d.major))
            w.u64(UInt64(bitPattern: d.minor))
            w.u32(Int(d.mode))
            w.u32(Int(d.uid))
            w.u32(Int(d.gid))
        }
        hooks.encode(&w)
        w.str(stateID)
        w.str(bundlePath)
        w.u32(annotations.count)
        for (key, value) in annotations.sorted(by: { $0.key < $1.key }) {
            w.str(key)
            w.str(value)
        }
        w.u32(Int(UInt32(bitPattern: hostPID)))
    }

    /// Strict: unknown flags, capability bits, resources, mount types, MS_* flags or
    /// propagation modes, a soft limit above its hard one, or too many entries fail it.
    static func decode(_ r: inout WireReader, volumes: Int) throws(SpecWireError) -> OCISetup {
        var o = OCISetup()
        let flags = try r.u8()
        guard flags <= 1 else { throw SpecWireError("field 'oci' has flags \(flags)") }
        o.readOnlyRoot = flags == 1
        o.inheritable = try r.u64()
        guard o.inheritable & ~Capability.mask(Set(Capability.allCases)) == 0 else {
            throw SpecWireError("field 'oci' keeps inheritable capability bits clab does not know")
        }
        o.user.uid = UInt32(try r.u32())
        o.user.gid = UInt32(try r.u32())
        let groups = try r.count()
        guard groups <= ProcessUser.maxGroups else { throw SpecWireError("field 'oci' has \(groups) groups") }
        for _ in 0..<groups { o.user.additionalGids.append(UInt32(try r.u32())) }
        for _ in 0..<(try r.count()) {
            let resource = try r.u32()
            guard resource < ResourceLimit.names.count else {
                throw SpecWireError("field 'oci' has rlimit resource \(resource)")
            }
            let limit = ResourceLimit(resource: UInt32(resource), soft: try r.u64(), hard: try r.u64())
            guard limit.soft <= limit.hard else {
                throw SpecWireError("field 'oci' has a soft rlimit above its hard one")
            }
            o.rlimits.append(limit)
        }
        let mounts = try r.count()
        guard mounts <= OCISetup.maxMounts else { throw SpecWireError("field 'oci' has \(mounts) mounts") }
        for _ in 0..<mounts {
            let raw = Int(try r.u8())
            guard raw < MountType.allCases.count else { throw SpecWireError("field 'oci' has mount type \(raw)") }
            let type = MountType.allCases[raw]
            let source = try r.str()
            let target = try r.str()
            let flags = UInt32(try r.u32())
            guard flags & ~MountSpec.allowedFlags == 0 else {
                throw SpecWireError("field 'oci' has mount flags \(flags)")
            }
            let data = try r.str()
            let propagation = UInt32(try r.u32())
            guard MountSpec.allowedPropagation.contains(propagation) else {
                throw SpecWireError("field 'oci' has mount propagation \(propagation)")
            }
            let volume = try r.u32() - 1
            guard (type == .bind) == (volume >= 0), volume < volumes else {
                throw SpecWireError("field 'oci' has a \(type.rawValue) mount naming volume \(volume)")
            }
            o.mounts.append(
                MountSpec(
                    type: type, source: source, target: target, flags: flags, data: data, propagation: propagation,
                    volume: volume))
        }
        let given = try r.u8()
        guard given & ~3 == 0 else { throw SpecWireError("field 'oci' has flags \(given) for its extras") }
        let known = Capability.mask(Set(Capability.allCases))
        let sets = CapabilitySets(effective: try r.u64(), permitted: try r.u64(), ambient: try r.u64())
        guard (sets.effective | sets.permitted | sets.ambient) & ~known == 0 else {
            throw SpecWireError("field 'oci' has capability bits clab does not know")
        }
        if given & 1 != 0 { o.capabilitySets = sets }
        let adj = Int32(bitPattern: UInt32(truncatingIfNeeded: try r.u32()))
        if given & 2 != 0 { o.oomScoreAdj = adj }
        o.domainname = try r.str()
        o.umask = UInt32(try r.u32())
        guard o.umask <= 0o777 else { throw SpecWireError("field 'oci' has umask \(o.umask)") }
        o.rootfsPropagation = UInt32(try r.u32())
        guard MountSpec.allowedPropagation.contains(o.rootfsPropagation) else {
            throw SpecWireError("field 'oci' has root propagation \(o.rootfsPropagation)")
        }
        for _ in 0..<(try r.count()) { o.sysctls.append(Sysctl(key: try r.str(), value: try r.str())) }
        for _ in 0..<(try r.count()) {
            let type = try r.str()
            let path = try r.str()
            let major = Int64(bitPattern: try r.u64())
            let minor = Int64(bitPattern: try r.u64())
            o.devices.append(
                DeviceNode(
                    type: type, path: path, major: major, minor: minor, mode: UInt32(try r.u32()),
                    uid: UInt32(try r.u32()), gid: UInt32(try r.u32())))
        }
        o.hooks = try OCIHooks.decode(&r)
        o.stateID = try r.str()
        o.bundlePath = try r.str()
        for _ in 0..<(try r.count()) {
            let key = try r.str()
            o.annotations[key] = try r.str()
        }
        o.hostPID = Int32(bitPattern: UInt32(truncatingIfNeeded: try r.u32()))
        return o
    }
}

extension WireWriter {
    mutating func u64(_ value: UInt64) {
        u32(Int(value & 0xffff_ffff))
        u32(Int(value >> 32))
    }
}

extension WireReader {
    mutating func u64() throws(SpecWireError) -> UInt64 {
        let low = UInt64(try u32())
        return low | UInt64(try u32()) << 32
    }
}

extension OCISetup {
    /// The state JSON a hook reads on its stdin (runtime-spec runtime.md "State").
    public func hookState(status: String) -> String {
        OCIHooks.stateJSON(
            id: stateID, status: status, pid: hostPID, bundle: bundlePath, annotations: annotations)
    }
}

// MARK: - Validation (SpecValidation.swift)

extension OCISetup {
    /// The rules for the bundle's part, before the spec leaves clab: the host half (OCIBundle)
    /// has already said which config.json field broke them.
    func validate(volumes: [VolumeSpec]) throws {
        guard mounts.count <= Self.maxMounts else {
            throw ClabError("a bundle may have at most \(Self.maxMounts) mounts")
        }
        guard user.additionalGids.count <= ProcessUser.maxGroups else {
            throw ClabError("process.user.additionalGids: at most \(ProcessUser.maxGroups) groups")
        }
        for (i, m) in mounts.enumerated() {
            try ContainerSpec.checkText(m.source, "mounts[\(i)].source")
            try ContainerSpec.checkText(m.data, "mounts[\(i)].options")
            try ContainerSpec.checkText(m.target, "mounts[\(i)].destination")
            guard m.target.hasPrefix("/") else {
                throw ClabError("mounts[\(i)].destination \(m.target) is not an absolute path")
            }
            guard (m.type == .bind) == (m.volume >= 0), m.volume < volumes.count else {
                throw ClabError("mounts[\(i)]: a bind mount and only a bind mount names a staged source")
            }
            guard m.flags & ~MountSpec.allowedFlags == 0, MountSpec.allowedPropagation.contains(m.propagation) else {
                throw ClabError("mounts[\(i)]: flags clab does not pass to mount(2)")
            }
        }
        for limit in rlimits where limit.resource >= ResourceLimit.names.count || limit.soft > limit.hard {
            throw ClabError("process.rlimits: resource \(limit.resource) soft \(limit.soft) hard \(limit.hard)")
        }
        if let sets = capabilitySets {
            guard sets.effective & ~sets.permitted == 0 else {
                throw ClabError("process.capabilities.effective has capabilities permitted lacks")
            }
            guard sets.ambient & ~(sets.permitted & inheritable) == 0 else {
                throw ClabError(
                    "process.capabilities.ambient has capabilities not both permitted and inheritable (the kernel refuses them)"
                )
            }
        }
        if !domainname.isEmpty { try ContainerSpec.validateHostname(domainname) }
        guard umask <= 0o777 else { throw ClabError("process.user.umask \(umask) is above 0777") }
        guard MountSpec.allowedPropagation.contains(rootfsPropagation) else {
            throw ClabError("linux.rootfsPropagation: a mode clab does not pass to mount(2)")
        }
        for s in sysctls {
            guard Sysctl.isWellFormed(s.key), Sysctl.namespace(of: s.key) != nil else {
                throw ClabError("linux.sysctl \(s.key): not a sysctl of the container's own namespaces")
            }
            try ContainerSpec.checkText(s.value, "linux.sysctl \(s.key)")
        }
        for d in devices {
            try ContainerSpec.checkText(d.path, "linux.devices path")
            guard d.path.hasPrefix("/dev/"), ["c", "b", "u", "p"].contains(d.type), d.mode <= 0o7777 else {
                throw ClabError("linux.devices \(d.path): a node below /dev of type c, b, u or p")
            }
        }
        try hooks.validate()
        try ContainerSpec.checkText(stateID + bundlePath, "the OCI state's id and bundle")
        for (key, value) in annotations { try ContainerSpec.checkText(key + value, "annotation \(key)") }
    }
}
