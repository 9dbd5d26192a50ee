import CShims
import ClabHost
import ClabNetlink
import ClabNetwork
import ClabRuntime
import ClabSpec
import ClabSys
import Foundation
import Glibc
import Testing

/// A clab (or, with `command:`, any program) that keeps running while the test looks at it;
/// its output goes to a file. Stopped by pid.
final class BackgroundClab {
    let pid: pid_t
    let log: String

    init(_ args: [String], command: String = TestEnv.clab) throws {
        log = TestEnv.root + "/bg-\(UUID().uuidString.prefix(8)).log"
        let argv = ["/bin/sh", "-c", "exec \"$0\" \"$@\" </dev/null >\"\(log)\" 2>&1", command] + args
        var environment = ProcessInfo.processInfo.environment
        environment["CLAB_ROOT"] = TestEnv.root
        var pid: pid_t = 0
        let rc = spawnWithDefaultSignals(&pid, argv, environment: environment, actions: nil)
        guard rc == 0 else { throw SyscallError("posix_spawn clab", errno: rc) }
        self.pid = pid
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Waits until the output contains `text`.
    func waitFor(_ text: String, seconds: Double = 10) -> Bool { eventually(seconds) { output.contains(text) } }

    /// SIGTERM (clab forwards it), then reaps it; returns the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        kill(pid, signal)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        try? FileManager.default.removeItem(atPath: log)
        return ExitStatus(raw: status).code
    }
}

/// The "outside world" of the tests: a network namespace of the test's own, linked to the host by
/// a veth pair with TEST-NET-2 addresses (198.51.100.1 on the host's side, .2 outside).
final class OutsideHost {
    let name: String
    let hostLink: String
    static let hostAddress = "198.51.100.1"
    static let address = "198.51.100.2"

