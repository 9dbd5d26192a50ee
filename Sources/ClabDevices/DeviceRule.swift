/// One allow rule of a container's device list, in the v1 devices controller's words:
/// `c 1:3 rwm` (type, major:minor with `*` for any, access). On cgroup v1 it is written to
/// devices.allow as is; on v2 it becomes a row of the BPF program's table (`DeviceFilter`).
public struct DeviceRule: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable, Hashable {
        case all = "a"
        case block = "b"
        case char = "c"
    }

    /// What may be done with the device. The bits are the kernel's BPF_DEVCG_ACC_* values.
    public struct Access: OptionSet, Sendable, Codable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let mknod = Access(rawValue: 1)
        public static let read = Access(rawValue: 2)
        public static let write = Access(rawValue: 4)
        public static let rwm: Access = [.read, .write, .mknod]
    }

    public var kind: Kind
    /// nil: any (`*`).
    public var major: UInt32?
    public var minor: UInt32?
    public var access: Access

    public init(_ kind: Kind, _ major: UInt32?, _ minor: UInt32?, _ access: Access) {
        self.kind = kind
        self.major = major
        self.minor = minor
        self.access = access
    }

    /// `c 1:3 rwm`, `b *:* m`: the line devices.allow takes.
    public var description: String {
        var letters = ""
        if access.contains(.read) { letters += "r" }
        if access.contains(.write) { letters += "w" }
        if access.contains(.mknod) { letters += "m" }
        return "\(kind.rawValue) \(major.map(String.init) ?? "*"):\(minor.map(String.init) ?? "*") \(letters)"
    }

    /// Parses `c 1:3 rwm` (the form of devices.allow and `docker run --device-cgroup-rule`);
    /// nil for anything else.
    public init?(parsing text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, let kind = Kind(rawValue: String(parts[0])) else { return nil }
        let numbers = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard numbers.count == 2 else { return nil }
        func number(_ s: Substring) -> UInt32?? {
            if s == "*" { return .some(nil) }
            guard let n = UInt32(s), n < 0xFFFF_FFFF else { return nil }
            return .some(n)
        }
        guard let major = number(numbers[0]), let minor = number(numbers[1]), !parts[2].isEmpty else { return nil }
        var access: Access = []
        for c in parts[2] {
            switch c {
            case "r": access.insert(.read)
            case "w": access.insert(.write)
            case "m": access.insert(.mknod)
            default: return nil
            }
        }
        self.init(kind, major, minor, access)
    }

    /// What Docker allows a container that is not --privileged: everything else is denied
    /// (moby's default spec denies `a *:* rwm`, then runc appends these, libcontainer/specconv's
    /// AllowedDevices): mknod of any node, but open only the harmless character devices.
    /// /dev/console (5:1) is no longer in runc's list; the tun device still is, for compatibility.
    public static let dockerDefault: [DeviceRule] = [
        DeviceRule(.char, nil, nil, .mknod),
        DeviceRule(.block, nil, nil, .mknod),
        DeviceRule(.char, 1, 3, .rwm),  // /dev/null
        DeviceRule(.char, 1, 8, .rwm),  // /dev/random
        DeviceRule(.char, 1, 7, .rwm),  // /dev/full
        DeviceRule(.char, 5, 0, .rwm),  // /dev/tty
        DeviceRule(.char, 1, 5, .rwm),  // /dev/zero
        DeviceRule(.char, 1, 9, .rwm),  // /dev/urandom
        DeviceRule(.char, 136, nil, .rwm),  // /dev/pts/*
        DeviceRule(.char, 5, 2, .rwm),  // /dev/ptmx
        DeviceRule(.char, 10, 200, .rwm),  // /dev/net/tun
    ]
}
