import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 11: two simulated hosts (network namespaces joined by a veth "underlay"), a VXLAN tunnel
/// between them, and on each a bridge with one "container" namespace. The verifier reads each
/// namespace's links and addresses with the host's `ip -n NAME -d -j addr` (iproute2 enters the
/// namespace through /run/netns/NAME), and proves the tunnel with the host's `busybox ping` run
/// in the container namespaces. Nothing it runs comes from a learner's filesystem, and it
/// changes nothing.
public enum Lab11Verifier {
    public static let host1 = "lab11-host1"
    public static let host2 = "lab11-host2"
    public static let c1 = "lab11-c1"
    public static let c2 = "lab11-c2"
    public static let namespaces = [host1, host2, c1, c2]
    public static let vni = 42
    public static let port = 4789

    /// One simulated host and the container it carries.
    struct Side {
        let host: String
        let underlay: String
        let peerHost: String
        let peerUnderlay: String
        let container: String
        let overlay: String
    }

    static let sides = [
        Side(
            host: host1, underlay: "203.0.113.1", peerHost: host2, peerUnderlay: "203.0.113.2", container: c1,
            overlay: "10.42.0.1"),
        Side(
            host: host2, underlay: "203.0.113.2", peerHost: host1, peerUnderlay: "203.0.113.1", container: c2,
            overlay: "10.42.0.2"),
    ]

    public static func verify() -> [ProbeResult] {
        var r = LabResults(stage: 11)

        // The namespaces: each a network namespace of its own, not the host's, not another's.
        let views = Lab6Verifier.ownNamespaces(
            namespaces, lab: 11, into: &r, each: "every host and container needs its own"
        ).views
        func view(_ name: String) -> Result<NamespaceView, ClabError> {
            views[name] ?? .failure(ClabError("\(name) was not read"))
        }

        // The underlay: one veth pair between the two hosts, an address on each end.
        for side in sides {
            let property = ProbeName(
                id: "lab11.underlay-address.\(side.host)",
                wording: "\(side.host): the underlay veth has \(side.underlay)/24")
            switch view(side.host) {
            case .failure(let error):
                r.add(property, false, "not checked: \(error.message)", fix: "create \(side.host) first")
            case .success(let host):
                let (ok, evidence, fix) = underlay(side, host, peer: try? view(side.peerHost).get())
                r.add(property, ok, evidence, fix: fix)
            }
        }
        // Pings run only in namespaces that passed above: never in the host's own.
        func ping(from ns: String, to address: String, size: Int?) -> (ok: Bool, evidence: String) {
            if case .failure(let error) = view(ns) { return (false, "not tried: \(error.message)") }
            return Self.ping(from: ns, to: address, size: size)
        }
        let underlayPing = ping(from: host1, to: "203.0.113.2", size: nil)
        r.add(
            "lab11.underlay-ping", "the underlay works: \(host1) reaches 203.0.113.2", underlayPing.ok,
            underlayPing.evidence,
            fix:
                "the hosts cannot reach each other, so no tunnel can: give both ends of the underlay veth their address and `ip -n NAME link set eth0 up`"
        )

        // Each host: the VXLAN device, and the bridge that joins it to the container's veth.
        for side in sides {
            let property = ProbeName(
                id: "lab11.vxlan.\(side.host)",
                wording: "\(side.host): vxlan VNI \(vni), UDP port \(port), remote \(side.peerUnderlay)")
            switch view(side.host) {
            case .failure(let error):
                r.add(property, false, "not checked: \(error.message)", fix: "create \(side.host) first")
            case .success(let host):
                let (ok, evidence, fix) = vxlan(side, host)
                r.add(property, ok, evidence, fix: fix)
            }
        }
        for side in sides {
            let property = ProbeName(
                id: "lab11.bridge.\(side.host)",
                wording: "\(side.host): a bridge holds the vxlan device and \(side.container)'s veth")
            switch view(side.host) {
            case .failure(let error):
                r.add(property, false, "not checked: \(error.message)", fix: "create \(side.host) first")
            case .success(let host):
                let (ok, evidence, fix) = bridge(side, host)
                r.add(property, ok, evidence, fix: fix)
            }
        }

        // Each container: one veth end, its overlay address, up.
        for side in sides {
            let property = ProbeName(
                id: "lab11.eth0-address.\(side.container)", wording: "\(side.container): eth0 has \(side.overlay)/24")
            switch view(side.container) {
            case .failure(let error):
                r.add(property, false, "not checked: \(error.message)", fix: "create \(side.container) first")
            case .success(let container):
                let (ok, evidence, fix) = containerEnd(side, container)
                r.add(property, ok, evidence, fix: fix)
            }
        }

        // The proof: c1 reaches c2, with a small packet and with a full-size one.
        let small = ping(from: c1, to: "10.42.0.2", size: nil)
        r.add(
            "lab11.tunnel-ping", "\(c1) pings 10.42.0.2 through the tunnel", small.ok, small.evidence,
            fix:
                "fix the ✗ lines above first; then `ip -n \(host1) -s link show type vxlan` shows whether frames go into the tunnel"
        )
        let big =
            small.ok
            ? ping(from: c1, to: "10.42.0.2", size: 1472) : (ok: false, evidence: "not tried: the small ping failed")
        r.add(
            "lab11.tunnel-full-size", "a full-size packet crosses the tunnel (ping -s 1472)", big.ok, big.evidence,
            fix: small.ok
                ? "the tunnel adds 50 bytes of headers, so the vxlan device's MTU is 1450 and the bridge silently drops bigger frames: ip -n \(c1) link set eth0 mtu 1450, and the same in \(c2)"
                : "make the small ping work first")
        return r.results
    }

