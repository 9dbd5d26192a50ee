import Glibc

/// Netlink messages as `clab trace` shows them, one compact entry per message:
///
///     [RTM_NEWLINK{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, ifname="v0", kind="veth", peer={ifname="v1"}}]
///     [RTM_NEWADDR{flags=NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE, family=AF_INET, index=2, local=198.51.100.1/24}]
///     [NFNL_MSG_BATCH_BEGIN{flags=NLM_F_REQUEST, res_id=NFNL_SUBSYS_NFTABLES}, NFT_MSG_NEWTABLE{flags=NLM_F_REQUEST, family=ip, name="clab"}, …, NFNL_MSG_BATCH_END{…}]
///     [NLMSG_ERROR{error=-EEXIST, msg=RTM_NEWLINK}]
///
/// The message type by name, then `flags=` (the NLM_F_ names that go with the type: CREATE and
/// EXCL for a new object, DUMP for a get), then the fields of the type's header that are not at
/// their defaults (an ifinfomsg's index and IFF_ flags, an rtmsg's table and scope), then the
/// main attributes by their short names (IFLA_IFNAME is `ifname`, RTA_GATEWAY `gateway`), in the
/// order the sender put them. Other attributes are left out; sequence numbers and port ids too.
/// Where the capture ends (the kernel side reads CLAB_NL_MAX bytes), a cut message ends in `...`
/// and so does the list when messages follow; an attribute cut short is left out.
enum NetlinkDecoder {
    static let route: UInt16 = 0
    static let netfilter: UInt16 = 12

    /// The messages in `bytes`, as a list; `expected` is how long the buffer really was.
    static func messages(_ bytes: [UInt8], proto: UInt16, expected: UInt64) -> String {
        var parts: [String] = []
        var off = 0
        var lastCut = false
        let b = Bytes(bytes)
        while off + 16 <= bytes.count {
            let len = Int(b.u32(off))
            guard len >= 16 else {
                parts.append("{nlmsg_len=\(len)}")  // malformed: nothing after it can be framed
                off = bytes.count
                break
            }
            let end = min(off + len, bytes.count)
            let body = Bytes(Array(bytes[(off + 16)..<end]))
            lastCut = off + len > bytes.count
            parts.append(message(type: b.u16(off + 4), flags: b.u16(off + 6), body: body, cut: lastCut, proto: proto))
            off += (len + 3) & ~3
        }
        // More after what was read (a message cut short says so itself).
        if !lastCut && (off < bytes.count || UInt64(bytes.count) < expected) { parts.append("...") }
        return "[" + parts.joined(separator: ", ") + "]"
    }

    /// One message: `TYPE{fields}`.
    static func message(type: UInt16, flags: UInt16, body: Bytes, cut: Bool, proto: UInt16) -> String {
        var f = Fields()
        let name: String
        if type < 16 {
            name = control[Int(type)] ?? hex(type)
            f.flags(flags, type == 2 ? ackFlags : [])
            if type == 2 { errorMessage(body, flags: flags, proto: proto, into: &f) }
        } else if proto == route {
            name = rtmNames[type] ?? hex(type)
            f.flags(flags, requestFlags(rtmClass(type)))
            rtnetlink(type: type, body: body, into: &f)
        } else if proto == netfilter {
            name = nfName(type)
            f.flags(flags, requestFlags(nftClass(type)))
            nfnetlink(type: type, body: body, into: &f)
        } else {
            name = hex(type)
            f.flags(flags, [])
            f.add("len=\(body.count + 16)")
        }
        if cut { f.add("...") }
        return name + f.braced
    }

    // MARK: - flags

    enum Class { case new, del, get, other }

    static let baseFlags: Flags.Table = [
        (0x1, "NLM_F_REQUEST"), (0x2, "NLM_F_MULTI"), (0x4, "NLM_F_ACK"), (0x8, "NLM_F_ECHO"),
        (0x10, "NLM_F_DUMP_INTR"), (0x20, "NLM_F_DUMP_FILTERED"),
    ]

    static func requestFlags(_ c: Class) -> Flags.Table {
        switch c {
        case .new:
            return [(0x100, "NLM_F_REPLACE"), (0x200, "NLM_F_EXCL"), (0x400, "NLM_F_CREATE"), (0x800, "NLM_F_APPEND")]
        case .get:
            return [(0x300, "NLM_F_DUMP"), (0x100, "NLM_F_ROOT"), (0x200, "NLM_F_MATCH"), (0x400, "NLM_F_ATOMIC")]
        case .del: return [(0x100, "NLM_F_NONREC"), (0x200, "NLM_F_BULK")]
        case .other: return []
        }
    }

