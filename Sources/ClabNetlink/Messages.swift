// Pure message building and parsing: no socket here, so every byte can be checked in a unit test.
// Layouts (all host byte order unless noted):
//   nlmsghdr  16: len u32, type u16, flags u16, seq u32, pid u32
//   ifinfomsg 16: family u8, pad u8, type u16, index i32, flags u32, change u32
//   ifaddrmsg  8: family u8, prefixlen u8, flags u8, scope u8, index u32
//   rtmsg     12: family, dst_len, src_len, tos, table, protocol, scope, type (u8 each), flags u32
//   rtattr     4: len u16 (header + payload, without padding), type u16; payload padded to 4
// IPv4 addresses and the VXLAN port travel in network byte order.

import Glibc

/// Rounds up to netlink's 4-byte alignment (NLMSG_ALIGN, RTA_ALIGN).
@inline(__always) func align4(_ n: Int) -> Int { (n + 3) & ~3 }

/// Attributes being written: each one padded to 4 bytes; a nest's length covers its children
/// and their padding (as the kernel's nla_nest_end computes it).
public struct NetlinkAttributes: Sendable, Equatable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func append(_ type: UInt16, _ payload: [UInt8]) {
        appendHeader(length: 4 + payload.count, type: type)
        bytes += payload
        pad()
    }

    public mutating func append(_ type: UInt16, u32 value: UInt32) {
        append(type, withUnsafeBytes(of: value) { Array($0) })
    }

    /// A NUL-terminated string (interface names: the kernel's policy wants the NUL).
    public mutating func append(_ type: UInt16, string: String) {
        append(type, Array(string.utf8) + [0])
    }

    /// A string without NUL, as iproute2 sends IFLA_INFO_KIND.
    public mutating func append(_ type: UInt16, bare string: String) {
        append(type, Array(string.utf8))
    }

    public mutating func append(_ type: UInt16, address: IPv4Address) {
        append(type, address.networkBytes)
    }

    /// A nested attribute: `body` writes the children (and may first write a fixed header, as
    /// VETH_INFO_PEER's ifinfomsg).
    public mutating func nest(_ type: UInt16, _ body: (inout NetlinkAttributes) -> Void) {
        var inner = NetlinkAttributes()
        body(&inner)
        appendHeader(length: 4 + inner.bytes.count, type: type)
        bytes += inner.bytes
    }

    /// Raw bytes (a fixed header inside a nest); padded like an attribute's payload.
    public mutating func appendRaw(_ raw: [UInt8]) {
        bytes += raw
        pad()
    }

    private mutating func appendHeader(length: Int, type: UInt16) {
        withUnsafeBytes(of: UInt16(length)) { bytes += $0 }
        withUnsafeBytes(of: type) { bytes += $0 }
    }

    private mutating func pad() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }
}

/// One rtnetlink request: message type and flags, the body (family header and attributes), and
/// the label an error names ("RTM_NEWLINK clab0 (bridge)").
public struct NetlinkRequest: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var body: [UInt8]
    public var label: String

    public init(type: UInt16, flags: UInt16, body: [UInt8], label: String) {
        self.type = type
        self.flags = flags
        self.body = body
        self.label = label
    }

    public var isDump: Bool { flags & NL.dump == NL.dump }

    /// The datagram: nlmsghdr + body. The port id stays 0: the kernel fills in the sender's.
    public func encoded(sequence: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(NL.headerSize + body.count)
        withUnsafeBytes(of: UInt32(NL.headerSize + body.count)) { out += $0 }
        withUnsafeBytes(of: type) { out += $0 }
        withUnsafeBytes(of: flags) { out += $0 }
        withUnsafeBytes(of: sequence) { out += $0 }
        withUnsafeBytes(of: UInt32(0)) { out += $0 }
        out += body
        return out
    }
}

/// One message of a reply datagram.
public struct NetlinkMessage: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var portID: UInt32
    /// Everything after the nlmsghdr, up to nlmsg_len.
    public var payload: [UInt8]

    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }
}

/// A malformed reply: the kernel never sends one, so this means a bug on one side.
func malformed(_ what: String, request: String = "netlink reply") -> NetlinkError {
    NetlinkError(request: request, errno: EPROTO, detail: "malformed reply: \(what)")
}