    // MARK: the properties

    static func underlay(_ side: Side, _ host: NamespaceView, peer: NamespaceView?) -> (Bool, String, String) {
        let create = "ip link add eth0 netns \(side.host) type veth peer name eth0 netns \(side.peerHost)"
        guard let link = host.links.first(where: { $0.has(side.underlay, prefix: 24) }) else {
            let veth = host.links.first { $0.kind == "veth" && host.peerNamespace(of: $0) == side.peerHost }
            guard let veth else {
                return (
                    false, "no link in \(side.host) has \(side.underlay)/24, and no veth leads to \(side.peerHost)",
                    "cable the hosts: \(create), then ip -n \(side.host) addr add \(side.underlay)/24 dev eth0"
                )
            }
            return (
                false, "no link in \(side.host) has \(side.underlay)/24 (\(veth.summary))",
                "ip -n \(side.host) addr add \(side.underlay)/24 dev \(veth.ifname)"
            )
        }
        guard link.kind == "veth" else {
            return (
                false, "\(side.underlay)/24 is on \(link.summary), not on a veth",
                "put it on the veth that leads to \(side.peerHost): \(create)"
            )
        }
        let peerName = host.peerNamespace(of: link)
        guard peerName == side.peerHost else {
            return (
                false, "\(link.summary) leads to \(peerName ?? "a namespace with no name"), not to \(side.peerHost)",
                "the underlay is one veth pair between the hosts: \(create)"
            )
        }
        guard link.isUp else {
            return (false, "\(link.summary) is down", "ip -n \(side.host) link set \(link.ifname) up")
        }
        if let peer, let other = link.linkIndex.flatMap({ peer.link(index: $0) }), !other.isUp {
            return (
                false, "\(link.summary); its other end in \(side.peerHost), \(other.ifname), is down",
                "ip -n \(side.peerHost) link set \(other.ifname) up"
            )
        }
        return (true, "\(link.summary), cabled to \(side.peerHost)", "")
    }

    static func vxlan(_ side: Side, _ host: NamespaceView) -> (Bool, String, String) {
        let create =
            "ip -n \(side.host) link add vxlan42 type vxlan id \(vni) dstport \(port) remote \(side.peerUnderlay) local \(side.underlay) dev eth0"
        let devices = host.links.filter { $0.kind == "vxlan" }
        // With several, judge the one on a bridge: that is the one the containers use.
        guard let dev = devices.first(where: { $0.master != nil }) ?? devices.first else {
            return (false, "no vxlan device in \(side.host)", "create one: \(create)")
        }
        let data = dev.vxlan
        let recreate = "ip -n \(side.host) link del \(dev.ifname), then \(create)"
        if data?.id != vni {
            return (
                false, "\(dev.summary): VNI \(data?.id.map(String.init) ?? "?")",
                "both ends must use VNI \(vni), or the other side drops every frame: \(recreate)"
            )
        }
        if data?.port != port {
            let why = data?.port == 8472 ? " (8472 is Linux's default from before IANA assigned \(port))" : ""
            return (
                false, "\(dev.summary): UDP port \(data?.port.map(String.init) ?? "?")\(why)",
                "say `dstport \(port)` when you create it: \(recreate)"
            )
        }
        if data?.remote != side.peerUnderlay {
            return (
                false, "\(dev.summary): remote \(data?.remote ?? "none")",
                "the remote is the other host's underlay address, \(side.peerUnderlay): \(recreate)"
            )
        }
        guard dev.isUp else {
            return (false, "\(dev.summary) is down", "ip -n \(side.host) link set \(dev.ifname) up")
        }
        return (true, "\(dev.summary): VNI \(vni), port \(port), remote \(side.peerUnderlay)", "")
    }