    static let ackFlags: Flags.Table = [(0x100, "NLM_F_CAPPED"), (0x200, "NLM_F_ACK_TLVS")]

    // MARK: - control messages

    static let control: [Int: String] = [1: "NLMSG_NOOP", 2: "NLMSG_ERROR", 3: "NLMSG_DONE", 4: "NLMSG_OVERRUN"]

    /// NLMSG_ERROR: the errno (0: the ACK), the request it answers, and the kernel's
    /// explanation when it sent one (extended ACK).
    static func errorMessage(_ body: Bytes, flags: UInt16, proto: UInt16, into f: inout Fields) {
        guard body.count >= 4 else { return }
        let error = Int32(bitPattern: body.u32(0))
        f.add("error=" + (error < 0 ? "-" + Decoder.errnoName(-error) : String(error)))
        guard body.count >= 20 else { return }
        let type = body.u16(8)
        f.add(
            "msg="
                + (type < 16
                    ? control[Int(type)] ?? hex(type)
                    : proto == route ? rtmNames[type] ?? hex(type) : proto == netfilter ? nfName(type) : hex(type)))
        guard flags & 0x200 != 0 else { return }
        // The request comes back whole unless NLM_F_CAPPED; the TLVs follow it.
        let requestLength = flags & 0x100 != 0 ? 16 : Int(body.u32(4))
        for a in body.attributes(from: 4 + ((requestLength + 3) & ~3)) where a.type == 1 {
            f.add("ext_ack=" + a.string)
        }
    }

    // MARK: - rtnetlink

    static let rtmNames: [UInt16: String] = {
        let families = [
            (16, "LINK"), (20, "ADDR"), (24, "ROUTE"), (28, "NEIGH"), (32, "RULE"), (36, "QDISC"), (40, "TCLASS"),
            (44, "TFILTER"), (48, "ACTION"), (64, "NEIGHTBL"), (72, "ADDRLABEL"), (80, "NETCONF"), (84, "MDB"),
            (88, "NSID"), (92, "STATS"), (100, "CHAIN"), (104, "NEXTHOP"), (108, "LINKPROP"), (112, "VLAN"),
            (116, "NEXTHOPBUCKET"), (120, "TUNNEL"),
        ]
        var names: [UInt16: String] = [
            52: "RTM_NEWPREFIX", 58: "RTM_GETMULTICAST", 62: "RTM_GETANYCAST",
            68: "RTM_NEWNDUSEROPT", 78: "RTM_GETDCB", 79: "RTM_SETDCB", 96: "RTM_NEWCACHEREPORT",
        ]
        for (base, family) in families {
            for (i, verb) in ["NEW", "DEL", "GET", "SET"].enumerated() {
                names[UInt16(base + i)] = "RTM_" + verb + family
            }
        }
        return names
    }()

    static func rtmClass(_ type: UInt16) -> Class {
        guard type >= 16 && type < 124 else { return .other }
        return [Class.new, .del, .get, .other][Int(type - 16) % 4]
    }

    static func rtnetlink(type: UInt16, body: Bytes, into f: inout Fields) {
        switch type {
        case 16...19: link(body, into: &f)
        case 20...22: address(body, into: &f)
        case 24...26: routeMessage(body, get: type == 26, into: &f)
        case 28...30: neighbour(body, into: &f)
        case 88...90:
            guard body.count >= 1 else { return }
            f.family(body.u8(0))
            for a in body.attributes(from: 4) {
                switch a.type {
                case 1: f.add("nsid=\(Int32(bitPattern: a.u32))")
                case 2: f.add("pid=\(a.u32)")
                case 3: f.add("fd=\(a.u32)")
                default: break
                }
            }
        default:
            if body.count >= 1 { f.family(body.u8(0)) }
        }
    }

