import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

/// Which cgroup interface the host offers for the controllers clab needs.
public enum CgroupVersion: String, Codable, Sendable {
    case v1, v2
}

/// Finds the cgroup layout from /proc/self/mountinfo and /proc/self/cgroup, and places
/// containers' cgroups beneath the caller's own cgroup. One driver, two dialects: v1 has a
/// hierarchy (a mount) per controller and one file per knob; v2 has one tree and different names.
public struct CgroupDriver: Sendable {
    /// The controllers clab limits.
    public static let required = ["memory", "cpu", "pids"]

    public let version: CgroupVersion
    /// For people: "cgroup v1", "cgroup v2", or "hybrid (...)".
    public let layout: String
    /// v1: controller -> (hierarchy mount point, the caller's cgroup in it). v2: "" -> the same.
    let hierarchies: [String: (mount: String, caller: String)]
    let v2Controllers: Set<String>

    /// Reads this process's view.
    public static func detect() throws -> CgroupDriver {
        try detect(
            mountinfo: (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "",
            selfCgroup: (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
    }

    /// From the text of mountinfo and /proc/self/cgroup (tests pass fake trees' views, and the
    /// pid to look for in them).
    public static func detect(mountinfo: String, selfCgroup: String, pid: Int32 = getpid()) throws -> CgroupDriver {
        let mounts = Mounts.parse(mountinfo)
        // The caller's cgroup per hierarchy: "4:memory:/process_api/x", "1:cpu,cpuacct:/", "0::/user.slice".
        var callerV1: [String: String] = [:]
        var callerV2: String?
        for line in selfCgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                callerV2 = String(parts[2])
            } else {
                for controller in parts[1].split(separator: ",") { callerV1[String(controller)] = String(parts[2]) }
            }
        }
        var v1: [String: (mount: String, caller: String)] = [:]
        var v2Mount: String?
        var v2Caller: String?
        // Hierarchies mounted here in which the caller's cgroup could not be found.
        var lost: [String: MountInfo] = [:]
        for mount in mounts {
            if mount.fsType == "cgroup" {
                // Which controllers a v1 hierarchy holds is in its super options: "rw,cpu,cpuacct".
                for option in mount.superOptions.split(separator: ",") {
                    let name = String(option)
                    guard let caller = callerV1[name] else { continue }
                    if let below = callerBelow(mount, caller: caller, pid: pid) {
                        v1[name] = (mount.mountPoint, below)
                    } else if v1[name] == nil {
                        lost[name] = mount
                    }
                }
            } else if mount.fsType == "cgroup2", v2Mount == nil {
                if let caller = callerV2, let below = callerBelow(mount, caller: caller, pid: pid) {
                    v2Mount = mount.mountPoint
                    v2Caller = below
                } else if callerV2 == nil {
                    v2Mount = mount.mountPoint  // a hybrid host's empty cgroup2 mount
                } else {
                    lost[""] = mount
                }
            }
        }
        let inV1 = required.filter { v1[$0] != nil }
        // Inside a cgroup namespace whose levels could not be told apart: say so, rather than
        // guess a directory that may be someone else's.
        var lostOnes = required.filter { v1[$0] == nil }.compactMap { lost[$0] }
        if v2Mount == nil, let v2 = lost[""] { lostOnes.append(v2) }
        if inV1.count < required.count, let mount = lostOnes.first {
            throw ClabError(
                "cgroups: clab runs in a cgroup namespace and cannot find its own cgroup in \(mount.mountPoint) (the hierarchy is mounted from \(mount.root), above the namespace's root): run clab outside the cgroup namespace, or mount the cgroup filesystem again inside it"
            )
        }
        if inV1.count == required.count {
            let layout =
                v2Mount == nil
                ? "cgroup v1" : "hybrid: memory, cpu and pids in cgroup v1 hierarchies, a cgroup2 mount without them"
            return CgroupDriver(version: .v1, layout: layout, hierarchies: v1, v2Controllers: [])
        }
        if let v2Mount, let caller = v2Caller {
            let controllers = Set(
                (FS.read(v2Mount + "/cgroup.controllers") ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            let missing = required.filter { !controllers.contains($0) && v1[$0] == nil }
            if missing.isEmpty && inV1.isEmpty {
                return CgroupDriver(
                    version: .v2, layout: "cgroup v2", hierarchies: ["": (v2Mount, caller)], v2Controllers: controllers)
            }
            if !inV1.isEmpty {
                throw ClabError(
                    "cgroups: \(inV1.joined(separator: ", ")) are in cgroup v1 but \(required.filter { v1[$0] == nil }.joined(separator: ", ")) are not: clab needs all of memory, cpu and pids in one version"
                )
            }
            throw ClabError("cgroups: this kernel's cgroup v2 has no \(missing.joined(separator: ", ")) controller")
        }
        let missing = required.filter { v1[$0] == nil }
        throw ClabError(
            "cgroups: no \(missing.joined(separator: ", ")) controller is mounted (look for cgroup lines in /proc/self/mountinfo)"
        )
    }

    /// The caller's cgroup as a path below `mount`'s mount point, or nil when it is not below it
    /// (or cannot be found). /proc/self/cgroup and mountinfo's root field are both relative to
    /// the reader's cgroup namespace: outside one the root is "/" and the caller's path is the
    /// answer. A hierarchy mounted from below the root (a container's /sys/fs/cgroup) shows that
    /// subtree, taken off the front. Inside `unshare --cgroup` a hierarchy mounted from its real
    /// root shows as "/../.." (the namespace starts two levels down) and the caller as "/": the
    /// names of those levels are not shown, so the caller's cgroup is the one directory that many
    /// levels down whose cgroup.procs lists this process.
    static func callerBelow(_ mount: MountInfo, caller: String, pid: Int32) -> String? {
        let root = mount.root.split(separator: "/").map(String.init)
        let path = caller.split(separator: "/").map(String.init)
        let ups = root.prefix { $0 == ".." }.count
        let rest = Array(root.dropFirst(ups))
        if ups == 0 {
            guard path.starts(with: rest) else { return nil }
            return "/" + path.dropFirst(rest.count).joined(separator: "/")
        }
        guard rest.isEmpty else { return nil }  // a sibling subtree: the caller is not in it
        var level = [""]
        for _ in 0..<ups {
            level = level.flatMap { dir in
                ((try? FileManager.default.contentsOfDirectory(atPath: mount.mountPoint + dir)) ?? []).map {
                    dir + "/" + $0
                }.filter { FS.isDirectory(mount.mountPoint + $0) }
            }
        }
        let tail = path.isEmpty ? "" : "/" + path.joined(separator: "/")
        let found = level.filter { dir in
            (FS.read(mount.mountPoint + dir + tail + "/cgroup.procs") ?? "").split(separator: "\n").contains(
                Substring("\(pid)"))
        }
        return found.count == 1 ? found[0] + tail : nil
    }

    /// Where a container's cgroups go. `parent` overrides the default `clab`: a relative path
    /// is taken beneath the caller's own cgroup, an absolute one from each hierarchy's root
    /// (as Docker's --cgroup-parent). `devices`: the container gets a device allow-list
    /// (stage 12), so on v1 a cgroup in the devices hierarchy too; on v2 the one directory
    /// takes a BPF program instead.
    public func place(id: String, parent override: String?, devices: Bool = false, cpuset: Bool = false) throws
        -> CgroupPlacement
    {
        switch version {
        case .v1:
            var dirs: [String: String] = [:]
            var parents: [String] = []
            for controller in try v1Controllers(devices: devices, cpuset: cpuset) {
                guard let h = hierarchies[controller] else { continue }
                let parentPath = Self.join(h.mount, Self.parentPath(override, caller: h.caller))
                if !parents.contains(parentPath) { parents.append(parentPath) }
                dirs[controller] = parentPath + "/" + id
            }
            var placement = CgroupPlacement(version: .v1, dirs: dirs, parents: parents, note: nil)
            placement.ownsParents = override == nil
            return placement
        case .v2:
            guard let h = hierarchies[""] else { throw ClabError("cgroups: no cgroup2 mount") }
            if let override {
                let parentPath = Self.join(h.mount, Self.parentPath(override, caller: h.caller))
                var placement = CgroupPlacement(
                    version: .v2, dirs: ["": parentPath + "/" + id], parents: [parentPath], note: nil)
                placement.ownsParents = false
                return placement
            }
            // A child of ours can get controllers only if our cgroup hands them down.
            let callerDir = Self.join(h.mount, h.caller)
            let delegated = Set(
                (FS.read(callerDir + "/cgroup.subtree_control") ?? "").split(whereSeparator: \.isWhitespace).map(
                    String.init))
            let procs = (FS.read(callerDir + "/cgroup.procs") ?? "").trimmed
            if h.caller == "/" || Self.required.allSatisfy(delegated.contains) {
                let parentPath = Self.join(callerDir, "clab")
                return CgroupPlacement(
                    version: .v2, dirs: ["": parentPath + "/" + id], parents: [parentPath], note: nil)
            }
            let why =
                procs.isEmpty
                ? "does not delegate memory, cpu and pids to its children"
                : "holds processes, so it cannot hand controllers to a child (cgroup v2's no-internal-processes rule)"
            let parentPath = Self.join(h.mount, "clab")
            return CgroupPlacement(
                version: .v2, dirs: ["": parentPath + "/" + id], parents: [parentPath],
                note: "cgroup v2: your cgroup \(h.caller) \(why); using /clab instead (--cgroup-parent overrides)")
        }
    }

    /// The v1 hierarchies a container gets a cgroup in.
    func v1Controllers(devices: Bool, cpuset: Bool = false) throws -> [String] {
        // cpuacct too when it is its own hierarchy: it counts the CPU time `clab stats` shows.
        var controllers = Self.required
        if hierarchies["cpuacct"] != nil { controllers.append("cpuacct") }
        // freezer too when mounted: `clab pause` (Freezer) freezes this cgroup. v2 needs
        // none: every cgroup has cgroup.freeze.
        if hierarchies["freezer"] != nil { controllers.append("freezer") }
        if devices {
            guard hierarchies["devices"] != nil else {
                throw ClabError(
                    "cgroups: no devices controller is mounted (cgroup v1), so the device allow-list cannot be enforced: mount it (mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices)"
                )
            }
            controllers.append("devices")
        }
        if cpuset {
            guard hierarchies["cpuset"] != nil else {
                throw ClabError("cgroups: no cpuset controller is mounted (cgroup v1), so CPUs cannot be pinned")
            }
            controllers.append("cpuset")
        }
        return controllers
    }

    /// An OCI config's `linux.cgroupsPath` as the container's own cgroup, as runc and crun take
    /// it: relative, beneath the caller's own cgroup; absolute, from each hierarchy's root (the
    /// caller checks that it still lies beneath its own). The placement is `exclusive`: clab
    /// makes the directory itself and never adopts one that exists.
    public func place(cgroupsPath path: String, devices: Bool, cpuset: Bool = false) throws -> CgroupPlacement {
        switch version {
        case .v1:
            var dirs: [String: String] = [:]
            for controller in try v1Controllers(devices: devices, cpuset: cpuset) {
                guard let h = hierarchies[controller] else { continue }
                dirs[controller] = Self.join(h.mount, Self.parentPath(path, caller: h.caller))
            }
            var placement = CgroupPlacement(version: .v1, dirs: dirs, parents: [], note: nil)
            placement.ownsParents = false
            placement.exclusive = true
            placement.cgroupsPath = path
            return placement
        case .v2:
            guard let h = hierarchies[""] else { throw ClabError("cgroups: no cgroup2 mount") }
            let dir = Self.join(h.mount, Self.parentPath(path, caller: h.caller))
            var placement = CgroupPlacement(version: .v2, dirs: ["": dir], parents: [], note: nil)
            placement.ownsParents = false
            placement.exclusive = true
            placement.cgroupsPath = path
            return placement
        }
    }

    /// The first of a placement's directories that is not beneath the caller's own cgroup in
    /// its hierarchy (the controller, and the caller's cgroup there), or nil when all are.
    public func firstOutsideOwn(_ placement: CgroupPlacement) -> (controller: String, caller: String)? {
        for (controller, dir) in placement.dirs.sorted(by: { $0.key < $1.key }) {
            guard let h = hierarchies[controller] else { continue }
            let own = Self.join(h.mount, h.caller)
            if !dir.hasPrefix(own == "/" ? "/" : own + "/") { return (controller, h.caller) }
        }
        return nil
    }

    static func parentPath(_ override: String?, caller: String) -> String {
        guard let override else { return join(caller, "clab") }
        return override.hasPrefix("/") ? override : join(caller, override)
    }

    static func join(_ parts: String...) -> String {
        var path = ""
        for part in parts {
            for piece in part.split(separator: "/") where !piece.isEmpty { path += "/" + piece }
        }
        return path.isEmpty ? "/" : path
    }
}

/// Where one container's cgroup directories are: per v1 controller, or one ("") on v2.
public struct CgroupPlacement: Codable, Sendable, Equatable {
    public let version: CgroupVersion
    public let dirs: [String: String]
    /// The `clab` directories above them, removed when the last container leaves.
    public let parents: [String]
    /// Said once to the user when the default placement was not possible. Not kept in the
    /// state file (no coding key; a var, so that it decodes as nil).
    public var note: String?
    /// The `clab` parents are clab's own (removed when empty); a --cgroup-parent is the user's.
    public var ownsParents: Bool = true
    /// The container's cgroup is a path the config chose (an OCI cgroupsPath): it must not
    /// exist yet, and clab makes it (and removes only it, and the levels above it it made).
    public var exclusive: Bool = false
    /// That path, as the config gave it (cleaned).
    public var cgroupsPath: String?

    /// The state file's keys (as the hand-written writer before them): all but `note`.
    private enum CodingKeys: String, CodingKey {
        case version, dirs, parents, ownsParents, exclusive, cgroupsPath
    }

    public init(version: CgroupVersion, dirs: [String: String], parents: [String], note: String?) {
        self.version = version
        self.dirs = dirs
        self.parents = parents
        self.note = note
    }

    /// Every distinct directory (v1 controllers can share a hierarchy).
    public var allDirs: [String] { Array(Set(dirs.values)).sorted() }

    /// Only the directories of `own` (the record's checked list), and as parents only `clab`
    /// directories directly above them: what a damaged state file may make clab remove.
    public func restricted(to own: [String]) -> CgroupPlacement {
        let kept = dirs.filter { own.contains($0.value) }
        let above = Set(kept.values.map(Path.dirname))
        var placement = CgroupPlacement(
            version: version, dirs: kept,
            parents: parents.filter { above.contains($0) && Path.basename($0) == "clab" }, note: nil)
        placement.ownsParents = ownsParents
        placement.exclusive = exclusive
        placement.cgroupsPath = cgroupsPath
        return placement
    }
}
