import CShims
import Glibc

/// A failed netlink request, named the way `ip` would describe it:
/// "RTM_NEWLINK clab0 (bridge): File exists".
public struct NetlinkError: Error, CustomStringConvertible, Sendable {
    /// The request: message type and what it was about.
    public let request: String
    public let errno: Int32
    /// Replaces strerror(errno) in the description when set: the kernel's extended-ack message
    /// ("Invalid argument (Unknown device type)") or why clab refused the request itself.
    public let detail: String?

    public init(request: String, errno: Int32, detail: String? = nil) {
        self.request = request
        self.errno = errno
        self.detail = detail
    }

    public var description: String { "\(request): \(detail ?? String(cString: strerror(errno)))" }
}

public struct LinkInfo: Sendable, Equatable {
    public var index: Int32
    public var name: String
    /// IFLA_INFO_KIND: "bridge", "veth", "vxlan"; nil for physical devices and lo.
    public var kind: String?
    /// Administratively up (IFF_UP), whatever the carrier.
    public var isUp: Bool
    public var mtu: UInt32
    /// The bridge (or other master) the link is enslaved to.
    public var master: Int32?

    public init(index: Int32, name: String, kind: String?, isUp: Bool, mtu: UInt32, master: Int32?) {
        self.index = index
        self.name = name
        self.kind = kind
        self.isUp = isUp
        self.mtu = mtu
        self.master = master
    }
}

public struct AddressInfo: Sendable, Equatable {
    public var index: Int32
    public var address: IPv4Address
    public var prefix: Int

    public init(index: Int32, address: IPv4Address, prefix: Int) {
        self.index = index
        self.address = address
        self.prefix = prefix
    }
}

/// An IPv4 unicast route of the main table.
public struct RouteInfo: Sendable, Equatable {
    public var destination: IPv4Network
    public var gateway: IPv4Address?
    public var outputIndex: Int32?

    public init(destination: IPv4Network, gateway: IPv4Address?, outputIndex: Int32?) {
        self.destination = destination
        self.gateway = gateway
        self.outputIndex = outputIndex
    }
}

/// Where requests go and replies come from: the kernel (NetlinkSocket), or a test's script.
public protocol NetlinkTransport: AnyObject {
    /// Sends one request datagram.
    func send(_ datagram: [UInt8]) throws
    /// The next datagram for us: one or more messages.
    func receive() throws -> [UInt8]
}

/// A NETLINK_ROUTE socket, connected to the kernel so no other process can inject replies.
public final class NetlinkSocket: NetlinkTransport {
    public let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 32 * 1024)

    /// A socket in the calling thread's network namespace.
    public init() throws {
        fd = try NetlinkSocket.open(context: "NETLINK_ROUTE socket")
    }

    /// A socket inside the network namespace `namespaceFD` refers to (/proc/PID/ns/net,
    /// /run/netns/NAME). A socket keeps the namespace it was created in, so a short-lived
    /// thread enters the namespace, creates it and ends; the calling thread never moves.
    public init(namespaceFD: Int32) throws {
        let job = NamespaceJob(namespaceFD: namespaceFD)
        let box = Unmanaged.passRetained(job).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                guard let arg else { return nil }
                let job = Unmanaged<NamespaceJob>.fromOpaque(arg).takeRetainedValue()
                job.run()
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<NamespaceJob>.fromOpaque(box).release()
            throw NetlinkError(
                request: job.context, errno: rc, detail: "pthread_create: \(String(cString: strerror(rc)))")
        }
        pthread_join(thread, nil)
        if let error = job.error { throw error }
        fd = job.fd
    }

    deinit { close(fd) }

    static func open(context: String) throws -> Int32 {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NL.route)
        guard fd >= 0 else { throw NetlinkError.syscall("socket(AF_NETLINK)", context: context) }
        // Errors carry the kernel's message and not a copy of our request; both are optional
        // (older kernels), so a failure here is not one.
        var one: Int32 = 1
        _ = setsockopt(fd, NL.solNetlink, NL.extAck, &one, 4)
        _ = setsockopt(fd, NL.solNetlink, NL.capAck, &one, 4)
        // sockaddr_nl {AF_NETLINK, pad 0, pid 0 (the kernel), groups 0} fits in a zeroed sockaddr.
        var kernel = sockaddr()
        kernel.sa_family = sa_family_t(AF_NETLINK)
        guard connect(fd, &kernel, 12) == 0 else {
            let error = NetlinkError.syscall("connect", context: context)
            close(fd)
            throw error
        }
        return fd
    }

    public func send(_ datagram: [UInt8]) throws {
        while true {
            let n = datagram.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            if n == datagram.count { return }
            if n < 0, errno == EINTR { continue }
            throw n < 0
                ? NetlinkError.syscall("send", context: "netlink")
                : NetlinkError(request: "netlink", errno: EMSGSIZE, detail: "send: short write")
        }
    }

    public func receive() throws -> [UInt8] {
        while true {
            // Peek at the datagram's size first: a truncated netlink datagram is lost for good.
            let size = buffer.withUnsafeMutableBytes {
                recv(fd, $0.baseAddress, $0.count, Int32(MSG_PEEK | MSG_TRUNC))
            }
            if size < 0, errno == EINTR { continue }
            guard size >= 0 else { throw NetlinkError.syscall("recv", context: "netlink") }
            if size > buffer.count {
                buffer = [UInt8](repeating: 0, count: (size + 4095) & ~4095)
                continue
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw NetlinkError.syscall("recv", context: "netlink") }
            return Array(buffer[0..<n])
        }
    }
}

