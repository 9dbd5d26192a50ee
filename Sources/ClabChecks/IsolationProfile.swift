import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// What `clab inspect PID` reports: how isolated a process is from the host, whatever made it
/// (clab, runc, Docker, a shell), read from /proc only. "The host" is the inspector itself: clab
/// runs in the host's namespaces, so its own /proc/self is the reference.
///
/// The process is hostile: nothing of it is executed, its files are opened only with in-root
/// resolution, its cgroup files are only read, and every string it controls (its name, labels,
/// paths) is shown escaped in the text form.
///
/// JSON (`clab inspect PID --json`, `json()`): the keys below are stable, snake_case.
/// - `pid`, `command` (comm), `ns_pids` (NSpid: host pid first, innermost last)
/// - `uids`, `gids`: real, effective, saved, filesystem ids as the host sees them
/// - `namespaces[]`: `type` (cgroup ipc mnt net pid time user uts), `inode`, `host_inode`,
///   `shared_with_host`
/// - `uid_map`, `gid_map`: `ranges[]` (`inside`, `outside`, `count`), `kind` ("identity",
///   "shifted" or "none"), `root_host_id` (the host id of its id 0, null when unmapped)
/// - `capabilities`: `inheritable`, `permitted`, `effective`, `bounding`, `ambient`, each with
///   `mask` (hex as in /proc), `names` (as `--cap-add` spells them), `unknown_bits`, `summary`
///   ("all 41", "Docker default 14", "none", or the list)
/// - `no_new_privs` (bool), `seccomp`: `mode` (0 off, 1 strict, 2 filter), `mode_name`, `filters`
/// - `cgroups[]`: `hierarchy`, `controllers`, `path` (as /proc/PID/cgroup shows it)
/// - `limits[]`: `resource` ("memory", "pids", "cpu"), `unlimited`, `value` (bytes, a count, or
///   "QUOTA/PERIOD" microseconds), `file` (the tightest file on the way up; null: none exists)
/// - `root`: `kind` ("host", "chrooted", "pivoted" or "unknown"), `fs_type`, `source`, `detail`
/// - `masked_paths[]`: `path`, `state` ("masked", "exposed", "absent"), `how`;
///   `read_only_paths[]`: `path`, `state` ("read_only", "writable", "absent"), `how`
/// - `lsm`: /proc/PID/attr/current, or "none"
/// - `verdicts[]`: `risk`, `contained` (bool), `text`
public struct IsolationProfile: Codable, Sendable {
    public struct NamespaceFact: Codable, Sendable {
        public let type: String
        public let inode: UInt64?
        public let hostInode: UInt64?
        public let sharedWithHost: Bool
    }

    public struct IDRange: Codable, Sendable, Equatable {
        public let inside: UInt32
        public let outside: UInt32
        public let count: UInt32
    }

    public struct IDMap: Codable, Sendable {
        public let ranges: [IDRange]
        public let kind: String
        public let rootHostID: UInt32?
    }

    public struct CapabilitySet: Codable, Sendable {
        public let mask: String
        public let names: [String]
        public let unknownBits: [Int]
        public let summary: String
    }

    public struct Capabilities: Codable, Sendable {
        public let inheritable: CapabilitySet
        public let permitted: CapabilitySet
        public let effective: CapabilitySet
        public let bounding: CapabilitySet
        public let ambient: CapabilitySet
    }

    public struct Seccomp: Codable, Sendable {
        public let mode: Int
        public let modeName: String
        public let filters: Int
    }

    public struct CgroupEntry: Codable, Sendable {
        public let hierarchy: Int
        public let controllers: [String]
        public let path: String
    }

    public struct Limit: Codable, Sendable {
        public let resource: String
        public let unlimited: Bool
        public let value: String
        public let file: String?
    }

    public struct Root: Codable, Sendable {
        public let kind: String
        public let fsType: String?
        public let source: String?
        public let detail: String
    }

    public struct PathState: Codable, Sendable {
        public let path: String
        public let state: String
        public let how: String?
    }

