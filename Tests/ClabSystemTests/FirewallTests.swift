import CShims
import ClabNetlink
import ClabSys
import Foundation
import Glibc
import Testing

@testable import ClabNetwork

// MARK: - Root: rules applied inside network namespaces of the test's own

@Suite("firewall: clab's nftables table, in test network namespaces", .serialized, needsRoot)
struct FirewallNetnsTests {
    @Test func tableChainsAndRulesAsTheBannerShows() throws {
        try withHostUnchanged {
            let ns = try TestNetns("t")
            defer { ns.delete() }
            try ns.run { () throws -> Void in
                try Firewall.addNetwork(bridge: "clabt0", subnet: "10.250.12.0/24")
                try Firewall.addNetwork(bridge: "clabt0", subnet: "10.250.12.0/24")  // idempotent
                let ports = [try PortPublish.parse("8080:80"), try PortPublish.parse("127.0.0.1:5353:53/udp")]
                try Firewall.publish(ports, containerID: "ctrA", containerIP: "10.250.12.2", bridge: "clabt0")
                // What the kernel holds, line for line, is the banner's script.
                let expected = Firewall.script(
                    bridge: "clabt0", subnet: "10.250.12.0/24", ports: ports, containerIP: "10.250.12.2",
                    containerID: "ctrA")
                let listed = try listedRules()
                let scripted = expected.split(separator: "\n").filter { $0.hasPrefix("add rule ") }.map {
                    String($0.dropFirst("add rule ip clab ".count))
                }
                #expect(listed.sorted() == scripted.sorted())
                let chains = try NFTables.run("list table ip clab")
                for hook in [
                    "type nat hook prerouting priority dstnat; policy accept;",
                    "type nat hook output priority -100; policy accept;",
                    "type nat hook postrouting priority srcnat; policy accept;",
                    "type filter hook forward priority filter; policy accept;",
                    "type filter hook input priority filter; policy accept;",
                ] {
                    #expect(chains.contains(hook))
                }
                #expect(try NFTables.run("list tables").split(separator: "\n") == ["table ip clab"])
            }
        }
    }

    @Test func unpublishRemovesExactlyThatContainersRules() throws {
        try withHostUnchanged {
            let ns = try TestNetns("u")
            defer { ns.delete() }
            try ns.run { () throws -> Void in
                try Firewall.addNetwork(bridge: "clabt0", subnet: "10.250.12.0/24")
                try Firewall.addNetwork(bridge: "clabt1", subnet: "10.250.13.0/24")
                let a = [try PortPublish.parse("8080:80"), try PortPublish.parse("127.0.0.1:5353:53/udp")]
                let b = [try PortPublish.parse("8081:80")]
                try Firewall.publish(a, containerID: "ctrA", containerIP: "10.250.12.2", bridge: "clabt0")
                try Firewall.publish(b, containerID: "ctrAB", containerIP: "10.250.13.2", bridge: "clabt1")
                // Publishing again replaces, never duplicates.
                try Firewall.publish(a, containerID: "ctrA", containerIP: "10.250.12.2", bridge: "clabt0")
                #expect(Set(try Firewall.publishedContainers()) == ["ctrA", "ctrAB"])
                let before = try listedRules()
                #expect(before.count == 2 + 7 * 2 + 3)

                try Firewall.unpublish(containerID: "ctrA")
                let after = try listedRules()
                // Exactly ctrA's two rules went; "ctrAB" (same prefix) stayed.
                #expect(Set(before).subtracting(after).count == 2)
                #expect(Set(before).subtracting(after).allSatisfy { $0.hasSuffix("comment \"clab:ctrA\"") })
                #expect(Set(after).isSubset(of: Set(before)))
                #expect(try Firewall.publishedContainers() == ["ctrAB"])
                try Firewall.unpublish(containerID: "ctrA")  // idempotent
                try Firewall.unpublish(containerID: "never-published")

                // Networks: the table stays while one remains.
                try Firewall.removeNetwork(bridge: "clabt0")
                #expect(try listedRules().filter { $0.contains("clabt0") }.isEmpty)
                #expect(try Firewall.removeTableIfUnused() == false)
                try Firewall.removeNetwork(bridge: "clabt1")
                try Firewall.removeNetwork(bridge: "clabt1")
                #expect(try Firewall.removeTableIfUnused() == true)
                #expect(try NFTables.run("list tables").isEmpty)
                #expect(try Firewall.removeTableIfUnused() == false)
                #expect(try Firewall.publishedContainers().isEmpty)
                try Firewall.unpublish(containerID: "ctrAB")  // no table: nothing to do
            }
        }
    }

