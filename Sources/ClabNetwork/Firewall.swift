import ClabNetlink
import ClabSys
import Glibc

/// clab's firewall: NAT and published ports in one nftables table of its own, `table ip clab`,
/// written through libnftables with the very lines `script(...)` returns for the banner.
///
/// Chains (base chains at the standard hooks and priorities):
/// - `prerouting` (nat, dstnat) and `output` (nat, -100: connections the host itself makes) jump
///   to `published` for packets addressed to one of the host's own addresses (`fib daddr type
///   local`): from another host, from a container (hairpin), from the host, 127.0.0.1 included.
/// - `published`: one DNAT rule per `-p`, commented "clab:<container id>".
/// - `postrouting` (nat, srcnat), per network: masquerade the subnet leaving through any other
///   interface (the outside sees the host's address); masquerade DNAT-ed connections from the
///   subnet back into it (hairpin: the answer must come back through the host to be un-NAT-ed);
///   masquerade 127.0.0.0/8 into the bridge (connections to a published port on 127.0.0.1).
/// - `forward` (filter), per network: into the bridge only replies and published (DNAT-ed)
///   connections, so containers' other ports are closed to other hosts and to other clab
///   networks, as Docker does. The policy is accept: the containers' outbound traffic passes.
///   An accept here does NOT override another table: each base chain on the hook sees the
///   packet, and a `policy drop` forward chain in another table (iptables-nft's `filter FORWARD`
///   after Docker or a host firewall) still drops it. clab leaves other tables alone and says so
///   (`forwardDropNote`). iptables-legacy's chains are invisible to nft and not checked.
/// - `input` (filter), per network: see "localhost" below.
///
/// Every network rule is commented "clab-net:<bridge>". Removal lists the table with handles
/// (`nft -a`) and deletes the rules carrying the comment by handle, in one batch: exactly those
/// rules go, atomically, and the text a learner reads stays plain `add rule` lines (per-container
/// chains or maps would remove just as exactly but need a jump rule deleted by handle anyway, and
/// make the banner harder to read).
///
/// Localhost: a connection from the host to 127.0.0.1:HOSTPORT is DNAT-ed in `output` to the
/// container, but the kernel refuses to route a packet with a 127.x source out of a real
/// interface, and the container's answer would come back to a 127.x destination (martian).
/// Docker's default answers with docker-proxy, a userland process per published port. clab takes
/// the kernel route instead (no process to start, supervise and clean up, no copy through user
/// space, the client's address preserved for connections from outside): `route_localnet=1` on clab's
/// own bridge only (`enableLocalhostRouting`; the setting goes away with the bridge) plus a
/// masquerade of 127.0.0.0/8 into the bridge. route_localnet has a known cost (CVE-2020-8558):
/// the bridge would now accept packets a container addresses to 127.0.0.1 and deliver them to the
/// host's localhost-only services. The `input` rule drops every such packet that is not the
/// answer of a connection the host opened.
///
/// Hairpin needs one more thing outside this table: the kernel here has br_netfilter with
/// bridge-nf-call-iptables=1, so a container's connection to its own published port is DNAT-ed
/// while still being bridged and must leave through the port it came in: the veth's bridge port
/// needs hairpin mode (`ip link set VETH type bridge_slave hairpin on`), set by the plumbing.
///
/// Concurrency: every change runs under an flock on `lockPath` (one host-wide file: the kernel
/// table is host-wide too, whatever clab's state root), reads the table and applies one batch,
/// so two clab processes never interleave a check and an add, and a removal deletes what it read.
public enum Firewall {
    public static let table = "clab"
    static let ref = "ip \(table)"
    /// Host-wide, like iptables' /run/xtables.lock; an empty file, left in place.
    public static let lockPath = "/run/clab-firewall.lock"
    static let localhostNet = "127.0.0.0/8"

    // MARK: - The rule text (shared by the banner and the kernel)

