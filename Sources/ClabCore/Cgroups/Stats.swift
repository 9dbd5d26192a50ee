import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

/// A running container's cgroup, as its state file records the placement (its own directories
/// only), so `clab stats` reads the same counters clab reads after a run.
public struct RunningCgroup: Sendable {
    public let state: ContainerState
    public let cgroup: ContainerCgroup

    /// nil for containers below stage 8 (no cgroup).
    public init?(_ state: ContainerState) {
        guard let recorded = state.cgroup else { return nil }
        let placement = recorded.restricted(to: ContainerRecord.ownCgroups(state))
        guard !placement.dirs.isEmpty else { return nil }
        let version = placement.version
        let byController = placement.dirs
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
