import ClabCgroups
import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 8: cgroups by hand. The learner makes a cgroup named `lab8` beneath their own, limits it
/// to 32 MiB of memory and 20 processes, puts a process in it, and makes both limits strike.
/// The verifier reads the process's cgroups from /proc/<pid>/cgroup and the kernel's files
/// (limits and event counters), on cgroup v1 (a hierarchy per controller) and v2 (one tree).
public enum Lab8Verifier {
    public static let name = "lab8"
    public static let memoryBytes = 32 * 1024 * 1024
    public static let pids = 20

    /// Where one controller of a process lives, and in which dialect.
    struct Place: Equatable {
        let version: CgroupVersion
        /// The cgroup as /proc/<pid>/cgroup shows it ("/process_api/x/lab8").
        let path: String
        /// Its directory in the host's cgroup filesystem.
        let dir: String
        /// The hierarchy's mount point (v1: one per controller).
        let mount: String
    }

    /// The directory of `controller` for a process whose /proc/<pid>/cgroup reads `cgroupText`,
    /// given the host's mounts. A v1 hierarchy holding the controller wins (a hybrid host's
    /// cgroup2 mount holds none); else the cgroup2 tree, if the controller is enabled there.
    static func place(_ controller: String, cgroupText: String, mounts: [MountInfo]) -> Place? {
        var v1: [String: String] = [:]
        var v2: String?
        for line in cgroupText.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                v2 = String(parts[2])
            } else {
                for c in parts[1].split(separator: ",") { v1[String(c)] = String(parts[2]) }
            }
        }
        func below(_ mount: MountInfo, _ path: String) -> String {
            // A hierarchy mounted from a subtree shows that subtree's paths relative to it.
            let rel = mount.root == "/" || !path.hasPrefix(mount.root) ? path : String(path.dropFirst(mount.root.count))
            return mount.mountPoint + (rel == "/" ? "" : rel)
        }
        if let path = v1[controller],
            let mount = mounts.first(where: {
                $0.fsType == "cgroup" && $0.superOptions.split(separator: ",").contains(Substring(controller))
            })
        {
            return Place(version: .v1, path: path, dir: below(mount, path), mount: mount.mountPoint)
        }
        if let path = v2, let mount = mounts.first(where: { $0.fsType == "cgroup2" }) {
            let enabled = (FS.read(mount.mountPoint + "/cgroup.controllers") ?? "").split(
                whereSeparator: \.isWhitespace)
            guard enabled.contains(Substring(controller)) else { return nil }
            return Place(version: .v2, path: path, dir: below(mount, path), mount: mount.mountPoint)
        }
        return nil
    }

    /// "oom_kill 3" in a flat-keyed file (memory.events, memory.oom_control, pids.events).
    static func counter(_ text: String?, _ key: String) -> Int? {
        guard let text else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return Int(parts[1]) }
        }
        return nil
    }

    public static func verify(pid: Int32, layouts: [StateLayout]) throws -> [ProbeResult] {
        _ = try ProcessInspector(pid: pid)
        guard let cgroupText = FS.read("/proc/\(pid)/cgroup") else {
            throw ClabError("cannot read /proc/\(pid)/cgroup: give the pid of a running process")
        }
        return verify(
            pid: pid, cgroupText: cgroupText, mounts: Mounts.table(),
            madeByHand: ClabMade.property(pid: pid, layouts: layouts, stage: 8))
    }

    /// The checks on given views (tests pass a cgroup v2 tree of their own).
    public static func verify(pid: Int32, cgroupText: String, mounts: [MountInfo], madeByHand: ProbeResult)
        -> [ProbeResult]
    {
        var r = LabResults(stage: 8)
        r.results.append(madeByHand)
        let memory = place("memory", cgroupText: cgroupText, mounts: mounts)
        let pidsPlace = place("pids", cgroupText: cgroupText, mounts: mounts)
        for (controller, where_) in [("memory", memory), ("pids", pidsPlace)] {
            let property = ProbeName(
                id: "lab8.cgroup.\(controller)", wording: "it is in a cgroup named \(name) (\(controller))")
            guard let where_ else {
                r.notChecked(
                    property,
                    "no \(controller) controller found for process \(pid) (/proc/\(pid)/cgroup, the host's mounts)",
                    fix: "this host has no \(controller) controller mounted: mount it, or use a VM with cgroups")
                continue
            }
            let own = Path.basename(where_.path) == name && where_.path != "/"
            let mkdir =
                where_.version == .v1
                ? "mkdir \(where_.mount)<your cgroup>/\(name) and echo \(pid) > it/cgroup.procs (on cgroup v1 each controller is its own hierarchy: do it in \(where_.mount) too)"
                : "mkdir \(where_.mount)<your cgroup>/\(name) and echo \(pid) > it/cgroup.procs"
            r.add(
                property, own, "/proc/\(pid)/cgroup: \(controller) in \(where_.path) (\(where_.version.rawValue))",
                fix: mkdir)
        }
        // The limits.
        if let memory, Path.basename(memory.path) == name {
            let file = memory.version == .v1 ? "memory.limit_in_bytes" : "memory.max"
            let value = FS.read(memory.dir + "/" + file)?.trimmed
            r.add(
                "lab8.memory-limit", "memory limit 32 MiB (\(file))", value == "\(memoryBytes)",
                "\(memory.dir)/\(file): \(value ?? "unreadable")",
                fix: "echo 32M > \(memory.dir)/\(file)")
            let eventsFile = memory.version == .v1 ? "memory.oom_control" : "memory.events"
            let events = FS.read(memory.dir + "/" + eventsFile)
            let kills = counter(events, "oom_kill")
            r.add(
                "lab8.memory-struck", "the memory limit struck: the kernel counted an OOM kill", (kills ?? 0) >= 1,
                "\(eventsFile): oom_kill \(kills.map(String.init) ?? "unreadable")",
                fix:
                    "run something bigger than the limit in the cgroup, e.g. sh -c 'echo $$ > \(memory.dir)/cgroup.procs; exec tail /dev/zero': the kernel kills it and counts it"
            )
        } else {
            r.notChecked(
                "lab8.memory-limit", "memory limit 32 MiB", "the process is not in a memory cgroup named \(name)",
                fix: "see above")
            r.notChecked(
                "lab8.memory-struck", "the memory limit struck: the kernel counted an OOM kill",
                "no \(name) memory cgroup", fix: "see above")
        }
        if let pidsPlace, Path.basename(pidsPlace.path) == name {
            let value = FS.read(pidsPlace.dir + "/pids.max")?.trimmed
            r.add(
                "lab8.pids-limit", "pids limit \(pids) (pids.max)", value == "\(pids)",
                "\(pidsPlace.dir)/pids.max: \(value ?? "unreadable")",
                fix: "echo \(pids) > \(pidsPlace.dir)/pids.max")
            let refused = counter(FS.read(pidsPlace.dir + "/pids.events"), "max")
            r.add(
                "lab8.pids-struck", "the pids limit struck: the kernel counted a refused fork", (refused ?? 0) >= 1,
                "pids.events: max \(refused.map(String.init) ?? "unreadable")",
                fix:
                    "start more than \(pids) processes in the cgroup, e.g. for i in $(seq 30); do sleep 5 & done, from a shell in it: fork fails and pids.events counts it"
            )
        } else {
            r.notChecked(
                "lab8.pids-limit", "pids limit \(pids)", "the process is not in a pids cgroup named \(name)",
                fix: "see above")
            r.notChecked(
                "lab8.pids-struck", "the pids limit struck: the kernel counted a refused fork",
                "no \(name) pids cgroup", fix: "see above")
        }
        return r.results
    }
}
