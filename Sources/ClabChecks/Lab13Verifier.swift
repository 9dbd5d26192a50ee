import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 13: an OCI bundle edited by hand. The learner writes a bundle with `clab bundle`, edits
/// its config.json (a read-only bind mount of a host directory of theirs at /data, a 64 MiB
/// memory limit, CAP_NET_RAW dropped) and runs it with `clab run -d --name lab13 --bundle DIR`.
/// The verifier checks the running result from the host: clab's record of the container (a
/// bundle run), and the kernel's view of its init: /proc/<pid>/mountinfo, its memory cgroup
/// (found from /proc/<pid>/cgroup and checked against the cgroups clab's state names), and
/// /proc/<pid>/status. It reads files only; it runs nothing of the container's.
public enum Lab13Verifier {
    public static let name = "lab13"
    public static let target = "/data"
    public static let memoryBytes: Int64 = 64 << 20
    public static let dropped = Capability.netRaw
    static let defaultMemory: Int64 = 256 << 20

    public enum Property {
        public static let bundleRun = ProbeName(
            id: "lab13.bundle-run", wording: "a container named lab13 runs from your bundle (clab run -d --bundle)")
        public static let bind = ProbeName(
            id: "lab13.bind", wording: "/data is a bind mount of a directory you made on the host")
        public static let readOnly = ProbeName(id: "lab13.read-only", wording: "/data is read-only")
        public static let memory = ProbeName(
            id: "lab13.memory-limit", wording: "memory limit 64 MiB in the container's own cgroup")
        public static let capGone = ProbeName(
            id: "lab13.cap-dropped", wording: "CAP_NET_RAW is gone: not in CapEff, CapPrm or CapBnd")
        public static let capsKept = ProbeName(
            id: "lab13.caps-kept", wording: "the other 13 of Docker's capabilities are kept")
    }

    static let mountLine =
        "{\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/tmp/lab13/data\", \"options\": [\"rbind\", \"ro\"]}"
    static let rerun =
        "then clab rm -f lab13 and clab run -d --name lab13 --bundle DIR again (config.json is read once, at start)"

    /// The container named lab13 in one of the state roots: a running one first.
    static func find(layouts: [StateLayout]) -> ContainerRecord? {
        let named = layouts.flatMap { ContainerRecord.all(in: $0) }.filter { $0.state.name == name }
        return named.first { $0.status == .running } ?? named.max { $0.state.created < $1.state.created }
    }

    public static func verify(layouts: [StateLayout]) -> [ProbeResult] {
        var r = LabResults(stage: 13)
        let later = [
            Property.bind, Property.readOnly, Property.memory, Property.capGone, Property.capsKept,
        ]
        func skipRest(_ why: String) -> [ProbeResult] {
            for p in later { r.notChecked(p, why, fix: "see the first line") }
            return r.results
        }
        guard let record = find(layouts: layouts) else {
            r.add(
                Property.bundleRun, false,
                "no container named \(name) in \(layouts.map(\.root).joined(separator: " or ")) (`clab ps -a`)",
                fix: "clab run -d --name \(name) --bundle DIR, where DIR is the bundle you edited")
            return skipRest("no container \(name)")
        }
        let image = record.state.detached?.image ?? "none (a `clab step` container)"
        let fromBundle = image.hasPrefix("bundle:")
        guard record.status == .running, let pid = record.state.initPid else {
            r.add(
                Property.bundleRun, false,
                "\(name) (\(record.id)) is \(record.status.rawValue)\(record.why.map { ": \($0)" } ?? "")",
                fix: record.status == .paused
                    ? "clab unpause \(name): a frozen container is checked running"
                    : "its command must keep running (sleep 1000): read `clab logs \(name)`, then clab rm \(name) and run the bundle again"
            )
            return skipRest("\(name) is not running")
        }
        r.add(
            Property.bundleRun, fromBundle,
            "clab's record of \(name) (\(record.id)): \(fromBundle ? String(image.dropFirst(7)) : "image \(image)"), pid \(pid)",
            fix: fromBundle
                ? "" : "this lab is about the bundle: clab rm -f \(name), then clab run -d --name \(name) --bundle DIR")
        guard fromBundle else { return skipRest("\(name) was not started from a bundle") }

        // The mount, from the container's own mount table.
        guard let mountText = FS.read("/proc/\(pid)/mountinfo") else {
            r.notChecked(Property.bind, "cannot read /proc/\(pid)/mountinfo", fix: "is \(name) still running?")
            r.notChecked(Property.readOnly, "cannot read /proc/\(pid)/mountinfo", fix: "is \(name) still running?")
            return checkLimits(&r, record: record, pid: pid)
        }
        let bundleDir = String(image.dropFirst(7))
        let forbidden = layouts.flatMap { [$0.root, $0.runDir] } + [bundleDir]
        checkMount(
            &r, pid: pid, containerMounts: mountText, hostMounts: FS.read("/proc/self/mountinfo") ?? "",
            forbidden: forbidden)
        return checkLimits(&r, record: record, pid: pid)
    }

