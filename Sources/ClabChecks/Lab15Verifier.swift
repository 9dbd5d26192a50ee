import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 15: NAT by hand. A "container" namespace on a bridge in a "host" namespace, which routes
/// and masquerades it out of an uplink to an "outside" namespace that has no route back. Built
/// from lab 6's parts: the same namespace checks, the same address checks, the same UDP probe,
/// whose "from" is the proof: the outside must see the host's address, never the container's.
/// The verifier reads with the host's `ip -n NAME`, and runs `cat` in lab15-h only (for its
/// ip_forward); it changes nothing.
public enum Lab15Verifier {
    public static let c = "lab15-c"
    public static let h = "lab15-h"
    public static let out = "lab15-out"
    public static let namespaces = [c, h, out]
    static let bridgeName = "br15"
    static let gateway = "10.15.0.1"
    static let containerAddress = "10.15.0.2"
    static let uplink = "198.51.100.1"
    static let outside = "198.51.100.2"

    static let cableC = "ip -n \(h) link add veth-c type veth peer name eth0 netns \(c)"
    static let cableOut = "ip -n \(h) link add uplink type veth peer name eth0 netns \(out)"
    static let masquerade =
        "ip netns exec \(h) nft add table ip lab15; ip netns exec \(h) nft add chain ip lab15 post '{ type nat hook postrouting priority srcnat; }'; ip netns exec \(h) nft add rule ip lab15 post ip saddr 10.15.0.0/24 oifname uplink masquerade"

    public static func verify(layouts: [StateLayout], initPath: String = Runtime.defaultInitPath) -> [ProbeResult] {
        var r = LabResults(stage: 15)
        let (inodes, views) = Lab6Verifier.ownNamespaces(
            namespaces, lab: 15, into: &r, each: "the container, the host and the outside each need their own")
        r.results.insert(Lab6Verifier.byHand(inodes, layouts: layouts, stage: 15, names: namespaces), at: 0)
        func view(_ name: String) -> Result<NamespaceView, ClabError> {
            views[name] ?? .failure(ClabError("\(name) was not read"))
        }
        func each(_ id: String, _ property: String, in name: String, _ check: (NamespaceView) -> (Bool, String, String))
        {
            switch view(name) {
            case .failure(let error):
                r.notChecked(id, property, error.message, fix: "create \(name) first: ip netns add \(name)")
            case .success(let v):
                let (ok, evidence, fix) = check(v)
                r.add(id, property, ok, evidence, fix: fix)
            }
        }

        each("lab15.container-veth", "\(c): a veth has \(containerAddress)/24 and is up", in: c) {
            Lab6Verifier.address(end(c, containerAddress, h, gateway), $0, create: cableC)
        }
        each("lab15.default-route", "\(c): the default route goes via \(gateway)", in: c) { defaultRoute($0) }
        each("lab15.bridge", "\(h): \(bridgeName) has \(gateway)/24, is up, and holds the veth to \(c)", in: h) {
            bridge($0)
        }
        each("lab15.uplink-veth", "\(h): the uplink veth to \(out) has \(uplink)/24 and is up", in: h) { v in
            let result = Lab6Verifier.address(end(h, uplink, out, outside), v, create: cableOut)
            guard result.0 else { return result }
            let link = v.links.first { $0.kind == "veth" && $0.has(uplink, prefix: 24) }
            guard let link, v.peerNamespace(of: link) == out else {
                return (false, "\(result.1) does not lead to \(out)", "delete it and cable again: \(cableOut)")
            }
            return result
        }
        each("lab15.outside-veth", "\(out): a veth has \(outside)/24 and is up", in: out) {
            Lab6Verifier.address(end(out, outside, h, uplink), $0, create: cableOut)
        }
        each("lab15.no-route-back", "\(out) has no route back to 10.15.0.0/24", in: out) { _ in noRouteBack() }
        each("lab15.forwarding", "\(h) forwards IPv4 (its own net.ipv4.ip_forward is 1)", in: h) { _ in forwarding() }

        // The proof: a datagram from the container, received outside from the host's address.
        let sent = ProbeName(
            id: "lab15.datagram", wording: "a datagram from \(c) reaches \(outside) from \(uplink) (masqueraded)")
        if inodes[c] != nil && inodes[out] != nil {
            switch Lab6Verifier.datagram(initPath: initPath, from: c, to: out, address: outside) {
            case .success(let result) where result.status == 0:
                let source = result.output.split(separator: " ").last.map(String.init) ?? "?"
                r.add(
                    sent, source == uplink,
                    source == uplink
                        ? result.output
                        : "\(result.output): the container's own address, not rewritten to \(h)'s",
                    fix: "nothing rewrites the source on the way out of \(h): \(masquerade)")
            case .success(let result) where result.status == 1:
                let above = r.results.contains { !$0.passed }
                r.add(
                    sent, false, result.output,
                    fix: above
                        ? "fix the ✗ lines above first"
                        : "\(out) cannot answer (or even accept) 10.15.0.2, which it has no route to: \(h) must send it as \(uplink): \(masquerade)"
                )
            case .success(let result):
                r.notChecked(
                    sent, result.output.isEmpty ? "the probe failed (exit \(result.status))" : result.output,
                    fix: "make the namespaces with ip netns add")
            case .failure(let error):
                r.notChecked(sent, "\(error)", fix: "clab-init must be installed beside clab (make install)")
            }
        } else {
            r.notChecked(
                sent, "not tried: \(c) and \(out) must exist first", fix: "ip netns add \(c); ip netns add \(out)")
        }
        return r.results
    }

