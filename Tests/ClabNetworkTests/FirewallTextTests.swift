import ClabNetlink
import ClabSys
import Testing

@testable import ClabNetwork

// MARK: - Unit: -p parsing and the rule text

@Suite("firewall: -p parsing and rule text")
struct FirewallTextTests {
    @Test func parsesTheForms() throws {
        #expect(try PortPublish.parse("8080:80") == PortPublish(hostPort: 8080, containerPort: 80, proto: .tcp))
        #expect(try PortPublish.parse("8080:80/tcp").description == "8080:80/tcp")
        #expect(try PortPublish.parse("53:53/udp") == PortPublish(hostPort: 53, containerPort: 53, proto: .udp))
        #expect(try PortPublish.parse("53:53/UDP").proto == .udp)
        let local = try PortPublish.parse("127.0.0.1:8080:80/udp")
        #expect(local == PortPublish(hostIP: "127.0.0.1", hostPort: 8080, containerPort: 80, proto: .udp))
        #expect(local.description == "127.0.0.1:8080:80/udp")
        // 0.0.0.0 means every host address, as Docker reads it.
        #expect(try PortPublish.parse("0.0.0.0:8080:80").hostIP == nil)
        #expect(try PortPublish.parse("65535:1").hostPort == 65535)
    }

    @Test(
        arguments: [
            ("0:80", "-p 0:80: host port 0 is out of range 1-65535"),
            ("70000:80", "-p 70000:80: host port 70000 is out of range 1-65535"),
            ("8080:0", "-p 8080:0: container port 0 is out of range 1-65535"),
            ("8080:65536", "-p 8080:65536: container port 65536 is out of range 1-65535"),
            (
                "99999999999999999999:80",
                "-p 99999999999999999999:80: host port 99999999999999999999 is out of range 1-65535"
            ),
            ("8080", "-p 8080: use [HOSTIP:]HOSTPORT:PORT[/udp], e.g. -p 8080:80"),
            ("", "-p : use [HOSTIP:]HOSTPORT:PORT[/udp], e.g. -p 8080:80"),
            ("8080:", "-p 8080:: the container port is missing: use [HOSTIP:]HOSTPORT:PORT"),
            (":80", "-p :80: the host port is missing: use [HOSTIP:]HOSTPORT:PORT"),
            ("http:80", "-p http:80: host port http is not a number"),
            ("+80:80", "-p +80:80: host port +80 is not a number"),
            ("8000-8010:80", "-p 8000-8010:80: host port 8000-8010 is not a number"),
            ("8080:80/sctp", "-p 8080:80/sctp: protocol 'sctp' is not supported: use /tcp or /udp"),
            ("8080:80/", "-p 8080:80/: the protocol after '/' is missing: use /tcp or /udp"),
            ("1.2.3:8080:80", "-p 1.2.3:8080:80: host IP 1.2.3 is not a dotted IPv4 address"),
            ("1.2.3.256:8080:80", "-p 1.2.3.256:8080:80: host IP 1.2.3.256 is not a dotted IPv4 address"),
            ("127.0.0.01:8080:80", "-p 127.0.0.01:8080:80: host IP 127.0.0.01 is not a dotted IPv4 address"),
            ("localhost:8080:80", "-p localhost:8080:80: host IP localhost is not a dotted IPv4 address"),
            (
                ":8080:80",
                "-p :8080:80: the host IP before the first ':' is empty: use [HOSTIP:]HOSTPORT:PORT[/udp], e.g. -p 8080:80"
            ),
            (
                "::1:8080:80",
                "-p ::1:8080:80: too many ':' (IPv6 host addresses are not supported): use [HOSTIP:]HOSTPORT:PORT[/udp], e.g. -p 8080:80"
            ),
        ])
    func rejectsBadInputInOneLine(input: String, message: String) {
        do {
            _ = try PortPublish.parse(input)
            Issue.record("-p \(input) was accepted")
        } catch let error as ClabError {
            #expect(error.message == message)
            #expect(error.exitCode == 2)
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func scriptIsTheBannerText() throws {
        let ports = [try PortPublish.parse("8080:80"), try PortPublish.parse("127.0.0.1:5353:53/udp")]
        let text = Firewall.script(
            bridge: "clab0", subnet: "10.88.0.7/16", ports: ports, containerIP: "10.88.0.2", containerID: "abc123")
        #expect(
            text == """
                add table ip clab
                add chain ip clab published
                add chain ip clab prerouting { type nat hook prerouting priority dstnat; policy accept; }
                add rule ip clab prerouting fib daddr type local jump published
                add chain ip clab output { type nat hook output priority -100; policy accept; }
                add rule ip clab output fib daddr type local jump published
                add chain ip clab postrouting { type nat hook postrouting priority srcnat; policy accept; }
                add chain ip clab forward { type filter hook forward priority filter; policy accept; }
                add chain ip clab input { type filter hook input priority filter; policy accept; }
                add rule ip clab postrouting ip saddr 10.88.0.0/16 oifname != "clab0" masquerade comment "clab-net:clab0"
                add rule ip clab postrouting oifname "clab0" ip saddr 10.88.0.0/16 ct status dnat masquerade comment "clab-net:clab0"
                add rule ip clab postrouting oifname "clab0" ip saddr 127.0.0.0/8 masquerade comment "clab-net:clab0"
                add rule ip clab forward oifname "clab0" ct state { established, related } accept comment "clab-net:clab0"
                add rule ip clab forward oifname "clab0" ct status dnat accept comment "clab-net:clab0"
                add rule ip clab forward oifname "clab0" iifname != "clab0" drop comment "clab-net:clab0"
                add rule ip clab input iifname "clab0" ip daddr 127.0.0.0/8 ct state != { established, related } drop comment "clab-net:clab0"
                add rule ip clab published tcp dport 8080 dnat to 10.88.0.2:80 comment "clab:abc123"
                add rule ip clab published ip daddr 127.0.0.1 udp dport 5353 dnat to 10.88.0.2:53 comment "clab:abc123"
                """)
        // Without a container: the network's part only.
        #expect(
            !Firewall.script(bridge: "clab0", subnet: "10.88.0.0/16", ports: ports, containerIP: nil).contains(
                "dnat to"))
        #expect(Firewall.localhostRoutingCommand(bridge: "clab0") == "sysctl -w net.ipv4.conf.clab0.route_localnet=1")
    }