    static let iff: Flags.Table = [
        (0x1, "IFF_UP"), (0x2, "IFF_BROADCAST"), (0x4, "IFF_DEBUG"), (0x8, "IFF_LOOPBACK"),
        (0x10, "IFF_POINTOPOINT"), (0x20, "IFF_NOTRAILERS"), (0x40, "IFF_RUNNING"), (0x80, "IFF_NOARP"),
        (0x100, "IFF_PROMISC"), (0x200, "IFF_ALLMULTI"), (0x400, "IFF_MASTER"), (0x800, "IFF_SLAVE"),
        (0x1000, "IFF_MULTICAST"), (0x2000, "IFF_PORTSEL"), (0x4000, "IFF_AUTOMEDIA"), (0x8000, "IFF_DYNAMIC"),
        (0x10000, "IFF_LOWER_UP"), (0x20000, "IFF_DORMANT"), (0x40000, "IFF_ECHO"),
    ]

    /// struct ifinfomsg (16 bytes), then IFLA_ attributes.
    static func link(_ body: Bytes, into f: inout Fields) {
        guard body.count >= 16 else { return }
        f.family(body.u8(0))
        let index = Int32(bitPattern: body.u32(4))
        if index != 0 { f.add("index=\(index)") }
        let flags = body.u32(8)
        let change = body.u32(12)
        if flags != 0 || change != 0 { f.add("ifi_flags=" + Flags.bits(UInt64(flags), iff)) }
        if change != 0 { f.add("ifi_change=" + (change == ~0 ? "0xffffffff" : Flags.bits(UInt64(change), iff))) }
        linkAttributes(body.attributes(from: 16), into: &f)
    }

    static func linkAttributes(_ attributes: [Attribute], into f: inout Fields) {
        for a in attributes {
            switch a.type {
            case 1: f.add("address=" + a.mac)
            case 3: f.add("ifname=" + a.string)
            case 4: f.add("mtu=\(a.u32)")
            case 5: f.add("link=\(a.u32)")
            case 10: f.add("master=\(a.u32)")
            case 13: f.add("txqlen=\(a.u32)")
            case 18: linkInfo(a.nested, into: &f)
            case 19: f.add("net_ns_pid=\(a.u32)")
            case 20: f.add("ifalias=" + a.string)
            case 28: f.add("net_ns_fd=\(a.u32)")
            case 37: f.add("link_netnsid=\(Int32(bitPattern: a.u32))")
            case 46: f.add("target_netnsid=\(Int32(bitPattern: a.u32))")
            case 53: f.add("alt_ifname=" + a.string)
            default: break
            }
        }
    }

    /// IFLA_LINKINFO: the kind (veth, bridge, vxlan) and, for a veth, its peer; a vxlan's id,
    /// addresses and port.
    static func linkInfo(_ info: [Attribute], into f: inout Fields) {
        var kind = ""
        for a in info {
            switch a.type {
            case 1:
                kind = a.text
                f.add("kind=" + a.string)
            case 2 where kind == "veth":
                // VETH_INFO_PEER: the peer's own ifinfomsg and attributes.
                for peer in a.nested where peer.type == 1 {
                    var p = Fields()
                    let body = peer.bytes
                    if body.count >= 16 {
                        let index = Int32(bitPattern: body.u32(4))
                        if index != 0 { p.add("index=\(index)") }
                        linkAttributes(body.attributes(from: 16), into: &p)
                    }
                    f.add("peer=" + p.braced)
                }
            case 2 where kind == "vxlan":
                for v in a.nested {
                    switch v.type {
                    case 1: f.add("id=\(v.u32)")
                    case 2: f.add("group=" + ip(v.bytes.raw, family: 2))
                    case 3: f.add("dev=\(v.u32)")
                    case 4: f.add("local=" + ip(v.bytes.raw, family: 2))
                    case 15: f.add("dstport=\(v.be16)")
                    case 16: f.add("group6=" + ip(v.bytes.raw, family: 10))
                    case 17: f.add("local6=" + ip(v.bytes.raw, family: 10))
                    default: break
                    }
                }
            case 4: f.add("slave_kind=" + a.string)
            default: break
            }
        }
    }