    /// The table, its chains and the two jumps, in reading order.
    static let base: [String] = [
        "add table \(ref)",
        "add chain \(ref) published",
        "add chain \(ref) prerouting { type nat hook prerouting priority dstnat; policy accept; }",
        "add rule \(ref) prerouting fib daddr type local jump published",
        "add chain \(ref) output { type nat hook output priority -100; policy accept; }",
        "add rule \(ref) output fib daddr type local jump published",
        "add chain \(ref) postrouting { type nat hook postrouting priority srcnat; policy accept; }",
        "add chain \(ref) forward { type filter hook forward priority filter; policy accept; }",
        "add chain \(ref) input { type filter hook input priority filter; policy accept; }",
    ]

    static func networkTag(_ bridge: String) -> String { "clab-net:\(bridge)" }
    static func containerTag(_ id: String) -> String { "clab:\(id)" }

    /// One network's rules (see the type's documentation for why each exists). `ct state` is
    /// matched against a set: `ct state != established,related` would compare the state with the
    /// two flags OR-ed together (never equal, so always true) and drop the answers too.
    static func networkRules(bridge: String, subnet: String) -> [String] {
        let br = "\"\(bridge)\""
        let tag = "comment \"\(networkTag(bridge))\""
        return [
            "add rule \(ref) postrouting ip saddr \(subnet) oifname != \(br) masquerade \(tag)",
            "add rule \(ref) postrouting oifname \(br) ip saddr \(subnet) ct status dnat masquerade \(tag)",
            "add rule \(ref) postrouting oifname \(br) ip saddr \(localhostNet) masquerade \(tag)",
            "add rule \(ref) forward oifname \(br) ct state { established, related } accept \(tag)",
            "add rule \(ref) forward oifname \(br) ct status dnat accept \(tag)",
            "add rule \(ref) forward oifname \(br) iifname != \(br) drop \(tag)",
            "add rule \(ref) input iifname \(br) ip daddr \(localhostNet) ct state != { established, related } drop \(tag)",
        ]
    }

    /// One `-p`: "add rule ip clab published [ip daddr HOSTIP ]tcp dport 8080 dnat to IP:80 comment ...".
    static func publishRule(_ port: PortPublish, containerIP: String, containerID: String) -> String {
        let address = port.hostIP.map { "ip daddr \($0) " } ?? ""
        return "add rule \(ref) published \(address)\(port.proto.rawValue) dport \(port.hostPort)"
            + " dnat to \(containerIP):\(port.containerPort) comment \"\(containerTag(containerID))\""
    }

    /// The nft script for the banner's "by hand" block (`nft -f FILE`, or each line as `nft LINE`),
    /// line for line what `addNetwork` and `publish` apply.
    public static func script(
        bridge: String, subnet: String, ports: [PortPublish], containerIP: String?, containerID: String = "ID"
    ) -> String {
        let subnet = subnetNetwork(subnet)?.description ?? subnet
        var lines = base + networkRules(bridge: bridge, subnet: subnet)
        if let containerIP {
            lines += ports.map { publishRule($0, containerIP: containerIP, containerID: containerID) }
        }
        return lines.joined(separator: "\n")
    }

    /// The sysctl line for the banner, as `enableLocalhostRouting` writes it.
    public static func localhostRoutingCommand(bridge: String) -> String {
        "sysctl -w net.ipv4.conf.\(bridge).route_localnet=1"
    }

    // MARK: - Networks

    /// Idempotent: creates the table and chains if missing and (re)places this network's rules.
    public static func addNetwork(bridge: String, subnet: String) throws {
        let bridge = try checkedBridge(bridge)
        guard let net = subnetNetwork(subnet), (8...30).contains(net.prefix) else {
            throw ClabError(
                "subnet \(subnet) is not an IPv4 CIDR with a prefix from /8 to /30 (e.g. 10.88.0.0/16)", exitCode: 2)
        }
        try locked {
            let rules = try NFTables.rules(table: ref) ?? []
            try apply(
                baseLines(present: rules) + deletions(rules, tagged: networkTag(bridge))
                    + networkRules(bridge: bridge, subnet: net.description))
        }
    }

    /// Removes the network's rules (idempotent). Its published ports go with the containers.
    public static func removeNetwork(bridge: String) throws {
        let bridge = try checkedBridge(bridge)
        try locked {
            guard let rules = try NFTables.rules(table: ref) else { return }
            try apply(deletions(rules, tagged: networkTag(bridge)))
        }
    }