    static func end(_ name: String, _ address: String, _ peer: String, _ peerAddress: String) -> Lab6Verifier.End {
        Lab6Verifier.End(name: name, address: address, peer: peer, peerAddress: peerAddress)
    }

    struct Route: Decodable {
        let dst: String
        let gateway: String?
        let dev: String?
    }

    static func defaultRoute(_ container: NamespaceView) -> (Bool, String, String) {
        let fix = "ip -n \(c) route add default via \(gateway)"
        guard let ip = Lab11Verifier.tool("ip") else { return (false, "not checked: ip is missing on the host", fix) }
        do {
            let routes = try NamespaceView.decode(
                [Route].self, Lab11Verifier.run([ip, "-n", c, "-j", "route", "show", "default"], timeout: 5), what: c)
            guard let route = routes.first else { return (false, "\(c) has no default route", fix) }
            let shown = "default via \(route.gateway ?? "nothing") dev \(route.dev ?? "?")"
            guard route.gateway == gateway else {
                return (false, shown, "ip -n \(c) route replace default via \(gateway)")
            }
            return (true, shown, "")
        } catch {
            return (false, "not checked: \(error)", fix)
        }
    }

    static func bridge(_ host: NamespaceView) -> (Bool, String, String) {
        guard let br = host.links.first(where: { $0.ifname == bridgeName && $0.kind == "bridge" }) else {
            return (
                false, "no bridge \(bridgeName) in \(h)",
                "ip -n \(h) link add \(bridgeName) type bridge && ip -n \(h) link set \(bridgeName) up"
            )
        }
        guard br.has(gateway, prefix: 24) else {
            return (false, "\(br.summary) has no \(gateway)/24", "ip -n \(h) addr add \(gateway)/24 dev \(bridgeName)")
        }
        guard let veth = host.links.first(where: { $0.kind == "veth" && host.peerNamespace(of: $0) == c }) else {
            return (
                false, "no veth in \(h) leads to \(c)",
                "\(cableC), then ip -n \(h) link set veth-c master \(bridgeName)"
            )
        }
        guard veth.master == bridgeName else {
            return (
                false, "\(veth.ifname), the veth to \(c), is \(veth.master.map { "on \($0)" } ?? "on no bridge")",
                "ip -n \(h) link set \(veth.ifname) master \(bridgeName)"
            )
        }
        for link in [br, veth] where !link.isUp {
            return (false, "\(link.summary) is down", "ip -n \(h) link set \(link.ifname) up")
        }
        return (true, "\(br.summary) holds \(veth.ifname) (to \(c))", "")
    }

    /// The outside world knows only public addresses: without NAT, nothing there could answer
    /// the container. `ip route get` asks the kernel's own routing decision.
    static func noRouteBack() -> (Bool, String, String) {
        guard let ip = Lab11Verifier.tool("ip") else { return (false, "not checked: ip is missing on the host", "") }
        do {
            let result = try Lab11Verifier.run([ip, "-n", out, "route", "get", containerAddress], timeout: 5)
            let text = result.output.trimmed
            if result.status != 0 && text.contains("unreachable") {
                return (true, "ip -n \(out) route get \(containerAddress): \(text)", "")
            }
            guard result.status == 0 else { return (false, "not checked: \(text)", "") }
            return (
                false, "ip -n \(out) route get \(containerAddress): \(text.split(separator: "\n").first ?? "")",
                "the outside must not know the container's private network (NAT is what makes that work): delete the route, e.g. ip -n \(out) route del default"
            )
        } catch {
            return (false, "not checked: \(error)", "")
        }
    }

    /// lab15-h's own ip_forward: /proc/sys/net shows the namespace of the process reading it, so
    /// the host's `cat` runs inside lab15-h (which passed as a namespace of its own).
    static func forwarding() -> (Bool, String, String) {
        let fix = "ip netns exec \(h) sysctl -w net.ipv4.ip_forward=1 (inside \(h) only: never the host's own)"
        guard let ip = Lab11Verifier.tool("ip"), let cat = Lab11Verifier.tool("cat") else {
            return (false, "not checked: ip or cat is missing on the host", fix)
        }
        do {
            let result = try Lab11Verifier.run(
                [ip, "netns", "exec", h, cat, "/proc/sys/net/ipv4/ip_forward"], timeout: 5)
            let value = result.output.trimmed
            guard result.status == 0 else { return (false, "not checked: \(value)", fix) }
            return (value == "1", "net.ipv4.ip_forward = \(value) in \(h)", fix)
        } catch {
            return (false, "not checked: \(error)", fix)
        }
    }
}
