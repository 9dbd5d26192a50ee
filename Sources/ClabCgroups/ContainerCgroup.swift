import ClabDevices
import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

/// One container's cgroup: made before the container starts, joined by its first process
/// before "go" (so none of its code runs unlimited), read after it ends, then removed.
public struct ContainerCgroup: Sendable {
    public let placement: CgroupPlacement
    public let limits: CgroupLimits
    /// The devices the container may use (stage 12; nil: no device list, as stage 8): on v1
    /// written to the devices controller, on v2 a BPF program attached to the cgroup
    /// (ClabDevices). Needs a placement made with `devices: true`.
    public let deviceRules: [DeviceRule]?

    public init(placement: CgroupPlacement, limits: CgroupLimits, deviceRules: [DeviceRule]? = nil) {
        self.placement = placement
        self.limits = limits
        self.deviceRules = deviceRules
    }

    var version: CgroupVersion { placement.version }

    /// The directory holding a controller's files.
    public func dir(_ controller: String) -> String? {
        version == .v2 ? placement.dirs[""] : placement.dirs[controller]
    }

    /// mkdir the cgroups and write the limits. On failure everything made is removed again.
    public func create() throws {
        if placement.exclusive { return try createExclusive() }
        do {
            for parent in placement.parents {
                try Self.mkdirRetrying(parent)
                try inheritCpuset(parent)
                if version == .v2 { try enableControllers(in: parent) }
            }
            for dir in placement.allDirs {
                try Self.mkdirRetrying(dir)
                try inheritCpuset(dir)
            }
            // Again: another clab may have removed an empty parent and mkdirRetrying made it anew,
            // without controllers. Enabling them with a child present is allowed (it has no processes).
            if version == .v2 { for parent in placement.parents { try enableControllers(in: parent) } }
            try apply()
        } catch {
            remove()
            throw error
        }
    }

    /// The directories above an exclusive placement's cgroups that do not exist yet (the levels
    /// of a cgroupsPath "a/b/c" that clab makes for it), deepest first. Recorded before they are
    /// made, so whoever removes the container (delete, gc) removes them too.
    public func missingLevels() -> [String] {
        guard placement.exclusive else { return [] }
        var missing: Set<String> = []
        for dir in placement.allDirs {
            var parent = Path.dirname(dir)
            while parent.hasPrefix("/sys/fs/cgroup/"), !FS.exists(parent) {
                missing.insert(parent)
                parent = Path.dirname(parent)
            }
        }
        return missing.sorted { $0.count > $1.count }
    }

    /// A cgroupsPath placement: the missing levels above, then each cgroup, which must not exist
    /// (clab never adopts a cgroup it did not make). On failure only what this call made goes.
    private func createExclusive() throws {
        let levels = missingLevels()
        var made: [String] = []
        do {
            for level in levels.reversed() {
                // Another container with the same levels may make one at the same moment.
                guard mkdir(level, 0o755) == 0 || errno == EEXIST else {
                    throw ClabError("stage 8: mkdir \(level): \(errnoDescription(errno))")
                }
                try inheritCpuset(level)
                if version == .v2 { try enableControllers(in: level) }
            }
            for dir in placement.allDirs {
                guard mkdir(dir, 0o755) == 0 else {
                    throw ClabError(
                        errno == EEXIST
                            ? "cgroup \(dir) already exists: clab makes a container's cgroup and removes it at exit, and never adopts another's"
                            : "stage 8: mkdir \(dir): \(errnoDescription(errno))")
                }
                made.append(dir)
                try inheritCpuset(dir)
            }
            try apply()
        } catch {
            for dir in made { rmdir(dir) }
            Self.removeLevels(levels)
            throw error
        }
    }

    /// rmdir the levels clab made above a cgroupsPath, deepest first: one still holding another
    /// container's cgroup stays (EBUSY).
    @discardableResult
    public static func removeLevels(_ levels: [String]) -> [String] {
        levels.sorted { $0.count > $1.count }.filter { $0.hasPrefix("/sys/fs/cgroup/") && rmdir($0) == 0 }
    }

    /// v1 cpuset: a new cgroup starts with no CPUs and no memory nodes, and takes no task until
    /// given some: it gets its parent's (as runc does for the levels it makes).
    private func inheritCpuset(_ dir: String) throws {
        guard version == .v1, FS.exists(dir + "/cpuset.cpus") else { return }
        let parent = Path.dirname(dir)
        for file in ["cpuset.cpus", "cpuset.mems"] where (FS.read(dir + "/" + file) ?? "").trimmed.isEmpty {
            try write(dir, file, (FS.read(parent + "/" + file) ?? "").trimmed)
        }
    }