/// The work of NetlinkSocket(namespaceFD:)'s thread; read after pthread_join.
private final class NamespaceJob {
    let namespaceFD: Int32
    var fd: Int32 = -1
    var error: NetlinkError?

    init(namespaceFD: Int32) { self.namespaceFD = namespaceFD }

    var context: String { "NETLINK_ROUTE socket in netns fd \(namespaceFD)" }

    func run() {
        guard clab_setns(namespaceFD, Int32(CLONE_NEWNET)) == 0 else {
            error = NetlinkError.syscall("setns(CLONE_NEWNET)", context: context)
            return
        }
        do {
            fd = try NetlinkSocket.open(context: context)
        } catch {
            self.error = error as? NetlinkError ?? NetlinkError(request: context, errno: EIO, detail: "\(error)")
        }
    }
}

extension NetlinkError {
    /// A failed system call under `context`, errno taken now.
    static func syscall(_ call: String, context: String) -> NetlinkError {
        let code = Glibc.errno
        return NetlinkError(request: context, errno: code, detail: "\(call): \(String(cString: strerror(code)))")
    }

    /// The same failure, named after the request it interrupted.
    func naming(_ request: String) -> NetlinkError {
        NetlinkError(request: request, errno: errno, detail: detail)
    }
}

/// rtnetlink for clab: one request at a time, each acknowledged (NLM_F_ACK) or ended by
/// NLMSG_DONE, replies matched by sequence number. Not for concurrent use from several threads.
public final class Netlink {
    public let transport: any NetlinkTransport
    private var sequence: UInt32 = 0

    public init(transport: any NetlinkTransport) {
        self.transport = transport
    }

    /// A NETLINK_ROUTE socket in the calling thread's network namespace.
    public convenience init() throws {
        self.init(transport: try NetlinkSocket())
    }

    /// A socket inside the network namespace `namespaceFD` refers to; see NetlinkSocket.
    public convenience init(namespaceFD: Int32) throws {
        self.init(transport: try NetlinkSocket(namespaceFD: namespaceFD))
    }

    /// Sends `request` and returns its replies (none for an acknowledged change, the entries of
    /// a dump). A dump the kernel marks inconsistent (a change raced it) is retried.
    @discardableResult
    public func execute(_ request: NetlinkRequest) throws -> [NetlinkMessage] {
        for _ in 0..<3 {
            let (replies, interrupted) = try exchange(request)
            if !interrupted { return replies }
        }
        throw NetlinkError(
            request: request.label, errno: EAGAIN, detail: "interrupted by concurrent changes three times; try again")
    }

    private func exchange(_ request: NetlinkRequest) throws -> (replies: [NetlinkMessage], interrupted: Bool) {
        sequence = sequence == UInt32.max ? 1 : sequence + 1
        let seq = sequence
        do {
            try transport.send(request.encoded(sequence: seq))
        } catch let error as NetlinkError {
            throw error.naming(request.label)
        }
        var replies: [NetlinkMessage] = []
        var interrupted = false
        while true {
            let datagram: [UInt8]
            do {
                datagram = try transport.receive()
            } catch let error as NetlinkError {
                throw error.naming(request.label)
            }
            let messages: [NetlinkMessage]
            do {
                messages = try RTNetlink.messages(in: datagram)
            } catch let error as NetlinkError {
                throw error.naming(request.label)
            }
            for message in messages {
                // Left over from an earlier request that failed half-way: not ours.
                guard message.sequence == seq else { continue }
                if message.flags & NL.dumpInterrupted != 0 { interrupted = true }
                switch message.type {
                case NL.error:
                    if let error = RTNetlink.error(from: message, request: request.label) { throw error }
                    return (replies, interrupted)
                case NL.done:
                    if message.payload.count >= 4, let error = RTNetlink.error(from: message, request: request.label) {
                        throw error
                    }
                    return (replies, interrupted)
                case NL.noop:
                    continue
                case NL.overrun:
                    throw NetlinkError(request: request.label, errno: ENOBUFS, detail: "netlink overrun")
                default:
                    replies.append(message)
                }
            }
        }
    }

    // MARK: - Listing

    public func links() throws -> [LinkInfo] {
        try execute(RTNetlink.getLinks()).compactMap(RTNetlink.link(from:))
    }

    /// The link named `name`, or nil when there is none.
    public func link(named name: String) throws -> LinkInfo? {
        do {
            return try execute(RTNetlink.getLink(named: name)).lazy.compactMap(RTNetlink.link(from:)).first
        } catch let error as NetlinkError where error.errno == ENODEV {
            return nil
        }
    }

    /// IPv4 addresses of all links.
    public func addresses() throws -> [AddressInfo] {
        try execute(RTNetlink.getAddresses()).compactMap(RTNetlink.address(from:))
    }