    @Test func takenPortsGetOneLine() throws {
        try withHostUnchanged {
            let ns = try TestNetns("c")
            defer { ns.delete() }
            try ns.ip("link", "set", "lo", "up")
            try ns.run { () throws -> Void in
                try Firewall.addNetwork(bridge: "clabt0", subnet: "10.250.12.0/24")
                try Firewall.publish(
                    [try PortPublish.parse("8080:80"), try PortPublish.parse("127.0.0.1:5353:53/udp")],
                    containerID: "ctrA", containerIP: "10.250.12.2", bridge: "clabt0")
                func message(_ specs: [String]) -> String? {
                    errorMessage { try Firewall.checkAvailable(try specs.map(PortPublish.parse)) }
                }
                #expect(
                    message(["8080:90"])
                        == "-p 8080:90/tcp: host port 8080/tcp is already published by container ctrA; choose another host port"
                )
                #expect(
                    message(["127.0.0.1:8080:90"])
                        == "-p 127.0.0.1:8080:90/tcp: host port 8080/tcp is already published by container ctrA; choose another host port"
                )
                #expect(
                    message(["5353:53/udp"])
                        == "-p 5353:53/udp: host port 127.0.0.1:5353/udp is already published by container ctrA; choose another host port"
                )
                #expect(message(["8080:80/udp", "127.0.0.2:5353:53/udp"]) == nil)  // other protocol, other address
                #expect(
                    message(["9000:80", "9000:81"])
                        == "-p 9000:81/tcp: host port 9000/tcp is also published by -p 9000:80/tcp")
                #expect(
                    message(["203.0.113.9:9000:80"])
                        == "-p 203.0.113.9:9000:80/tcp: 203.0.113.9 is not an address of this host")
                // publish re-checks under the lock: another container cannot take ctrA's port.
                #expect(throws: ClabError.self) {
                    try Firewall.publish(
                        [try PortPublish.parse("8080:80")], containerID: "ctrB", containerIP: "10.250.12.3",
                        bridge: "clabt0")
                }
                #expect(try Firewall.publishedContainers() == ["ctrA"])
            }
            // Host sockets (in this namespace) bound to a port.
            let tcp = try ns.socket(.tcp)
            defer { close(tcp) }
            try bindSocket(tcp, "0.0.0.0", 9090)
            #expect(listen(tcp, 1) == 0)
            let udp = try ns.socket(.udp)
            defer { close(udp) }
            try bindSocket(udp, "127.0.0.1", 9091)
            try ns.run { () throws -> Void in
                #expect(
                    errorMessage { try Firewall.checkAvailable([try PortPublish.parse("9090:80")]) }
                        == "-p 9090:80/tcp: host port 9090/tcp is in use by a program on the host; choose another host port"
                )
                #expect(
                    errorMessage { try Firewall.checkAvailable([try PortPublish.parse("9091:80/udp")]) }
                        == "-p 9091:80/udp: host port 9091/udp is in use by a program on the host; choose another host port"
                )
                try Firewall.checkAvailable([try PortPublish.parse("9091:80")])  // tcp 9091 is free
                try Firewall.unpublish(containerID: "ctrA")
                try Firewall.removeNetwork(bridge: "clabt0")
                #expect(try Firewall.removeTableIfUnused())
            }
        }
    }

    @Test func concurrentPublishersNeverCollide() throws {
        try withHostUnchanged {
            let ns = try TestNetns("p")
            defer { ns.delete() }
            try ns.run { try Firewall.addNetwork(bridge: "clabt0", subnet: "10.250.12.0/24") }
            // 8 threads: distinct ports each, plus all racing for port 7000; one wins it.
            let winners = Counter()
            let failures = Counter()
            let done = DispatchGroup()
            for i in 0..<8 {
                done.enter()
                Thread {
                    defer { done.leave() }
                    do {
                        try ns.run { () throws -> Void in
                            let id = "race\(i)"
                            try Firewall.publish(
                                [try PortPublish.parse("\(8000 + i):80")], containerID: id,
                                containerIP: "10.250.12.\(10 + i)",
                                bridge: "clabt0")
                            do {
                                try Firewall.publish(
                                    [try PortPublish.parse("\(8000 + i):80"), try PortPublish.parse("7000:80")],
                                    containerID: id,
                                    containerIP: "10.250.12.\(10 + i)", bridge: "clabt0")
                                winners.add()
                                // Held by exactly one container while it has it.
                                if try listedRules().filter({ $0.contains("dport 7000 ") }).count != 1 {
                                    failures.add()
                                }
                            } catch let error as ClabError where error.message.contains("already published") {}
                            try Firewall.unpublish(containerID: id)
                        }
                    } catch {
                        failures.add()
                    }
                }.start()
            }
            done.wait()
            #expect(failures.value == 0)
            #expect(winners.value >= 1)  // each winner unpublished before the next could win
            try ns.run { () throws -> Void in
                #expect(try Firewall.publishedContainers().isEmpty)
                #expect(try listedRules().count == 2 + 7)
                try Firewall.removeNetwork(bridge: "clabt0")
                #expect(try Firewall.removeTableIfUnused())
            }
        }
    }

    @Test func localhostRoutingAndForeignDropPolicyStayInTheNamespace() throws {
        try withHostUnchanged {
            let ns = try TestNetns("l")
            defer { ns.delete() }
            try ns.ip("link", "add", "clabt0", "type", "bridge")
            try ns.run { try Firewall.enableLocalhostRouting(bridge: "clabt0") }
            let value = try runProcess([
                "/usr/sbin/ip", "netns", "exec", ns.name, "cat", "/proc/sys/net/ipv4/conf/clabt0/route_localnet",
            ])
            #expect(value.stdout == "1\n")
            #expect(access("/proc/sys/net/ipv4/conf/clabt0", F_OK) != 0)  // no such bridge on the host
            #expect(throws: ClabError.self) { try Firewall.enableLocalhostRouting(bridge: "all") }
            try ns.run { () throws -> Void in
                #expect(try Firewall.forwardDropNote(bridge: "clabt0") == nil)
                _ = try NFTables.run(
                    "add table ip filter\nadd chain ip filter FORWARD { type filter hook forward priority filter; policy drop; }"
                )
                let note = try #require(try Firewall.forwardDropNote(bridge: "clabt0"))
                #expect(note.hasPrefix("note: table ip filter, chain FORWARD drops forwarded packets by default"))
                #expect(note.contains("nft insert rule ip filter FORWARD iifname \"clabt0\" accept"))
                #expect(!note.contains("\n"))
                #expect(throws: ClabError.self) { try NFTables.run("add rule ip nosuch chain accept") }
            }
        }
    }

    /// The whole path in three namespaces: "host" (bridge, forwarding on, clab's table), "ctr"
    /// (a veth into the bridge, the container's servers), "outside" (198.51.100.0/24 to host).
    @Test func publishedPortsAnswerFromOutsideFromLocalhostAndByHairpin() throws {
        try withHostUnchanged {
            let lab = try NetLab()
            defer { lab.delete() }
            try lab.host.run { () throws -> Void in
                try Firewall.addNetwork(bridge: "clabt0", subnet: NetLab.subnet)
                try Firewall.enableLocalhostRouting(bridge: "clabt0")
                try Firewall.checkAvailable([try PortPublish.parse("8080:80"), try PortPublish.parse("5353:53/udp")])
                try Firewall.publish(
                    [try PortPublish.parse("8080:80"), try PortPublish.parse("5353:53/udp")],
                    containerID: "e2e", containerIP: NetLab.container, bridge: "clabt0")
            }
            // The container's servers.
            let web = try lab.ctr.socket(.tcp)
            defer { close(web) }
            try bindSocket(web, "0.0.0.0", 80)
            #expect(listen(web, 8) == 0)
            let dns = try lab.ctr.socket(.udp)
            defer { close(dns) }
            try bindSocket(dns, "0.0.0.0", 53)

            /// A TCP connection from `ns` to ip:port, answered by the container; returns the
            /// client address the container saw.
            func tcpRoundTrip(from ns: TestNetns, to ip: String, _ port: UInt16) throws -> String? {
                let client = try ns.socket(.tcp)
                defer { close(client) }
                guard connectSocket(client, ip, port, timeoutMs: 2000) else { return nil }
                guard let (conn, peer) = acceptSocket(web, timeoutMs: 2000) else { return nil }
                defer { close(conn) }
                _ = "hello".withCString { send(conn, $0, 5, 0) }
                return receive(client, timeoutMs: 2000)?.0 == "hello" ? peer : nil
            }
            func udpRoundTrip(from ns: TestNetns, to ip: String, _ port: UInt16) throws -> String? {
                let client = try ns.socket(.udp)
                defer { close(client) }
                guard connectSocket(client, ip, port, timeoutMs: 100) else { return nil }
                _ = "ping".withCString { send(client, $0, 4, 0) }
                guard let (text, peer) = receive(dns, timeoutMs: 2000), text == "ping", var address = peer.1 else {
                    return nil
                }
                _ = "pong".withCString { cString in
                    withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(dns, cString, 4, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                }
                return receive(client, timeoutMs: 2000)?.0 == "pong" ? peer.0 : nil
            }

            // From another host: the container sees the client's own address.
            #expect(try tcpRoundTrip(from: lab.outside, to: NetLab.hostOutside, 8080) == NetLab.outsideAddress)
            #expect(try udpRoundTrip(from: lab.outside, to: NetLab.hostOutside, 5353) == NetLab.outsideAddress)
            // From the host itself: 127.0.0.1 (masqueraded to the bridge address) and its own address.
            #expect(try tcpRoundTrip(from: lab.host, to: "127.0.0.1", 8080) == NetLab.gateway)
            #expect(try udpRoundTrip(from: lab.host, to: "127.0.0.1", 5353) == NetLab.gateway)
            #expect(try tcpRoundTrip(from: lab.host, to: NetLab.hostOutside, 8080) != nil)
            // Hairpin: the container reaches its own published port through the host's address.
            #expect(try tcpRoundTrip(from: lab.ctr, to: NetLab.hostOutside, 8080) == NetLab.gateway)

            // SNAT: the outside sees the host's address as the container's source.
            let listener = try lab.outside.socket(.tcp)
            defer { close(listener) }
            try bindSocket(listener, NetLab.outsideAddress, 7000)
            #expect(listen(listener, 1) == 0)
            let outbound = try lab.ctr.socket(.tcp)
            defer { close(outbound) }
            #expect(connectSocket(outbound, NetLab.outsideAddress, 7000, timeoutMs: 2000))
            let accepted = acceptSocket(listener, timeoutMs: 2000)
            #expect(accepted?.1 == NetLab.hostOutside)
            if let (fd, _) = accepted { close(fd) }

            // Other hosts reach only published ports: a route to the subnet does not open port 80.
            try lab.outside.ip("route", "add", NetLab.subnet, "via", NetLab.hostOutside)
            let direct = try lab.outside.socket(.tcp)
            defer { close(direct) }
            #expect(!connectSocket(direct, NetLab.container, 80, timeoutMs: 500))

            // CVE-2020-8558: route_localnet must not let the container reach the host's
            // localhost-only services. The container (root in its netns) routes 127.0.0.1 to the
            // gateway and sends a datagram to a host socket bound to 127.0.0.1.
            let secret = try lab.host.socket(.udp)
            defer { close(secret) }
            try bindSocket(secret, "127.0.0.1", 9999)
            try lab.ctr.sysctl("net.ipv4.conf.all.route_localnet=1")
            try lab.ctr.sysctl("net.ipv4.conf.eth0.route_localnet=1")
            try lab.ctr.ip("route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
            try lab.ctr.ip("route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local")
            try lab.ctr.ip(
                "route", "add", "127.0.0.1/32", "via", NetLab.gateway, "dev", "eth0", "src", NetLab.container)
            func sneak() throws -> Bool {
                let probe = try lab.ctr.socket(.udp)
                defer { close(probe) }
                guard connectSocket(probe, "127.0.0.1", 9999, timeoutMs: 100) else { return false }
                _ = "leak".withCString { send(probe, $0, 4, 0) }
                return receive(secret, timeoutMs: 500)?.0 == "leak"
            }
            #expect(try sneak() == false)
            // The control: without clab's input rule the datagram arrives (why the rule exists).
            try lab.host.run { () throws -> Void in _ = try NFTables.run("flush chain ip clab input") }
            #expect(try sneak() == true)

            try lab.host.run { () throws -> Void in
                try Firewall.unpublish(containerID: "e2e")
                try Firewall.removeNetwork(bridge: "clabt0")
                #expect(try Firewall.removeTableIfUnused())
                #expect(try NFTables.run("list ruleset").isEmpty)
            }
        }
    }
}

// MARK: - Helpers

/// Nothing of the host changes: its ruleset and route_localnet are as they were, and none of this
/// suite's names reach it. Other clab runs (the stage-11 suites, in parallel) may change the
/// host's own `table ip clab` and `table bridge clab` and ip_forward meanwhile, so those are left out of the
/// comparison; this suite writes ip_forward only inside its "host" namespace.
private func withHostUnchanged(_ body: () throws -> Void) throws {
    func snapshot() throws -> [String] {
        let ruleset = try runProcess(["/usr/sbin/nft", "list", "ruleset"]).stdout
        for marker in ["clabt0", "clabt1", "10.250.1", "clab:ctr", "clab:race", "clab:e2e"] {
            #expect(!ruleset.contains(marker), "the host's ruleset holds \(marker)")
        }
        var others: [Substring] = []
        var inClabTable = false
        for line in ruleset.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "table ip clab {" || line == "table bridge clab {" {
                inClabTable = true
            } else if inClabTable {
                inClabTable = line != "}"
            } else {
                others.append(line)
            }
        }
        let files = ["/proc/sys/net/ipv4/conf/all/route_localnet", "/proc/sys/net/ipv4/conf/default/route_localnet"]
        return [others.joined(separator: "\n")]
            + files.map { (try? String(contentsOfFile: $0, encoding: .utf8)) ?? "?" }
            + [access("/proc/sys/net/ipv4/conf/clabt0", F_OK) == 0 ? "clabt0 on the host" : ""]
    }
    let before = try snapshot()
    try body()
    #expect(try snapshot() == before)
}

