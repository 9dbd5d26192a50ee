import ClabKernel
import FoundationEssentials
import Glibc

/// A running container's cgroup, rebuilt from the directories its state file records, so
/// `clab stats` can read the same counters clab reads after a run.
public struct RunningCgroup: Sendable {
    public let state: ContainerState
    public let cgroup: ContainerCgroup

    /// nil for containers below stage 8 (no cgroup).
    public init?(_ state: ContainerState) {
        guard let dirs = state.cgroups, !dirs.isEmpty else { return nil }
        var byController: [String: String] = [:]
        var version = CgroupVersion.v1
        for dir in dirs {
            if FS.exists(dir + "/cgroup.controllers") {
                version = .v2
                byController[""] = dir
            }
            for (file, controller) in [
                ("memory.usage_in_bytes", "memory"), ("cpu.cfs_quota_us", "cpu"), ("cpuacct.usage", "cpuacct"),
                ("pids.max", "pids"),
            ] where FS.exists(dir + "/" + file) && byController[controller] == nil {
                byController[controller] = dir
            }
        }
        let placement = CgroupPlacement(version: version, dirs: byController, parents: [], note: nil)
        // The limits as the kernel has them now.
        func number(_ controller: String, _ file: String) -> Int64? {
            let dir = version == .v2 ? byController[""] : byController[controller]
            guard let dir, let text = FS.read(dir + "/" + file)?.trimmed else { return nil }
            return Int64(text.split(separator: " ").first ?? "")
        }
        var limits = CgroupLimits(memoryBytes: nil, pids: nil)
        limits.memoryBytes = number("memory", version == .v1 ? "memory.limit_in_bytes" : "memory.max").flatMap {
            $0 >= Int64.max / 2 ? nil : $0
        }
        limits.pids = number("pids", "pids.max").map(Int.init)
        let quota = number("cpu", version == .v1 ? "cpu.cfs_quota_us" : "cpu.max")
        let period = version == .v1 ? number("cpu", "cpu.cfs_period_us") : 100_000
        if let quota, quota > 0, let period, period > 0 { limits.cpus = Double(quota) / Double(period) }
        self.state = state
        self.cgroup = ContainerCgroup(placement: placement, limits: limits)
    }
}
