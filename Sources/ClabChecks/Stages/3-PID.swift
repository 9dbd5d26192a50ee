import Glibc

/// Stage 3: the command is PID 1, sees only the container's processes, and cannot signal the host's.
enum PIDProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard c.stage.has(.pid) else { return [] }
        var r = ProbeList()
        let f = c.facts
        r.add(
            "pid.pid1", 3, "the command is PID 1", f["pid"] == "1", "inside: $$ = \(f["pid"] ?? "?"); host pid \(c.pid)"
        )
        let procs = Int(f["procs"] ?? "") ?? -1
        r.add(
            "pid.procs-own-only", 3, "only the container's processes are visible",
            procs > 0 && procs < 10 && procs < c.host.processCount,
            "inside /proc lists \(procs) processes; the host's lists \(c.host.processCount)")
        r.add(
            "pid.host-unsignalled", 3, "host processes cannot be signalled",
            f["kill_host"] != nil && f["kill_host"] != "0",
            "inside: kill -0 \(getpid()) (clab on the host) exits \(f["kill_host"] ?? "?")")
        return r.results
    }
}