    /// The limit files and values, in the order the kernel requires (memory before
    /// memory+swap; the CFS period before the quota).
    public func limitFiles() -> [(path: String, value: String)] {
        var files: [(String, String)] = []
        if let memory = limits.memoryBytes, let d = dir("memory") {
            if version == .v1 {
                files.append((d + "/memory.limit_in_bytes", "\(memory)"))
                if let swap = limits.memorySwapBytes { files.append((d + "/memory.memsw.limit_in_bytes", "\(swap)")) }
            } else {
                files.append((d + "/memory.max", "\(memory)"))
                if let swap = limits.memorySwapBytes { files.append((d + "/memory.swap.max", "\(swap - memory)")) }
            }
        }
        if let d = dir("cpu") {
            let period = 100_000
            if let cpus = limits.cpus {
                let quota = max(1000, Int((cpus * Double(period)).rounded()))
                if version == .v1 {
                    files.append((d + "/cpu.cfs_period_us", "\(period)"))
                    files.append((d + "/cpu.cfs_quota_us", "\(quota)"))
                } else {
                    files.append((d + "/cpu.max", "\(quota) \(period)"))
                }
            }
            if let shares = limits.cpuShares {
                // v2: the mapping runc and systemd use from shares (2..262144) to weight (1..10000).
                files.append(
                    version == .v1
                        ? (d + "/cpu.shares", "\(shares)")
                        : (d + "/cpu.weight", "\(1 + ((shares - 2) * 9999) / 262_142)"))
            }
        }
        if let pids = limits.pids, let d = dir("pids") { files.append((d + "/pids.max", "\(pids)")) }
        if let d = dir("cpuset") {
            if let cpus = limits.cpusetCpus { files.append((d + "/cpuset.cpus", cpus)) }
            if let mems = limits.cpusetMems { files.append((d + "/cpuset.mems", mems)) }
        }
        return files
    }

    func apply() throws {
        if limits.memorySwapBytes != nil, version == .v1, let d = dir("memory"),
            !FS.exists(d + "/memory.memsw.limit_in_bytes")
        {
            throw ClabError(
                "--memory-swap needs swap accounting, which this kernel has off (no memory.memsw.* files; boot with swapaccount=1)"
            )
        }
        for file in limitFiles() { try write(Path.dirname(file.path), Path.basename(file.path), file.value) }
        try applyDeviceRules()
    }

    /// The device allow-list, before any process is in the cgroup. v1: "a" to devices.deny
    /// (the new cgroup inherited its parent's list: everything), then each rule to
    /// devices.allow; v2: clab's device program, its table holding the rules.
    func applyDeviceRules() throws {
        guard let rules = deviceRules else { return }
        guard let d = dir("devices") else {
            throw ClabError(
                "stage 12: the device allow-list needs a devices cgroup (a placement made with devices: true)")
        }
        switch version {
        case .v1:
            try write(d, "devices.deny", "a", stage: 12)
            for rule in rules { try write(d, "devices.allow", rule.description, stage: 12) }
        case .v2:
            try DeviceFilter.attach(rules, toCgroup: d)
        }
    }

    /// Moves a process (and, on v1, only it: its threads follow through cgroup.procs) in.
    public func add(pid: pid_t) throws {
        for dir in placement.allDirs { try write(dir, "cgroup.procs", "\(pid)") }
    }

    /// rmdir the container's cgroups, then the `clab` parents if no other container uses them.
    /// Processes that outlived the container (possible only without a PID namespace) are killed
    /// first: they were started by this container.
    @discardableResult
    public func remove() -> [String] {
        var removed: [String] = []
        // A paused container's tasks would not even die of SIGKILL (v1) while frozen.
        for dir in placement.allDirs {
            if let freezer = Freezer(cgroupDirs: [dir]), freezer.state() != .thawed { try? freezer.thaw(timeout: 1) }
        }
        for dir in placement.allDirs where FS.exists(dir) {
            for attempt in 0..<50 {
                if rmdir(dir) == 0 || errno == ENOENT {
                    removed.append(dir)
                    break
                }
                if errno == EBUSY {
                    for pid in (FS.read(dir + "/cgroup.procs") ?? "").split(separator: "\n").compactMap({ Int32($0) }) {
                        kill(pid, SIGKILL)
                    }
                }
                if attempt < 49 { usleep(10_000) }
            }
        }
        for parent in placement.parents where placement.ownsParents && rmdir(parent) == 0 { removed.append(parent) }
        return removed
    }

    private func enableControllers(in dir: String) throws {
        let enabled = Set((FS.read(dir + "/cgroup.subtree_control") ?? "").split(whereSeparator: \.isWhitespace))
        let wanted = CgroupDriver.required + (limits.usesCpuset ? ["cpuset"] : [])
        let missing = wanted.filter { !enabled.contains(Substring($0)) }
        guard !missing.isEmpty else { return }
        try write(dir, "cgroup.subtree_control", missing.map { "+" + $0 }.joined(separator: " "))
    }

    private func write(_ dir: String, _ file: String, _ value: String, stage: Int = 8) throws {
        do {
            try FS.write(value, to: dir + "/" + file)
        } catch let error as SyscallError {
            throw ClabError("stage \(stage): echo \(value) > \(dir)/\(file): \(errnoDescription(error.errno))")
        }
    }

