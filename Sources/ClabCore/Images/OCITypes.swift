import CShims
import FoundationEssentials
import Glibc

/// The OCI image-spec documents clab writes and reads (only the fields it uses).
///
/// An image layout is a directory: `oci-layout` (the version), `index.json` (descriptors of
/// the images in it, named by the `org.opencontainers.image.ref.name` annotation) and
/// `blobs/sha256/<hex>`, where every blob is named by the sha256 of its bytes. A descriptor
/// (media type, digest, size) points at a blob: the index at a manifest, the manifest at the
/// config and the layers. Layer blobs are gzip'd tars; the config lists each layer's *diff_id*,
/// the sha256 of the uncompressed tar, which for clab is the layer's own digest.
public enum OCI {
    public static let layoutVersion = "1.0.0"
    public static let indexType = "application/vnd.oci.image.index.v1+json"
    public static let manifestType = "application/vnd.oci.image.manifest.v1+json"
    public static let configType = "application/vnd.oci.image.config.v1+json"
    public static let layerGzipType = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let layerTarType = "application/vnd.oci.image.layer.v1.tar"
    /// Docker's names for the same documents: `skopeo copy` and `docker save` can write them.
    static let dockerManifestType = "application/vnd.docker.distribution.manifest.v2+json"
    static let dockerConfigType = "application/vnd.docker.container.image.v1+json"
    static let dockerLayerGzipType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    /// The tag of an image in a layout (`skopeo inspect oci:DIR:TAG` looks it up).
    public static let refNameAnnotation = "org.opencontainers.image.ref.name"
    /// The full name, as `docker save` writes it; clab's import takes the image's name from it.
    public static let imageNameAnnotation = "io.containerd.image.name"

    public struct Descriptor: Codable, Sendable, Equatable {
        public var mediaType: String
        public var digest: String
        public var size: Int
        public var annotations: [String: String]?
        public var platform: Platform?
    }

    public struct Platform: Codable, Sendable, Equatable {
        public var architecture: String
        public var os: String
    }

    public struct Layout: Codable, Sendable {
        public var imageLayoutVersion: String
    }

    public struct Index: Codable, Sendable {
        public var schemaVersion: Int
        public var mediaType: String?
        public var manifests: [Descriptor]
    }

    public struct Manifest: Codable, Sendable {
        public var schemaVersion: Int
        public var mediaType: String?
        public var config: Descriptor
        public var layers: [Descriptor]
    }

    /// The image config: how to run the image, and the layers' diff_ids.
    public struct Config: Codable, Sendable {
        public var created: String?
        public var architecture: String?
        public var os: String?
        public var config: Exec?
        public var rootfs: RootFS
        public var history: [History]?
    }

    public struct Exec: Codable, Sendable {
        public var env: [String]?
        public var cmd: [String]?
        public var entrypoint: [String]?
        public var workingDir: String?
        public var user: String?

        enum CodingKeys: String, CodingKey {
            case env = "Env"
            case cmd = "Cmd"
            case entrypoint = "Entrypoint"
            case workingDir = "WorkingDir"
            case user = "User"
        }
    }

    public struct RootFS: Codable, Sendable {
        public var type: String
        public var diffIDs: [String]

        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }

    public struct History: Codable, Sendable {
        public var created: String?
        public var createdBy: String?
        public var comment: String?
        public var emptyLayer: Bool?

        enum CodingKeys: String, CodingKey {
            case created
            case createdBy = "created_by"
            case comment
            case emptyLayer = "empty_layer"
        }
    }

    /// The GOARCH-style name the image spec uses for this machine.
    public static var hostArchitecture: String {
        var names = utsname()
        uname(&names)
        let machine = withUnsafeBytes(of: &names.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let goarch = [
            "x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
        ]
        return goarch[machine] ?? machine
    }

    /// Canonical JSON for blobs: sorted keys, so the same document has the same digest.
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// A digest clab can use as a file name: sha256 and 64 lowercase hex digits, nothing else
    /// (a digest like `sha256:../../x` must never become a path).
    public static func isValidDigest(_ digest: String) -> Bool {
        let hex = Array(LayerStore.hex(digest).utf8)
        return digest.hasPrefix("sha256:") && hex.count == 64
            && hex.allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
    }
}
