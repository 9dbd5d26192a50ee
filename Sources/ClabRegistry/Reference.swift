import ClabImages
import ClabRuntime
import ClabSys
import Glibc

/// A reference to an image in a registry: `localhost:5000/bb:1` or `localhost:5000/bb@sha256:…`.
/// It is clab's ImageRef (the same name files the image in the store), with the registry part
/// required: clab never guesses a registry (Docker would go to Docker Hub).
public struct RegistryReference: Sendable, Equatable, CustomStringConvertible {
    /// `host[:port]`, as written (the credentials file is keyed by it).
    public let registry: String
    /// The repository path below the registry (`bb`, `team/bb`).
    public let repository: String
    /// A tag or a manifest digest (`sha256:<hex>`).
    public let reference: String
    public let image: ImageRef

    public var isDigest: Bool { image.digest != nil }
    public var description: String { image.description }

    public init(_ text: String) throws {
        let image = try ImageRef.parse(text)
        guard let registry = image.registry else {
            throw ClabError(
                "'\(text.prefix(200))' names no registry: write REGISTRY/NAME[:TAG], e.g. localhost:5000/\(image.name):\(image.digest == nil ? image.tag : "TAG") (clab never guesses a registry)",
                exitCode: 2)
        }
        try self.init(image: image, registry: registry)
    }

    init(image: ImageRef, registry: String) throws {
        self.image = image
        self.registry = registry
        repository = String(image.name.dropFirst(registry.count + 1))
        reference = image.digest ?? image.tag
    }

    /// Registries on the loopback are spoken to in plain HTTP, as Docker does for localhost;
    /// any other over HTTPS. A loopback address is an IPv4 address in 127.0.0.0/8, not any name
    /// that starts with "127." (127.example.net is a remote host).
    public static func scheme(for registry: String) -> String {
        let host = hostPart(registry)
        var address = in_addr()
        let loopbackV4 = inet_pton(AF_INET, host, &address) == 1 && UInt32(bigEndian: address.s_addr) >> 24 == 127
        return host == "localhost" || loopbackV4 || host == "[::1]" ? "http" : "https"
    }

    static func hostPart(_ registry: String) -> String {
        if registry.hasPrefix("[") { return String(registry.prefix { $0 != "]" }) + "]" }
        return String(registry.split(separator: ":").first ?? "")
    }

    /// A registry address as `clab login` takes it: host[:port], no scheme, no path.
    public static func parseRegistry(_ text: String) throws -> String {
        var host = Substring(text)
        for scheme in ["http://", "https://"] where host.hasPrefix(scheme) { host = host.dropFirst(scheme.count) }
        while host.hasSuffix("/") { host = host.dropLast() }
        guard !host.isEmpty, host.count <= 255, (try? ImageRef.parse(String(host) + "/x"))?.registry == String(host)
        else {
            throw ClabError(
                "invalid registry '\(text.prefix(200))': give HOST[:PORT], e.g. localhost:5000", exitCode: 2)
        }
        return String(host)
    }
}