/// The error `body` throws, as its one-line description; nil if it succeeds.
private func errorMessage(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return "\(error)"
    }
}

/// The rules of clab's table in the calling thread's namespace, as "chain text".
private func listedRules() throws -> [String] {
    (try NFTables.rules(table: "ip clab") ?? []).map { "\($0.chain) \($0.text)" }
}

/// A named network namespace of the test's own (`ip netns add`), deleted by `delete()`.
final class TestNetns: Sendable {
    let name: String

    init(_ role: String, prefix: String = "clabfw-\(String(UInt32.random(in: 0...0xffffff), radix: 16))") throws {
        name = "\(prefix)-\(role)"
        try runChecked(["/usr/sbin/ip", "netns", "add", name])
    }

    func delete() { _ = try? runProcess(["/usr/sbin/ip", "netns", "delete", name]) }

    func ip(_ args: String...) throws { try runChecked(["/usr/sbin/ip", "-n", name] + args) }

    func sysctl(_ setting: String) throws {
        try runChecked(["/usr/sbin/ip", "netns", "exec", name, "/usr/sbin/sysctl", "-qw", setting])
    }

    /// Runs `body` on a fresh thread that entered this namespace first (libnftables, sockets and
    /// /proc/sys/net follow the calling thread's namespace); the thread ends afterwards. If setns
    /// fails, `body` does not run.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = ResultBox<T>()
        let path = "/run/netns/\(name)"
        let thread = Thread {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, clab_setns(fd, Int32(CLONE_NEWNET)) == 0 else {
                let code = errno
                if fd >= 0 { close(fd) }
                result.set(.failure(SyscallError("setns \(path)", errno: code)))
                return
            }
            close(fd)
            result.set(Result { try body() })
        }
        thread.start()
        return try result.wait().get()
    }

    enum Kind { case tcp, udp }

    /// A socket created in this namespace (it stays there whichever thread uses it).
    func socket(_ kind: Kind) throws -> Int32 {
        try run { () throws -> Int32 in
            let type = kind == .tcp ? SOCK_STREAM : SOCK_DGRAM
            let fd = Glibc.socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SyscallError("socket") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            return fd
        }
    }
}