    @Test func listingsParse() {
        let listing = """
            table ip clab { # handle 5
            \tchain published { # handle 1
            \t\tip daddr 127.0.0.1 udp dport 5353 dnat to 10.1.1.2:53 comment "clab:abc" # handle 14
            \t}

            \tchain prerouting { # handle 2
            \t\ttype nat hook prerouting priority dstnat; policy accept;
            \t\tfib daddr type local jump published # handle 3
            \t}
            }
            """
        let rules = NFTables.parseRules(listing)
        #expect(
            rules == [
                .init(
                    chain: "published", handle: 14,
                    text: "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.1.1.2:53 comment \"clab:abc\"",
                    comment: "clab:abc"),
                .init(chain: "prerouting", handle: 3, text: "fib daddr type local jump published", comment: nil),
            ])
        #expect(
            Firewall.publication(in: rules[0].text)
                == PortPublish(hostIP: "127.0.0.1", hostPort: 5353, containerPort: 0, proto: .udp))
        #expect(
            NFTables.errorLine(
                "Error: Could not process rule: No such file or directory\ndelete rule ip clab published handle 99\n      ^^\n"
            )
                == "nft: Could not process rule: No such file or directory: delete rule ip clab published handle 99")
    }

    @Test func namesThatWouldEscapeTheRuleTextAreRefused() {
        for name in ["", "clab0\"", "a b", "../x", "all", "default", "averyveryverylongname", "x;y"] {
            #expect(throws: ClabError.self) { try Firewall.checkedBridge(name) }
        }
        for id in ["", "a\"b", "a b", String(repeating: "a", count: 65)] {
            #expect(throws: ClabError.self) { try Firewall.checkedID(id) }
        }
        #expect(IPv4Network("10.88.0.0/16")?.description == "10.88.0.0/16")
        #expect(IPv4Network("10.88.3.4") == nil)
        #expect(IPv4Network("10.88.0.0/33") == nil)
    }
}
