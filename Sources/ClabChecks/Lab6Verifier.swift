import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 6: two network namespaces joined by a veth pair, by hand with iproute2. The namespaces
/// are the named ones under /run/netns (`ip netns add lab6-a`); their links and addresses are
/// read with the host's `ip -n NAME -d -j addr` (as lab 11 does), and the traffic is proven by
/// `clab-init --probe udp`: one process of clab's own makes a receiver in lab6-b, bound to its
/// address, and a sender in lab6-a, and a datagram must go from one to the other. Nothing of the
/// learner's is executed, nothing is changed.
public enum Lab6Verifier {
    public static let a = "lab6-a"
    public static let b = "lab6-b"
    public static let namespaces = [a, b]
    static let addressA = "198.51.100.1"
    static let addressB = "198.51.100.2"

    struct End {
        let name: String
        let address: String
        let peer: String
        let peerAddress: String
    }
    static let ends = [
        End(name: a, address: addressA, peer: b, peerAddress: addressB),
        End(name: b, address: addressB, peer: a, peerAddress: addressA),
    ]

    public static func verify(layouts: [StateLayout], initPath: String = Runtime.defaultInitPath) -> [ProbeResult] {
        var r = LabResults(stage: 6)
        let create = "ip link add veth-a netns \(a) type veth peer name veth-b netns \(b)"

        let (inodes, views) = ownNamespaces(namespaces, lab: 6, into: &r, each: "each end needs its own")
        // Made by hand: no clab container lives in either namespace (`ip netns attach NAME PID`
        // can give a container's namespace a name).
        r.results.insert(byHand(inodes, layouts: layouts), at: 0)

        for end in ends {
            let property = ProbeName(id: "lab6.lo-up.\(end.name)", wording: "\(end.name): lo is up")
            switch views[end.name] ?? .failure(ClabError("not read")) {
            case .failure(let error):
                r.notChecked(property, error.message, fix: "create \(end.name) first: ip netns add \(end.name)")
            case .success(let view):
                let lo = view.links.first { $0.ifname == "lo" }
                r.add(
                    property, lo?.isUp == true,
                    lo.map { "lo's flags in \(end.name): \($0.flags.joined(separator: ","))" }
                        ?? "no lo in \(end.name)",
                    fix: "a new namespace's lo starts down: ip -n \(end.name) link set lo up")
            }
        }
        for end in ends {
            let property = ProbeName(
                id: "lab6.veth-address.\(end.name)", wording: "\(end.name): a veth has \(end.address)/24 and is up")
            switch views[end.name] ?? .failure(ClabError("not read")) {
            case .failure(let error):
                r.notChecked(property, error.message, fix: "create \(end.name) first: ip netns add \(end.name)")
            case .success(let view):
                let (ok, evidence, fix) = address(end, view, create: create)
                r.add(property, ok, evidence, fix: fix)
            }
        }
        switch (views[a] ?? .failure(ClabError("not read")), views[b] ?? .failure(ClabError("not read"))) {
        case (.success(let viewA), .success(let viewB)):
            let (ok, evidence, fix) = pair(viewA, viewB, create: create)
            r.add("lab6.veth-pair", "one veth pair joins \(a) and \(b), no end in the host", ok, evidence, fix: fix)
        case (.failure(let error), _), (_, .failure(let error)):
            r.notChecked(
                "lab6.veth-pair", "one veth pair joins \(a) and \(b), no end in the host", error.message,
                fix: "create both namespaces first")
        }

        // The proof: a datagram, only between namespaces that passed above (never the host's).
        let sent = ProbeName(id: "lab6.datagram", wording: "a datagram from \(a) reaches \(addressB) in \(b)")
        if inodes.count == 2 {
            switch datagram(initPath: initPath, from: a, to: b, address: addressB) {
            case .success(let result) where result.status <= 1:
                r.add(
                    sent, result.status == 0, result.output,
                    fix:
                        "fix the ✗ lines above first; then ip -n \(a) route shows whether \(a) knows where \(addressB) is, and ip -n \(b) addr whether \(b) holds it, up"
                )
            case .success(let result):
                r.notChecked(
                    sent,
                    result.output.trimmed.isEmpty ? "the probe failed (exit \(result.status))" : result.output.trimmed,
                    fix: "make both namespaces with ip netns add")
            case .failure(let error):
                r.notChecked(sent, "\(error)", fix: "clab-init must be installed beside clab (make install)")
            }
        } else {
            r.notChecked(
                sent, "not tried: both namespaces must exist first", fix: "ip netns add \(a); ip netns add \(b)")
        }
        return r.results
    }

