import ClabCgroups
import ClabDevices
import ClabHost
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// Stage 8's host half: the container's cgroups (the library is the ClabCgroups module: driver,
/// limits, counters, freezer). Placed in `prepare` (nothing made yet), made and joined around
/// clone3 (the child joins before "go", so the command's first instruction already counts),
/// removed at exit.
extension Runtime {
    /// Where the container's cgroups go and what limits they get; the spec learns which
    /// directory each controller's cgroupfs mount inside the container shows.
    func placeCgroups(_ request: RunRequest, id: String, spec: inout ContainerSpec) throws -> PreparedCgroups {
        let driver = try CgroupDriver.detect()
        let devices = Self.deviceRules(for: request.stage)
        let placement = try driver.place(id: id, parent: request.cgroupParent ?? cgroupParent, devices: devices != nil)
        let cgroup = ContainerCgroup(
            placement: placement, limits: request.limits ?? CgroupLimits(), deviceRules: devices)
        // Not the freezer: pausing is the host's business, and the container's view stays as it was.
        for (controller, dir) in placement.dirs where controller != "freezer" {
            spec.cgroupMounts[controller] = dir
        }
        return PreparedCgroups(cgroup: cgroup, layout: driver.layout, notes: placement.note.map { [$0] } ?? [])
    }

    /// Makes the cgroups (after the state file names them, so gc finds them after a crash) and
    /// joins the child to them before "go".
    static func hookCgroups(_ cgroup: ContainerCgroup, into container: Container) throws {
        container.cgroupPlacement = cgroup.placement
        if cgroup.placement.exclusive { container.cgroupLevels = cgroup.missingLevels() }
        try container.prepareState()
        do {
            try StageMark.host(8) { try cgroup.create() }
        } catch {
            container.cleanup()
            throw error
        }
        // Joining a v1 cgroup sleeps for an RCU grace period: it runs beside the network's
        // plumbing (the first hook) and is waited for in the last, before "go".
        let box = BackgroundBox()
        container.beforeGo.insert(
            { pid in box.call = BackgroundCall { try StageMark.host(8) { try cgroup.add(pid: pid) } } }, at: 0)
        container.beforeGo.append { _ in try box.call?.join() }
    }

    /// What the limits did, read before the cgroups go.
    static func counters(_ cgroup: ContainerCgroup?) -> CgroupCounters? {
        guard let cgroup else { return nil }
        return StageMark.host(8) { cgroup.counters() }
    }

    /// The cgroups, and the levels clab made above an OCI config's cgroupsPath.
    static func removeCgroups(_ cgroup: ContainerCgroup?, of container: Container) {
        StageMark.host(8) {
            cgroup?.remove()
            ContainerCgroup.removeLevels(container.cgroupLevels)
        }
    }
}

/// Stage 8's part of a prepared container.
struct PreparedCgroups {
    let cgroup: ContainerCgroup
    /// Which cgroup layout the host has (v1, v2, hybrid), for the banner and `clab check 8`.
    let layout: String
    /// A placement fallback, worth one line to the user.
    let notes: [String]
}

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