    init() throws {
        let id = UUID().uuidString.prefix(6).lowercased()
        name = "clabout-\(id)"
        hostLink = "cx\(id)"
        let steps: [[String]] = [
            ["/usr/sbin/ip", "netns", "add", name],
            ["/usr/sbin/ip", "link", "add", hostLink, "type", "veth", "peer", "name", "eth0", "netns", name],
            ["/usr/sbin/ip", "addr", "add", "\(Self.hostAddress)/24", "dev", hostLink],
            ["/usr/sbin/ip", "link", "set", hostLink, "up"],
            ["/usr/sbin/ip", "netns", "exec", name, "ip", "addr", "add", "\(Self.address)/24", "dev", "eth0"],
            ["/usr/sbin/ip", "netns", "exec", name, "ip", "link", "set", "eth0", "up"],
            ["/usr/sbin/ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ]
        for step in steps {
            let out = try runProcess(step)
            guard out.status == 0 else {
                remove()
                throw ClabError("\(step.joined(separator: " ")): \(out.stderr)")
            }
        }
    }

    func remove() {
        _ = try? runProcess(["/usr/sbin/ip", "link", "del", hostLink])
        _ = try? runProcess(["/usr/sbin/ip", "netns", "del", name])
    }

    /// A command inside the outside namespace, with the host's busybox.
    func run(_ command: String) throws -> Output {
        try runProcess(["/usr/sbin/ip", "netns", "exec", name, "/bin/sh", "-c", command])
    }
}

/// One UDP datagram to address:port and its answer, sent from a network namespace (a path to
/// its nsfs file) or the host's. A dedicated thread enters the namespace, so nothing else moves.
func udpExchange(_ message: String, to address: String, port: UInt16, netns: String? = nil) -> String? {
    final class Box: @unchecked Sendable { var reply: String? }
    let box = Box()
    let thread = Thread {
        if let netns {
            let fd = open(netns, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, clab_setns(fd, Int32(CLONE_NEWNET)) == 0 else { return }
            close(fd)
        }
        let sock = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard sock >= 0 else { return }
        defer { close(sock) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &addr.sin_addr)
        for _ in 0..<3 {
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    message.withCString {
                        sendto(sock, $0, strlen($0), 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            var buffer = [UInt8](repeating: 0, count: 512)
            let n = recv(sock, &buffer, buffer.count, 0)
            if n > 0 {
                box.reply = String(decoding: buffer[0..<n], as: UTF8.self)
                return
            }
        }
    }
    thread.start()
    while !thread.isFinished { usleep(10_000) }
    return box.reply
}

/// Everything stage 11 leaves on the host, to compare before and after.
struct HostNetworkState: Equatable {
    var ipForward: String
    var clabTable: Bool
    var clabLinks: [String]

    static func capture() -> HostNetworkState {
        let links = ((try? Netlink().links()) ?? []).map(\.name).filter {
            $0.hasPrefix("vc") || $0.hasPrefix("clab") || $0.hasPrefix("br-")
        }
        let table =
            (try? runProcess(["/usr/sbin/nft", "list", "table", "ip", "clab"]))?.status == 0
            || (try? runProcess(["/usr/sbin/nft", "list", "table", "bridge", "clab"]))?.status == 0
        return HostNetworkState(
            ipForward: (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8))?.trimmed ?? "?",
            clabTable: table, clabLinks: links.sorted())
    }
}

/// Run alone, after the parallel suites (`make test`'s second pass, with the timing suites):
/// these compare host-wide state (ip_forward, clab's nft table, clab's links) before and after,
/// which another suite's stage-11 container would change meanwhile.
extension Timing {
    @Suite("stage 11 · container networking", needsRoot, .serialized)
    struct Stage11Tests {
        init() throws { try TestEnv.ensureImage() }

        /// A free port for one test (tests run one at a time here, and nothing else publishes).
        static func port() -> UInt16 { UInt16.random(in: 20000...40000) }

        @Test func probes() throws {
            let before = HostNetworkState.capture()
            let r = try probe(11)
            expectHolds(r, "bridge.eth0-address")
            expectHolds(r, "bridge.default-route")
            expectHolds(r, "bridge.gateway-ping")
            expectHolds(r, "bridge.veth-on-bridge")
            expectHolds(r, "net.devices-own-only")
            // From stage 11 the wording says eth0 is expected too.
            #expect(r["net.devices-own-only"]?.property.hasPrefix("only lo and its own eth0 exist") == true)
            // The veth goes with the container's network namespace, which the kernel frees just after.
            #expect(eventually(5) { HostNetworkState.capture() == before }, "stage 11 left something on the host")
        }

        @Test func outsideSeesTheHostsAddressAndPublishedPortsAnswer() throws {
            let before = HostNetworkState.capture()
            let outside = try OutsideHost()
            defer { outside.remove() }
            // The outside world runs a web server that says who called it.
            let www = TestEnv.root + "/outside-www-\(UUID().uuidString.prefix(6))"
            try FS.makeDirectories(www + "/cgi-bin")
            defer { try? FS.removeTree(www) }
            try FS.write(
                "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"caller=$REMOTE_ADDR\"\n",
                to: www + "/cgi-bin/who"
            )
            chmod(www + "/cgi-bin/who", 0o755)
            let server = try BackgroundClab(
                [
                    "netns", "exec", outside.name, "/bin/busybox", "httpd", "-f", "-p", "\(OutsideHost.address):8000",
                    "-h",
                    www,
                ],
                command: "/usr/sbin/ip")
            defer { server.stop() }
            #expect(
                eventually {
                    (try? outside.run("busybox wget -q -O /dev/null http://\(OutsideHost.address):8000/cgi-bin/who"))?
                        .status == 0
                })
            // Outbound: the outside sees the host's address, not the container's (masquerade).
            let out = try clab(
                "step", "11", "--quiet", "--", "wget", "-q", "-O", "-", "http://\(OutsideHost.address):8000/cgi-bin/who"
            )
            #expect(out.status == 0, "\(out.stderr)")
            #expect(out.stdout.contains("caller=\(OutsideHost.hostAddress)"), "\(out.stdout)")

            // Inbound: a published TCP port, from outside and from the host's 127.0.0.1.
            let tcp = Self.port()
            let udp = tcp + 1
            let web = try BackgroundClab([
                "step", "11", "--quiet", "-p", "\(tcp):80", "-p", "\(udp):81/udp", "--", "sh", "-c",
                "mkdir -p /www/cgi-bin && cp /dev/null /www/x && printf '#!/bin/sh\\necho\\necho caller=$REMOTE_ADDR\\n' > /www/cgi-bin/who && chmod +x /www/cgi-bin/who && httpd -p 80 -h /www && echo ready && exec udp-echo 81",
            ])
            defer { web.stop() }
            #expect(web.waitFor("udp-echo: listening"), "\(web.output)")
            let fromOutside = try outside.run(
                "busybox wget -q -O - http://\(OutsideHost.hostAddress):\(tcp)/cgi-bin/who")
            // (httpd listens on IPv6 too, so it may show the address as ::ffff:198.51.100.2.)
            #expect(
                fromOutside.stdout.contains("\(OutsideHost.address)"), "\(fromOutside.stdout) \(fromOutside.stderr)")
            let fromHost = try runProcess([
                "/bin/busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:\(tcp)/cgi-bin/who",
            ])
            #expect(fromHost.stdout.contains("caller="), "\(fromHost.stdout) \(fromHost.stderr)")
            // UDP too, from outside and from the host.
            let udpOutside = udpExchange(
                "ping", to: OutsideHost.hostAddress, port: udp, netns: "/run/netns/\(outside.name)")
            #expect(
                udpOutside?.contains("udp-echo: ping from \(OutsideHost.address)") == true,
                "\(udpOutside ?? "no reply")")
            let udpHost = udpExchange("ping", to: "127.0.0.1", port: udp)
            #expect(udpHost?.contains("udp-echo: ping from") == true, "\(udpHost ?? "no reply")")
            web.stop()
            // The veth goes with the container's network namespace, which the kernel frees just after.
            #expect(eventually(5) { HostNetworkState.capture() == before }, "stage 11 left something on the host")
        }

        /// A container's root holds CAP_NET_ADMIN in its network namespace: it may set eth0 to
        /// another container's MAC and address. The bridge must not let it receive that
        /// container's traffic (here: its published port, reached from the host).
        @Test func aContainerCannotTakeAnotherContainersAddress() throws {
            let before = HostNetworkState.capture()
            let port = Self.port()
            let victim = try BackgroundClab([
                "step", "11", "--quiet", "-p", "\(port):80", "--", "sh", "-c",
                "ip -4 addr show eth0; ip link show eth0; echo ready; while true; do echo VICTIM | nc -l -p 80; done",
            ])
            defer { victim.stop() }
            #expect(victim.waitFor("ready"), "\(victim.output)")
            let out = victim.output
            guard let ip = out.firstMatch(of: /inet ([0-9.]+)\//)?.1,
                let mac = out.firstMatch(of: /ether ([0-9a-f:]+)/)?.1
            else {
                Issue.record("no address in \(out)")
                return
            }
            func ask() -> String {
                (try? runProcess(["/usr/bin/timeout", "3", "/bin/busybox", "nc", "127.0.0.1", "\(port)"]))?.stdout ?? ""
            }
            #expect(eventually { ask().contains("VICTIM") })
            let thief = try BackgroundClab([
                "step", "11", "--quiet", "--", "sh", "-c",
                "gw=$(ip route | awk '/default/{print $3}'); ip link set eth0 down; ip link set eth0 address \(mac);"
                    + " ip link set eth0 up; ip addr add \(ip)/32 dev eth0; ip route add default via $gw;"
                    + " ping -c 2 -W 1 $gw; arping -U -c 2 -I eth0 -s \(ip) \(ip); arping -A -c 2 -I eth0 -s \(ip) \(ip);"
                    + " echo stolen; while true; do echo THIEF | nc -l -p 80; done",
            ])
            defer { thief.stop() }
            #expect(thief.waitFor("stolen"), "\(thief.output)")
            let answers = (0..<3).map { _ in ask() }
            #expect(!answers.contains { $0.contains("THIEF") }, "\(answers)")
            #expect(answers.contains { $0.contains("VICTIM") }, "\(answers)")
            thief.stop()
            victim.stop()
            #expect(eventually(5) { HostNetworkState.capture() == before }, "stage 11 left something on the host")
        }

        /// A network's first container that fails halfway through its shared parts (here its
        /// bridge cannot be made) leaves no ip_forward change and no active mark behind once the
        /// failed start is undone (`detach`, as Runtime.remove and gc do).
        @Test func aFailedAttachIsUndoneByDetach() throws {
            let root = TestEnv.root + "/attachfail-\(UUID().uuidString.prefix(6))"
            let store = NetworkStore(root: root, runDir: root + "/run")
            let bridge = "clabfail\(UUID().uuidString.prefix(8).lowercased())"  // 16 bytes: no such link
            defer {
                // On the old code the mark stays: drop it, and ip_forward with it, for the host's sake.
                if unlink(store.hostDir + "/active/" + bridge) == 0,
                    ((try? FileManager.default.contentsOfDirectory(atPath: store.hostDir + "/active")) ?? []).isEmpty,
                    let saved = try? String(contentsOfFile: store.hostDir + "/ip_forward.saved", encoding: .utf8)
                {
                    try? FS.write(saved, to: "/proc/sys/net/ipv4/ip_forward")
                    unlink(store.hostDir + "/ip_forward.saved")
                }
                try? FS.removeTree(root)
            }
            try FS.makeDirectories(store.configDir, mode: 0o755)
            try FS.write(
                "{\"name\":\"failnet\",\"subnet\":\"203.0.113.0/28\",\"bridge\":\"\(bridge)\",\"created\":0}\n",
                to: store.configDir + "/failnet.json")
            let before = HostNetworkState.capture()
            // No namespace fd at all: nothing may ever be plumbed into the host's own namespace.
            let netns: Int32 = -1
            #expect(throws: (any Error).self) {
                _ = try store.attach(
                    containerID: "failattach", name: nil, network: "failnet", netnsFD: netns, ports: [])
            }
            store.detach(containerID: "failattach")
            #expect(!FS.exists(store.hostDir + "/active/" + bridge), "the active mark was left behind")
            #expect(store.allLeases().isEmpty)
            #expect(HostNetworkState.capture() == before, "the failed attach left something on the host")
        }

        @Test func containersOnAUserNetworkFindEachOtherByName() throws {
            let net = "t\(UUID().uuidString.prefix(6).lowercased())"
            let created = try clab("network", "create", net)
            #expect(created.status == 0, "\(created.stderr)")
            defer { _ = try? clab("network", "rm", net) }
            let server = "srv\(UUID().uuidString.prefix(6).lowercased())"
            let web = try BackgroundClab([
                "step", "11", "--quiet", "--net", net, "--name", server, "--", "sh", "-c",
                "echo hello from \(server) > /tmp/index.html && httpd -p 80 -h /tmp && echo ready && sleep 60",
            ])
            defer { web.stop() }
            #expect(web.waitFor("ready"), "\(web.output)")
            let client = try clab(
                "step", "11", "--quiet", "--net", net, "--", "sh", "-c",
                "wget -q -O - http://\(server)/; grep \(server) /etc/hosts")
            #expect(client.stdout.contains("hello from \(server)"), "\(client.stdout) \(client.stderr)")
            // The default bridge does not know the name: it is the user network that resolves it.
            let other = try clab("step", "11", "--quiet", "--", "sh", "-c", "wget -q -T 2 -O - http://\(server)/")
            #expect(other.status != 0)
            // Leases, names and hosts files are root's alone.
            for dir in [TestEnv.root + "/run/networks", "/run/clab/net"] {
                var st = stat()
                #expect(stat(dir, &st) == 0 && st.st_mode & 0o777 == 0o700 && st.st_uid == 0, "\(dir)")
            }
            let inspect = try clab("network", "inspect", net)
            #expect(inspect.stdout.contains(server), "\(inspect.stdout)")
            let busy = try clab("network", "rm", net)
            #expect(busy.status != 0 && busy.stderr.contains("in use"), "\(busy.stderr)")
        }

        @Test func noneHostAndContainerModels() throws {
            let none = try clab(
                "step", "11", "--quiet", "--net", "none", "--", "sh", "-c",
                "ls /sys/class/net 2>/dev/null; tail -n +3 /proc/net/dev | cut -d: -f1")
            #expect(none.stdout.split(whereSeparator: \.isWhitespace).map(String.init) == ["lo"], "\(none.stdout)")
            let hostLinks = ((try? Netlink().links()) ?? []).map(\.name)
            let host = try clab(
                "step", "11", "--quiet", "--net", "host", "--", "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1")
            let seen = host.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
            #expect(
                Set(hostLinks.filter { !$0.hasPrefix("vc") }).isSubset(
                    of: Set(seen).union(hostLinks.filter { $0.hasPrefix("vc") })), "\(seen) vs \(hostLinks)")
            #expect(seen.count > 1, "host mode sees only \(seen)")
            let name = "first\(UUID().uuidString.prefix(6).lowercased())"
            let first = try BackgroundClab([
                "step", "11", "--quiet", "--name", name, "--", "sh", "-c", "ip -4 -o addr show dev eth0; sleep 60",
            ])
            defer { first.stop() }
            #expect(first.waitFor("inet "), "\(first.output)")
            let address = first.output.split(separator: " ").first { $0.contains("/") && $0.contains(".") }.map(
                String.init)
            let second = try clab(
                "step", "11", "--quiet", "--net", "container:\(name)", "--", "ip", "-4", "-o", "addr", "show", "dev",
                "eth0"
            )
            #expect(
                address != nil && second.stdout.contains(address ?? "?"),
                "\(first.output) vs \(second.stdout) \(second.stderr)")
        }

