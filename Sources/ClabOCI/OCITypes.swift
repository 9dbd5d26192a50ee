import FoundationEssentials
import Glibc

/// The OCI image-spec documents clab writes and reads (only the fields it uses). Pure types, in
/// a module of their own below the image store and the registry client, which both speak them.
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
    public static let dockerManifestType = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfigType = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzipType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
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

        public init(
            mediaType: String, digest: String, size: Int, annotations: [String: String]? = nil,
            platform: Platform? = nil
        ) {
            self.mediaType = mediaType
            self.digest = digest
            self.size = size
            self.annotations = annotations
            self.platform = platform
        }
    }

    public struct Platform: Codable, Sendable, Equatable {
        public var architecture: String
        public var os: String

        public init(architecture: String, os: String) {
            self.architecture = architecture
            self.os = os
        }
    }

    public struct Layout: Codable, Sendable {
        public var imageLayoutVersion: String

        public init(imageLayoutVersion: String) { self.imageLayoutVersion = imageLayoutVersion }
    }

    public struct Index: Codable, Sendable {
        public var schemaVersion: Int
        public var mediaType: String?
        public var manifests: [Descriptor]

        public init(schemaVersion: Int, mediaType: String? = nil, manifests: [Descriptor]) {
            self.schemaVersion = schemaVersion
            self.mediaType = mediaType
            self.manifests = manifests
        }
    }

    public struct Manifest: Codable, Sendable {
        public var schemaVersion: Int
        public var mediaType: String?
        public var config: Descriptor
        public var layers: [Descriptor]

        public init(schemaVersion: Int, mediaType: String? = nil, config: Descriptor, layers: [Descriptor]) {
            self.schemaVersion = schemaVersion
            self.mediaType = mediaType
            self.config = config
            self.layers = layers
        }
    }

    /// The image config: how to run the image, and the layers' diff_ids.
    public struct Config: Codable, Sendable {
        public var created: String?
        public var architecture: String?
        public var os: String?
        public var config: Exec?
        public var rootfs: RootFS
        public var history: [History]?

        public init(
            created: String? = nil, architecture: String? = nil, os: String? = nil, config: Exec? = nil,
            rootfs: RootFS, history: [History]? = nil
        ) {
            self.created = created
            self.architecture = architecture
            self.os = os
            self.config = config
            self.rootfs = rootfs
            self.history = history
        }
    }

    public struct Exec: Codable, Sendable {
        public var env: [String]?
        public var cmd: [String]?
        public var entrypoint: [String]?
        public var workingDir: String?
        public var user: String?

        public init(
            env: [String]? = nil, cmd: [String]? = nil, entrypoint: [String]? = nil, workingDir: String? = nil,
            user: String? = nil
        ) {
            self.env = env
            self.cmd = cmd
            self.entrypoint = entrypoint
            self.workingDir = workingDir
            self.user = user
        }

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

        public init(type: String, diffIDs: [String]) {
            self.type = type
            self.diffIDs = diffIDs
        }

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

        public init(created: String? = nil, createdBy: String? = nil, comment: String? = nil, emptyLayer: Bool? = nil) {
            self.created = created
            self.createdBy = createdBy
            self.comment = comment
            self.emptyLayer = emptyLayer
        }

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
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// A digest clab can use as a file name: sha256 and 64 lowercase hex digits, nothing else
    /// (a digest like `sha256:../../x` must never become a path).
    public static func isValidDigest(_ digest: String) -> Bool {
        guard digest.hasPrefix("sha256:") else { return false }
        let hex = Array(digest.utf8.dropFirst(7))
        return hex.count == 64
            && hex.allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
    }
}
