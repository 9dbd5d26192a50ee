import ClabNetlink
import ClabSys

public enum PortProtocol: String, Sendable { case tcp, udp }

/// One `-p [HOSTIP:]HOSTPORT:PORT[/udp|/tcp]`: connections to the host's HOSTPORT (on HOSTIP, or
/// on every host address) go to the container's PORT.
public struct PortPublish: Sendable, Equatable, CustomStringConvertible {
    /// Dotted IPv4, or nil for all host addresses (also for 0.0.0.0, as Docker reads it).
    public var hostIP: String?
    public var hostPort: UInt16
    public var containerPort: UInt16
    public var proto: PortProtocol

    public init(hostIP: String? = nil, hostPort: UInt16, containerPort: UInt16, proto: PortProtocol = .tcp) {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.proto = proto
    }

    /// "8080:80", "127.0.0.1:8080:80/udp". Errors name the input: "-p 0:80: host port 0 is out of
    /// range 1-65535".
    public static func parse(_ text: String) throws -> PortPublish {
        func failure(_ why: String) -> ClabError { ClabError("-p \(text): \(why)", exitCode: 2) }
        let usage = "use [HOSTIP:]HOSTPORT:PORT[/udp], e.g. -p 8080:80"
        var spec = Substring(text)
        var proto = PortProtocol.tcp
        if let slash = spec.lastIndex(of: "/") {
            let name = spec[spec.index(after: slash)...]
            guard let known = PortProtocol(rawValue: name.lowercased()) else {
                throw failure(
                    name.isEmpty
                        ? "the protocol after '/' is missing: use /tcp or /udp"
                        : "protocol '\(name)' is not supported: use /tcp or /udp")
            }
            proto = known
            spec = spec[..<slash]
        }
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 2, 3: break
        case 1: throw failure(usage)
        default: throw failure("too many ':' (IPv6 host addresses are not supported): \(usage)")
        }
        var hostIP: String?
        if parts.count == 3 {
            guard !parts[0].isEmpty else { throw failure("the host IP before the first ':' is empty: \(usage)") }
            guard let address = IPv4Address(String(parts[0])) else {
                throw failure("host IP \(parts[0]) is not a dotted IPv4 address")
            }
            hostIP = address.value == 0 ? nil : address.description
        }
        let hostPort = try port(parts[parts.count - 2], "host port", failure)
        let containerPort = try port(parts[parts.count - 1], "container port", failure)
        return PortPublish(hostIP: hostIP, hostPort: hostPort, containerPort: containerPort, proto: proto)
    }

    private static func port(
        _ text: Substring, _ what: String, _ failure: (String) -> ClabError
    ) throws -> UInt16 {
        guard !text.isEmpty else { throw failure("the \(what) is missing: use [HOSTIP:]HOSTPORT:PORT") }
        // Digits only: Int() would also take "+80".
        guard text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            throw failure("\(what) \(text) is not a number")
        }
        guard text.count <= 5, let value = Int(text), (1...65535).contains(value) else {
            throw failure("\(what) \(text) is out of range 1-65535")
        }
        return UInt16(value)
    }

    /// "8080:80/tcp", "127.0.0.1:8080:80/udp".
    public var description: String {
        (hostIP.map { "\($0):" } ?? "") + "\(hostPort):\(containerPort)/\(proto.rawValue)"
    }

    /// The host side, as errors name it: "8080/tcp", "127.0.0.1:8080/tcp".
    var hostSide: String { (hostIP.map { "\($0):" } ?? "") + "\(hostPort)/\(proto.rawValue)" }

    /// Two publications that would catch the same connections.
    func overlaps(_ other: PortPublish) -> Bool {
        proto == other.proto && hostPort == other.hostPort
            && (hostIP == nil || other.hostIP == nil || hostIP == other.hostIP)
    }
}