    static let scopes: [UInt8: String] = [0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"]

    /// struct ifaddrmsg (8 bytes), then IFA_ attributes; the prefix length goes with the address.
    static func address(_ body: Bytes, into f: inout Fields) {
        guard body.count >= 8 else { return }
        let family = body.u8(0)
        let prefix = body.u8(1)
        f.family(family)
        let index = body.u32(4)
        if index != 0 { f.add("index=\(index)") }
        if body.u8(3) != 0 { f.add("scope=" + (scopes[body.u8(3)] ?? String(body.u8(3)))) }
        var local: [UInt8]?
        var shown = false
        for a in body.attributes(from: 8) {
            switch a.type {
            case 2:
                local = a.bytes.raw
                f.add("local=" + ip(a.bytes.raw, family: family) + "/\(prefix)")
                shown = true
            case 1:
                // The peer on a point-to-point link; otherwise the same as IFA_LOCAL.
                if a.bytes.raw != local {
                    f.add("address=" + ip(a.bytes.raw, family: family) + "/\(prefix)")
                    shown = true
                }
            case 3: f.add("label=" + a.string)
            case 4: f.add("broadcast=" + ip(a.bytes.raw, family: family))
            default: break
            }
        }
        if !shown && prefix != 0 { f.add("prefixlen=\(prefix)") }
    }

    static let tables: [UInt32: String] = [252: "compat", 253: "default", 254: "main", 255: "local"]
    static let protocols: [UInt8: String] = [
        1: "redirect", 2: "kernel", 3: "boot", 4: "static", 16: "dhcp", 186: "bgp", 188: "ospf",
    ]
    static let routeTypes: [UInt8: String] = [
        1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole", 7: "unreachable",
        8: "prohibit", 9: "throw", 10: "nat",
    ]

    /// struct rtmsg (12 bytes), then RTA_ attributes. `dst=default` for a route to everywhere;
    /// the table, protocol, scope and type only where they are not main, boot, universe and
    /// unicast.
    static func routeMessage(_ body: Bytes, get: Bool, into f: inout Fields) {
        guard body.count >= 12 else { return }
        let family = body.u8(0)
        let dstLen = body.u8(1)
        var table = UInt32(body.u8(4))
        let proto = body.u8(5)
        let scope = body.u8(6)
        let type = body.u8(7)
        f.family(family)
        let attributes = body.attributes(from: 12)
        if let t = attributes.first(where: { $0.type == 15 }) { table = t.u32 }
        if !get && !attributes.contains(where: { $0.type == 1 }) && dstLen == 0 { f.add("dst=default") }
        for a in attributes {
            switch a.type {
            case 1: f.add("dst=" + ip(a.bytes.raw, family: family) + "/\(dstLen)")
            case 2: f.add("src=" + ip(a.bytes.raw, family: family) + "/\(body.u8(2))")
            case 3: f.add("iif=\(a.u32)")
            case 4: f.add("oif=\(a.u32)")
            case 5: f.add("gateway=" + ip(a.bytes.raw, family: family))
            case 6: f.add("metric=\(a.u32)")
            case 7: f.add("prefsrc=" + ip(a.bytes.raw, family: family))
            default: break
            }
        }
        if table != 0 && table != 254 { f.add("table=" + (tables[table] ?? String(table))) }
        if proto != 0 && proto != 3 { f.add("proto=" + (protocols[proto] ?? String(proto))) }
        if scope != 0 { f.add("scope=" + (scopes[scope] ?? String(scope))) }
        if type != 0 && type != 1 { f.add("type=" + (routeTypes[type] ?? String(type))) }
    }

    /// struct ndmsg (12 bytes), then NDA_ attributes.
    static func neighbour(_ body: Bytes, into f: inout Fields) {
        guard body.count >= 12 else { return }
        let family = body.u8(0)
        f.family(family)
        let index = body.u32(4)
        if index != 0 { f.add("index=\(index)") }
        for a in body.attributes(from: 12) {
            switch a.type {
            case 1: f.add("dst=" + ip(a.bytes.raw, family: family))
            case 2: f.add("lladdr=" + a.mac)
            default: break
            }
        }
    }

    // MARK: - nfnetlink (nftables)

    static let subsystems: [UInt16: String] = [
        0: "NFNL_SUBSYS_NONE", 1: "NFNL_SUBSYS_CTNETLINK", 2: "NFNL_SUBSYS_CTNETLINK_EXP", 3: "NFNL_SUBSYS_QUEUE",
        4: "NFNL_SUBSYS_ULOG", 5: "NFNL_SUBSYS_OSF", 6: "NFNL_SUBSYS_IPSET", 7: "NFNL_SUBSYS_ACCT",
        8: "NFNL_SUBSYS_CTNETLINK_TIMEOUT", 9: "NFNL_SUBSYS_CTHELPER", 10: "NFNL_SUBSYS_NFTABLES",
        11: "NFNL_SUBSYS_NFT_COMPAT", 12: "NFNL_SUBSYS_HOOK",
    ]

    static let nftMessages = [
        "NEWTABLE", "GETTABLE", "DELTABLE", "NEWCHAIN", "GETCHAIN", "DELCHAIN", "NEWRULE", "GETRULE", "DELRULE",
        "NEWSET", "GETSET", "DELSET", "NEWSETELEM", "GETSETELEM", "DELSETELEM", "NEWGEN", "GETGEN", "TRACE",
        "NEWOBJ", "GETOBJ", "DELOBJ", "GETOBJ_RESET", "NEWFLOWTABLE", "GETFLOWTABLE", "DELFLOWTABLE",
        "GETRULE_RESET", "DESTROYTABLE", "DESTROYCHAIN", "DESTROYRULE", "DESTROYSET", "DESTROYSETELEM",
        "DESTROYOBJ", "DESTROYFLOWTABLE", "GETSETELEM_RESET",
    ]

    static func nfName(_ type: UInt16) -> String {
        switch type {
        case 0x10: return "NFNL_MSG_BATCH_BEGIN"
        case 0x11: return "NFNL_MSG_BATCH_END"
        default:
            let subsys = type >> 8
            let msg = Int(type & 0xFF)
            if subsys == 10 && msg < nftMessages.count { return "NFT_MSG_" + nftMessages[msg] }
            return (subsystems[subsys] ?? hex(subsys)) + ":" + hex(UInt16(msg))
        }
    }

    static func nftClass(_ type: UInt16) -> Class {
        guard type >> 8 == 10, Int(type & 0xFF) < nftMessages.count else { return .other }
        let name = nftMessages[Int(type & 0xFF)]
        if name.hasPrefix("NEW") { return .new }
        if name.hasPrefix("GET") { return .get }
        if name.hasPrefix("DEL") || name.hasPrefix("DESTROY") { return .del }
        return .other
    }

    static let nfFamilies: [UInt8: String] = [
        0: "unspec", 1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6",
    ]
    static let inetHooks = ["prerouting", "input", "forward", "output", "postrouting"]

    /// struct nfgenmsg (4 bytes), then NFTA_ attributes: the table, chain and set names, a
    /// base chain's hook, and a rule's expressions by name (`exprs=[payload, cmp, masq]`).
    static func nfnetlink(type: UInt16, body: Bytes, into f: inout Fields) {
        guard body.count >= 4 else { return }
        if type == 0x10 || type == 0x11 {
            let subsys = UInt16(body.u8(2)) << 8 | UInt16(body.u8(3))
            f.add("res_id=" + (subsystems[subsys] ?? String(subsys)))
            return
        }
        let family = body.u8(0)
        if type >> 8 != 10 {
            f.add("family=" + (nfFamilies[family] ?? String(family)))
            return
        }
        if family != 0 { f.add("family=" + (nfFamilies[family] ?? String(family))) }
        let object = nftObject(Int(type & 0xFF))
        for a in body.attributes(from: 4) { nftAttribute(object, a, family: family, into: &f) }
    }

    enum NFTObject { case table, chain, rule, set, setElement, generation, object, flowtable, other }

    /// What an NFT_MSG_ number is about (enum nf_tables_msg_types).
    static func nftObject(_ msg: Int) -> NFTObject {
        switch msg {
        case 0...2, 26: return .table
        case 3...5, 27: return .chain
        case 6...8, 25, 28: return .rule
        case 9...11, 29: return .set
        case 12...14, 30, 33: return .setElement
        case 15, 16: return .generation
        case 18...21, 31: return .object
        case 22...24, 32: return .flowtable
        default: return .other
        }
    }

    static func nftAttribute(_ object: NFTObject, _ a: Attribute, family: UInt8, into f: inout Fields) {
        switch (object, a.type) {
        case (.table, 1): f.add("name=" + a.string)
        case (.table, 2) where a.be32 != 0: f.add("table_flags=\(a.be32)")
        case (.chain, 1), (.rule, 1), (.set, 1), (.setElement, 1), (.object, 1), (.flowtable, 1):
            f.add("table=" + a.string)
        case (.chain, 3), (.set, 2), (.object, 2), (.flowtable, 2): f.add("name=" + a.string)
        case (.chain, 4):
            for h in a.nested {
                switch h.type {
                case 1:
                    let n = Int(h.be32)
                    let inet = family == 1 || family == 2 || family == 10 || family == 7
                    f.add("hook=" + (inet && n < inetHooks.count ? inetHooks[n] : String(n)))
                case 2: f.add("priority=\(Int32(bitPattern: h.be32))")
                case 3: f.add("dev=" + h.string)
                default: break
                }
            }
        case (.chain, 5): f.add("policy=" + (a.be32 == 1 ? "accept" : a.be32 == 0 ? "drop" : String(a.be32)))
        case (.chain, 7): f.add("type=" + a.string)
        case (.rule, 2): f.add("chain=" + a.string)
        case (.setElement, 2): f.add("set=" + a.string)
        case (.rule, 4):
            // NFTA_LIST_ELEM, each with NFTA_EXPR_NAME.
            let names: [String] = a.nested.map { element in
                guard let name = element.nested.first(where: { $0.type == 1 }) else { return "?" }
                return name.text
            }
            f.add("exprs=[" + names.joined(separator: ", ") + "]")
        case (.generation, 1): f.add("id=\(a.be32)")
        default: break
        }
    }

    // MARK: - pieces

    static func hex(_ v: UInt16) -> String { "0x" + String(v, radix: 16) }

    /// An IPv4 or IPv6 address (inet_ntop), or hex bytes.
    static func ip(_ bytes: [UInt8], family: UInt8) -> String {
        let af: Int32
        switch (family, bytes.count) {
        case (2, 4): af = AF_INET
        case (10, 16): af = AF_INET6
        default: return bytes.isEmpty ? "\"\"" : "0x" + bytes.map { String($0, radix: 16) }.joined()
        }
        var text = [CChar](repeating: 0, count: 64)
        let ok = bytes.withUnsafeBytes { inet_ntop(af, $0.baseAddress, &text, socklen_t(text.count)) != nil }
        return ok ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }

    /// Fields written `a=1, b=2` into `{...}`.
    struct Fields {
        var items: [String] = []
        mutating func add(_ s: String) { items.append(s) }
        mutating func flags(_ v: UInt16, _ extra: Flags.Table) {
            if v != 0 { add("flags=" + Flags.bits(UInt64(v), baseFlags + extra)) }
        }
        mutating func family(_ f: UInt8) {
            if f != 0 { add("family=" + Flags.value(UInt64(f), Flags.family + [(7, "AF_BRIDGE"), (28, "AF_MPLS")])) }
        }
        var braced: String { "{" + items.joined(separator: ", ") + "}" }
    }

    /// Little-endian reads within a byte array, zero past its end.
    struct Bytes {
        let raw: [UInt8]
        init(_ raw: [UInt8]) { self.raw = raw }
        var count: Int { raw.count }
        func u8(_ at: Int) -> UInt8 { at < raw.count ? raw[at] : 0 }
        func u16(_ at: Int) -> UInt16 { UInt16(u8(at)) | UInt16(u8(at + 1)) << 8 }
        func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }

        /// The netlink attributes from `start` to the end (struct nlattr: len, type, value, aligned
        /// to 4). One cut short by the capture is left out: half an address would mislead.
        func attributes(from start: Int) -> [Attribute] {
            var result: [Attribute] = []
            var off = start
            while off + 4 <= raw.count {
                let len = Int(u16(off))
                guard len >= 4, off + len <= raw.count else { break }
                result.append(Attribute(type: u16(off + 2) & 0x3FFF, bytes: Bytes(Array(raw[(off + 4)..<(off + len)]))))
                off += (len + 3) & ~3
            }
            return result
        }
    }

    struct Attribute {
        let type: UInt16
        let bytes: Bytes
        var u32: UInt32 { bytes.u32(0) }
        var be32: UInt32 {
            UInt32(bytes.u8(0)) << 24 | UInt32(bytes.u8(1)) << 16 | UInt32(bytes.u8(2)) << 8 | UInt32(bytes.u8(3))
        }
        var be16: UInt16 { UInt16(bytes.u8(0)) << 8 | UInt16(bytes.u8(1)) }
        var nested: [Attribute] { bytes.attributes(from: 0) }
        /// A NUL-terminated string attribute, unquoted.
        var text: String { String(decoding: bytes.raw.prefix { $0 != 0 }, as: UTF8.self) }
        /// Quoted as strace quotes strings.
        var string: String { Decoder.quote(Array(bytes.raw.prefix { $0 != 0 })) }
        var mac: String {
            bytes.raw.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: ":")
        }
    }
}
