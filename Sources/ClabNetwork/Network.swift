import CShims
import ClabNetlink
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// How a container is connected (`--net`), the four models of Docker's network drivers.
public enum NetworkMode: Equatable, Sendable, CustomStringConvertible {
    /// A veth pair into a bridge, an address from the network's subnet, NAT: the default, on
    /// the network named here ("clab": the default bridge clab0).
    case bridge(String)
    /// Its own network namespace with only `lo` (stage 6's behaviour).
    case none
    /// The host's network namespace: no isolation of the network at all.
    case host
    /// The network namespace of a running container, by name (`--name`).
    case container(String)

    /// `--net bridge|none|host|container:NAME|NETWORK`.
    public static func parse(_ text: String) throws -> NetworkMode {
        switch text {
        case "bridge", NetworkStore.defaultName: return .bridge(NetworkStore.defaultName)
        case "none": return .none
        case "host": return .host
        default:
            if text.hasPrefix("container:") {
                let name = String(text.dropFirst("container:".count))
                guard !name.isEmpty else {
                    throw ClabError(
                        "--net container: needs a name: --net container:NAME (a running container's --name)",
                        exitCode: 2)
                }
                return .container(name)
            }
            try NetworkStore.validateName(text)
            return .bridge(text)
        }
    }

    public var description: String {
        switch self {
        case .bridge(let name): return name == NetworkStore.defaultName ? "bridge" : name
        case .none: return "none"
        case .host: return "host"
        case .container(let name): return "container:\(name)"
        }
    }
}

/// A network: a bridge on the host, a subnet, the gateway (the bridge's own address).
public struct NetworkConfig: Codable, Sendable, Equatable {
    public var name: String
    public var subnet: String
    public var bridge: String
    public var created: Int

    public var network: IPv4Network? { IPv4Network(subnet) }
    /// The bridge's address, the containers' default route: the subnet's first host.
    public var gateway: IPv4Address? { network?.host(1) }
}

/// What a container got on a network: where its eth0 is, and how to undo it.
public struct NetworkAttachment: Sendable, Equatable {
    public var network: NetworkConfig
    public var address: IPv4Address
    public var prefix: Int
    public var hostVeth: String
    public var ports: [PortPublish]
}

/// Networks (definitions under the state root, user data) and their runtime state (address
/// leases under the run directory), with the host plumbing that goes with them.
///
/// Everything happens under one lock file, so concurrent starts never get the same address and
/// the first/last container of a network agree on who creates and removes the shared parts
/// (the default bridge, the firewall's rules, `net.ipv4.ip_forward`).
public struct NetworkStore: Sendable {
    public static let defaultName = "clab"
    public static let defaultBridge = "clab0"

    /// Persistent: one JSON file per network.
    public let configDir: String
    /// Runtime: leases (one file per address) and hosts files, per state root.
    public let runDir: String
    /// The state root, and the default network's bridge name for it.
    public let root: String
    /// Host-wide, whatever the state root: the bridges, clab's nft table and ip_forward are the
    /// kernel's, one of each per host, so every clab (each test root, each student's CLAB_ROOT)
    /// coordinates here: the lock, which bridges are active, which subnets are claimed, and
    /// ip_forward's value from before any clab network.
    public let hostDir: String

    public init(root: String, runDir: String, hostDir: String = "/run/clab/net") {
        configDir = root + "/networks"
        self.runDir = runDir + "/networks"
        self.root = root
        self.hostDir = hostDir
    }

    /// The default network's bridge: `clab0` for the default state root, and a name of its own
    /// for any other root (tests, one root per student), so two roots never share a bridge.
    public var defaultBridgeName: String {
        guard root != "/var/lib/clab" else { return Self.defaultBridge }
        // FNV-1a of the root's path: stable, 6 hex digits fit "clab-" in IFNAMSIZ.
        var hash: UInt32 = 2_166_136_261
        for byte in root.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let hex = String(hash & 0xff_ffff, radix: 16)
        return "clab-" + String(repeating: "0", count: 6 - hex.count) + hex
    }

    // MARK: - definitions

    public static func validateName(_ name: String) throws {
        guard isPlainName(name, uppercase: false, maxLength: 32) else {
            throw ClabError(
                "invalid network name '\(name)': use 1-32 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit",
                exitCode: 2)
        }
        guard !["none", "host", "bridge"].contains(name) else {
            throw ClabError("'\(name)' names a network model, not a network: pick another name", exitCode: 2)
        }
    }