    public struct Verdict: Codable, Sendable {
        public let risk: String
        public let contained: Bool
        public let text: String
    }

    public let pid: Int32
    public let command: String
    public let nsPids: [Int]
    public let uids: [UInt32]
    public let gids: [UInt32]
    public let namespaces: [NamespaceFact]
    public let uidMap: IDMap
    public let gidMap: IDMap
    public let capabilities: Capabilities
    public let noNewPrivs: Bool
    public let seccomp: Seccomp
    public let cgroups: [CgroupEntry]
    public let limits: [Limit]
    public let root: Root
    public let maskedPaths: [PathState]
    public let readOnlyPaths: [PathState]
    public let lsm: String
    public let verdicts: [Verdict]

    /// Docker's masked and read-only paths (moby's oci/defaults.go), which runc's `runc spec`
    /// and stage 12 use too.
    public static let dockerMaskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    public static let dockerReadOnlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// The stable JSON form (keys documented above).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    public func namespace(_ type: String) -> NamespaceFact? { namespaces.first { $0.type == type } }
}

extension ProcessInspector {
    /// The kinds /proc/PID/ns lists on this kernel (ClabSpec's `Namespace` has only the six
    /// clab creates before stage 12).
    static let namespaceTypes = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]

    /// Reads everything `clab inspect` reports. Throws when the process is gone or was replaced
    /// by another with the same pid while being read.
    public func profile() throws -> IsolationProfile {
        let started = Host.startTime(pid: pid)
        let proc = "/proc/\(pid)"
        guard let fields = Host.status(pid: "\(pid)") else {
            throw ClabError("process \(pid) exited while being inspected")
        }
        let own = Host.status(pid: "self") ?? [:]

        let namespaces = Self.namespaceTypes.map { type in
            let theirs = Self.nsInode(FS.readLink("\(proc)/ns/\(type)"))
            let mine = Self.nsInode(FS.readLink("/proc/self/ns/\(type)"))
            return IsolationProfile.NamespaceFact(
                type: type, inode: theirs, hostInode: mine, sharedWithHost: theirs != nil && theirs == mine)
        }
        func shared(_ type: String) -> Bool { namespaces.first { $0.type == type }?.sharedWithHost ?? false }

        func caps(_ key: String) -> IsolationProfile.CapabilitySet {
            Self.capabilitySet(mask: UInt64(fields[key] ?? "", radix: 16) ?? 0)
        }
        let capabilities = IsolationProfile.Capabilities(
            inheritable: caps("CapInh"), permitted: caps("CapPrm"), effective: caps("CapEff"),
            bounding: caps("CapBnd"), ambient: caps("CapAmb"))
        let hostBounding = Capability.set(fromMask: UInt64(own["CapBnd"] ?? "", radix: 16) ?? 0)

        let seccompMode = Int(fields["Seccomp"] ?? "") ?? 0
        let seccomp = IsolationProfile.Seccomp(
            mode: seccompMode, modeName: ["disabled", "strict", "filter"][safe: seccompMode] ?? "unknown",
            filters: Int(fields["Seccomp_filters"] ?? "") ?? 0)

        let cgroups = Self.parseCgroups(FS.read(proc + "/cgroup") ?? "")
        let hostMounts = Mounts.table()
        let theirMounts = Mounts.table(pid: "\(pid)")
        let root = Self.rootKind(
            pid: pid, sameMountNamespace: shared("mnt"), theirMounts: theirMounts, hostMounts: hostMounts)
        let masked = IsolationProfile.dockerMaskedPaths.map { maskState($0, theirMounts) }
        let readOnly = IsolationProfile.dockerReadOnlyPaths.map { readOnlyState($0, theirMounts) }
        let lsm = FS.read(proc + "/attr/current").map { String($0.prefix { $0 != "\0" }).trimmed }
        let profileWithoutVerdicts = IsolationProfile(
            pid: pid, command: (FS.read(proc + "/comm") ?? "").trimmed, nsPids: nsPids,
            uids: Self.ids(fields["Uid"]), gids: Self.ids(fields["Gid"]), namespaces: namespaces,
            uidMap: Self.idMap(FS.read(proc + "/uid_map")), gidMap: Self.idMap(FS.read(proc + "/gid_map")),
            capabilities: capabilities, noNewPrivs: fields["NoNewPrivs"] == "1", seccomp: seccomp, cgroups: cgroups,
            limits: Self.limits(cgroups, hostMounts), root: root, maskedPaths: masked, readOnlyPaths: readOnly,
            lsm: (lsm?.isEmpty ?? true) ? "none" : lsm ?? "none", verdicts: [])
        guard Host.startTime(pid: pid) == started, started != nil else {
            throw ClabError("process \(pid) exited while being inspected")
        }
        return IsolationProfile.judge(profileWithoutVerdicts, hostBounding: hostBounding)
    }

    static func ids(_ field: String?) -> [UInt32] {
        (field ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
    }

    /// "net:[4026531833]" → 4026531833.
    static func nsInode(_ link: String?) -> UInt64? {
        guard let link, let open = link.firstIndex(of: "["), let close = link.lastIndex(of: "]") else { return nil }
        return UInt64(link[link.index(after: open)..<close])
    }

    static func capabilitySet(mask: UInt64) -> IsolationProfile.CapabilitySet {
        let caps = Capability.set(fromMask: mask)
        let unknown = (0..<64).filter { mask & (1 << UInt64($0)) != 0 && Capability(rawValue: $0) == nil }
        let hex = String(mask, radix: 16)
        return IsolationProfile.CapabilitySet(
            mask: String(repeating: "0", count: max(0, 16 - hex.count)) + hex,
            names: caps.sorted().map(\.name), unknownBits: unknown,
            summary: capabilitySummary(caps, unknownBits: unknown))
    }

    /// The compact form: "all 41", "Docker default 14", "none", "all 41 but SYS_RESOURCE",
    /// "Docker default 14 +NET_ADMIN -CHOWN", or the names.
    static func capabilitySummary(_ caps: Set<Capability>, unknownBits: [Int] = []) -> String {
        let all = Set(Capability.allCases)
        let extra = unknownBits.map { " +bit \($0)" }.joined()
        if caps.isEmpty { return unknownBits.isEmpty ? "none" : extra.trimmed }
        if caps == all { return "all \(all.count)" + extra }
        if caps == Capability.dockerDefault { return "Docker default \(caps.count)" + extra }
        let missing = all.subtracting(caps)
        if missing.count <= 4 {
            return "all \(all.count) but " + missing.sorted().map(\.name).joined(separator: ", ") + extra
        }
        let added = caps.subtracting(Capability.dockerDefault)
        let dropped = Capability.dockerDefault.subtracting(caps)
        if added.count + dropped.count <= 3 {
            return "Docker default \(Capability.dockerDefault.count)"
                + added.sorted().map { " +\($0.name)" }.joined() + dropped.sorted().map { " -\($0.name)" }.joined()
                + extra
        }
        return caps.sorted().map(\.name).joined(separator: " ") + extra
    }

    /// uid_map/gid_map as the host reads them: the outside column is a host id.
    static func idMap(_ text: String?) -> IsolationProfile.IDMap {
        let ranges = (text ?? "").split(separator: "\n").compactMap { line -> IsolationProfile.IDRange? in
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
            return f.count == 3 ? IsolationProfile.IDRange(inside: f[0], outside: f[1], count: f[2]) : nil
        }
        let root = ranges.first { $0.inside == 0 && $0.count > 0 }?.outside
        let kind = ranges.isEmpty ? "none" : ranges.allSatisfy { $0.inside == $0.outside } ? "identity" : "shifted"
        return IsolationProfile.IDMap(ranges: ranges, kind: kind, rootHostID: root)
    }

    /// "4:memory:/a/b" lines; on cgroup v2 the controllers field is empty.
    public static func parseCgroups(_ text: String) -> [IsolationProfile.CgroupEntry] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3, let id = Int(f[0]) else { return nil }
            return IsolationProfile.CgroupEntry(
                hierarchy: id, controllers: f[1].split(separator: ",").map(String.init), path: String(f[2]))
        }
    }

    /// The tightest memory, pids and cpu limit on the way from the process's cgroup up to the
    /// root of each hierarchy (a parent's limit binds its children too). Only reads.
    static func limits(
        _ cgroups: [IsolationProfile.CgroupEntry], _ hostMounts: [MountInfo]
    ) -> [IsolationProfile.Limit] {
        // The directory of a cgroup path: a v1 hierarchy by controller, or the v2 one.
        func directories(controller: String?) -> [String] {
            let entry =
                controller.map { c in cgroups.first { $0.controllers.contains(c) } }
                ?? cgroups.first { $0.hierarchy == 0 && $0.controllers.isEmpty }
            guard let entry,
                let mount = hostMounts.last(where: { m in
                    controller.map {
                        m.fsType == "cgroup" && m.superOptions.split(separator: ",").contains(Substring($0))
                    }
                        ?? (m.fsType == "cgroup2")
                })
            else { return [] }
            // Paths come from the kernel, but a cgroup outside our cgroup namespace shows as
            // "/.."; never build a path that climbs.
            var path = entry.path
            guard !path.split(separator: "/").contains(".."), path.hasPrefix(mount.root) else { return [] }
            path.removeFirst(mount.root.count)
            var dirs: [String] = []
            var parts = path.split(separator: "/").map(String.init)
            while true {
                dirs.append(([mount.mountPoint] + parts).joined(separator: "/"))
                if parts.isEmpty { break }
                parts.removeLast()
            }
            return dirs
        }
        func tightest(_ files: [String], parse: (String) -> Double?) -> (file: String, value: String, limit: Double)? {
            var best: (file: String, value: String, limit: Double)?
            for file in files {
                guard let text = FS.read(file)?.trimmed, let limit = parse(text) else { continue }
                if best == nil || limit < best?.limit ?? .infinity { best = (file, text, limit) }
            }
            return best
        }
        // v1 memory.limit_in_bytes is "unlimited" at PAGE_COUNTER_MAX pages (about 2^63).
        let unlimitedBytes = Double(1 << 62)
        var limits: [IsolationProfile.Limit] = []

        let memoryFiles =
            directories(controller: "memory").map { $0 + "/memory.limit_in_bytes" }
            + directories(controller: nil).map { $0 + "/memory.max" }
        let memory = tightest(memoryFiles) { $0 == "max" ? .infinity : Double($0) }
        limits.append(
            IsolationProfile.Limit(
                resource: "memory", unlimited: (memory?.limit ?? .infinity) >= unlimitedBytes,
                value: memory.map { $0.limit >= unlimitedBytes ? "max" : $0.value } ?? "max", file: memory?.file))

        let pidsFiles = (directories(controller: "pids") + directories(controller: nil)).map { $0 + "/pids.max" }
        let pids = tightest(pidsFiles) { $0 == "max" ? .infinity : Double($0) }
        limits.append(
            IsolationProfile.Limit(
                resource: "pids", unlimited: (pids?.limit ?? .infinity) == .infinity, value: pids?.value ?? "max",
                file: pids?.file))

        // cpu: v1 cfs_quota_us (-1: none) over cfs_period_us; v2 cpu.max "QUOTA PERIOD" or "max PERIOD".
        var cpuBest: (file: String, value: String, limit: Double)?
        for dir in directories(controller: "cpu") {
            guard let quota = FS.read(dir + "/cpu.cfs_quota_us").flatMap({ Double($0.trimmed) }), quota > 0,
                let period = FS.read(dir + "/cpu.cfs_period_us").flatMap({ Double($0.trimmed) }), period > 0
            else { continue }
            if quota / period < cpuBest?.limit ?? .infinity {
                cpuBest = (dir + "/cpu.cfs_quota_us", "\(Int(quota))/\(Int(period))", quota / period)
            }
        }
        for dir in directories(controller: nil) {
            let f = (FS.read(dir + "/cpu.max") ?? "").split(separator: " ")
            guard f.count == 2, let quota = Double(f[0]), let period = Double(f[1]), period > 0 else { continue }
            if quota / period < cpuBest?.limit ?? .infinity {
                cpuBest = (dir + "/cpu.max", "\(Int(quota))/\(Int(period))", quota / period)
            }
        }
        limits.append(
            IsolationProfile.Limit(
                resource: "cpu", unlimited: cpuBest == nil, value: cpuBest?.value ?? "max", file: cpuBest?.file))
        return limits
    }

    /// host: the same root directory as the inspector's. chrooted: another root, but the host's
    /// mount namespace, or its root is a plain directory (not a mount) of its own namespace.
    /// pivoted: its own mount namespace whose "/" mount is not the host's root mount. From /proc
    /// alone a chroot into a bind mount inside a private mount namespace looks the same as
    /// pivot_root; only the namespace itself could tell (clab-init --probe mountinfo).
    static func rootKind(
        pid: Int32, sameMountNamespace: Bool, theirMounts: [MountInfo], hostMounts: [MountInfo]
    ) -> IsolationProfile.Root {
        var theirs = stat()
        var mine = stat()
        guard stat("/proc/\(pid)/root", &theirs) == 0, stat("/proc/self/root", &mine) == 0 else {
            return IsolationProfile.Root(
                kind: "unknown", fsType: nil, source: nil,
                detail: "cannot stat /proc/\(pid)/root: \(String(cString: strerror(errno))) (inspect as root)")
        }
        let rootMount = theirMounts.last { $0.mountPoint == "/" }
        let hostRoot = hostMounts.last { $0.mountPoint == "/" }
        func make(_ kind: String, _ detail: String) -> IsolationProfile.Root {
            IsolationProfile.Root(kind: kind, fsType: rootMount?.fsType, source: rootMount?.source, detail: detail)
        }
        if theirs.st_dev == mine.st_dev && theirs.st_ino == mine.st_ino {
            return make("host", "the same / as the host")
        }
        if sameMountNamespace {
            return make("chrooted", "another /, in the host's mount namespace (chroot)")
        }
        guard let rootMount else {
            return make("chrooted", "its / is a directory, not a mount, of its own mount namespace (chroot)")
        }
        if let hostRoot, rootMount.root == hostRoot.root, rootMount.source == hostRoot.source,
            rootMount.fsType == hostRoot.fsType
        {
            return make("chrooted", "its / is the host's root mount (chroot)")
        }
        let source = rootMount.source == rootMount.fsType ? "" : " \(rootMount.source)"
        let origin = rootMount.root == "/" ? "" : " (\(rootMount.root))"
        return make("pivoted", "its own mount namespace, rooted in \(rootMount.fsType)\(source)\(origin)")
    }

    /// Masked: a mount covers exactly this path (Docker and runc bind /dev/null over files and
    /// mount a read-only tmpfs over directories).
    func maskState(_ path: String, _ mounts: [MountInfo]) -> IsolationProfile.PathState {
        if let cover = mounts.last(where: { $0.mountPoint == path }) {
            let how =
                cover.root.hasSuffix("/null")
                ? "/dev/null bind" : cover.fsType == "tmpfs" ? "tmpfs" : "\(cover.fsType) mount"
            return IsolationProfile.PathState(path: path, state: "masked", how: how)
        }
        let exists = FS.exists(path, inRoot: root)
        return IsolationProfile.PathState(path: path, state: exists ? "exposed" : "absent", how: nil)
    }

    /// Read-only: the mount the path lies on (the deepest one above it) is mounted ro.
    func readOnlyState(_ path: String, _ mounts: [MountInfo]) -> IsolationProfile.PathState {
        guard FS.exists(path, inRoot: root) else {
            return IsolationProfile.PathState(path: path, state: "absent", how: nil)
        }
        let cover = mounts.filter { m in
            m.mountPoint == "/" || m.mountPoint == path || path.hasPrefix(m.mountPoint + "/")
        }.max { $0.mountPoint.count < $1.mountPoint.count }
        guard let cover else { return IsolationProfile.PathState(path: path, state: "writable", how: nil) }
        let ro = cover.options.split(separator: ",").contains("ro")
        let how =
            cover.mountPoint == path
            ? "its own \(ro ? "ro" : "rw") mount" : "\(cover.mountPoint) is \(ro ? "ro" : "rw")"
        return IsolationProfile.PathState(path: path, state: ro ? "read_only" : "writable", how: how)
    }
}

