import ClabHost
import ClabRuntime
import ClabSys

/// Stage 4: a mount made inside stays inside (from stage 12 mounting is refused instead, a
/// stage-12 line), propagation is private, and the host's root is gone from the mount table.
enum MountProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard c.stage.has(.mnt) else { return [] }
        var r = ProbeList()
        let f = c.facts
        let tag = c.tag
        let seenInside = f["mounted"] == "1"
        let hostTable = (FS.read("/proc/self/mountinfo") ?? "")
        let leaked = hostTable.contains(tag + "-tmpfs")
        if c.stage.hardens {
            r.add(
                "hardening.mount-refused", 12, "mount is refused inside (no CAP_SYS_ADMIN)",
                f["mounted"] == nil && !leaked,
                "inside: mount -t tmpfs \(tag)-tmpfs /mnt \(f["mounted"] == nil ? "failed" : "succeeded"); host mountinfo: \(leaked ? "LISTED" : "absent")"
            )
        } else {
            r.add(
                "mnt.mount-stays-inside", 4, "a mount made inside stays inside", seenInside && !leaked,
                "inside: tmpfs \(tag)-tmpfs on /mnt \(seenInside ? "listed" : "missing"); host mountinfo: \(leaked ? "LISTED" : "absent")"
            )
        }
        let table = Mounts.parse((FS.read("/proc/\(c.pid)/mountinfo") ?? ""))
        let rootMount = table.last { $0.mountPoint == "/" }
        r.add(
            "mnt.propagation-private", 4, "mount propagation is private", rootMount?.propagation == "private",
            "container's / is \(rootMount?.propagation ?? "?")")
        let hostRoot = Mounts.table().last { $0.mountPoint == "/" }
        let oldRoot = table.contains {
            $0.root == "/" && $0.source == hostRoot?.source && $0.fsType == hostRoot?.fsType
        }
        r.add(
            "mnt.host-root-gone", 4, "the host's root is not in the container's mount table",
            !oldRoot && rootMount != nil,
            "container: \(table.count) mounts, / is \(rootMount.map { "\($0.source):\($0.root)" } ?? "?"); host: \(Mounts.table().count) mounts"
        )
        return r.results
    }
}