/// host (bridge clabt0 10.250.11.1/24, 198.51.100.1/24 to outside, forwarding on), ctr
/// (10.250.11.2, default via the bridge, its bridge port in hairpin mode as clab's plumbing
/// sets it), outside (198.51.100.2, no route to the subnet).
struct NetLab {
    static let subnet = "10.250.11.0/24"
    static let gateway = "10.250.11.1"
    static let container = "10.250.11.2"
    static let hostOutside = "198.51.100.1"
    static let outsideAddress = "198.51.100.2"
    let host: TestNetns
    let ctr: TestNetns
    let outside: TestNetns

    init() throws {
        let prefix = "clabfw-\(String(UInt32.random(in: 0...0xffffff), radix: 16))"
        host = try TestNetns("host", prefix: prefix)
        var made = [host]
        do {
            ctr = try TestNetns("ctr", prefix: prefix)
            made.append(ctr)
            outside = try TestNetns("out", prefix: prefix)
            made.append(outside)
            for ns in made { try ns.ip("link", "set", "lo", "up") }
            try host.ip("link", "add", "clabt0", "type", "bridge")
            try host.ip("addr", "add", "\(Self.gateway)/24", "dev", "clabt0")
            try host.ip("link", "set", "clabt0", "up")
            try host.ip("link", "add", "vctr", "type", "veth", "peer", "name", "eth0", "netns", ctr.name)
            try host.ip("link", "set", "vctr", "master", "clabt0", "up")
            try host.ip("link", "set", "vctr", "type", "bridge_slave", "hairpin", "on")
            try ctr.ip("addr", "add", "\(Self.container)/24", "dev", "eth0")
            try ctr.ip("link", "set", "eth0", "up")
            try ctr.ip("route", "add", "default", "via", Self.gateway)
            try host.ip("link", "add", "vout", "type", "veth", "peer", "name", "eth0", "netns", outside.name)
            try host.ip("addr", "add", "\(Self.hostOutside)/24", "dev", "vout")
            try host.ip("link", "set", "vout", "up")
            try outside.ip("addr", "add", "\(Self.outsideAddress)/24", "dev", "eth0")
            try outside.ip("link", "set", "eth0", "up")
            try host.sysctl("net.ipv4.ip_forward=1")  // the "host" namespace's own
        } catch {
            for ns in made { ns.delete() }
            throw error
        }
    }