    /// mkdir, tolerating EEXIST; a parent removed by another clab at the same moment is made again.
    static func mkdirRetrying(_ path: String) throws {
        for _ in 0..<5 {
            if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
            if errno != ENOENT { break }
            try? mkdirRetrying(Path.dirname(path))
        }
        throw ClabError("stage 8: mkdir \(path): \(errnoDescription(errno))")
    }
}

/// What the kernel counted for a cgroup: the evidence behind every outcome clab reports.
public struct CgroupCounters: Codable, Sendable, Equatable {
    public var memoryCurrent: Int64?
    public var memoryPeak: Int64?
    public var memoryLimit: Int64?
    /// v1 memory.oom_control / v2 memory.events "oom_kill". (Not memory.failcnt: it counts
    /// every time usage hit the limit, reclaim included, so it rises without any kill.)
    /// this kernel even when the limit strikes, so it is not used.)
    public var oomKills: Int64?
    public var pidsCurrent: Int64?
    public var pidsLimit: Int64?
    /// pids.events "max": forks refused because of pids.max.
    public var pidsRefused: Int64?
    public var cpuUsageNanos: Int64?
    public var cpuPeriods: Int64?
    public var cpuThrottled: Int64?
    public var cpuThrottledNanos: Int64?
    public var cpuQuota: Double?
}

extension ContainerCgroup {
    public func counters() -> CgroupCounters {
        var c = CgroupCounters()
        func value(_ dir: String?, _ file: String) -> Int64? {
            guard let dir, let text = FS.read(dir + "/" + file)?.trimmed, !text.isEmpty else { return nil }
            return text == "max" ? nil : Int64(text)
        }
        func keyed(_ dir: String?, _ file: String) -> [String: Int64] {
            guard let dir, let text = FS.read(dir + "/" + file) else { return [:] }
            var out: [String: Int64] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2, let v = Int64(parts[1]) { out[String(parts[0])] = v }
            }
            return out
        }
        let mem = dir("memory")
        let cpu = dir("cpu")
        let pids = dir("pids")
        // The same counters under v1's and v2's names (v2 counts CPU time in µs, v1 in ns).
        let v1 = version == .v1
        c.memoryCurrent = value(mem, v1 ? "memory.usage_in_bytes" : "memory.current")
        c.memoryPeak = value(mem, v1 ? "memory.max_usage_in_bytes" : "memory.peak")
        c.memoryLimit = limits.memoryBytes
        c.oomKills = keyed(mem, v1 ? "memory.oom_control" : "memory.events")["oom_kill"]
        let stat = keyed(cpu, "cpu.stat")
        c.cpuPeriods = stat["nr_periods"]
        c.cpuThrottled = stat["nr_throttled"]
        c.cpuThrottledNanos = v1 ? stat["throttled_time"] : stat["throttled_usec"].map { $0 * 1000 }
        c.cpuUsageNanos = v1 ? value(dir("cpuacct") ?? cpu, "cpuacct.usage") : stat["usage_usec"].map { $0 * 1000 }
        c.pidsCurrent = value(pids, "pids.current")
        c.pidsLimit = limits.pids.map(Int64.init)
        c.pidsRefused = keyed(pids, "pids.events")["max"]
        c.cpuQuota = limits.cpus
        return c
    }

    /// What the limits did, one line each, from the kernel's own counters (never guessed from
    /// an exit status such as 137).
    /// `commandKilled`: the container's first process died of SIGKILL (then the OOM killer,
    /// not just some child of it, is what ended the run).
    public static func outcomes(_ c: CgroupCounters, commandKilled: Bool = false) -> [String] {
        var lines: [String] = []
        if let kills = c.oomKills, kills > 0 {
            let limit = c.memoryLimit.map(humanBytes) ?? "?"
            lines.append(
                commandKilled
                    ? "killed by the memory limit (\(limit)): oom_kill \(kills) — see lesson 8"
                    : "the memory limit (\(limit)) OOM-killed \(kills) process\(kills == 1 ? "" : "es") in the container (oom_kill \(kills)) — see lesson 8"
            )
        }
        if let refused = c.pidsRefused, refused > 0 {
            lines.append(
                "the pids limit (\(c.pidsLimit.map(String.init) ?? "?")) refused \(refused) fork\(refused == 1 ? "" : "s") (pids.events max \(refused)) — see lesson 8"
            )
        }
        if let throttled = c.cpuThrottled, throttled > 0, let quota = c.cpuQuota {
            let held = Double(c.cpuThrottledNanos ?? 0) / 1e9
            lines.append(
                "throttled by the CPU limit (\(fixed(quota, 2)) CPUs) in \(throttled) of \(c.cpuPeriods ?? 0) periods, \(fixed(held, 2)) s held back — see lesson 8"
            )
        }
        return lines
    }
}