    /// Bind and read-only: the top mount on /data in the container's table, traced back to a
    /// host directory through the host's own table (same device, the root a path below it) and
    /// confirmed by device and inode.
    static func checkMount(
        _ r: inout LabResults, pid: Int32, containerMounts: String, hostMounts: String, forbidden: [String]
    ) {
        let devices = Self.devices(containerMounts)
        guard let mount = Mounts.parse(containerMounts).last(where: { $0.mountPoint == target }) else {
            r.add(
                Property.bind, false, "/proc/\(pid)/mountinfo: nothing is mounted on \(target)",
                fix: "add to config.json's \"mounts\" list: \(mountLine) (mkdir the source first), \(rerun)")
            r.notChecked(Property.readOnly, "nothing is mounted on \(target)", fix: "see above")
            return
        }
        let readOnly = mount.options.split(separator: ",").contains("ro")
        let device = devices[mount.id] ?? "?"
        let inside = FS.lstat(target, inRoot: "/proc/\(pid)/root")
        let hostPath = Self.hostPaths(device: device, root: mount.root, hostMounts: hostMounts).first { path in
            var st = stat()
            guard let inside, Glibc.lstat(path, &st) == 0 else { return false }
            return st.st_dev == inside.st_dev && st.st_ino == inside.st_ino
        }
        let isDirectory = inside.map { $0.st_mode & S_IFMT == S_IFDIR } ?? false
        if let hostPath, isDirectory {
            let clash = forbidden.first { hostPath == $0 || hostPath.hasPrefix($0 + "/") }
            let system =
                hostPath == "/" || ["/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/lib"].contains(hostPath)
            r.add(
                Property.bind, clash == nil && !system,
                "/proc/\(pid)/mountinfo: \(target) is \(hostPath) on the host (\(mount.fsType) \(device), same inode)",
                fix: clash != nil
                    ? "the source is inside \(clash ?? ""): make a directory of your own outside the bundle, e.g. mkdir /tmp/lab13/data, and use it as the mount's source, \(rerun)"
                    : "bind a directory you made (mkdir /tmp/lab13/data), not a system directory, \(rerun)")
        } else {
            let what =
                inside == nil
                ? "cannot stat \(target) in the container's root"
                : !isDirectory
                    ? "\(target) is not a directory" : "a \(mount.fsType) (\(mount.source)), not a host directory"
            r.add(
                Property.bind, false, "/proc/\(pid)/mountinfo: \(target) is \(what)",
                fix: "the mount must be \"type\": \"bind\" of a host directory: \(mountLine), \(rerun)")
        }
        r.add(
            Property.readOnly, readOnly, "/proc/\(pid)/mountinfo: \(target) mounted \(mount.options)",
            fix: "add \"ro\" to the mount's \"options\" ([\"rbind\", \"ro\"]), \(rerun)")
    }

