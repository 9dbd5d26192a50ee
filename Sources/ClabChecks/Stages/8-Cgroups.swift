import ClabHost
import ClabRuntime
import ClabSys

/// Stage 8: the container is in its cgroup (seen from the host), the limits are in the
/// kernel's files, and visible (read-only) inside.
enum CgroupProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard let cgroup = c.cgroup else { return [] }
        var r = ProbeList()
        let f = c.facts
        let pid = c.pid
        let membership = (FS.read("/proc/\(pid)/cgroup") ?? "")
        let dirs = cgroup.placement.allDirs
        let joined = dirs.allSatisfy { dir in
            (FS.read(dir + "/cgroup.procs") ?? "").split(separator: "\n").contains(Substring("\(pid)"))
        }
        let shown = membership.split(separator: "\n").filter { $0.contains("clab/") }.map(String.init)
        r.add(
            "cgroup.own", 8, "the container is in its own cgroup", joined && !dirs.isEmpty,
            "\(c.cgroupLayout); /proc/\(pid)/cgroup: \(shown.joined(separator: "; "))")
        let counters = cgroup.counters()
        if let memory = cgroup.limits.memoryBytes {
            let file = cgroup.placement.version == .v1 ? "memory.limit_in_bytes" : "memory.max"
            let inside = f["cg_" + file] ?? "?"
            let onHost = (FS.read((cgroup.dir("memory") ?? "") + "/" + file) ?? "").trimmed
            r.add(
                "cgroup.memory-limit", 8, "memory limit \(humanBytes(memory)) set and visible inside",
                inside == "\(memory)" && onHost == "\(memory)",
                "\(file): \(onHost) on the host, \(inside) inside /sys/fs/cgroup")
        }
        if let pids = cgroup.limits.pids {
            let inside = f["cg_pids.max"] ?? "?"
            r.add(
                "cgroup.pids-limit", 8, "pids limit \(pids) set and visible inside",
                inside == "\(pids)" && counters.pidsCurrent != nil,
                "pids.max inside: \(inside); pids.current: \(counters.pidsCurrent.map(String.init) ?? "?")")
        }
        r.add(
            "cgroup.read-only", 8, "the limits are read-only inside", f["cg_readonly"] == "yes",
            f["cg_readonly"] == "yes" ? "writing pids.max inside fails" : "a write to pids.max inside succeeded")
        return r.results
    }
}