extension IsolationProfile {
    /// One verdict per risk, each derived from the facts above and nothing else.
    static func judge(_ p: IsolationProfile, hostBounding: Set<Capability>) -> IsolationProfile {
        var verdicts: [Verdict] = []
        func add(_ risk: String, _ contained: Bool, _ text: String) {
            verdicts.append(Verdict(risk: risk, contained: contained, text: text))
        }
        let hostUserNS = p.namespace("user")?.sharedWithHost ?? false
        let effective = Capability.set(fromMask: UInt64(p.capabilities.effective.mask, radix: 16) ?? 0)
        let euid = p.uids.count > 1 ? p.uids[1] : p.uids.first
        let everyCapability = !hostBounding.isEmpty && effective.isSuperset(of: hostBounding)

        // Who it is on the host.
        if hostUserNS {
            if euid == 0 {
                add(
                    "root", false,
                    everyCapability
                        ? "full root on the host: uid 0 not remapped, all capabilities"
                        : "root on the host: uid 0 not remapped, capabilities \(p.capabilities.effective.summary)")
            } else {
                add(
                    "root", effective.isEmpty,
                    "runs as host uid \(euid.map(String.init) ?? "?")"
                        + (effective.isEmpty
                            ? ", no capabilities" : " with capabilities \(p.capabilities.effective.summary)"))
            }
        } else if let hostRoot = p.uidMap.rootHostID {
            add(
                "root", hostRoot != 0,
                hostRoot == 0
                    ? "its user namespace maps root to host root (uid 0)"
                    : "root inside is host uid \(hostRoot): outside its user namespace it is an unprivileged user")
        } else {
            add("root", true, "its user namespace maps no root: uid 0 does not exist inside")
        }

        // What its capabilities let it do.
        if effective.contains(.sysAdmin) {
            add(
                "mount", false,
                hostUserNS
                    ? "can mount: SYS_ADMIN on the host (mounts, namespaces, and much more)"
                    : "can mount: SYS_ADMIN in its user namespace (only what that namespace owns)")
        } else {
            add("mount", true, "cannot mount: no SYS_ADMIN")
        }
        let dangerous: [(Capability, String)] = [
            (.sysModule, "load kernel modules"), (.sysRawio, "raw I/O on devices"),
            (.dacReadSearch, "open_by_handle_at, the shocker escape"), (.sysPtrace, "ptrace other processes"),
            (.netAdmin, "reconfigure networking"), (.sysBoot, "reboot"), (.sysTime, "set the clock"),
            (.bpf, "load BPF programs"),
        ]
        let held = dangerous.filter { effective.contains($0.0) }
        if held.isEmpty {
            add("capabilities", true, "no dangerous capability (SYS_MODULE, SYS_RAWIO, DAC_READ_SEARCH, SYS_PTRACE, …)")
        } else if hostUserNS {
            add("capabilities", false, held.map { "\($0.0.name) (\($0.1))" }.joined(separator: ", ") + " on the host")
        } else {
            // The kernel checks these against the namespace that owns the resource: the host's
            // kernel, clock and devices belong to the host's user namespace.
            add(
                "capabilities", true,
                held.map(\.0.name).joined(separator: ", ")
                    + " held in its user namespace only: the host's kernel, devices and clock are out of reach")
        }

        switch p.seccomp.mode {
        case 0: add("seccomp", false, "seccomp off: every syscall allowed")
        case 1: add("seccomp", true, "seccomp strict: only read, write, _exit and sigreturn")
        default:
            add(
                "seccomp", true,
                "seccomp filter: \(p.seccomp.filters) filter\(p.seccomp.filters == 1 ? "" : "s") decide each syscall")
        }
        add(
            "no_new_privs", p.noNewPrivs,
            p.noNewPrivs
                ? "no_new_privs set: execve never grants privileges (setuid, file capabilities)"
                : "no_new_privs off: a setuid binary or file capabilities can raise its privileges")

        let namespaceRisks: [(String, String, String)] = [
            ("net", "host network: the host's interfaces, ports and firewall", "own network namespace"),
            ("pid", "host PID namespace: it sees every host process", "own PID namespace"),
            ("ipc", "host IPC: the host's shared memory and message queues", "own IPC namespace"),
            ("uts", "host UTS namespace: a hostname change is the host's", "own UTS namespace"),
            ("mnt", "host mount namespace: its mounts are the host's", "own mount namespace"),
            ("cgroup", "host cgroup namespace: it sees the host's cgroup paths", "own cgroup namespace"),
        ]
        for (type, shared, own) in namespaceRisks {
            let isShared = p.namespace(type)?.sharedWithHost ?? false
            add(type == "mnt" ? "mount_namespace" : type, !isShared, isShared ? shared : own)
        }

        switch p.root.kind {
        case "host": add("root_filesystem", false, "host root filesystem")
        case "chrooted":
            add(
                "root_filesystem", false,
                "chrooted only: the host's root is still reachable in its mount namespace"
                    + (effective.contains(.sysChroot) ? " (SYS_CHROOT: the chroot escape works)" : ""))
        case "pivoted": add("root_filesystem", true, "pivoted into its own root filesystem")
        default: add("root_filesystem", false, "root unknown: \(p.root.detail)")
        }

        let exposed = p.maskedPaths.filter { $0.state == "exposed" }.map(\.path)
        add(
            "masked_paths", exposed.isEmpty,
            exposed.isEmpty
                ? "Docker's masked paths are covered (or absent on this kernel)"
                : "not masked: " + exposed.joined(separator: ", "))
        let writable = p.readOnlyPaths.filter { $0.state == "writable" }.map(\.path)
        add(
            "read_only_paths", writable.isEmpty,
            writable.isEmpty
                ? "Docker's read-only paths are read-only"
                : "mounted writable: " + writable.joined(separator: ", ")
                    + (hostUserNS ? "" : " (the kernel still checks its user namespace)"))

        let unlimited = p.limits.filter(\.unlimited).map(\.resource)
        let noPids = unlimited.contains("pids")
        add(
            "resources", unlimited.isEmpty,
            unlimited.isEmpty
                ? "memory, pids and cpu are limited"
                : "no \(unlimited.joined(separator: ", ")) limit"
                    + (noPids ? ": a fork bomb reaches the host's limit" : ""))
        add(
            "lsm", p.lsm != "none" && p.lsm != "unconfined",
            p.lsm == "none" ? "no LSM label (no AppArmor or SELinux confinement)" : "LSM label \(p.lsm)")

        return IsolationProfile(
            pid: p.pid, command: p.command, nsPids: p.nsPids, uids: p.uids, gids: p.gids, namespaces: p.namespaces,
            uidMap: p.uidMap, gidMap: p.gidMap, capabilities: p.capabilities, noNewPrivs: p.noNewPrivs,
            seccomp: p.seccomp, cgroups: p.cgroups, limits: p.limits, root: p.root, maskedPaths: p.maskedPaths,
            readOnlyPaths: p.readOnlyPaths, lsm: p.lsm, verdicts: verdicts)
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
