import ClabNetlink
import Foundation
import Glibc
import Testing

/// Scratch network namespaces, made with `ip netns add` (a bind mount in /run/netns) and
/// deleted by `close()`.
private final class ScratchNetns {
    let name: String
    let fd: Int32

    init(_ tag: String) throws {
        name = "clabtest-\(tag)-\(UUID().uuidString.prefix(8).lowercased())"
        let out = try runProcess(["/usr/sbin/ip", "netns", "add", name])
        guard out.status == 0 else {
            throw NetlinkError(request: "ip netns add \(name)", errno: EIO, detail: out.stderr)
        }
        fd = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            _ = try? runProcess(["/usr/sbin/ip", "netns", "del", name])
            throw NetlinkError(request: "open /run/netns/\(name)", errno: errno)
        }
    }

    func close() {
        Glibc.close(fd)
        _ = try? runProcess(["/usr/sbin/ip", "netns", "del", name])
    }

    /// `ip ARGS` inside this namespace.
    func ip(_ args: String...) throws -> String {
        let out = try runProcess(["/usr/sbin/ip", "-n", name] + args)
        return out.stdout + out.stderr
    }
}

@Suite("netlink: in scratch network namespaces", needsRoot)
struct NetlinkNamespaceTests {
    @Test func plumbingAContainerByHand() throws {
        let host = try ScratchNetns("host")
        defer { host.close() }
        let box = try ScratchNetns("box")
        defer { box.close() }
        let h = try Netlink(namespaceFD: host.fd)
        let c = try Netlink(namespaceFD: box.fd)
        let gateway = IPv4Address("198.51.100.1")!
        let subnet = IPv4Network("198.51.100.0/24")!

        // The bridge side.
        try h.addBridge("clabt0")
        try h.addAddress(gateway, prefix: 24, to: "clabt0")
        try h.setUp("clabt0")
        try h.addVeth("vh0", peer: "ceth0", peerNamespaceFD: box.fd)
        try h.setMTU("vh0", 1400)
        try h.setMaster("vh0", master: "clabt0")
        try h.setUp("vh0")
        // A second pair made on the host side and moved over, then detached again.
        try h.addVeth("vh1", peer: "mv1")
        try h.setMaster("vh1", master: "clabt0")
        try h.setMaster("vh1", master: nil)
        try h.moveToNamespace("mv1", fd: box.fd)
        try h.addVXLAN(
            "vx42", id: 42, remote: IPv4Address("203.0.113.2"), local: gateway, port: 4789, device: "clabt0")

        // The container side.
        try c.rename("ceth0", to: "eth0")
        try c.setMTU("eth0", 1400)
        try c.addAddress(IPv4Address("198.51.100.2")!, prefix: 24, to: "eth0")
        try c.setUp("lo")
        try c.setUp("eth0")
        try c.setUp("mv1")
        try c.addRoute(IPv4Network("0.0.0.0/0")!, via: gateway, device: "eth0")
        try c.addRoute(IPv4Network("203.0.113.0/24")!, via: nil, device: "mv1")

        // Read back through netlink.
        let hostLinks = try h.links()
        let bridge = try #require(hostLinks.first { $0.name == "clabt0" })
        #expect(bridge.kind == "bridge" && bridge.isUp)
        #expect(
            hostLinks.first { $0.name == "vh0" }
                == LinkInfo(
                    index: try #require(try h.link(named: "vh0")).index, name: "vh0", kind: "veth", isUp: true,
                    mtu: 1400,
                    master: bridge.index))
        #expect(hostLinks.first { $0.name == "vh1" }?.master == nil)
        #expect(hostLinks.first { $0.name == "vx42" }?.kind == "vxlan")
        #expect(try h.addresses().contains(AddressInfo(index: bridge.index, address: gateway, prefix: 24)))