    static func bridge(_ side: Side, _ host: NamespaceView) -> (Bool, String, String) {
        let bridges = host.links.filter { $0.kind == "bridge" }
        let vxlanDev =
            host.links.first { $0.kind == "vxlan" && $0.master != nil } ?? host.links.first { $0.kind == "vxlan" }
        let veth = host.links.first { $0.kind == "veth" && host.peerNamespace(of: $0) == side.container }
        guard
            let br = bridges.first(where: { b in vxlanDev?.master == b.ifname || veth?.master == b.ifname })
                ?? bridges.first
        else {
            return (
                false, "no bridge in \(side.host)",
                "ip -n \(side.host) link add br0 type bridge && ip -n \(side.host) link set br0 up"
            )
        }
        guard let vxlanDev else {
            return (false, "no vxlan device in \(side.host) to put on \(br.ifname)", "create the vxlan device first")
        }
        guard vxlanDev.master == br.ifname else {
            return (
                false, "\(vxlanDev.ifname) is \(vxlanDev.master.map { "on \($0)" } ?? "on no bridge")",
                "ip -n \(side.host) link set \(vxlanDev.ifname) master \(br.ifname)"
            )
        }
        guard let veth else {
            return (
                false, "no veth in \(side.host) leads to \(side.container)",
                "ip -n \(side.host) link add veth-c type veth peer name eth0 netns \(side.container), then ip -n \(side.host) link set veth-c master \(br.ifname)"
            )
        }
        guard veth.master == br.ifname else {
            return (
                false,
                "\(veth.ifname), the veth to \(side.container), is \(veth.master.map { "on \($0)" } ?? "on no bridge")",
                "ip -n \(side.host) link set \(veth.ifname) master \(br.ifname)"
            )
        }
        for link in [br, veth] where !link.isUp {
            return (false, "\(link.summary) is down", "ip -n \(side.host) link set \(link.ifname) up")
        }
        return (true, "\(br.ifname) holds \(vxlanDev.ifname) and \(veth.ifname) (to \(side.container))", "")
    }

    static func containerEnd(_ side: Side, _ container: NamespaceView) -> (Bool, String, String) {
        let veths = container.links.filter { $0.kind == "veth" && container.peerNamespace(of: $0) == side.host }
        guard let link = veths.first(where: { $0.has(side.overlay, prefix: 24) }) ?? veths.first else {
            return (
                false, "no veth in \(side.container) leads to \(side.host)",
                "ip -n \(side.host) link add veth-c type veth peer name eth0 netns \(side.container)"
            )
        }
        guard link.has(side.overlay, prefix: 24) else {
            return (
                false, "\(link.summary) has no \(side.overlay)/24",
                "ip -n \(side.container) addr add \(side.overlay)/24 dev \(link.ifname)"
            )
        }
        guard link.isUp else {
            return (false, "\(link.summary) is down", "ip -n \(side.container) link set \(link.ifname) up")
        }
        return (true, "\(link.summary), to \(side.host)", "")
    }

    /// One echo request from the host's busybox, in namespace `ns`. Its output's telling line is
    /// the evidence: a reply, "100% packet loss", or why ping could not run.
    static func ping(from ns: String, to address: String, size: Int?) -> (ok: Bool, evidence: String) {
        guard let ip = Self.tool("ip"), let busybox = Self.tool("busybox") else {
            return (false, "cannot ping: ip (iproute2) or busybox (busybox-static) is missing on the host")
        }
        let sizeArgs = size.map { ["-s", "\($0)"] } ?? []
        let argv = [ip, "netns", "exec", ns, busybox, "ping", "-c", "1", "-W", "2"] + sizeArgs + [address]
        let shown = (["ip netns exec", ns, "busybox ping -c 1 -W 2"] + sizeArgs + [address]).joined(separator: " ")
        do {
            let result = try Self.run(argv, timeout: 5)
            let lines = result.output.split(separator: "\n").map(String.init)
            let telling =
                lines.first { $0.contains("bytes from") } ?? lines.first { $0.contains("packet loss") }
                ?? lines.last ?? "no output"
            return (result.status == 0, "\(shown): \(telling)")
        } catch {
            return (false, "\(shown) could not run: \(error)")
        }
    }

    // MARK: reading the host

    /// A host tool from the system's own directories, never from a PATH a learner set.
    static func tool(_ name: String) -> String? {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// Runs a host tool with stdout and stderr together, killed after `timeout` seconds.
    static func run(_ argv: [String], timeout: Int32) throws -> (status: Int32, output: String) {
        try Host.run(argv, timeout: timeout, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"])
    }

    static func inode(_ path: String) -> UInt? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt(st.st_ino) : nil
    }

    /// The namespace inode behind /run/netns/NAME: `ip netns add` bind-mounts the namespace's
    /// nsfs file there. A plain file left by a failed add is no namespace: every nsfs file is on
    /// the one nsfs device, the device of our own /proc/self/ns/net.
    static func namespaceInode(_ path: String) -> Result<UInt, ClabError> {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return .failure(ClabError("\(path): \(errnoDescription(errno))"))
        }
        var own = stat()
        guard stat("/proc/self/ns/net", &own) == 0, st.st_dev == own.st_dev else {
            return .failure(ClabError("\(path) exists but holds no namespace (left by a failed `ip netns add`?)"))
        }
        return .success(UInt(st.st_ino))
    }
}