    /// IPv4 unicast routes of the main table.
    public func routes() throws -> [RouteInfo] {
        try execute(RTNetlink.getRoutes()).compactMap(RTNetlink.route(from:))
    }

    /// The index of link `name`; a missing link fails as `request` ("RTM_NEWADDR ...: No such device").
    public func index(of name: String, for request: String) throws -> Int32 {
        try RTNetlink.validateName(name, request: request)
        guard let link = try link(named: name) else { throw NetlinkError(request: request, errno: ENODEV) }
        return link.index
    }

    // MARK: - Links

    public func addBridge(_ name: String) throws {
        try execute(RTNetlink.newBridge(name))
    }

    /// A veth pair; the peer is created directly in the netns of `peerNamespaceFD` when given,
    /// with the MAC `peerMAC` when given.
    public func addVeth(_ name: String, peer: String, peerNamespaceFD: Int32? = nil, peerMAC: [UInt8]? = nil) throws {
        try execute(RTNetlink.newVeth(name, peer: peer, peerNamespaceFD: peerNamespaceFD, peerMAC: peerMAC))
    }

    /// A VXLAN device: `remote` is the other end (unicast) or a multicast group, `device` the
    /// underlay link.
    public func addVXLAN(
        _ name: String, id: UInt32, remote: IPv4Address?, local: IPv4Address?, port: UInt16 = 4789, device: String?
    ) throws {
        let deviceIndex = try device.map {
            try index(
                of: $0, for: "RTM_NEWLINK \(RTNetlink.printable(name)) (vxlan id \(id)) dev \(RTNetlink.printable($0))")
        }
        try execute(
            RTNetlink.newVXLAN(name, id: id, remote: remote, local: local, port: port, deviceIndex: deviceIndex))
    }

    /// Enslaves `link` to `master` (a bridge); nil releases it.
    public func setMaster(_ link: String, master: String?) throws {
        let label =
            "RTM_SETLINK \(RTNetlink.printable(link)) "
            + (master.map { "master \(RTNetlink.printable($0))" } ?? "nomaster")
        let masterIndex = try master.map { try index(of: $0, for: label) } ?? 0
        try execute(RTNetlink.setMaster(link, masterIndex: masterIndex, label: label))
    }

    public func setUp(_ link: String) throws {
        try execute(RTNetlink.setUp(link, up: true))
    }

    public func setDown(_ link: String) throws {
        try execute(RTNetlink.setUp(link, up: false))
    }

    public func setMTU(_ link: String, _ mtu: UInt32) throws {
        try execute(RTNetlink.setMTU(link, mtu))
    }

    /// Renames a link (older kernels refuse while it is up: EBUSY).
    public func rename(_ link: String, to newName: String) throws {
        let label = "RTM_SETLINK \(RTNetlink.printable(link)) name \(RTNetlink.printable(newName))"
        try RTNetlink.validateName(newName, request: label)
        try execute(RTNetlink.rename(index: index(of: link, for: label), from: link, to: newName))
    }

    /// Moves a link into the network namespace `fd` refers to.
    public func moveToNamespace(_ link: String, fd: Int32) throws {
        try execute(RTNetlink.moveToNamespace(link, fd: fd))
    }

    /// Deletes a link (for a veth, both ends).
    public func delete(_ link: String) throws {
        try execute(RTNetlink.delete(link))
    }

    // MARK: - Addresses and routes

    public func addAddress(_ address: IPv4Address, prefix: Int, to link: String) throws {
        let label = "RTM_NEWADDR \(address)/\(prefix) dev \(RTNetlink.printable(link))"
        try execute(RTNetlink.address(address, prefix: prefix, index: index(of: link, for: label), label: label))
    }

    public func deleteAddress(_ address: IPv4Address, prefix: Int, from link: String) throws {
        let label = "RTM_DELADDR \(address)/\(prefix) dev \(RTNetlink.printable(link))"
        try execute(
            RTNetlink.address(address, prefix: prefix, index: index(of: link, for: label), add: false, label: label))
    }

    /// A route in the main table via `gateway`, or on `device` directly when there is no gateway.
    public func addRoute(_ destination: IPv4Network, via gateway: IPv4Address?, device: String?) throws {
        try changeRoute(destination, via: gateway, device: device, add: true)
    }

    public func deleteRoute(_ destination: IPv4Network, via gateway: IPv4Address?, device: String?) throws {
        try changeRoute(destination, via: gateway, device: device, add: false)
    }

    private func changeRoute(_ destination: IPv4Network, via gateway: IPv4Address?, device: String?, add: Bool) throws {
        let label =
            (add ? "RTM_NEWROUTE " : "RTM_DELROUTE ") + (destination.prefix == 0 ? "default" : "\(destination)")
            + (gateway.map { " via \($0)" } ?? "") + (device.map { " dev \(RTNetlink.printable($0))" } ?? "")
        let outputIndex = try device.map { try index(of: $0, for: label) }
        try execute(RTNetlink.route(destination, via: gateway, outputIndex: outputIndex, add: add, label: label))
    }
}
