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

    /// From the text of mountinfo and /proc/self/cgroup (tests pass fake trees' views).
    public static func detect(mountinfo: String, selfCgroup: String) throws -> CgroupDriver {
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
        for mount in mounts {
            if mount.fsType == "cgroup" {
                // Which controllers a v1 hierarchy holds is in its super options: "rw,cpu,cpuacct".
                for option in mount.superOptions.split(separator: ",") {
                    let name = String(option)
                    guard let caller = callerV1[name], mount.root == "/" else { continue }
                    v1[name] = (mount.mountPoint, caller)
                }
            } else if mount.fsType == "cgroup2", mount.root == "/", v2Mount == nil {
                v2Mount = mount.mountPoint
            }
        }
        let inV1 = required.filter { v1[$0] != nil }
        if inV1.count == required.count {
            let layout =
                v2Mount == nil
                ? "cgroup v1" : "hybrid: memory, cpu and pids in cgroup v1 hierarchies, a cgroup2 mount without them"
            return CgroupDriver(version: .v1, layout: layout, hierarchies: v1, v2Controllers: [])
        }
        if let v2Mount, let caller = callerV2 {
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

    /// Where a container's cgroups go. `parent` overrides the default `clab`: a relative path
    /// is taken beneath the caller's own cgroup, an absolute one from each hierarchy's root
    /// (as Docker's --cgroup-parent).
    public func place(id: String, parent override: String?) throws -> CgroupPlacement {
        switch version {
        case .v1:
            var dirs: [String: String] = [:]
            var parents: [String] = []
            // cpuacct too when it is its own hierarchy: it counts the CPU time `clab stats` shows.
            var controllers = Self.required
            if hierarchies["cpuacct"] != nil { controllers.append("cpuacct") }
            for controller in controllers {
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
    /// Said once to the user when the default placement was not possible.
    public let note: String?
    /// The `clab` parents are clab's own (removed when empty); a --cgroup-parent is the user's.
    public var ownsParents: Bool = true

    /// Every distinct directory (v1 controllers can share a hierarchy).
    public var allDirs: [String] { Array(Set(dirs.values)).sorted() }
}
