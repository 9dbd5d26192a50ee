import ClabRuntime
import ClabSys

extension Banner {
    /// Stage 8: the limits, and where the cgroups are.
    static func cgroupLines(_ prepared: PreparedContainer) -> [String] {
        guard let cgroup = prepared.cgroup else { return [] }
        let l = cgroup.limits
        var limits: [String] = []
        if let m = l.memoryBytes { limits.append("memory \(humanBytes(m))") }
        if let s = l.memorySwapBytes { limits.append("memory+swap \(humanBytes(s))") }
        if let c = l.cpus { limits.append("\(fixed(c, 2)) CPUs") }
        if let s = l.cpuShares { limits.append("cpu shares \(s)") }
        if let p = l.pids { limits.append("pids \(p)") }
        return ["  limits:  \(limits.joined(separator: ", "))", "  cgroups: \(prepared.cgroupLayout ?? "?")"]
            + cgroup.placement.allDirs.map { "           \($0)" }
    }

    /// Stage 8 by hand: make the cgroups, write the limits, move the shell in.
    static func cgroupByHandLines(_ prepared: PreparedContainer) -> [String] {
        guard let cgroup = prepared.cgroup else { return [] }
        let dirs = cgroup.placement.allDirs.joined(separator: " ")
        var lines = ["  by hand: for d in \(dirs); do mkdir -p $d; done"]
        let writes = cgroup.limitFiles().map { "echo \($0.value) > \($0.path)" }
        if !writes.isEmpty { lines.append("           " + writes.joined(separator: "; ")) }
        lines.append("           for d in \(dirs); do echo $$ > $d/cgroup.procs; done")
        return lines
    }
}
