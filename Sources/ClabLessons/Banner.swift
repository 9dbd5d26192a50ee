import ClabCore
import ClabNetwork
import ClabSpec
import ClabSys

/// The text clab prints before a container starts: what this stage adds, the kernel calls
/// behind it, and the util-linux commands an expert would type for the same container.
public enum Banner {
    public static func text(for prepared: PreparedContainer) -> String {
        let spec = prepared.spec
        let stage = spec.stage
        var lines = ["clab stage \(stage.number) · \(stage.title): \(stage.adds)"]
        if let cgroup = prepared.cgroup {
            let l = cgroup.limits
            var limits: [String] = []
            if let m = l.memoryBytes { limits.append("memory \(humanBytes(m))") }
            if let s = l.memorySwapBytes { limits.append("memory+swap \(humanBytes(s))") }
            if let c = l.cpus { limits.append("\(fixed(c, 2)) CPUs") }
            if let s = l.cpuShares { limits.append("cpu shares \(s)") }
            if let p = l.pids { limits.append("pids \(p)") }
            lines.append("  limits:  \(limits.joined(separator: ", "))")
            lines.append("  cgroups: \(prepared.cgroupLayout ?? "?")")
            for dir in cgroup.placement.allDirs { lines.append("           \(dir)") }
        }
        lines.append(
            "  kernel:  \(stage.kernel.replacing("<rootfs>", with: rootForHand(spec)).replacing("<id>", with: spec.hostname))"
        )
        if let cgroup = prepared.cgroup {
            lines.append("  by hand: for d in \(cgroup.placement.allDirs.joined(separator: " ")); do mkdir -p $d; done")
            let writes = cgroup.limitFiles().map { "echo \($0.value) > \($0.path)" }
            if !writes.isEmpty { lines.append("           " + writes.joined(separator: "; ")) }
            lines.append(
                "           for d in \(cgroup.placement.allDirs.joined(separator: " ")); do echo $$ > $d/cgroup.procs; done"
            )
            lines.append("           export ROOT=\(Self.rootForHand(spec))")
        } else {
            lines.append("  by hand: export ROOT=\(Self.rootForHand(spec))")
        }
        lines.append("           \(byHand(spec))")
        lines += networkLines(prepared)
        if spec.ownsUserNamespace {
            lines.append(
                "           (--map-users runs newuidmap, from the uidmap package: it needs root:100000:65536 in /etc/subuid and /etc/subgid)"
            )
        }
        lines += hardeningLines(spec)
        if stage.number < Stage.all.count {
            lines.append(
                "  next:    clab step \(stage.number + 1) adds the \(Stage.all[stage.number].title); read `clab lesson \(stage.number)`"
            )
        } else {
            lines.append("  read:    clab lesson \(stage.number)")
        }
        return lines.joined(separator: "\n")
    }

    /// The directory the by-hand commands build the root in: the image itself, or from stage 9
    /// an empty mount point for the overlay.
    static func rootForHand(_ spec: ContainerSpec) -> String {
        spec.overlay == nil ? spec.imageRoot : spec.rootfsMountPoint
    }