        @Test func twentyContainersAtOnceGetDistinctAddressesAndCleanUp() throws {
            let before = HostNetworkState.capture()
            let runs = try (0..<20).map { _ in
                try BackgroundClab(["step", "11", "--quiet", "--", "sh", "-c", "ip -4 -o addr show dev eth0; sleep 30"])
            }
            var addresses: [String] = []
            for run in runs {
                #expect(run.waitFor("inet ", seconds: 30), "\(run.output)")
                if let a = run.output.split(separator: " ").first(where: { $0.contains("/") && $0.contains(".") }) {
                    addresses.append(String(a))
                }
            }
            for run in runs { run.stop() }
            #expect(addresses.count == 20)
            #expect(Set(addresses).count == 20, "\(addresses.sorted())")
            // The veth goes with the container's network namespace, which the kernel frees just after.
            #expect(eventually(5) { HostNetworkState.capture() == before }, "stage 11 left something on the host")
        }

        @Test func killNineThenGCLeavesNothing() throws {
            let before = HostNetworkState.capture()
            let port = Self.port()
            let run = try BackgroundClab([
                "step", "11", "--quiet", "-p", "\(port):80", "--", "sh", "-c", "echo up; sleep 60",
            ])
            #expect(run.waitFor("up"), "\(run.output)")
            #expect(HostNetworkState.capture() != before)
            run.stop(signal: SIGKILL)
            let gc = try clab("gc")
            #expect(gc.stdout.contains("released address"), "\(gc.stdout)")
            #expect(
                eventually(5) { HostNetworkState.capture() == before }, "\(HostNetworkState.capture()) vs \(before)")
        }

        @Test(arguments: [
            (["-p", "0:80"], "host port 0"),
            (["-p", "70000:80"], "70000"),
            (["--net", "container:nosuch-clab"], "no running container is named nosuch-clab"),
            (["--net", "nosuchnet"], "no network 'nosuchnet'"),
        ])
        func badInputGetsOneLineAndLeavesNothing(args: [String], message: String) throws {
            let before = HostNetworkState.capture()
            let out = try runProcess([TestEnv.clab, "step", "11", "--quiet"] + args + ["--", "true"])
            #expect(out.status != 0)
            #expect(out.stderr.contains(message), "\(out.stderr)")
            #expect(out.stderr.split(separator: "\n").count == 1, "\(out.stderr)")
            #expect(eventually(5) { HostNetworkState.capture() == before })
        }

        @Test func aPortInUseIsRefused() throws {
            let port = Self.port()
            // A host socket holds the port.
            let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(sock) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(sock, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            #expect(bound == 0)
            listen(sock, 1)
            let out = try clab("step", "11", "--quiet", "-p", "\(port):80", "--", "true")
            #expect(out.status != 0)
            #expect(out.stderr.contains("\(port)"), "\(out.stderr)")
        }

        @Test func aSubnetOverlappingTheHostsRoutesIsRefused() throws {
            let outside = try OutsideHost()
            defer { outside.remove() }
            let out = try clab(
                "network", "create", "overlap\(UUID().uuidString.prefix(4).lowercased())", "--subnet", "198.51.100.0/25"
            )
            #expect(out.status != 0)
            #expect(out.stderr.contains("overlaps the host's route"), "\(out.stderr)")
        }
    }
}