extension [UInt8] {
    @inline(__always) func u16(at offset: Int) -> UInt16 {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt16.self) }
    }
    @inline(__always) func u32(at offset: Int) -> UInt32 {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
    }
}

/// Pure encoders and decoders of the messages clab uses.
public enum RTNetlink {
    // MARK: - Parsing

    /// Splits a datagram into its messages (each at a 4-byte boundary).
    public static func messages(in datagram: [UInt8]) throws -> [NetlinkMessage] {
        var out: [NetlinkMessage] = []
        var offset = 0
        while datagram.count - offset >= NL.headerSize {
            let length = Int(datagram.u32(at: offset))
            guard length >= NL.headerSize, length <= datagram.count - offset else {
                throw malformed("nlmsg_len \(length) at offset \(offset) of \(datagram.count)")
            }
            out.append(
                NetlinkMessage(
                    type: datagram.u16(at: offset + 4), flags: datagram.u16(at: offset + 6),
                    sequence: datagram.u32(at: offset + 8), portID: datagram.u32(at: offset + 12),
                    payload: Array(datagram[(offset + NL.headerSize)..<(offset + length)])))
            offset += align4(length)
        }
        return out
    }

    /// The attributes in `bytes` from `offset`: type (flags masked off) to payload; the last
    /// one of a type wins. Stops at a truncated attribute, as the kernel's nla_for_each does.
    public static func attributes(_ bytes: [UInt8], from offset: Int = 0) -> [UInt16: [UInt8]] {
        var out: [UInt16: [UInt8]] = [:]
        var offset = offset
        while bytes.count - offset >= 4 {
            let length = Int(bytes.u16(at: offset))
            guard length >= 4, length <= bytes.count - offset else { break }
            out[bytes.u16(at: offset + 2) & NL.typeMask] = Array(bytes[(offset + 4)..<(offset + length)])
            offset += align4(length)
        }
        return out
    }

