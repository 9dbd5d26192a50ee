import ClabNetwork
import ClabRuntime

extension Banner {
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