    /// Each name under /run/netns: a network namespace of its own, not the host's, not another
    /// one's. Adds one property per name; returns the inodes of those that passed and their
    /// views (read only for those: never the host's). Labs 6, 11 and 15 share it.
    static func ownNamespaces(_ names: [String], lab: Int, into r: inout LabResults, each: String)
        -> (inodes: [String: UInt], views: [String: Result<NamespaceView, ClabError>])
    {
        let hostInode = Lab11Verifier.inode("/proc/self/ns/net")
        var inodes: [String: UInt] = [:]
        var views: [String: Result<NamespaceView, ClabError>] = [:]
        for name in names {
            let path = "/run/netns/" + name
            let property = ProbeName(
                id: "lab\(lab).netns-own.\(name)", wording: "\(name) is a network namespace of its own")
            switch Lab11Verifier.namespaceInode(path) {
            case .failure(let error):
                r.add(
                    property, false, error.message,
                    fix: FS.exists(path)
                        ? "make it again: ip netns delete \(name); ip netns add \(name)"
                        : "create it: ip netns add \(name)")
                views[name] = .failure(ClabError("\(name) is missing (see above)"))
            case .success(let inode):
                let evidence = "\(path) -> net:[\(inode)]"
                if inode == hostInode {
                    r.add(
                        property, false, "\(evidence) is the host's own network namespace",
                        fix: "recreate it empty: ip netns delete \(name) && ip netns add \(name)")
                    views[name] = .failure(ClabError("\(name) is the host's namespace (see above)"))
                } else if let other = inodes.first(where: { $0.value == inode })?.key {
                    r.add(
                        property, false, "\(evidence) is the same namespace as \(other)",
                        fix: "\(each): ip netns delete \(name) && ip netns add \(name)")
                    views[name] = .failure(ClabError("\(name) is \(other) (see above)"))
                } else {
                    inodes[name] = inode
                    r.add(property, true, evidence, fix: "")
                    views[name] = Result { try NamespaceView.read(name) }.mapError {
                        ($0 as? ClabError) ?? ClabError("\($0)")
                    }
                }
            }
        }
        return (inodes, views)
    }

    /// `clab-init --probe udp`: a datagram from named namespace `from` to `address` in `to`.
    /// Status 0: received (the line ends "from SOURCE"), 1: not received, more: the probe could
    /// not run. The probe names the namespaces by their files; the learner knows their names.
    static func datagram(initPath: String, from: String, to: String, address: String)
        -> Result<(status: Int32, output: String), any Error>
    {
        let argv = [initPath, "--probe", "udp", "/run/netns/\(from)", "/run/netns/\(to)", address]
        return Result { try Host.run(argv, timeout: 10) }.map {
            (status: $0.status, output: $0.output.trimmed.replacing("/run/netns/", with: ""))
        }
    }

    /// No running clab container has any of these namespaces (name -> nsfs inode) as its
    /// network namespace.
    public static func byHand(
        _ inodes: [String: UInt], layouts: [StateLayout], stage: Int = 6, names: [String] = namespaces
    ) -> ProbeResult {
        for state in layouts.flatMap({ ContainerState.running(in: $0) }) {
            guard let pid = state.initPid, let inode = Lab11Verifier.inode("/proc/\(pid)/ns/net") else { continue }
            if let name = inodes.first(where: { $0.value == inode })?.key {
                return ProbeResult(
                    name: ClabMade.madeByHand, stage: stage, passed: false,
                    evidence: "\(name) is the network namespace of clab's container \(state.id) (init pid \(pid))",
                    fix:
                        "this lab is about doing clab's work yourself: ip netns delete \(name) (the container keeps its own), then ip netns add \(name) and wire it by hand"
                )
            }
        }
        return ProbeResult(
            name: ClabMade.madeByHand, stage: stage, passed: true,
            evidence: "no running clab container is in \(names.joined(separator: " or "))")
    }

