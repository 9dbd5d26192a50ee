/// An IPv4 address, held in host byte order (10.1.2.3 is 0x0A01_0203).
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Dotted quad only ("10.1.2.3"): four decimal parts 0-255 without leading zeros (so "010"
    /// is never read as octal, as inet_aton would), nothing before or after.
    public init?(_ text: String) {
        var value: UInt32 = 0
        var parts = 0
        for part in text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard part.count >= 1, part.count <= 3, !(part.count > 1 && part.first == UInt8(ascii: "0")) else {
                return nil
            }
            var octet: UInt32 = 0
            for c in part {
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                octet = octet * 10 + UInt32(c - UInt8(ascii: "0"))
            }
            guard octet <= 255 else { return nil }
            value = value << 8 | octet
            parts += 1
        }
        guard parts == 4 else { return nil }
        self.value = value
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    /// The four bytes in network order, as netlink attributes carry them.
    public var networkBytes: [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    /// From four bytes in network order; nil unless exactly four.
    public init?(networkBytes bytes: [UInt8]) {
        guard bytes.count == 4 else { return nil }
        value = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
    }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv4 network: its address (host bits always clear) and prefix length.
public struct IPv4Network: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4Address
    public var prefix: Int

    /// "172.18.0.0/16". Nil for anything else, including host bits set ("172.18.0.1/16"): a
    /// subnet written with a host address is usually a mistake worth an error.
    public init?(_ cidr: String) {
        let parts = cidr.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(decoding: parts[0], as: UTF8.self)),
            (1...2).contains(parts[1].count),
            parts[1].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let prefix = Int(String(decoding: parts[1], as: UTF8.self)), prefix <= 32,
            !(parts[1].count == 2 && parts[1].first == UInt8(ascii: "0"))
        else { return nil }
        guard address.value & ~IPv4Network.mask(prefix) == 0 else { return nil }
        self.address = address
        self.prefix = prefix
    }

    /// Clears the host bits of `address`. `prefix` must be 0...32.
    public init(address: IPv4Address, prefix: Int) {
        precondition((0...32).contains(prefix), "IPv4 prefix \(prefix) is outside 0...32")
        self.address = IPv4Address(address.value & IPv4Network.mask(prefix))
        self.prefix = prefix
    }

    /// The netmask for a prefix length, host byte order.
    public static func mask(_ prefix: Int) -> UInt32 {
        prefix <= 0 ? 0 : prefix >= 32 ? UInt32.max : UInt32.max << UInt32(32 - prefix)
    }

    public var mask: UInt32 { IPv4Network.mask(prefix) }

    public func contains(_ a: IPv4Address) -> Bool { a.value & mask == address.value }

    /// True when the two share any address (one contains the other's network address).
    public func overlaps(_ other: IPv4Network) -> Bool { contains(other.address) || other.contains(address) }

    /// The network address plus n (n = 1 is the first host, clab's gateway).
    public func host(_ n: UInt32) -> IPv4Address { IPv4Address(address.value &+ n) }

    /// Number of addresses; /0 (2^32) saturates to UInt32.max.
    public var size: UInt32 { prefix == 0 ? UInt32.max : UInt32(1) << UInt32(32 - prefix) }

    public var broadcast: IPv4Address { IPv4Address(address.value | ~mask) }

    public var description: String { "\(address)/\(prefix)" }
}