    /// A string attribute's text, up to its first NUL.
    static func string(_ payload: [UInt8]?) -> String? {
        guard let payload else { return nil }
        return String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func u32(_ payload: [UInt8]?) -> UInt32? {
        guard let payload, payload.count >= 4 else { return nil }
        return payload.u32(at: 0)
    }

    /// An RTM_NEWLINK reply (or dump entry) as a LinkInfo; nil for other messages.
    public static func link(from message: NetlinkMessage) -> LinkInfo? {
        let p = message.payload
        guard message.type == RTM.newLink, p.count >= RTM.ifinfomsgSize else { return nil }
        let attrs = attributes(p, from: RTM.ifinfomsgSize)
        let info = attrs[IFLA.linkinfo].map { attributes($0) }
        let master = u32(attrs[IFLA.master]).map { Int32(bitPattern: $0) }
        return LinkInfo(
            index: Int32(bitPattern: p.u32(at: 4)), name: string(attrs[IFLA.ifname]) ?? "",
            kind: string(info?[IFLA.infoKind]), isUp: p.u32(at: 8) & IFLA.up != 0,
            mtu: u32(attrs[IFLA.mtu]) ?? 0, master: master == 0 ? nil : master)
    }

    /// An IPv4 RTM_NEWADDR as an AddressInfo; nil for other families and messages.
    public static func address(from message: NetlinkMessage) -> AddressInfo? {
        let p = message.payload
        guard message.type == RTM.newAddr, p.count >= RTM.ifaddrmsgSize, p[0] == UInt8(AF_INET) else { return nil }
        let attrs = attributes(p, from: RTM.ifaddrmsgSize)
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on point-to-point links.
        guard let address = (attrs[RTM.ifaLocal] ?? attrs[RTM.ifaAddress]).flatMap(IPv4Address.init(networkBytes:))
        else { return nil }
        return AddressInfo(index: Int32(bitPattern: p.u32(at: 4)), address: address, prefix: Int(p[1]))
    }

    /// An IPv4 unicast route of the main table as a RouteInfo; nil for anything else.
    public static func route(from message: NetlinkMessage) -> RouteInfo? {
        let p = message.payload
        guard message.type == RTM.newRoute, p.count >= RTM.rtmsgSize, p[0] == UInt8(AF_INET), p[1] <= 32,
            p[7] == RTM.unicast
        else { return nil }
        let attrs = attributes(p, from: RTM.rtmsgSize)
        // rtm_table is 8 bits; RTA_TABLE carries the full table id.
        guard (u32(attrs[RTM.table]) ?? UInt32(p[4])) == UInt32(RTM.tableMain) else { return nil }
        let dst = attrs[RTM.dst].flatMap(IPv4Address.init(networkBytes:)) ?? IPv4Address(0)
        return RouteInfo(
            destination: IPv4Network(address: dst, prefix: Int(p[1])),
            gateway: attrs[RTM.gateway].flatMap(IPv4Address.init(networkBytes:)),
            outputIndex: u32(attrs[RTM.oif]).map { Int32(bitPattern: $0) })
    }

    /// An NLMSG_ERROR (or NLMSG_DONE's trailing error) as an error naming `request`; nil for an
    /// acknowledgement (error 0).
    public static func error(from message: NetlinkMessage, request: String) -> NetlinkError? {
        let p = message.payload
        guard p.count >= 4 else {
            return malformed("\(message.type == NL.done ? "NLMSG_DONE" : "NLMSG_ERROR") too short", request: request)
        }
        let code = Int32(bitPattern: p.u32(at: 0))
        guard code != 0 else { return nil }
        var kernelMessage: String?
        if message.flags & NL.ackTLVs != 0 {
            // After the error: the echoed request (only its header when capped), then TLVs.
            var offset = 4
            if message.type == NL.error {
                offset += NL.headerSize
                if message.flags & NL.capped == 0, p.count >= 4 + NL.headerSize {
                    offset = 4 + align4(Int(p.u32(at: 4)))
                }
            }
            if offset <= p.count {
                kernelMessage = string(attributes(p, from: offset)[NL.errAttrMsg]).map(printable)
            }
        }
        let errno = code == Int32.min ? EPROTO : code < 0 ? -code : code
        let text = String(cString: strerror(errno))
        return NetlinkError(
            request: request, errno: errno,
            detail: kernelMessage.flatMap { $0.isEmpty ? nil : "\(text) (\($0))" })
    }

    // MARK: - Building

    static func ifinfomsg(index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        var out: [UInt8] = [UInt8(AF_UNSPEC), 0, 0, 0]
        withUnsafeBytes(of: index) { out += $0 }
        withUnsafeBytes(of: flags) { out += $0 }
        withUnsafeBytes(of: change) { out += $0 }
        return out
    }

    static let create = NL.request | NL.ack | NL.excl | NL.create
    static let change = NL.request | NL.ack

    /// Dump or single-link get: attributes without statistics or VFs.
    public static func getLinks() -> NetlinkRequest {
        var attrs = NetlinkAttributes()
        attrs.append(IFLA.extMask, u32: IFLA.filterVF | IFLA.filterSkipStats)
        return NetlinkRequest(
            type: RTM.getLink, flags: NL.request | NL.dump, body: ifinfomsg() + attrs.bytes, label: "RTM_GETLINK dump")
    }

    public static func getLink(named name: String) throws -> NetlinkRequest {
        let label = "RTM_GETLINK \(printable(name))"
        try validateName(name, request: label)
        var attrs = NetlinkAttributes()
        attrs.append(IFLA.extMask, u32: IFLA.filterVF | IFLA.filterSkipStats)
        attrs.append(IFLA.ifname, string: name)
        return NetlinkRequest(type: RTM.getLink, flags: change, body: ifinfomsg() + attrs.bytes, label: label)
    }

    public static func getAddresses() -> NetlinkRequest {
        NetlinkRequest(
            type: RTM.getAddr, flags: NL.request | NL.dump, body: [UInt8(AF_INET), 0, 0, 0, 0, 0, 0, 0],
            label: "RTM_GETADDR dump")
    }

    public static func getRoutes() -> NetlinkRequest {
        NetlinkRequest(
            type: RTM.getRoute, flags: NL.request | NL.dump, body: [UInt8(AF_INET)] + [UInt8](repeating: 0, count: 11),
            label: "RTM_GETROUTE dump")
    }

    /// RTM_NEWLINK of a new device of `kind`; `data` writes IFLA_INFO_DATA's children.
    static func newLink(
        _ name: String, kind: String, label: String, data: ((inout NetlinkAttributes) -> Void)? = nil
    ) -> NetlinkRequest {
        var attrs = NetlinkAttributes()
        attrs.append(IFLA.ifname, string: name)
        attrs.nest(IFLA.linkinfo) { info in
            info.append(IFLA.infoKind, bare: kind)
            if let data { info.nest(IFLA.infoData, data) }
        }
        return NetlinkRequest(type: RTM.newLink, flags: create, body: ifinfomsg() + attrs.bytes, label: label)
    }

    public static func newBridge(_ name: String) throws -> NetlinkRequest {
        let label = "RTM_NEWLINK \(printable(name)) (bridge)"
        try validateName(name, request: label)
        return newLink(name, kind: "bridge", label: label)
    }

    /// A veth pair; the peer is created directly in the netns of `peerNamespaceFD` when given,
    /// with the MAC `peerMAC` when given (6 bytes).
    public static func newVeth(
        _ name: String, peer: String, peerNamespaceFD: Int32? = nil, peerMAC: [UInt8]? = nil
    ) throws -> NetlinkRequest {
        let label =
            "RTM_NEWLINK \(printable(name)) (veth, peer \(printable(peer))"
            + (peerNamespaceFD.map { " in netns fd \($0))" } ?? ")")
        try validateName(name, request: label)
        try validateName(peer, request: label)
        if let peerMAC, peerMAC.count != 6 {
            throw NetlinkError(request: label, errno: EINVAL, detail: "a MAC address has 6 bytes, not \(peerMAC.count)")
        }
        return newLink(name, kind: "veth", label: label) { data in
            data.nest(IFLA.vethInfoPeer) { p in
                p.appendRaw(ifinfomsg())
                p.append(IFLA.ifname, string: peer)
                if let peerMAC { p.append(IFLA.address, peerMAC) }
                if let peerNamespaceFD { p.append(IFLA.netNSFD, u32: UInt32(bitPattern: peerNamespaceFD)) }
            }
        }
    }

    public static func newVXLAN(
        _ name: String, id: UInt32, remote: IPv4Address?, local: IPv4Address?, port: UInt16, deviceIndex: Int32?
    ) throws -> NetlinkRequest {
        let label = "RTM_NEWLINK \(printable(name)) (vxlan id \(id))"
        try validateName(name, request: label)
        guard id < 1 << 24 else {
            throw NetlinkError(request: label, errno: EINVAL, detail: "VXLAN id \(id) is not below 2^24 (16777216)")
        }
        // The order and the explicit learning flag are iproute2's, so the bytes match `ip link add`.
        return newLink(name, kind: "vxlan", label: label) { data in
            if let deviceIndex { data.append(IFLA.vxlanLink, u32: UInt32(bitPattern: deviceIndex)) }
            data.append(IFLA.vxlanID, u32: id)
            if let local { data.append(IFLA.vxlanLocal, address: local) }
            if let remote { data.append(IFLA.vxlanGroup, address: remote) }
            data.append(IFLA.vxlanLearning, [1])
            data.append(IFLA.vxlanPort, [UInt8(port >> 8), UInt8(port & 0xff)])
        }
    }

    /// RTM_SETLINK on the link named `name` (the kernel looks it up by IFLA_IFNAME, one round
    /// trip), or on `index` when given (then IFLA_IFNAME in `attrs` is a new name).
    static func setLink(
        _ name: String, index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0, label: String,
        _ attrs: (inout NetlinkAttributes) -> Void = { _ in }
    ) throws -> NetlinkRequest {
        try validateName(name, request: label)
        var a = NetlinkAttributes()
        if index == 0 { a.append(IFLA.ifname, string: name) }
        attrs(&a)
        return NetlinkRequest(
            type: RTM.setLink, flags: RTNetlink.change,
            body: ifinfomsg(index: index, flags: flags, change: change) + a.bytes,
            label: label)
    }

    public static func setUp(_ name: String, up: Bool) throws -> NetlinkRequest {
        try setLink(
            name, flags: up ? IFLA.up : 0, change: IFLA.up,
            label: "RTM_SETLINK \(printable(name)) \(up ? "up" : "down")")
    }

    public static func setMTU(_ name: String, _ mtu: UInt32) throws -> NetlinkRequest {
        try setLink(name, label: "RTM_SETLINK \(printable(name)) mtu \(mtu)") { $0.append(IFLA.mtu, u32: mtu) }
    }

    /// `masterIndex` 0 detaches the link from its master.
    public static func setMaster(_ name: String, masterIndex: Int32, label: String) throws -> NetlinkRequest {
        try setLink(name, label: label) { $0.append(IFLA.master, u32: UInt32(bitPattern: masterIndex)) }
    }

    public static func rename(index: Int32, from name: String, to newName: String) throws -> NetlinkRequest {
        let label = "RTM_SETLINK \(printable(name)) name \(printable(newName))"
        try validateName(newName, request: label)
        return try setLink(name, index: index, label: label) { $0.append(IFLA.ifname, string: newName) }
    }

    public static func moveToNamespace(_ name: String, fd: Int32) throws -> NetlinkRequest {
        try setLink(name, label: "RTM_SETLINK \(printable(name)) netns fd \(fd)") {
            $0.append(IFLA.netNSFD, u32: UInt32(bitPattern: fd))
        }
    }

    public static func delete(_ name: String) throws -> NetlinkRequest {
        let label = "RTM_DELLINK \(printable(name))"
        try validateName(name, request: label)
        var a = NetlinkAttributes()
        a.append(IFLA.ifname, string: name)
        return NetlinkRequest(type: RTM.delLink, flags: change, body: ifinfomsg() + a.bytes, label: label)
    }

    /// RTM_NEWADDR (or RTM_DELADDR) of address/prefix on link `index`, with the broadcast address
    /// below /31, as `ip addr add ... brd +` and Docker's netlink library set it.
    public static func address(
        _ address: IPv4Address, prefix: Int, index: Int32, add: Bool = true, label: String
    ) throws -> NetlinkRequest {
        guard (0...32).contains(prefix) else {
            throw NetlinkError(request: label, errno: EINVAL, detail: "prefix length \(prefix) is outside 0-32")
        }
        var body: [UInt8] = [UInt8(AF_INET), UInt8(prefix), 0, RTM.scopeUniverse]
        withUnsafeBytes(of: UInt32(bitPattern: index)) { body += $0 }
        var a = NetlinkAttributes()
        a.append(RTM.ifaLocal, address: address)
        a.append(RTM.ifaAddress, address: address)
        if add, prefix < 31 {
            a.append(RTM.ifaBroadcast, address: IPv4Network(address: address, prefix: prefix).broadcast)
        }
        return NetlinkRequest(
            type: add ? RTM.newAddr : RTM.delAddr, flags: add ? create : change, body: body + a.bytes, label: label)
    }

    /// RTM_NEWROUTE (or RTM_DELROUTE) in the main table: via a gateway (universe scope) or
    /// directly on a device (link scope), as `ip route add` does.
    public static func route(
        _ destination: IPv4Network, via gateway: IPv4Address?, outputIndex: Int32?, add: Bool = true, label: String
    ) throws -> NetlinkRequest {
        guard gateway != nil || outputIndex != nil else {
            throw NetlinkError(request: label, errno: EINVAL, detail: "a route needs a gateway or a device")
        }
        let scope = gateway == nil ? RTM.scopeLink : RTM.scopeUniverse
        var body: [UInt8] = [
            UInt8(AF_INET), UInt8(destination.prefix), 0, 0, RTM.tableMain, RTM.protoBoot, scope, RTM.unicast,
        ]
        body += [0, 0, 0, 0]
        var a = NetlinkAttributes()
        if destination.prefix > 0 { a.append(RTM.dst, address: destination.address) }
        if let gateway { a.append(RTM.gateway, address: gateway) }
        if let outputIndex { a.append(RTM.oif, u32: UInt32(bitPattern: outputIndex)) }
        return NetlinkRequest(
            type: add ? RTM.newRoute : RTM.delRoute, flags: add ? create : change, body: body + a.bytes, label: label)
    }

    // MARK: - Names

    /// The kernel's dev_valid_name: 1-15 bytes, not "." or "..", no '/', ':' or whitespace
    /// (we also refuse NUL and other control bytes, which could only confuse).
    public static func validateName(_ name: String, request: String) throws {
        let bytes = Array(name.utf8)
        let bad = bytes.contains {
            $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 == 0x7f
        }
        guard bytes.isEmpty || bytes.count > 15 || bad || name == "." || name == ".." else { return }
        throw NetlinkError(
            request: request, errno: EINVAL,
            detail: "invalid interface name \"\(printable(name))\": use 1-15 bytes without '/', ':' or whitespace,"
                + " not '.' or '..'")
    }

    /// A name as errors show it: control bytes and quotes escaped, so one error stays one line.
    public static func printable(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\", "\"": out += "\\\(scalar)"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