extension Timing {
    /// A state root deleted by hand (or a test's, removed after its run crashed) left its bridge
    /// marked active host-wide: no clab could detach from it, so its bridge, rules and
    /// ip_forward stayed. `clab gc`, from any root, removes such bridges; others' stay.
    /// Host-wide (it may restore ip_forward): alone, with the Timing suites.
    @Suite("gc · bridges of state roots that are gone", needsRoot)
    struct OrphanedBridgeTests {
        @Test func gcRemovesTheBridgesOfAStateRootThatIsGone() throws {
            let active = "/run/clab/net/active"
            try FS.makeDirectories(active)
            let orphan = "clabt" + ContainerSpec.newID().prefix(6)
            let kept = "clabt" + ContainerSpec.newID().prefix(6)
            try FS.write("/nonexistent/clab-root-\(orphan)\n", to: active + "/" + orphan)
            try FS.write(TestEnv.root + "\n", to: active + "/" + kept)
            defer {
                unlink(active + "/" + orphan)
                unlink(active + "/" + kept)
            }
            let out = try clab("gc")
            #expect(out.status == 0, "\(out.stderr)")
            #expect(
                out.stdout.contains("removed bridge \(orphan) and its rules (its state root is gone)"), "\(out.stdout)")
            #expect(!out.stdout.contains(kept))
            #expect(!FS.exists(active + "/" + orphan))
            #expect(FS.exists(active + "/" + kept), "a bridge whose root exists is another clab's, in use")
        }
    }
}
