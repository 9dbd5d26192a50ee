import ClabCgroups
import ClabHost
import ClabNetwork
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// `clab gc`: removes what runs that crashed or were killed left behind. A container directory
/// belongs to a live run when its clab process (pid + start time) still exists.
public struct GarbageCollector {
    public let layout: StateLayout

    public init(layout: StateLayout) { self.layout = layout }

    public struct Report: Sendable {
        public var containers: [String] = []
        public var mounts: [String] = []
        public var tempDirs: [String] = []
        public var cgroups: [String] = []
        /// Container directories without a state file yet, younger than `recentSeconds`: a start
        /// in progress writes its state just after clone3, so they are left alone.
        public var skippedRecent: [String] = []
        /// Stage 11 addresses released (with their ports, veths and shared network parts).
        public var leases: [String] = []
        /// Bridges (with their rules) of state roots that no longer exist.
        public var orphanedBridges: [String] = []
        /// Detached containers whose supervisor is gone: host side removed, record kept.
        public var reconciled: [String] = []
        public var isEmpty: Bool {
            containers.isEmpty && mounts.isEmpty && tempDirs.isEmpty && cgroups.isEmpty && leases.isEmpty
                && orphanedBridges.isEmpty && reconciled.isEmpty
        }
    }

    public func collect() -> Report {
        var report = Report()
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: layout.containersDir)) ?? []
        for id in dirs.sorted() {
            let dir = layout.containerDir(id)
            let state = ContainerState.load(dir + "/state.json")
            if let state {
                if state.ociRuntime == true
                    ? state.managerAlive : ContainerRecord.alive(state.clabPid, startTime: state.clabStartTime)
                {
                    continue
                }
                // A detached container's record stays until `clab rm`; only its host side goes.
                if state.detached != nil {
                    if reconcile(ContainerRecord(state: state, dir: dir)) { report.reconciled.append(id) }
                    continue
                }
            } else if Self.isRecent(dir) {
                report.skippedRecent.append(id)
                continue
            }
            report.cgroups += state.map(Self.removeCgroups) ?? []
            report.mounts += Container.remove(bundleDir: dir)
            if !FS.exists(dir) { report.containers.append(id) }
        }
        // Stage 11: addresses, published ports and veths of containers whose clab is gone (and
        // with the last of them the default bridge, clab's nft table and ip_forward as it was).
        let networks = NetworkStore(root: layout.root, runDir: layout.runDir)
        let running = Set(ContainerState.running(in: layout).map(\.id))
        for lease in networks.allLeases() where !running.contains(lease.container) {
            networks.detach(containerID: lease.container)
            report.leases.append("\(lease.address) (\(lease.network), container \(lease.container))")
        }
        networks.pruneStaleClaims()
        report.orphanedBridges = networks.pruneOrphanedBridges()
        collectOrphans(into: &report)
        try? Firewall.removeRetiredGuards()
        // Half-built images and layers from a killed `clab` (…/.tmp-<what>-<pid>, <layer>.tmp-<pid>).
        let layers = layout.root + "/layers"
        var scratch = [layout.imagesDir, layers, layout.root + "/volumes", layout.root + "/seccomp"]
        // And where copies owned by a mapped range are built: layers/shifted-*/, images/*/shifted-*/.
        for parent in [layers]
            + ((try? FileManager.default.contentsOfDirectory(atPath: layout.imagesDir)) ?? []).map({
                layout.imagesDir + "/" + $0
            })
        {
            scratch += ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []).filter {
                $0.hasPrefix("shifted-")
            }.map { parent + "/" + $0 }
        }
        for dir in scratch {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where Self.isScratch(name) {
                // A replaced base image's old tree, maybe still the root of a running stage 1-8 container.
                if name.hasPrefix(".tmp-old-") && !running.isEmpty { continue }
                if let pid = name.split(separator: "-").last.flatMap({ Int32($0) }),
                    Host.isAlive(pid: pid, startTime: nil)
                {
                    continue
                }
                try? FS.removeTree(dir + "/" + name)
                report.tempDirs.append(dir + "/" + name)
            }
        }
        return report
    }

    /// A detached container whose supervisor died (kill -9, a crash): the exit nobody recorded
    /// is recorded as "lost", and its cgroups, network and mounts go. True if anything changed.
    func reconcile(_ record: ContainerRecord) -> Bool {
        var changed = false
        if !record.events.contains(where: { EventLog.statusAfter[$0.name] == .stopped }) {
            EventLog.append(
                dir: record.dir, event: "lost", detail: (record.why ?? "supervisor gone") + "; found by clab gc")
            changed = true
        }
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: record.dir)) ?? []).filter {
            !Detached.recordFiles.contains($0)
        }
        if !leftovers.isEmpty || !(record.state.cgroups ?? []).filter(FS.exists).isEmpty
            || !(record.state.cgroupLevels ?? []).filter(FS.exists).isEmpty
        {
            Detached.releaseHostResources(layout: layout, id: record.id)
            changed = true
        }
        return changed
    }

    /// clab's scratch names: `.tmp-<what>-<pid>`, or `<64 hex>.tmp-<pid>` for a layer copy being
    /// made. User names (volumes, images) cannot look like either: they start with a letter or digit
    /// and are never 64 hex digits followed by `.tmp-`.
    static func isScratch(_ name: String) -> Bool {
        guard let pid = name.split(separator: "-").last, !pid.isEmpty, pid.allSatisfy(\.isNumber) else { return false }
        if name.hasPrefix(".tmp-") { return true }
        let parts = name.split(separator: ".", maxSplits: 1)
        return parts.count == 2 && parts[0].count == 64 && parts[0].allSatisfy(\.isHexDigit)
            && parts[1].hasPrefix("tmp-")
    }

    /// A container's cgroups as its state file places them, only its own
    /// (ContainerRecord.ownCgroups), then the levels clab made above a cgroupsPath, if empty.
    static func removeCgroups(_ state: ContainerState) -> [String] {
        guard let recorded = state.cgroup else { return [] }
        let placement = recorded.restricted(to: ContainerRecord.ownCgroups(state))
        return ContainerCgroup(placement: placement, limits: CgroupLimits()).remove()
            + ContainerCgroup.removeLevels(ContainerRecord.ownCgroupLevels(state))
    }

    /// Only the directories the state file names, and only a container's own (its id, under the
    /// cgroup mounts); then a `clab` parent if it is empty. A --cgroup-parent stays.
    static func removeCgroups(_ dirs: [String], id: String) -> [String] {
        let ours = dirs.filter { Path.basename($0) == id && $0.hasPrefix("/sys/fs/cgroup/") }
        let placement = CgroupPlacement(
            version: .v1,
            dirs: Dictionary(uniqueKeysWithValues: ours.enumerated().map { ("\($0.offset)", $0.element) }),
            parents: Array(Set(ours.map(Path.dirname).filter { Path.basename($0) == "clab" })).sorted(), note: nil)
        return ContainerCgroup(placement: placement, limits: CgroupLimits()).remove()
    }

    public static let recentSeconds = 10

    /// Changed in the last `recentSeconds`.
    static func isRecent(_ path: String) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        return time(nil) - st.st_mtim.tv_sec < recentSeconds
    }
}