    func delete() { for ns in [host, ctr, outside] { ns.delete() } }
}

private func runChecked(_ argv: [String]) throws {
    let out = try runProcess(argv)
    guard out.status == 0 else {
        throw ClabError("\(argv.joined(separator: " ")): exit \(out.status): \(out.stderr)")
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<T, Error>?

    func set(_ value: Result<T, Error>) {
        condition.withLock {
            result = value
            condition.broadcast()
        }
    }

    func wait() -> Result<T, Error> {
        condition.withLock {
            while true {
                if let result { return result }
                condition.wait()
            }
        }
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

private func socketAddress(_ ip: String, _ port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    inet_pton(AF_INET, ip, &address.sin_addr)
    return address
}

private func bindSocket(_ fd: Int32, _ ip: String, _ port: UInt16) throws {
    var address = socketAddress(ip, port)
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw SyscallError("bind \(ip):\(port)") }
}

private func waitFor(_ fd: Int32, _ events: Int16, timeoutMs: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: events, revents: 0)
    return poll(&entry, 1, timeoutMs) == 1 && entry.revents & events != 0
}

/// Non-blocking connect with a deadline; true once connected.
private func connectSocket(_ fd: Int32, _ ip: String, _ port: UInt16, timeoutMs: Int32) -> Bool {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    defer { _ = fcntl(fd, F_SETFL, flags) }
    var address = socketAddress(ip, port)
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    if rc == 0 { return true }
    guard errno == EINPROGRESS, waitFor(fd, Int16(POLLOUT), timeoutMs: timeoutMs) else { return false }
    var error: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
    return error == 0
}

private func dotted(_ address: sockaddr_in) -> String {
    var copy = address.sin_addr
    var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
    inet_ntop(AF_INET, &copy, &buffer, socklen_t(buffer.count))
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Accepts one connection within the deadline: the connection and the client's address.
private func acceptSocket(_ fd: Int32, timeoutMs: Int32) -> (Int32, String)? {
    guard waitFor(fd, Int16(POLLIN), timeoutMs: timeoutMs) else { return nil }
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let conn = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &length) }
    }
    return conn >= 0 ? (conn, dotted(address)) : nil
}

/// Reads what arrives within the deadline, with the sender's address.
private func receive(_ fd: Int32, timeoutMs: Int32) -> (String, (String, sockaddr_in?))? {
    guard waitFor(fd, Int16(POLLIN), timeoutMs: timeoutMs) else { return nil }
    var buffer = [UInt8](repeating: 0, count: 512)
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let n = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &length) }
    }
    guard n > 0 else { return nil }
    let text = String(decoding: buffer[0..<n], as: UTF8.self)
    return length > 0 ? (text, (dotted(address), address)) : (text, ("", nil))
}