    public func list() -> [NetworkConfig] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: configDir)) ?? []).filter {
            $0.hasSuffix(".json")
        }
        return names.sorted().compactMap { load(String($0.dropLast(5))) }
    }

    func load(_ name: String) -> NetworkConfig? {
        guard let text = readText(configDir + "/\(name).json") else { return nil }
        return try? JSONDecoder().decode(NetworkConfig.self, from: Data(text.utf8))
    }

    /// The named network; the default one is defined on first use.
    public func config(_ name: String) throws -> NetworkConfig {
        if let config = load(name) { return config }
        guard name == Self.defaultName else {
            throw ClabError(
                "no network '\(name)': create it with `clab network create \(name)`, or see `clab network ls`")
        }
        return try withLock { try load(name) ?? define(name: name, subnet: nil, bridge: defaultBridgeName) }
    }

    /// `clab network create NAME [--subnet CIDR]`: the definition and its bridge.
    public func create(_ name: String, subnet: String?) throws -> NetworkConfig {
        try Self.validateName(name)
        guard name != Self.defaultName else {
            throw ClabError("'\(name)' is the default network: it is made on first use", exitCode: 2)
        }
        return try withLock {
            guard load(name) == nil else {
                throw ClabError("network '\(name)' exists: see `clab network inspect \(name)`")
            }
            let bridge = "br-" + ContainerSpec.newID()
            let config = try define(name: name, subnet: subnet, bridge: bridge)
            do {
                try ensureBridge(config)
            } catch {
                unlink(configDir + "/\(name).json")
                throw error
            }
            return config
        }
    }

    /// `clab network rm NAME`: only when no container uses it.
    public func remove(_ name: String) throws {
        try Self.validateName(name)
        try withLock {
            guard let config = load(name) else { throw ClabError("no network '\(name)': see `clab network ls`") }
            let users = leases(name)
            guard users.isEmpty else {
                throw ClabError(
                    "network '\(name)' is in use by \(users.map(\.container).joined(separator: ", ")): stop them first")
            }
            try? Netlink().delete(config.bridge)
            unlink(claimPath(config.subnet))
            unlink(configDir + "/\(name).json")
            try? FileManager.default.removeItem(atPath: runDir + "/\(name)")
        }
    }

    /// Picks (or checks) a subnet that no host route and no other clab network covers.
    private func define(name: String, subnet: String?, bridge: String) throws -> NetworkConfig {
        let routes = try Netlink().routes().filter { $0.destination.prefix > 0 }
        let taken = list().compactMap(\.network)
        // Subnets other state roots claimed (their bridges may be down right now).
        let claimed = pruneClaims()
        func conflict(_ net: IPv4Network) -> String? {
            if let route = routes.first(where: { $0.destination.overlaps(net) }) {
                return "the host's route to \(route.destination)"
            }
            if let other = taken.first(where: { $0.overlaps(net) }) { return "clab network \(other)" }
            if let other = claimed.first(where: { $0.overlaps(net) }) {
                return "\(other), claimed by another clab state directory"
            }
            return nil
        }
        let chosen: IPv4Network
        if let subnet {
            guard let net = IPv4Network(subnet), net.prefix >= 8, net.prefix <= 28 else {
                throw ClabError(
                    "--subnet \(subnet): give a network address with a prefix from /8 to /28, e.g. 172.30.0.0/16",
                    exitCode: 2)
            }
            if let why = conflict(net) {
                throw ClabError("--subnet \(subnet) overlaps \(why): pick another range", exitCode: 2)
            }
            chosen = net
        } else {
            // Like Docker's pool, but off Docker's own 172.17-172.28 so both can live on one host.
            let pool = (29...31).map { "172.\($0).0.0/16" } + (200...255).map { "10.\($0).0.0/16" }
            guard let free = pool.compactMap(IPv4Network.init).first(where: { conflict($0) == nil }) else {
                throw ClabError("no free subnet for network '\(name)': give one with --subnet CIDR")
            }
            chosen = free
        }
        let config = NetworkConfig(name: name, subnet: chosen.description, bridge: bridge, created: Int(time(nil)))
        try FS.makeDirectories(hostDir + "/claims", mode: 0o755)
        try FS.write(root + "\n", to: claimPath(config.subnet))
        try FS.makeDirectories(configDir, mode: 0o755)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FS.write(
            String(decoding: try encoder.encode(config), as: UTF8.self) + "\n", to: configDir + "/\(name).json")
        return config
    }

    // MARK: - leases

    public struct Lease: Sendable, Equatable {
        public var network: String
        public var address: IPv4Address
        public var container: String
        public var name: String?
        /// It has published ports (rules to remove when it leaves).
        public var published: Bool = false
    }

    func leaseDir(_ network: String) -> String { runDir + "/\(network)/leases" }

    /// The addresses in use on a network: one file per address (`<ip>`: "<container id> <name>").
    public func leases(_ network: String) -> [Lease] {
        let dir = leaseDir(network)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().compactMap { file in
            guard let address = IPv4Address(file), let text = readText(dir + "/" + file) else { return nil }
            let parts = text.split(separator: " ", omittingEmptySubsequences: true).map { String($0).trimmed }
            guard let id = parts.first, !id.isEmpty else { return nil }
            return Lease(
                network: network, address: address, container: id,
                name: parts.count > 1 && parts[1] != "-" ? parts[1] : nil,
                published: parts.count > 2 && parts[2] == "published")
        }
    }

    /// Every lease of every network that has any.
    public func allLeases() -> [Lease] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []).sorted().flatMap { leases($0) }
    }

    // MARK: - a container joins and leaves

    /// Before the container's first instruction (its netns exists, it waits for "go"): an
    /// address, the shared parts if this is the network's first container, the veth pair with
    /// eth0 inside, the route, the published ports. `netnsFD` is /proc/<pid>/ns/net.
    public func attach(
        containerID: String, name: String?, network: String, netnsFD: Int32, ports: [PortPublish]
    ) throws -> NetworkAttachment {
        let (config, address, net) = try withLock { () throws -> (NetworkConfig, IPv4Address, IPv4Network) in
            // Defined by `config(_:)` when the container was prepared (that takes the lock too).
            guard let config = load(network) else { throw ClabError("no network '\(network)': see `clab network ls`") }
            guard let net = config.network, let gateway = config.gateway else {
                throw ClabError("network '\(network)' has a bad subnet \(config.subnet): remove and recreate it")
            }
            let current = leases(network)
            // IPAM: the lowest free address after the gateway; the lease file is the record, the
            // lock is what makes it unique.
            let used = Set(current.map(\.address)).union([gateway])
            guard let address = (2..<max(net.size, 3) - 1).lazy.map(net.host).first(where: { !used.contains($0) })
            else {
                throw ClabError("network '\(network)' (\(config.subnet)) has no free address left")
            }
            // The lease first: it is what `detach` undoes from, so a failure in the shared parts
            // below still gets ip_forward, the active mark and the rules undone.
            try FS.makeDirectories(leaseDir(network), mode: 0o755)
            try FS.write(
                "\(containerID) \(name ?? "-") \(ports.isEmpty ? "-" : "published")\n",
                to: leaseDir(network) + "/\(address)")
            if current.isEmpty {
                if activeBridges().isEmpty { try IPForwarding.enable(savingIn: hostDir) }
                try setActive(config.bridge, true)
                try ensureBridge(config)
                try Firewall.addNetwork(bridge: config.bridge, subnet: config.subnet)
            }
            if !ports.isEmpty {
                try Firewall.publish(
                    ports, containerID: containerID, containerIP: address.description, bridge: config.bridge)
            }
            if network != Self.defaultName { try writeHosts(network) }
            return (config, address, net)
        }
        let hostVeth = Self.hostVethName(containerID)
        // Before the veth exists: from its first frame the container can send only as itself.
        let mac = Firewall.containerMAC(address)
        try Firewall.guardAddresses(
            containerID: containerID, hostVeth: hostVeth, mac: mac, containerIP: address.description)
        let host = try Netlink()
        try host.addVeth(hostVeth, peer: "eth0", peerNamespaceFD: netnsFD, peerMAC: mac)
        try host.setMaster(hostVeth, master: config.bridge)
        // Hairpin: a container reaching its own published port through the host's address
        // gets the answer back out of the port it came in by (the bridge refuses that by default).
        let hairpin = "/sys/class/net/\(hostVeth)/brport/hairpin_mode"
        let fd = open(hairpin, O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = write(fd, "1", 1)
            close(fd)
        }
        try host.setUp(hostVeth)
        let inside = try Netlink(namespaceFD: netnsFD)
        try inside.addAddress(address, prefix: net.prefix, to: "eth0")
        try inside.setUp("eth0")
        if let gateway = config.gateway {
            try inside.addRoute(IPv4Network(address: IPv4Address(0), prefix: 0), via: gateway, device: "eth0")
        }
        return NetworkAttachment(
            network: config, address: address, prefix: net.prefix, hostVeth: hostVeth, ports: ports)
    }

    /// Undoes `attach` for a container, whatever part of it happened: its ports, its veth (gone
    /// with its network namespace anyway), its lease; the network's shared parts when it was
    /// the last. Idempotent, also for gc after a crash.
    /// The veth is not deleted here: it goes with the container's network namespace, and an
    /// explicit delete would wait ~16 ms for the kernel (RCU) on every container's exit.
    public func detach(containerID: String) {
        try? withLock {
            for lease in allLeases() where lease.container == containerID {
                if lease.published { try? Firewall.unpublish(containerID: containerID) }
                try? Firewall.retireGuard(containerID: containerID, hostVeth: Self.hostVethName(containerID))
                unlink(leaseDir(lease.network) + "/\(lease.address)")
                if lease.network != Self.defaultName { try? writeHosts(lease.network) }
                if leases(lease.network).isEmpty, let config = load(lease.network) {
                    // The default bridge lives only while it has containers; a user's network
                    // keeps its bridge until `clab network rm`.
                    retireBridge(config.bridge, deleteLink: lease.network == Self.defaultName)
                }
            }
        }
    }

    /// "vc" + the container id: 14 characters, within IFNAMSIZ, and gc can tell it is clab's.
    public static func hostVethName(_ containerID: String) -> String { "vc" + containerID.prefix(12) }

    /// The bridge, with the gateway address, up, and its localhost routing for published ports.
    func ensureBridge(_ config: NetworkConfig) throws {
        guard let net = config.network, let gateway = config.gateway else { return }
        let nl = try Netlink()
        if try nl.link(named: config.bridge) == nil {
            try nl.addBridge(config.bridge)
            try nl.addAddress(gateway, prefix: net.prefix, to: config.bridge)
        }
        try nl.setUp(config.bridge)
        try Firewall.enableLocalhostRouting(bridge: config.bridge)
    }

    /// The user network's hosts file: every named container on it, so they find each other by
    /// name. Rewritten in place (same inode): the containers bind-mount it as /etc/hosts.
    func writeHosts(_ network: String) throws {
        var lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost"]
        for lease in leases(network) {
            lines.append(
                "\(lease.address)\t\([lease.name, String(lease.container)].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " "))"
            )
        }
        let path = hostsFile(network)
        try FS.makeDirectories(runDir + "/\(network)", mode: 0o755)
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        defer { close(fd) }
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        guard ftruncate(fd, 0) == 0 else { throw SyscallError("truncate \(path)") }
        try FS.writeAll(fd, text, what: path)
    }

    /// Where a user network's hosts file is (bind-mounted at /etc/hosts in its containers).
    public func hostsFile(_ network: String) -> String { runDir + "/\(network)/hosts" }

    /// Prepares the hosts file before a container mounts it (it may be the network's first).
    public func prepareHosts(_ network: String) throws {
        try withLock { if !FS.exists(hostsFile(network)) { try writeHosts(network) } }
    }

    /// The subnets state roots have claimed, host-wide. A claim whose root no longer defines a
    /// network with that subnet (a test's temporary root, a removed network) is stale: removed
    /// here (and by `clab gc`), or the pool would run dry. The caller holds the lock.
    @discardableResult
    func pruneClaims() -> [IPv4Network] {
        var claimed: [IPv4Network] = []
        for file in (try? FileManager.default.contentsOfDirectory(atPath: hostDir + "/claims")) ?? [] {
            guard let net = IPv4Network(file.replacing("_", with: "/")) else { continue }
            let owner = readText(hostDir + "/claims/" + file)?.trimmed ?? ""
            let ownerStore = NetworkStore(root: owner, runDir: owner, hostDir: hostDir)
            if !owner.isEmpty, ownerStore.list().contains(where: { $0.subnet == net.description }) {
                claimed.append(net)
            } else {
                unlink(hostDir + "/claims/" + file)
            }
        }
        return claimed
    }

    /// `clab gc`: drops the claims of state roots that no longer define those subnets.
    public func pruneStaleClaims() { _ = try? withLock { pruneClaims() } }

    /// `clab gc`: the bridges whose state root is gone (deleted by hand, or a test's removed
    /// after a crash): no clab can ever detach from them. Their bridge and rules go, and when no
    /// bridge is left the tables go and ip_forward gets its old value back. Returns their names.
    public func pruneOrphanedBridges() -> [String] {
        (try? withLock {
            var removed: [String] = []
            for bridge in activeBridges() {
                let owner = readText(hostDir + "/active/" + bridge)?.trimmed ?? ""
                guard !owner.isEmpty, !FS.isDirectory(owner), bridge.hasPrefix("clab") else { continue }
                retireBridge(bridge, deleteLink: true)
                removed.append(bridge)
            }
            return removed
        }) ?? []
    }

    /// `clab gc`: this state root's bridges marked active with no lease left on their network
    /// (the run directory, where leases live, was lost): their rules go, the default bridge too,
    /// and with the last bridge the tables and ip_forward, as when a last container detaches.
    public func pruneIdleBridges() -> [String] {
        (try? withLock {
            var removed: [String] = []
            let networks = list()
            for bridge in activeBridges() where readText(hostDir + "/active/" + bridge)?.trimmed == root {
                guard let network = networks.first(where: { $0.bridge == bridge }), leases(network.name).isEmpty
                else { continue }
                retireBridge(bridge, deleteLink: network.name == Self.defaultName)
                removed.append(bridge)
            }
            return removed
        }) ?? []
    }

    /// A bridge no container uses any more: its rules go (and the link, if asked), it is no longer
    /// active, and with the last active bridge clab's nft table goes and ip_forward gets its old
    /// value back. The caller holds the lock.
    func retireBridge(_ bridge: String, deleteLink: Bool) {
        try? Firewall.removeNetwork(bridge: bridge)
        if deleteLink { try? Netlink().delete(bridge) }
        try? setActive(bridge, false)
        if activeBridges().isEmpty {
            _ = try? Firewall.removeTableIfUnused()
            IPForwarding.restore(from: hostDir)
        }
    }

    func claimPath(_ subnet: String) -> String { hostDir + "/claims/" + subnet.replacing("/", with: "_") }

    /// Bridges with containers on them, host-wide (files in hostDir/active).
    func activeBridges() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: hostDir + "/active")) ?? []
    }

    func setActive(_ bridge: String, _ active: Bool) throws {
        let path = hostDir + "/active/" + bridge
        if active {
            try FS.makeDirectories(hostDir + "/active", mode: 0o755)
            try FS.write(root + "\n", to: path)
        } else {
            unlink(path)
        }
    }

    /// `dir` with mode 0700 (made, or corrected), its missing parents 0755.
    static func makePrivateDirectory(_ dir: String) throws {
        try FS.makeDirectories(Path.dirname(dir), mode: 0o755)
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw SyscallError("mkdir \(dir)") }
        guard chmod(dir, 0o700) == 0 else { throw SyscallError("chmod \(dir)") }
    }

    /// One lock for every clab on the host (see `hostDir`).
    func withLock<R>(_ body: () throws -> R) throws -> R {
        // Root's alone: leases, names, hosts files and the state roots' paths are nobody else's
        // business. (Their parents keep their modes: /run/clab must stay passable for init.)
        try Self.makePrivateDirectory(hostDir)
        try Self.makePrivateDirectory(runDir)
        let path = hostDir + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw SyscallError("flock \(path)") }
        }
        return try body()
    }
}

/// net.ipv4.ip_forward: on while any clab network has a container (the bridge's traffic is
/// routed through the host), and back to what it was when the last one leaves. The value
/// before clab is kept in a file, so a crashed clab's gc can restore it too.
enum IPForwarding {
    static let sysctl = "/proc/sys/net/ipv4/ip_forward"

    static func enable(savingIn dir: String) throws {
        let saved = dir + "/ip_forward.saved"
        if !FS.exists(saved) {
            let before = readText(sysctl)?.trimmed ?? "0"
            try FS.makeDirectories(dir, mode: 0o755)
            try FS.write(before + "\n", to: saved)
        }
        try FS.write("1\n", to: sysctl)
    }

    static func restore(from dir: String) {
        let saved = dir + "/ip_forward.saved"
        guard let before = readText(saved)?.trimmed, before == "0" || before == "1"
        else { return }
        try? FS.write(before + "\n", to: sysctl)
        unlink(saved)
    }
}

/// A small file's text (nil if unreadable).
func readText(_ path: String) -> String? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return String(decoding: data, as: UTF8.self)
}
