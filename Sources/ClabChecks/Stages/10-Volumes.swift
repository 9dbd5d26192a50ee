import ClabSys

/// Stage 10: the container wrote a managed volume, whose data is on the host outside the
/// layers, and a read-only bind of a host directory refused its write.
enum VolumeProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard c.stage.mountsVolumes else { return [] }
        var r = ProbeList()
        let f = c.facts
        // The container wrote the volume: read it as its root sees it (f may be a symlink).
        let data = c.volumes.dataPath(c.tag) + "/f"
        let written = FS.read("/f", inRoot: c.volumes.dataPath(c.tag))?.trimmed
        r.add(
            "volume.data-on-host", 10, "a volume's data lands on the host, outside the layers",
            written == c.tag && f["volume"] == "ok",
            "echo \(c.tag) > /clab-volume/f inside; host \(data): \(written ?? "missing")")
        r.add(
            "volume.bind-read-only", 10, "a read-only bind mount refuses writes",
            f["ro"]?.contains("Read-only file system") == true && !FS.exists(c.roDir + "/x"),
            "touch /clab-ro/x inside: \(f["ro"] ?? "?")")
        return r.results
    }
}