    /// The whole container as one util-linux command line, with the image's root in $ROOT.
    public static func byHand(_ spec: ContainerSpec) -> String {
        let stage = spec.stage
        let root = "$ROOT"
        guard stage.number > 1 else { return "chroot \(root) /bin/sh" }
        var flags: [String] = []
        if spec.ownsUserNamespace, let m = spec.idMapping {
            flags.append("--map-users=\(m.host),\(m.inside),\(m.count) --map-groups=\(m.host),\(m.inside),\(m.count)")
        }
        if stage.has(.uts) { flags.append("--uts") }
        if stage.has(.ipc) { flags.append("--ipc") }
        if stage.has(.net) && spec.network == .own { flags.append("--net") }
        if stage.has(.mnt) { flags.append("--mount --propagation private") }
        if stage.has(.pid) { flags.append("--pid --fork") }
        if spec.hardening?.cgroupNamespace == true { flags.append("--cgroup") }
        if let t = spec.hardening?.timeOffsets {
            flags.append("--time --monotonic \(t.monotonic) --boottime \(t.boottime)")
        }
        var script = ["hostname \(spec.hostname)"]
        if stage.has(.net) && spec.network == .own { script.append("ip link set lo up") }
        if stage.has(.mnt) {
            script += [
                spec.overlay.map { "mount -t overlay overlay -o \($0.options) \(root)" }
                    ?? "mount --bind \(root) \(root)",
                "mount -t proc proc \(root)/proc",
            ]
            for v in spec.volumes {
                script.append("mount --bind \(v.source) \(root)\(v.target)")
                if v.readOnly { script.append("mount -o remount,bind,ro \(root)\(v.target)") }
            }
            script += ["cd \(root)", "pivot_root . .", "umount -l ."]
            if let h = spec.hardening {
                // Two of the masks as examples (both files: a directory would get a tmpfs).
                script += ["/proc/keys", "/proc/timer_list"].filter(h.maskedPaths.contains).map {
                    "mount --bind /dev/null \($0)"
                }
                script += h.readonlyPaths.prefix(1).map { "mount --bind -o ro \($0) \($0)" }
                if h.readOnlyRoot { script += ["mount -t tmpfs tmpfs /tmp", "mount -o remount,bind,ro /"] }
                let caps = h.capabilities.sorted().map { "+" + $0.name.lowercased() }.joined(separator: ",")
                let keep = caps.isEmpty ? "-all" : "-all," + caps
                script.append(
                    "exec setpriv --bounding-set=\(keep) --inh-caps=\(keep)\(h.noNewPrivileges ? " --no-new-privs" : "") /bin/sh"
                )
            } else {
                script.append("exec /bin/sh")
            }
        } else if stage.has(.pid) {
            // No mount namespace: the proc mount is the host's, so unmount it afterwards.
            return
                "unshare \(flags.joined(separator: " ")) sh -c '\((script + ["mount -t proc proc \(root)/proc", "chroot \(root) /bin/sh"]).joined(separator: " && ")); umount \(root)/proc'"
        } else {
            script.append("exec chroot \(root) /bin/sh")
        }
        return "unshare \(flags.joined(separator: " ")) sh -c '\(script.joined(separator: " && "))'"
    }

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

    /// Stage 11: where the container's network comes from, and the same plumbing by hand with
    /// iproute2 and nft ($PID: the container's first process; $IP: the address clab leases).
    static func networkLines(_ prepared: PreparedContainer) -> [String] {
        guard let plan = prepared.network else { return [] }
        switch plan.mode {
        case .none: return ["  network: none: its own network namespace with only lo (stage 6)"]
        case .host: return ["  network: host: the host's own network namespace, no isolation (no CLONE_NEWNET)"]
        case .container(let name):
            return [
                "  network: container:\(name): setns(<\(name)'s /proc/<pid>/ns/net>, CLONE_NEWNET) before clone3, so it shares \(name)'s eth0 and lo",
                "  by hand: nsenter --net=/proc/<\(name)'s pid>/ns/net unshare ... (the rest as above, without --net)",
            ]
        case .bridge:
            guard let config = plan.config, let net = config.network, let gateway = config.gateway else { return [] }
            let veth = NetworkStore.hostVethName(prepared.spec.id)
            var lines = [
                "  network: eth0 on bridge \(config.bridge) (\(config.name), \(config.subnet), gateway \(gateway)); NAT to the outside"
                    + (plan.ports.isEmpty ? "" : "; ports \(plan.ports.map(\.description).joined(separator: ", "))"),
                "  by hand: ip link add \(config.bridge) type bridge && ip addr add \(gateway)/\(net.prefix) dev \(config.bridge) && ip link set \(config.bridge) up",
                "           ip link add \(veth) type veth peer name eth0 netns $PID && ip link set \(veth) master \(config.bridge) up",
                "           nsenter -t $PID -n sh -c 'ip addr add $IP/\(net.prefix) dev eth0 && ip link set eth0 up && ip route add default via \(gateway)'",
                "           sysctl -w net.ipv4.ip_forward=1 net.ipv4.conf.\(config.bridge).route_localnet=1",
                "           nft -f - <<'EOF'",
            ]
            let script = Firewall.script(
                bridge: config.bridge, subnet: config.subnet, ports: plan.ports,
                containerIP: plan.ports.isEmpty ? nil : "$IP")
            lines += script.split(separator: "\n").map { "           " + $0 }
            lines.append("           EOF")
            // eth0 may send only as itself: its MAC (clab sets it when making the veth) and $IP.
            lines.append(
                "           nsenter -t $PID -n ip link set eth0 address $MAC   # $MAC: 02:42, then $IP's 4 bytes in hex"
            )
            lines.append("           nft -f - <<'EOF'")
            lines += Firewall.guardScript(hostVeth: veth, mac: "$MAC", containerIP: "$IP").split(separator: "\n").map {
                "           " + $0
            }
            lines.append("           EOF")
            return lines
        }
    }
}
