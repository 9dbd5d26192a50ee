import ClabHost
import ClabRuntime
import ClabSpec
import ClabSys

/// Stage 12, from the host's /proc/<pid>/status and the container's own view. (The refused
/// hostname and mount are stage 12 lines of 2-UTS.swift and 4-Mount.swift.)
enum HardeningProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard let h = c.spec.hardening else { return [] }
        var r = ProbeList()
        func add(_ id: String, _ property: String, _ passed: Bool, _ evidence: String) {
            r.add(id, 12, property, passed, evidence)
        }
        let f = c.facts
        let pid = c.pid
        let status = Host.status(pid: "\(pid)") ?? [:]
        let want = Capability.mask(h.capabilities)
        let sets = ["CapEff", "CapPrm", "CapBnd", "CapInh"].map { ($0, UInt64(status[$0] ?? "", radix: 16)) }
        add(
            "hardening.capabilities",
            "root keeps only \(h.capabilities == Capability.dockerDefault ? "Docker's 14 capabilities" : "the chosen capabilities")",
            sets.allSatisfy { $0.1 == want } && UInt64(status["CapAmb"] ?? "", radix: 16) == 0,
            "/proc/\(pid)/status: " + sets.map { "\($0.0) \(status[$0.0] ?? "?")" }.joined(separator: ", ")
                + "; want \(String(want, radix: 16))")
        add(
            "hardening.no-new-privs", "no_new_privs is set", status["NoNewPrivs"] == (h.noNewPrivileges ? "1" : "0"),
            "/proc/\(pid)/status: NoNewPrivs \(status["NoNewPrivs"] ?? "?")")
        if !h.seccompFilter.isEmpty {
            add(
                "hardening.seccomp", "a seccomp filter is installed",
                status["Seccomp"] == "2" && (Int(status["Seccomp_filters"] ?? "") ?? 0) >= 1,
                "/proc/\(pid)/status: Seccomp \(status["Seccomp"] ?? "?"), Seccomp_filters \(status["Seccomp_filters"] ?? "?") (\(h.seccompName))"
            )
            add(
                "hardening.unshare-refused", "creating namespaces is refused", f["unshare"] == "1",
                "inside: unshare -U true exits \(f["unshare"] ?? "?") (seccomp: EPERM without CAP_SYS_ADMIN)")
        }
        add(
            "hardening.proc-keys-masked", "/proc/keys is masked", f["keys"] == "0",
            "inside: wc -c < /proc/keys: \(f["keys"] ?? "?")")
        add(
            "hardening.proc-sys-read-only", "/proc/sys is read-only",
            f["sysctl"]?.contains("Read-only file system") == true,
            "inside: write /proc/sys/kernel/domainname: \(f["sysctl"] ?? "?")")
        if h.cgroupNamespace {
            let theirs = FS.readLink("/proc/\(pid)/ns/cgroup") ?? "?"
            let mine = FS.readLink("/proc/self/ns/cgroup") ?? "?"
            let paths = (f["cgroup_self"] ?? "").split(separator: " ")
            add(
                "hardening.cgroupns-root", "own cgroup namespace: /proc/self/cgroup shows /",
                theirs != mine && !paths.isEmpty && paths.allSatisfy { $0 == "/" },
                "/proc/\(pid)/ns/cgroup -> \(theirs); host: \(mine); inside /proc/self/cgroup paths: \(f["cgroup_self"] ?? "?")"
            )
        }
        return r.results
    }
}