/// The links of one named network namespace, with their addresses, as `ip -d -j addr show`
/// prints them, and which namespace each veth's peer lives in (`ip -j netns list-id`).
struct NamespaceView {
    let name: String
    let links: [NetLink]
    /// nsid (as this namespace numbers the others) -> the name under /run/netns.
    let peers: [Int: String]

    static func read(_ name: String) throws -> NamespaceView {
        guard let ip = Lab11Verifier.tool("ip") else {
            throw ClabError("cannot read \(name): ip (iproute2) is missing on the host")
        }
        let links = try decode(
            [NetLink].self, Lab11Verifier.run([ip, "-n", name, "-d", "-j", "addr", "show"], timeout: 5), what: name)
        let ids = try decode(
            [NamespaceID].self, Lab11Verifier.run([ip, "-n", name, "-j", "netns", "list-id"], timeout: 5), what: name)
        var peers: [Int: String] = [:]
        for id in ids { if let n = id.name { peers[id.nsid] = n } }
        return NamespaceView(name: name, links: links, peers: peers)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ result: (status: Int32, output: String), what: String) throws
        -> T
    {
        guard result.status == 0 else {
            throw ClabError("cannot read \(what): \(result.output.trimmed)")
        }
        // `ip -j` prints nothing at all for an empty list.
        let text = result.output.trimmed.isEmpty ? "[]" : result.output
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw ClabError("cannot read \(what): ip printed what clab does not understand (\(error))")
        }
    }

    func peerNamespace(of link: NetLink) -> String? {
        guard link.kind == "veth" else { return nil }
        guard let nsid = link.linkNetnsid else { return name }
        return peers[nsid]
    }

    func link(index: Int) -> NetLink? { links.first { $0.ifindex == index } }
}

struct NamespaceID: Decodable {
    let nsid: Int
    let name: String?
}

struct NetLink: Decodable {
    struct Address: Decodable {
        let family: String
        let local: String
        let prefixlen: Int
    }
    struct VXLAN: Decodable {
        let id: Int?
        let remote: String?
        let port: Int?
    }

    let ifindex: Int
    let ifname: String
    let flags: [String]
    let master: String?
    let linkIndex: Int?
    let linkNetnsid: Int?
    let kind: String?
    let vxlan: VXLAN?
    let addresses: [Address]

    enum CodingKeys: String, CodingKey {
        case ifindex, ifname, flags, master
        case linkIndex = "link_index"
        case linkNetnsid = "link_netnsid"
        case linkinfo
        case addrInfo = "addr_info"
    }
    enum InfoKeys: String, CodingKey {
        case kind = "info_kind"
        case data = "info_data"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ifindex = try c.decode(Int.self, forKey: .ifindex)
        ifname = try c.decode(String.self, forKey: .ifname)
        flags = try c.decodeIfPresent([String].self, forKey: .flags) ?? []
        master = try c.decodeIfPresent(String.self, forKey: .master)
        linkIndex = try c.decodeIfPresent(Int.self, forKey: .linkIndex)
        linkNetnsid = try c.decodeIfPresent(Int.self, forKey: .linkNetnsid)
        // Only a vxlan's info_data is read: other kinds use the same keys for other types.
        if c.contains(.linkinfo) {
            let info = try c.nestedContainer(keyedBy: InfoKeys.self, forKey: .linkinfo)
            kind = try info.decodeIfPresent(String.self, forKey: .kind)
            vxlan = kind == "vxlan" ? try info.decodeIfPresent(VXLAN.self, forKey: .data) : nil
        } else {
            kind = nil
            vxlan = nil
        }
        addresses = try c.decodeIfPresent([Address].self, forKey: .addrInfo) ?? []
    }

    var isUp: Bool { flags.contains("UP") }

    func has(_ address: String, prefix: Int) -> Bool {
        addresses.contains { $0.family == "inet" && $0.local == address && $0.prefixlen == prefix }
    }

    /// "eth0 (veth, 203.0.113.1/24)": what a learner sees in `ip addr`.
    var summary: String {
        let v4 = addresses.filter { $0.family == "inet" }.map { "\($0.local)/\($0.prefixlen)" }
        return "\(ifname) (\(([kind ?? "no kind"] + v4).joined(separator: ", ")))"
    }
}
