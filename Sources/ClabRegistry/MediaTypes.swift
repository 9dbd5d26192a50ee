import ClabOCI
import ClabRuntime

/// The manifest media types clab reads from a registry. Docker's schema 1 (signed JSON, no
/// config blob) is refused with its own message; anything else is not an image clab knows.
public enum MediaType {
    public static let ociManifest = OCI.manifestType
    public static let ociIndex = OCI.indexType
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
    static let dockerSchema1 = [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]

    public static let manifests = [ociManifest, dockerManifest]
    public static let indexes = [ociIndex, dockerList]
    /// What a pull accepts, in an Accept header.
    static let accept = (manifests + indexes).joined(separator: ", ")

    /// The media type without parameters (`; charset=utf-8`) and surrounding spaces.
    static func bare(_ contentType: String?) -> String {
        String((contentType ?? "").split(separator: ";").first ?? "").trimmingSpaces
    }
}

/// A manifest or an index, as a pull decodes it before trusting any field: the fields of both.
struct ManifestDocument: Decodable {
    var schemaVersion: Int?
    var mediaType: String?
    var config: OCI.Descriptor?
    var layers: [OCI.Descriptor]?
    var manifests: [IndexEntry]?

    struct IndexEntry: Decodable {
        var mediaType: String
        var digest: String
        var size: Int
        var platform: Platform?
    }

    struct Platform: Decodable {
        var architecture: String
        var os: String
        var variant: String?
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}
