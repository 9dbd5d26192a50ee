import ClabCgroups
import ClabHost
import ClabNetwork
import ClabSys
import FoundationEssentials
import Glibc

/// `clab gc` after the run directory was lost (a reboot-like loss of /run while the host stayed
/// up, or a test root's run directory deleted): no record names the containers' cgroups, ports
/// or bridge any more. They are found by clab's own naming instead, and only there.
extension GarbageCollector {
    /// The cgroups clab made for containers (`clab/<12 hex digits>` beneath this process's own
    /// cgroup, in each hierarchy, the default placement) that belong to no container: no
    /// container directory of this state root has that id, no process is in them, and they are
    /// older than `recentSeconds` (another clab joins its container's cgroup within milliseconds
    /// of making it). Nothing else is looked at: not a --cgroup-parent, not the caller's own
    /// cgroup, not its other children. Returns id → its directories.
    func orphanedCgroups() -> [String: [String]] {
        guard let driver = try? CgroupDriver.detect() else { return [:] }
        let probe =
            (try? driver.place(id: "probe", parent: nil, devices: true))
            ?? (try? driver.place(id: "probe", parent: nil, devices: false))
        guard let probe, probe.ownsParents else { return [:] }
        var found: [String: [String]] = [:]
        for parent in probe.parents where Path.basename(parent) == "clab" {
            for id in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] {
                guard id.count == 12, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { continue }
                let dir = parent + "/" + id
                guard FS.isDirectory(dir), !FS.exists(layout.containerDir(id)),
                    (FS.read(dir + "/cgroup.procs") ?? "x").isEmpty, !Self.isRecent(dir)
                else { continue }
                found[id, default: []].append(dir)
            }
        }
        return found
    }

    /// Removes the orphaned cgroups, with what the firewall still holds for those containers
    /// (published ports: a stale DNAT rule would send a host port to whoever gets the address
    /// next; the anti-spoofing guard), and this state root's bridges that no container uses.
    func collectOrphans(into report: inout Report) {
        for (id, dirs) in orphanedCgroups().sorted(by: { $0.key < $1.key }) {
            report.cgroups += Self.removeCgroups(dirs, id: id)
            try? Firewall.unpublish(containerID: id)
            try? Firewall.retireGuard(containerID: id, hostVeth: NetworkStore.hostVethName(id))
        }
        report.orphanedBridges += NetworkStore(root: layout.root, runDir: layout.runDir).pruneIdleBridges()
    }
}