    /// Deletes `table ip clab` once no network rule is left; returns whether it did.
    @discardableResult public static func removeTableIfUnused() throws -> Bool {
        try locked {
            guard let rules = try NFTables.rules(table: ref) else { return false }
            if rules.contains(where: { $0.comment?.hasPrefix(networkTag("")) == true }) { return false }
            _ = try NFTables.run("delete table \(ref)")
            // The anti-spoofing table goes with it once no container's chain is left in it.
            // No clab network has containers (the caller's rule): the guards left are retired ones.
            if (try? NFTables.run("list table \(bridgeRef)")) != nil {
                _ = try NFTables.run("delete table \(bridgeRef)")
            }
            clearRetired()
            return true
        }
    }

    /// `route_localnet=1` on clab's bridge only, so 127.0.0.1:HOSTPORT reaches the container (see
    /// the type's documentation). Written in the calling thread's network namespace.
    public static func enableLocalhostRouting(bridge: String) throws {
        let bridge = try checkedBridge(bridge)
        let path = "/proc/sys/net/ipv4/conf/\(bridge)/route_localnet"
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw ClabError("cannot enable localhost routing on \(bridge): \(path): \(errnoDescription(errno))")
        }
        defer { close(fd) }
        guard write(fd, "1\n", 2) == 2 else {
            throw ClabError("cannot enable localhost routing on \(bridge): \(path): \(errnoDescription(errno))")
        }
    }

    /// A one-line note when another table's forward chain drops by default, which clab's accept
    /// cannot override; nil when there is none.
    public static func forwardDropNote(bridge: String) throws -> String? {
        let chains = try NFTables.forwardDropChains(excluding: ref)
        guard let first = chains.first else { return nil }
        let words = first.split(separator: " ")  // "table ip filter, chain FORWARD"
        let hint =
            words.count == 5
            ? " (e.g. nft insert rule \(words[1]) \(words[2].dropLast()) \(words[4]) iifname \"\(bridge)\" accept,"
                + " and oifname \"\(bridge)\" ct state { established, related } accept)" : ""
        return "note: \(chains.joined(separator: "; ")) drops forwarded packets by default (policy drop);"
            + " clab changes only its own table, so containers on \(bridge) reach nothing beyond the host"
            + " until that chain accepts their traffic\(hint)"
    }

    // MARK: - Anti-spoofing

    /// `table bridge clab`: what a container may send into its bridge. Its root holds
    /// CAP_NET_ADMIN and CAP_NET_RAW in its own network namespace, so without these rules it could
    /// take another container's MAC or IP address (the bridge learns the MAC on the new port,
    /// ARP caches follow) and receive that container's traffic, its published ports included.
    static let bridgeRef = "bridge \(table)"
    /// One map from a container's host veth to a chain of its own: a start adds a chain and an
    /// element, an exit deletes both, and neither has to list the table first (a listing, rule
    /// handles and a delete per rule cost ~40 ms with a few dozen containers). The flush and
    /// re-add of the one dispatch rule keep this batch idempotent.
    static let bridgeBase: [String] = [
        "add table \(bridgeRef)",
        "add map \(bridgeRef) guards { type ifname : verdict; }",
        "add chain \(bridgeRef) prerouting { type filter hook prerouting priority -300; policy accept; }",
        "flush chain \(bridgeRef) prerouting",
        "add rule \(bridgeRef) prerouting iifname vmap @guards",
    ]

    static func guardChain(_ containerID: String) -> String { "g-\(containerID)" }

    /// The MAC clab gives a container's eth0, derived from its address as Docker does
    /// (02:42 and the four bytes of the IPv4 address): unique on a network, locally administered.
    public static func containerMAC(_ address: IPv4Address) -> [UInt8] { [0x02, 0x42] + address.networkBytes }

    static func macText(_ mac: [UInt8]) -> String {
        mac.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    /// Frames entering the bridge from a container's veth must carry its own MAC and, for IPv4
    /// and ARP, its own address: its chain, and the map element that sends its veth there.
    static func guardRules(hostVeth: String, mac m: String, containerIP: String, containerID: String) -> [String] {
        let chain = "\(bridgeRef) \(guardChain(containerID))"
        return [
            "add chain \(chain)",
            "flush chain \(chain)",
            "add rule \(chain) ether saddr != \(m) drop",
            "add rule \(chain) ether type arp arp saddr ether != \(m) drop",
            "add rule \(chain) ether type arp arp saddr ip != \(containerIP) drop",
            "add rule \(chain) ether type ip ip saddr != \(containerIP) drop",
            "add element \(bridgeRef) guards { \"\(hostVeth)\" : jump \(guardChain(containerID)) }",
        ]
    }

    /// Pins a container's veth to its MAC and address (replaces that container's earlier rules).
    public static func guardAddresses(containerID: String, hostVeth: String, mac: [UInt8], containerIP: String)
        throws
    {
        let id = try checkedID(containerID)
        let veth = try checkedBridge(hostVeth)
        guard let ip = IPv4Address(containerIP), mac.count == 6 else {
            throw ClabError("container address \(containerIP) is not a dotted IPv4 address")
        }
        try locked {
            let own = guardRules(hostVeth: veth, mac: macText(mac), containerIP: ip.description, containerID: id)
            let rules = bridgeBase + own
            let retired = retiredGuards()
            // Deleting makes the kernel wait for RCU (~10 ms a commit): retired guards go in bulk,
            // with a start, once there are enough of them, not one commit per exit.
            if retired.count >= retireBatch {
                let deletions = retired.flatMap { guardDeletions(containerID: $0.id, hostVeth: $0.veth) }
                if (try? apply(bridgeBase + deletions + rules)) != nil {
                    clearRetired()
                    return
                }
                // Some were gone already (a table removed meanwhile): one by one, then the start.
                for guardEntry in retired { try? removeGuard(containerID: guardEntry.id, hostVeth: guardEntry.veth) }
                clearRetired()
            }
            // The table, map and dispatch rule are made together, in one batch: once the map is
            // there, this container's own lines suffice. Re-adding the base flushes the dispatch
            // rule, and a deleted rule makes closing the nft socket wait for an RCU grace period
            // (nf_tables' destroy work, ~9 ms a start). A missing table fails the short batch.
            if (try? apply(own)) != nil { return }
            try apply(rules)
        }
    }

    /// How many exited containers' guards wait before a start removes them together.
    static let retireBatch = 16
    /// Exited containers' guards not removed yet, "<id> <veth>" a line (host-wide, like the lock).
    public static let retiredPath = "/run/clab-firewall.retired"

    /// At a container's exit: its guard is harmless once its veth is gone (the name is never
    /// reused), so it is only recorded here, and removed in bulk by a later start, with the
    /// bridge table when the last clab network goes, or by `clab gc` (`removeRetiredGuards`).
    public static func retireGuard(containerID: String, hostVeth: String) throws {
        let id = try checkedID(containerID)
        let veth = try checkedBridge(hostVeth)
        try locked {
            let fd = open(retiredPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw ClabError("cannot record a retired guard in \(retiredPath)") }
            defer { close(fd) }
            let line = Array("\(id) \(veth)\n".utf8)
            _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
    }

    /// `clab gc`: removes every retired guard now.
    public static func removeRetiredGuards() throws {
        try locked {
            for guardEntry in retiredGuards() {
                try? removeGuard(containerID: guardEntry.id, hostVeth: guardEntry.veth)
            }
            clearRetired()
        }
    }

    static func retiredGuards() -> [(id: String, veth: String)] {
        guard let fd = Optional(open(retiredPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)), fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let id = try? checkedID(String(parts[0])),
                let veth = try? checkedBridge(String(parts[1]))
            else { return nil }
            return (id, veth)
        }
    }

    static func clearRetired() { unlink(retiredPath) }

    static func guardDeletions(containerID: String, hostVeth: String) -> [String] {
        [
            "delete element \(bridgeRef) guards { \"\(hostVeth)\" }",
            "delete chain \(bridgeRef) \(guardChain(containerID))",
        ]
    }

    /// The anti-spoofing table and one container's rules, for the banner's "by hand" block.
    public static func guardScript(hostVeth: String, mac: String, containerIP: String, containerID: String = "ID")
        -> String
    {
        (bridgeBase + guardRules(hostVeth: hostVeth, mac: mac, containerIP: containerIP, containerID: containerID))
            .joined(separator: "\n")
    }

    /// Removes exactly this container's anti-spoofing chain and map element; nothing to do is
    /// fine. `hostVeth` names the element (the veth itself is gone with the container).
    /// The caller holds the firewall lock.
    static func removeGuard(containerID id: String, hostVeth veth: String) throws {
        let commands = guardDeletions(containerID: id, hostVeth: veth)
        // One batch, one commit; a start that failed early may have left only one of the two.
        do {
            try apply(commands)
            return
        } catch let error as ClabError where error.message.contains("No such file or directory") {}
        for command in commands {
            do {
                _ = try NFTables.run(command)
            } catch let error as ClabError where error.message.contains("No such file or directory") {
                continue
            }
        }
    }

    // MARK: - Published ports

    /// DNAT for each port to containerIP, tagged with the container id. Replaces that container's
    /// earlier rules; re-checks availability under the lock (another clab may have published
    /// meanwhile). `bridge` is validated only: the network's rules handle the rest.
    public static func publish(_ ports: [PortPublish], containerID: String, containerIP: String, bridge: String)
        throws
    {
        let id = try checkedID(containerID)
        _ = try checkedBridge(bridge)
        guard let ip = IPv4Address(containerIP) else {
            throw ClabError("container address \(containerIP) is not a dotted IPv4 address")
        }
        guard !ports.isEmpty else { return }
        try locked {
            let rules = try NFTables.rules(table: ref) ?? []
            try checkAvailable(ports, rules: rules, ignoring: id)
            try apply(
                baseLines(present: rules) + deletions(rules, tagged: containerTag(id))
                    + ports.map { publishRule($0, containerIP: ip.description, containerID: id) })
        }
    }

    /// Removes exactly this container's rules; nothing to do is fine.
    public static func unpublish(containerID: String) throws {
        let id = try checkedID(containerID)
        try locked {
            guard let rules = try NFTables.rules(table: ref) else { return }
            try apply(deletions(rules, tagged: containerTag(id)))
        }
    }

    /// A one-line error when a host port is taken: given twice, published by another clab
    /// container (a rule exists), or bound by a socket on the host (a test bind), or when HOSTIP
    /// is not one of the host's addresses.
    public static func checkAvailable(_ ports: [PortPublish]) throws {
        guard !ports.isEmpty else { return }
        try checkAvailable(ports, rules: try NFTables.rules(table: ref) ?? [], ignoring: nil)
    }

    /// The ids of all containers with published-port rules (for gc).
    public static func publishedContainers() throws -> [String] {
        var ids: [String] = []
        for rule in try NFTables.rules(table: ref) ?? [] {
            guard let comment = rule.comment, comment.hasPrefix(containerTag("")) else { continue }
            let id = String(comment.dropFirst(containerTag("").count))
            if !ids.contains(id) { ids.append(id) }
        }
        return ids
    }

    // MARK: - Internals

    private static func checkAvailable(_ ports: [PortPublish], rules: [NFTables.Rule], ignoring id: String?) throws {
        for (i, port) in ports.enumerated() {
            if let earlier = ports[..<i].first(where: { $0.overlaps(port) }) {
                throw ClabError("-p \(port): host port \(port.hostSide) is also published by -p \(earlier)")
            }
        }
        for rule in rules where rule.chain == "published" {
            guard let comment = rule.comment, comment.hasPrefix(containerTag("")),
                let taken = publication(in: rule.text)
            else { continue }
            let owner = String(comment.dropFirst(containerTag("").count))
            if owner == id { continue }
            if let port = ports.first(where: { $0.overlaps(taken) }) {
                throw ClabError(
                    "-p \(port): host port \(taken.hostSide) is already published by container \(owner); choose another host port"
                )
            }
        }
        for port in ports { try checkBindable(port) }
    }

    /// The host side of a listed DNAT rule: "[ip daddr A ]tcp dport N dnat to ...".
    static func publication(in rule: String) -> PortPublish? {
        let words = rule.split(separator: " ")
        guard let d = words.firstIndex(of: "dport"), d > 0, d + 1 < words.count,
            let proto = PortProtocol(rawValue: String(words[d - 1])), let port = UInt16(words[d + 1])
        else { return nil }
        var hostIP: String?
        if let a = words.firstIndex(of: "daddr"), a + 1 < words.count { hostIP = String(words[a + 1]) }
        return PortPublish(hostIP: hostIP, hostPort: port, containerPort: 0, proto: proto)
    }

    /// Binds a throwaway socket to the host side. TCP sets SO_REUSEADDR so only a listener (not a
    /// connection lingering in TIME_WAIT) counts as taken.
    private static func checkBindable(_ port: PortPublish) throws {
        let kind = port.proto == .tcp ? SOCK_STREAM : SOCK_DGRAM
        let fd = socket(AF_INET, Int32(kind.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw ClabError("-p \(port): cannot check the host port: socket: \(errnoDescription(errno))")
        }
        defer { close(fd) }
        if port.proto == .tcp {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.hostPort.bigEndian
        address.sin_addr.s_addr = (port.hostIP.flatMap { IPv4Address($0) }?.value ?? 0).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc != 0 else { return }
        switch errno {
        case EADDRINUSE:
            throw ClabError(
                "-p \(port): host port \(port.hostSide) is in use by a program on the host; choose another host port")
        case EADDRNOTAVAIL:
            throw ClabError("-p \(port): \(port.hostIP ?? "the address") is not an address of this host", exitCode: 2)
        case let code:
            throw ClabError("-p \(port): cannot check the host port: bind: \(errnoDescription(code))")
        }
    }

    /// The base lines, less the two jump rules when they are already there (`add chain` and `add
    /// table` are idempotent in nft; `add rule` would add a second copy).
    private static func baseLines(present rules: [NFTables.Rule]) -> [String] {
        base.filter { line in
            guard line.hasPrefix("add rule ") else { return true }
            return !rules.contains { line.hasSuffix(" \($0.chain) \($0.text)") }
        }
    }

    private static func deletions(_ rules: [NFTables.Rule], tagged tag: String, table: String = ref) -> [String] {
        rules.filter { $0.comment == tag }.map { "delete rule \(table) \($0.chain) handle \($0.handle)" }
    }

    private static func apply(_ lines: [String]) throws {
        guard !lines.isEmpty else { return }
        _ = try NFTables.run(lines.joined(separator: "\n") + "\n")
    }

    /// Runs `body` holding the host-wide firewall lock (an flock: released if clab dies).
    private static func locked<T>(_ body: () throws -> T) throws -> T {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw ClabError("cannot open the firewall lock \(lockPath): \(errnoDescription(errno))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw ClabError("cannot lock \(lockPath): \(errnoDescription(errno))") }
        }
        return try body()
    }

    /// Bridge names go into nft strings and a /proc path: an interface name (1-15 characters) of
    /// letters, digits, '-', '_' and '.', and not a sysctl directory of its own ("all", "default").
    static func checkedBridge(_ name: String) throws -> String {
        let ok =
            (1...15).contains(name.utf8.count) && name.utf8.allSatisfy(isNameByte)
            && ![".", "..", "all", "default"].contains(name)
        guard ok else {
            throw ClabError("bridge name \(name) is not valid: 1-15 letters, digits, '-', '_' or '.'", exitCode: 2)
        }
        return name
    }

    /// Container ids go into nft comments (at most 128 bytes there).
    static func checkedID(_ id: String) throws -> String {
        guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy(isNameByte) else {
            throw ClabError(
                "container id \(id) is not valid for a firewall comment: 1-64 letters, digits, '-', '_' or '.'")
        }
        return id
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            return true
        default: return false
        }
    }
}

/// "10.88.3.4/16" as its network, 10.88.0.0/16 (host bits cleared), or nil.
func subnetNetwork(_ cidr: String) -> IPv4Network? {
    let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let address = IPv4Address(String(parts[0])),
        parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) }), (1...2).contains(parts[1].utf8.count),
        let prefix = Int(parts[1]), prefix <= 32
    else { return nil }
    return IPv4Network(address: address, prefix: prefix)
}