        let boxLinks = try c.links()
        #expect(Set(boxLinks.map(\.name)) == ["lo", "eth0", "mv1"])
        let eth0 = try #require(try c.link(named: "eth0"))
        #expect(eth0.kind == "veth" && eth0.isUp && eth0.mtu == 1400)
        #expect(try c.link(named: "ceth0") == nil)
        #expect(
            try c.addresses().contains(
                AddressInfo(index: eth0.index, address: IPv4Address("198.51.100.2")!, prefix: 24)))
        let mv1 = try #require(boxLinks.first { $0.name == "mv1" })
        #expect(
            Set(try c.routes().map { "\($0)" }) == [
                "\(RouteInfo(destination: IPv4Network("0.0.0.0/0")!, gateway: gateway, outputIndex: eth0.index))",
                "\(RouteInfo(destination: subnet, gateway: nil, outputIndex: eth0.index))",
                "\(RouteInfo(destination: IPv4Network("203.0.113.0/24")!, gateway: nil, outputIndex: mv1.index))",
            ])

        // And as `ip` sees it.
        let vxlan = try host.ip("-d", "link", "show", "vx42")
        #expect(vxlan.contains("vxlan id 42 remote 203.0.113.2 local 198.51.100.1 dev clabt0"), "\(vxlan)")
        #expect(vxlan.contains("dstport 4789"), "\(vxlan)")
        let veth = try host.ip("-d", "link", "show", "vh0")
        #expect(veth.contains("mtu 1400") && veth.contains("master clabt0") && veth.contains("state UP"), "\(veth)")
        #expect(veth.contains("veth") && veth.contains("bridge_slave"), "\(veth)")
        #expect(
            try box.ip("-4", "addr", "show", "eth0").contains(
                "inet 198.51.100.2/24 brd 198.51.100.255 scope global eth0"))
        let routes = try box.ip("route")
        #expect(routes.contains("default via 198.51.100.1 dev eth0 \n"), "\(routes)")
        #expect(routes.contains("203.0.113.0/24 dev mv1 scope link linkdown"), "\(routes)")

        // Traffic over the bridge, inside the two namespaces only: a TCP connect to the
        // gateway's closed port is refused at once (no ping here). Without a path it would
        // hang in ARP and time out.
        let connect = try runProcess([
            "/usr/sbin/ip", "netns", "exec", box.name, "/usr/bin/timeout", "5", "/bin/bash", "-c",
            "echo > /dev/tcp/198.51.100.1/9",
        ])
        #expect(connect.stderr.contains("Connection refused"), "\(connect.stderr)")

        // Deleting one end of a pair deletes the other, in the other namespace too.
        try h.delete("vh0")
        #expect(try c.link(named: "eth0") == nil)
        try h.setDown("clabt0")
        try h.delete("vx42")
        try h.delete("clabt0")
        #expect(Set(try h.links().map(\.name)) == ["lo", "vh1"])
        try c.deleteRoute(IPv4Network("203.0.113.0/24")!, via: nil, device: "mv1")
        #expect(try c.routes().isEmpty)
        try c.deleteAddress(IPv4Address("127.0.0.1")!, prefix: 8, from: "lo")
        #expect(try c.addresses().isEmpty)
    }

    @Test func kernelErrorsNameTheRequestAndTheLink() throws {
        let ns = try ScratchNetns("err")
        defer { ns.close() }
        let n = try Netlink(namespaceFD: ns.fd)
        try n.addBridge("clabt0")
        let duplicate = #expect(throws: NetlinkError.self) { try n.addBridge("clabt0") }
        #expect(duplicate?.description == "RTM_NEWLINK clabt0 (bridge): File exists")
        #expect(duplicate?.errno == EEXIST)
        let veth = #expect(throws: NetlinkError.self) { try n.addVeth("clabt0", peer: "p0") }
        #expect(veth?.description == "RTM_NEWLINK clabt0 (veth, peer p0): File exists")

        try n.addAddress(IPv4Address("198.51.100.1")!, prefix: 24, to: "clabt0")
        let address = #expect(throws: NetlinkError.self) {
            try n.addAddress(IPv4Address("198.51.100.1")!, prefix: 24, to: "clabt0")
        }
        #expect(
            address?.description
                == "RTM_NEWADDR 198.51.100.1/24 dev clabt0: File exists (ipv4: Address already assigned)")
        let noDevice = #expect(throws: NetlinkError.self) {
            try n.addAddress(IPv4Address("198.51.100.1")!, prefix: 24, to: "nosuch0")
        }
        #expect(noDevice?.description == "RTM_NEWADDR 198.51.100.1/24 dev nosuch0: No such device")
        let up = #expect(throws: NetlinkError.self) { try n.setUp("nosuch0") }
        #expect(up?.description == "RTM_SETLINK nosuch0 up: No such device")
        let master = #expect(throws: NetlinkError.self) { try n.setMaster("clabt0", master: "nosuch0") }
        #expect(master?.description == "RTM_SETLINK clabt0 master nosuch0: No such device")
        let delete = #expect(throws: NetlinkError.self) { try n.delete("nosuch0") }
        #expect(delete?.description == "RTM_DELLINK nosuch0: No such device")
        // The gateway must be reachable: the kernel's own words follow the errno.
        let route = #expect(throws: NetlinkError.self) {
            try n.addRoute(IPv4Network("203.0.113.0/24")!, via: IPv4Address("192.0.2.77"), device: "clabt0")
        }
        #expect(route?.description.hasPrefix("RTM_NEWROUTE 203.0.113.0/24 via 192.0.2.77 dev clabt0: ") == true)
        #expect(route?.description.contains("gateway") == true, "\(String(describing: route))")
        try n.addBridge("clabt1")
        let taken = #expect(throws: NetlinkError.self) { try n.rename("clabt0", to: "clabt1") }
        #expect(taken?.description == "RTM_SETLINK clabt0 name clabt1: File exists")
        let bad = #expect(throws: NetlinkError.self) { try n.rename("clabt0", to: "../x") }
        #expect(bad?.description.contains("invalid interface name \"../x\"") == true)
        #expect(try n.link(named: "nosuch0") == nil)
        #expect(Set(try n.links().map(\.name)) == ["lo", "clabt0", "clabt1"])
    }

    @Test func aNamespaceSocketLeavesTheCallerWhereItWas() throws {
        func myNetns() -> String {
            var buffer = [CChar](repeating: 0, count: 64)
            let n = readlink("/proc/thread-self/ns/net", &buffer, 63)
            return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        }
        let before = myNetns()
        let ns = try ScratchNetns("self")
        defer { ns.close() }
        let n = try Netlink(namespaceFD: ns.fd)
        #expect(myNetns() == before)
        // A fresh namespace has only lo, down, and no addresses: this is not the host's view.
        #expect(try n.links().map(\.name) == ["lo"])
        #expect(try n.addresses().isEmpty)
        #expect(try n.routes().isEmpty)

        // An fd that is not a network namespace: a clear error, nothing else.
        let notNetns = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC)
        defer { close(notNetns) }
        let error = #expect(throws: NetlinkError.self) { try Netlink(namespaceFD: notNetns) }
        #expect(
            error?.description == "NETLINK_ROUTE socket in netns fd \(notNetns): setns(CLONE_NEWNET): Invalid argument")
        #expect(myNetns() == before)
    }
}
