import ClabSpec

extension Banner {
    /// Stage 12: what root keeps, in one place (the by-hand line above does all but seccomp,
    /// which no util-linux command installs).
    static func hardeningLines(_ spec: ContainerSpec) -> [String] {
        guard let h = spec.hardening else { return [] }
        let caps =
            h.capabilities == Capability.dockerDefault
            ? "Docker's default 14" : h.capabilities.isEmpty ? "none" : "\(h.capabilities.count)"
        let seccomp =
            h.seccompFilter.isEmpty
            ? "unconfined (every syscall allowed)" : "\(h.seccompName), \(h.seccompFilter.count / 8) BPF instructions"
        var lines = [
            "  hardened: capabilities: \(caps): \(h.capabilities.sorted().map(\.name).joined(separator: " "))",
            "           no_new_privs: \(h.noNewPrivileges ? "on" : "off"); seccomp: \(seccomp)",
            "           masked: \(h.maskedPaths.count) paths (/proc/kcore, /proc/keys, ...); read-only: \(h.readonlyPaths.joined(separator: " "))",
            "           root: \(spec.ownsUserNamespace ? "uid 0 inside, \(spec.idMapping?.host ?? 0) on the host" : "the host's real root (--userns host): only these limits hold it")"
                + (h.readOnlyRoot ? "; the root filesystem is read-only (tmpfs /tmp)" : ""),
            "           open files: \(Hardening.fileLimit.soft) (hard \(Hardening.fileLimit.hard), or clab's if lower); cgroup namespace: \(h.cgroupNamespace ? "own (/proc/self/cgroup shows /)" : "the host's")",
        ]
        if let t = h.timeOffsets {
            lines.append(
                "           time namespace: monotonic +\(t.monotonic)s, boottime +\(t.boottime)s (see `uptime`)")
        }
        return lines
    }
}
