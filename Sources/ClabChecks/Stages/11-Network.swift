import ClabNetlink
import ClabNetwork
import ClabRuntime

/// Stage 11: the container's eth0, its route, its gateway, its veth on the host's bridge.
enum BridgeProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard c.stage.connectsNetwork else { return [] }
        var r = ProbeList()
        let f = c.facts
        let address = f["eth0"] ?? ""
        let subnet = c.runtime.networks.list().first {
            $0.name == NetworkStore.defaultName
        }
        let inSubnet =
            subnet?.network.map { net in
                IPv4Address(String(address.prefix { $0 != "/" })).map(net.contains) ?? false
            } ?? false
        r.add(
            "bridge.eth0-address", 11, "eth0 has an address on clab's bridge", inSubnet,
            "inside: eth0 \(address.isEmpty ? "has no address" : address); clab network: \(subnet?.subnet ?? "none")")
        let gateway = subnet?.gateway.map { "\($0)" }
        r.add(
            "bridge.default-route", 11, "the default route goes through the bridge's address",
            f["gateway"] == gateway && gateway != nil,
            "inside: default via \(f["gateway"] ?? "?"); the bridge \(subnet?.bridge ?? "?") is \(gateway ?? "?")")
        r.add(
            "bridge.gateway-ping", 11, "the gateway answers a ping", f["ping_gateway"] == "0",
            "inside: ping -c 1 \(f["gateway"] ?? "?")")
        let veth = NetworkStore.hostVethName(c.spec.id)
        let master = (try? Netlink().links()).flatMap { links in
            links.first { $0.name == veth }.flatMap { v in links.first { $0.index == v.master }?.name }
        }
        r.add(
            "bridge.veth-on-bridge", 11, "its veth's host end is on the bridge",
            master == subnet?.bridge && master != nil,
            "host: \(veth) \(master.map { "has master \($0)" } ?? "has no master")")
        return r.results
    }
}
