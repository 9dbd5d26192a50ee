/// Stage 5: a System V shared-memory segment made on the host is not seen inside.
enum IPCProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard c.stage.has(.ipc), let segment = c.segment else { return [] }
        var r = ProbeList()
        let insideCount = Int(c.facts["shm"] ?? "") ?? -1
        r.add(
            "ipc.host-shm-invisible", 5, "host System V shared memory is invisible",
            insideCount == 0 && segment.visibleOnHost(),
            "host: segment \(segment.id) in /proc/sysvipc/shm; inside: \(insideCount) segments")
        return r.results
    }
}