    static func address(_ end: End, _ view: NamespaceView, create: String) -> (Bool, String, String) {
        let veths = view.links.filter { $0.kind == "veth" }
        guard let link = veths.first(where: { $0.has(end.address, prefix: 24) }) else {
            if let holder = view.links.first(where: { $0.has(end.address, prefix: 24) }) {
                return (
                    false, "\(end.address)/24 is on \(holder.summary), not on a veth",
                    "put it on the veth end in \(end.name): ip -n \(end.name) addr del \(end.address)/24 dev \(holder.ifname)"
                )
            }
            guard let veth = veths.first else {
                return (false, "no veth in \(end.name)", "cable the namespaces: \(create)")
            }
            let wrong = veth.addresses.first { $0.family == "inet" }
            return (
                false, "no veth in \(end.name) has \(end.address)/24 (\(veth.summary))",
                wrong.map {
                    "the address must be \(end.address)/24 (a /\($0.prefixlen) puts the other end \($0.prefixlen == 24 ? "elsewhere" : "outside its subnet")): ip -n \(end.name) addr del \($0.local)/\($0.prefixlen) dev \(veth.ifname); ip -n \(end.name) addr add \(end.address)/24 dev \(veth.ifname)"
                } ?? "ip -n \(end.name) addr add \(end.address)/24 dev \(veth.ifname)"
            )
        }
        guard link.isUp else {
            return (
                false, "\(link.summary) is down",
                "a new link starts down, at both ends of a pair: ip -n \(end.name) link set \(link.ifname) up"
            )
        }
        return (true, link.summary, "")
    }

    /// lab6-a's veth leads to lab6-b's: not to the host, not to a third namespace, not back into
    /// lab6-a. Whether the ends are up is the address properties' business.
    static func pair(_ viewA: NamespaceView, _ viewB: NamespaceView, create: String) -> (Bool, String, String) {
        let veth =
            viewA.links.first { $0.kind == "veth" && $0.has(addressA, prefix: 24) }
            ?? viewA.links.first { $0.kind == "veth" }
        guard let veth else { return (false, "no veth in \(a)", "cable the namespaces: \(create)") }
        let peer = viewA.peerNamespace(of: veth)
        if peer == a {
            // ip names a peer in the same namespace ("link"), not by index: the other veth here
            // whose peer is here too.
            let other = viewA.links.first {
                $0.kind == "veth" && $0.ifindex != veth.ifindex && viewA.peerNamespace(of: $0) == a
            }
            return (
                false, "\(veth.ifname)'s other end is in \(a) too: both ends of the pair are in one namespace",
                "move one end: ip -n \(a) link set \(other?.ifname ?? "NAME") netns \(b) (it loses its address and comes up down: add and set up again)"
            )
        }
        guard peer == b else {
            let inHost = Self.hostEnd(of: veth)
            return (
                false,
                inHost.map { "\(veth.ifname)'s other end, \($0), is in the host's own namespace" }
                    ?? "\(veth.ifname)'s other end is in a namespace with no name under /run/netns",
                inHost.map {
                    "the host's interfaces stay the host's: ip link set \($0) netns \(b) (or delete the pair, ip -n \(a) link del \(veth.ifname), and \(create))"
                } ?? "delete the pair (ip -n \(a) link del \(veth.ifname)) and \(create)"
            )
        }
        guard let other = veth.linkIndex.flatMap({ viewB.link(index: $0) }) else {
            return (false, "\(veth.ifname) leads to \(b), but its other end is not listed there", create)
        }
        return (true, "\(a) \(veth.summary) <-> \(b) \(other.summary)", "")
    }

    /// The name of the host's end of `veth`, when its other end is in the host's namespace: the
    /// host's veth whose index is its peer's and whose peer is it.
    static func hostEnd(of veth: NetLink) -> String? {
        guard let ip = Lab11Verifier.tool("ip"), let index = veth.linkIndex,
            let result = try? Lab11Verifier.run([ip, "-d", "-j", "link", "show", "type", "veth"], timeout: 5),
            let links = try? NamespaceView.decode([NetLink].self, result, what: "the host's veths")
        else { return nil }
        return links.first { $0.ifindex == index && $0.linkIndex == veth.ifindex && $0.linkNetnsid != nil }?.ifname
    }
}