    /// Mount id → "major:minor", the third field of each mountinfo line.
    static func devices(_ text: String) -> [Int: String] {
        var result: [Int: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 3)
            if fields.count >= 3, let id = Int(fields[0]) { result[id] = String(fields[2]) }
        }
        return result
    }

    /// Where the host sees the directory `root` of the filesystem on `device`: every host mount
    /// of that device whose own root is `root` or above it.
    static func hostPaths(device: String, root: String, hostMounts: String) -> [String] {
        let devices = Self.devices(hostMounts)
        return Mounts.parse(hostMounts).compactMap { m in
            guard devices[m.id] == device else { return nil }
            let below: Substring
            if m.root == "/" {
                below = Substring(root)
            } else if root == m.root {
                below = ""
            } else if root.hasPrefix(m.root + "/") {
                below = root.dropFirst(m.root.count)
            } else {
                return nil
            }
            let base = m.mountPoint == "/" ? "" : m.mountPoint
            let path = base + below
            return path.isEmpty ? "/" : path
        }
    }

    /// Memory in the container's own cgroup, and its capabilities.
    static func checkLimits(_ r: inout LabResults, record: ContainerRecord, pid: Int32) -> [ProbeResult] {
        checkMemory(&r, record: record, pid: pid)
        checkCapabilities(&r, pid: pid)
        return r.results
    }

    static func checkMemory(_ r: inout LabResults, record: ContainerRecord, pid: Int32) {
        guard let cgroupText = FS.read("/proc/\(pid)/cgroup") else {
            r.notChecked(Property.memory, "cannot read /proc/\(pid)/cgroup", fix: "is \(name) still running?")
            return
        }
        guard let place = Lab8Verifier.place("memory", cgroupText: cgroupText, mounts: Mounts.table()) else {
            r.notChecked(
                Property.memory,
                "no memory controller found for process \(pid) (/proc/\(pid)/cgroup, the host's mounts)",
                fix: "this host has no memory controller mounted: use a VM with cgroups")
            return
        }
        let clabs = record.state.cgroups ?? []
        guard clabs.contains(place.dir) else {
            r.add(
                Property.memory, false,
                "/proc/\(pid)/cgroup puts it in \(place.dir), which is not a cgroup clab made for \(name) (state.json: \(clabs.isEmpty ? "none" : clabs.joined(separator: ", ")))",
                fix: "leave the container in the cgroup clab made for it, \(rerun)")
            return
        }
        let file = place.version == .v1 ? "memory.limit_in_bytes" : "memory.max"
        guard let text = FS.read(place.dir + "/" + file)?.trimmed else {
            r.notChecked(Property.memory, "cannot read \(place.dir)/\(file)", fix: "is \(name) still running?")
            return
        }
        let value = Int64(text)
        let addressSpace = Self.addressSpaceLimit(FS.read("/proc/\(pid)/limits") ?? "")
        var fix = "set linux.resources.memory.limit to \(memoryBytes) (bytes: 64 MiB), \(rerun)"
        if let addressSpace {
            fix =
                "the limit went into process.rlimits (RLIMIT_AS \(addressSpace) in /proc/\(pid)/limits): that caps each process's address space, not the container's memory. The container's limit is its cgroup's: "
                + fix
        } else if value == defaultMemory {
            fix = "\(text) is clab bundle's default, 256 MiB: " + fix
        }
        r.add(
            Property.memory, value == memoryBytes,
            "/proc/\(pid)/cgroup → \(place.dir)/\(file): \(text)\(addressSpace.map { "; RLIMIT_AS \($0)" } ?? "")",
            fix: fix)
    }

    /// The soft "Max address space" of /proc/<pid>/limits, when it is not unlimited.
    static func addressSpaceLimit(_ limits: String) -> String? {
        for line in limits.split(separator: "\n") where line.hasPrefix("Max address space") {
            let soft = line.dropFirst("Max address space".count).split(whereSeparator: \.isWhitespace).first
            return soft.map(String.init).flatMap { $0 == "unlimited" ? nil : $0 }
        }
        return nil
    }

    static func checkCapabilities(_ r: inout LabResults, pid: Int32) {
        guard let status = Host.status(pid: "\(pid)") else {
            r.notChecked(Property.capGone, "cannot read /proc/\(pid)/status", fix: "is \(name) still running?")
            r.notChecked(Property.capsKept, "cannot read /proc/\(pid)/status", fix: "is \(name) still running?")
            return
        }
        var sets: [String: UInt64] = [:]
        for field in ["CapEff", "CapPrm", "CapBnd", "CapInh"] {
            if let mask = status[field].flatMap({ UInt64($0, radix: 16) }) { sets[field] = mask }
        }
        let shown = ["CapEff", "CapPrm", "CapBnd"].map { "\($0) \(status[$0] ?? "unreadable")" }.joined(separator: ", ")
        guard let eff = sets["CapEff"], let prm = sets["CapPrm"], let bnd = sets["CapBnd"] else {
            r.notChecked(Property.capGone, "/proc/\(pid)/status: \(shown)", fix: "is \(name) still running?")
            r.notChecked(Property.capsKept, "/proc/\(pid)/status: \(shown)", fix: "is \(name) still running?")
            return
        }
        let holding = [("CapEff", eff), ("CapPrm", prm), ("CapBnd", bnd)].filter { $0.1 & dropped.bit != 0 }.map(\.0)
        let onlyInheritable = sets["CapInh"].map { $0 & dropped.bit == 0 } ?? false
        r.add(
            Property.capGone, holding.isEmpty,
            "/proc/\(pid)/status: \(shown) (\(dropped.kernelName) is bit \(dropped.rawValue), 0x\(String(dropped.bit, radix: 16)))"
                + (holding.isEmpty ? "" : "; still in \(holding.joined(separator: ", "))"),
            fix: (onlyInheritable && !holding.isEmpty
                ? "you removed it from \"inheritable\" only: that set is what an execve may pass on, not what the process holds. "
                : "")
                + "Remove \"\(dropped.kernelName)\" from all four lists of process.capabilities (bounding, effective, permitted, inheritable): the bounding set is what makes the drop final, \(rerun)"
        )
        let wanted = Capability.dockerDefault.subtracting([dropped])
        let have = Capability.set(fromMask: bnd)
        let missing = wanted.subtracting(have).sorted().map(\.kernelName)
        let extra = have.subtracting(wanted).subtracting([dropped]).sorted().map(\.kernelName)
        r.add(
            Property.capsKept, missing.isEmpty && extra.isEmpty,
            "CapBnd holds \(have.count) capabilities"
                + (missing.isEmpty ? "" : "; missing \(missing.joined(separator: ", "))")
                + (extra.isEmpty ? "" : "; beyond Docker's \(extra.joined(separator: ", "))"),
            fix:
                "drop only \(dropped.kernelName): keep the other 13 in all four lists, as clab bundle wrote them, \(rerun)"
        )
    }
}
