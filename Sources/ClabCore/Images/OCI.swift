import CShims
import ClabKernel
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

/// `clab image export` and `clab image import`: images in and out of OCI image layouts, so
/// skopeo, umoci, podman or Docker can read what clab built, and clab can run what they wrote.
public struct OCILayout {
    public let images: ImageStore

    public init(images: ImageStore) { self.images = images }

    var layers: LayerStore { images.layerStore }

    // MARK: - Export

    public struct Exported: Sendable {
        public let ref: ImageRef
        public let manifest: OCI.Descriptor
        public let config: OCI.Descriptor
        public let layers: [OCI.Descriptor]
    }

    /// Writes `image` as an OCI image layout into `dir`, which must not exist or be empty.
    /// Layers are the canonical tar piped through `gzip -n` (no name, no timestamp), so the same
    /// image exports to the same bytes; both digests are computed while the bytes stream by.
    @discardableResult
    public func export(_ image: String, to dir: String, log: (String) -> Void) throws -> Exported {
        let ref = try ImageRef.parse(image)
        if ref.name == ImageStore.baseName {
            try images.layout.prepare()
            try images.ensureBase(log: log)
        }
        let (id, config) = try images.resolve(image)
        for digest in config.layers where !layers.exists(digest) {
            throw ClabError("layer \(digest.prefix(19)) of image '\(ref)' is missing from the store")
        }
        let madeDir = try Self.claimEmptyDirectory(dir)
        do {
            log("exporting \(ref) (\(id.prefix(19)), \(Self.count(config.layers.count, "layer"))) to \(dir)")
            let blobs = dir + "/blobs/sha256"
            try FS.makeDirectories(blobs)
            var layerDescriptors: [OCI.Descriptor] = []
            for (n, digest) in config.layers.enumerated() {
                log(
                    "layer \(n + 1)/\(config.layers.count) \(digest.prefix(19)): packing "
                        + "\(humanBytes(Int64(layers.size(digest)))) (canonical tar | gzip -n) and hashing…")
                let blob = try exportLayer(digest, blobs: blobs, log: log)
                log("  blob \(blob.digest.prefix(19)) (\(humanBytes(Int64(blob.size))) gzip'd)")
                layerDescriptors.append(blob)
            }
            let platform = OCI.Platform(architecture: OCI.hostArchitecture, os: "linux")
            let ociConfig = OCI.Config(
                created: config.created, architecture: platform.architecture, os: platform.os,
                config: OCI.Exec(
                    env: config.env.isEmpty ? nil : config.env, cmd: config.cmd, entrypoint: nil,
                    workingDir: config.workdir, user: nil),
                rootfs: OCI.RootFS(type: "layers", diffIDs: config.layers),
                history: config.history.map {
                    OCI.History(
                        created: nil, createdBy: $0.createdBy, comment: nil, emptyLayer: $0.emptyLayer ? true : nil)
                })
            let configBlob = try Self.writeBlob(try OCI.encode(ociConfig), type: OCI.configType, blobs: blobs)
            let manifest = OCI.Manifest(
                schemaVersion: 2, mediaType: OCI.manifestType, config: configBlob, layers: layerDescriptors)
            var manifestBlob = try Self.writeBlob(try OCI.encode(manifest), type: OCI.manifestType, blobs: blobs)
            log("config \(configBlob.digest.prefix(19)), manifest \(manifestBlob.digest.prefix(19))")
            manifestBlob.annotations = [OCI.refNameAnnotation: ref.tag, OCI.imageNameAnnotation: ref.description]
            manifestBlob.platform = platform
            let index = OCI.Index(schemaVersion: 2, mediaType: OCI.indexType, manifests: [manifestBlob])
            try FS.write(String(decoding: try OCI.encode(index), as: UTF8.self) + "\n", to: dir + "/index.json")
            try FS.write(
                String(decoding: try OCI.encode(OCI.Layout(imageLayoutVersion: OCI.layoutVersion)), as: UTF8.self),
                to: dir + "/oci-layout")
            return Exported(ref: ref, manifest: manifestBlob, config: configBlob, layers: layerDescriptors)
        } catch {
            // Never half a layout: remove what this export made (the directory was empty).
            if madeDir {
                try? FS.removeTree(dir)
            } else {
                for entry in ["blobs", "index.json", "oci-layout"] { try? FS.removeTree(dir + "/" + entry) }
            }
            throw error
        }
    }

    /// Checks that `dir` is new or empty (clab never overwrites a user's files); makes it if
    /// it is new. Returns whether it made it.
    static func claimEmptyDirectory(_ dir: String) throws -> Bool {
        var st = stat()
        if lstat(dir, &st) != 0 {
            guard errno == ENOENT else { throw ClabError("\(dir): \(errnoDescription(errno))") }
            guard FS.isDirectory(Path.dirname(dir)) else {
                throw ClabError("cannot export to \(dir): \(Path.dirname(dir)) is not a directory", exitCode: 2)
            }
            guard mkdir(dir, 0o755) == 0 else { throw ClabError("mkdir \(dir): \(errnoDescription(errno))") }
            return true
        }
        guard FS.isDirectory(dir) else {
            throw ClabError("\(dir) exists and is not a directory: export into a new or empty directory", exitCode: 2)
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        guard entries.isEmpty else {
            throw ClabError(
                "\(dir) is not empty: export into a new or empty directory; clab never overwrites files",
                exitCode: 2)
        }
        return false
    }

    /// One layer as a gzip'd blob. Checks on the way that the layer still hashes to its name.
    func exportLayer(_ digest: String, blobs: String, log: (String) -> Void) throws -> OCI.Descriptor {
        let tmp = blobs + "/.tmp-layer-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SyscallError("open \(tmp)") }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(tmp)
        }
        let gzip = try Compressor(file: fd, what: tmp)
        defer { gzip.cancel() }
        var tarHash = SHA256()
        var packed = 0
        var nextReport = 64 << 20
        try CanonicalTar(root: layers.path(digest)).write { chunk in
            tarHash.update(chunk)
            packed += chunk.count
            if packed >= nextReport {
                log("  … \(humanBytes(Int64(packed))) packed")
                nextReport += 64 << 20
            }
            try gzip.feed(chunk)
        }
        let (blobDigest, blobSize) = try gzip.finish()
        let diffID = "sha256:" + tarHash.finalize()
        guard diffID == digest else {
            throw ClabError(
                "layer \(digest.prefix(19)) no longer matches its digest (its tar is \(diffID.prefix(19))): the store was modified"
            )
        }
        guard fsync(fd) == 0, close(fd) == 0 else { throw SyscallError("write \(tmp)") }
        closed = true
        let target = blobs + "/" + LayerStore.hex(blobDigest)
        if !FS.exists(target) {
            guard rename(tmp, target) == 0 else { throw SyscallError("rename \(tmp) \(target)") }
        }
        return OCI.Descriptor(
            mediaType: OCI.layerGzipType, digest: blobDigest, size: blobSize, annotations: nil, platform: nil)
    }

    /// Stores a small blob (a config or manifest) under its digest.
    static func writeBlob(_ bytes: [UInt8], type: String, blobs: String) throws -> OCI.Descriptor {
        let digest = "sha256:" + SHA256.hex(bytes)
        let target = blobs + "/" + LayerStore.hex(digest)
        let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SyscallError("open \(target)") }
        defer { close(fd) }
        try FS.writeAll(fd, bytes, what: target)
        return OCI.Descriptor(mediaType: type, digest: digest, size: bytes.count, annotations: nil, platform: nil)
    }

    // MARK: - Import

    public struct Imported: Sendable {
        public let ref: ImageRef
        public let id: String
        public let layers: [String]
        /// Layers whose canonical tar differs from the layout's diff_id (foreign tars).
        public let rehashed: Int
    }

    /// What `image import` unpacks at most, all layers together, uncompressed (`--max-size`):
    /// a gzip'd layer of a few megabytes can expand to terabytes of zeros and fill the disk.
    /// 8 GiB is far more than the images clab is for need (debian:12 is ~120 MiB, most
    /// application images stay under 2 GiB) and still stops a bomb before it fills a typical
    /// disk; a larger image (a machine-learning stack) is imported with a larger --max-size.
    public static let defaultMaxSize = 8 << 30

    /// Reads the one image of an OCI image layout into the store and tags it `tag` (by default
    /// the name the layout gives it). Every blob is checked against its digest before use, and
    /// the layers are unpacked until `maxSize` uncompressed bytes at most. A failure leaves
    /// nothing: no tag, no config, no layer that no image uses.
    @discardableResult
    public func importLayout(
        from dir: String, as tag: ImageRef?, maxSize: Int = OCILayout.defaultMaxSize, log: (String) -> Void
    ) throws -> Imported {
        try images.layout.prepare()
        guard FS.isDirectory(dir) else { throw ClabError("\(dir) is not a directory", exitCode: 2) }
        guard let layoutText = FS.read(dir + "/oci-layout") else {
            throw ClabError("\(dir) is not an OCI image layout: it has no oci-layout file", exitCode: 2)
        }
        let version = try Self.decode(OCI.Layout.self, Array(layoutText.utf8), what: "\(dir)/oci-layout")
        guard version.imageLayoutVersion.hasPrefix("1.") else {
            throw ClabError(
                "\(dir)/oci-layout: image layout version \(version.imageLayoutVersion) is not supported (1.x is)",
                exitCode: 2)
        }
        guard let indexData = FileManager.default.contents(atPath: dir + "/index.json") else {
            throw ClabError("\(dir) is not an OCI image layout: it has no index.json", exitCode: 2)
        }
        let index = try Self.decode(OCI.Index.self, Array(indexData), what: "\(dir)/index.json")
        guard index.manifests.count == 1, let entry = index.manifests.first else {
            let names = index.manifests.compactMap { $0.annotations?[OCI.refNameAnnotation] }
            throw ClabError(
                index.manifests.isEmpty
                    ? "\(dir)/index.json lists no image"
                    : "\(dir) holds \(index.manifests.count) images (\(names.joined(separator: ", "))): clab imports a layout with one; copy one out with `skopeo copy oci:\(dir):REF oci:NEWDIR`",
                exitCode: 2)
        }
        guard [OCI.manifestType, OCI.dockerManifestType].contains(entry.mediaType) else {
            throw ClabError(
                "\(dir)/index.json: unsupported media type \(entry.mediaType) (clab reads \(OCI.manifestType))",
                exitCode: 2)
        }
        let ref = try tag ?? Self.defaultRef(entry, dir: dir)
        let blobs = dir + "/blobs/sha256"
        let manifest = try Self.decode(
            OCI.Manifest.self, try Self.readBlob(entry, blobs: blobs), what: "manifest \(entry.digest.prefix(19))")
        guard [OCI.configType, OCI.dockerConfigType].contains(manifest.config.mediaType) else {
            throw ClabError(
                "manifest \(entry.digest.prefix(19)): unsupported config media type \(manifest.config.mediaType)",
                exitCode: 2)
        }
        for (n, layer) in manifest.layers.enumerated()
        where ![OCI.layerGzipType, OCI.layerTarType, OCI.dockerLayerGzipType].contains(layer.mediaType) {
            throw ClabError(
                "layer \(n + 1): unsupported media type \(layer.mediaType) (clab reads tar and tar+gzip layers)",
                exitCode: 2)
        }
        let oci = try Self.decode(
            OCI.Config.self, try Self.readBlob(manifest.config, blobs: blobs),
            what: "config \(manifest.config.digest.prefix(19))")
        guard oci.os == nil || oci.os == "linux" else {
            throw ClabError("the image is for \(oci.os ?? "?"), not linux", exitCode: 2)
        }
        guard oci.rootfs.diffIDs.count == manifest.layers.count else {
            throw ClabError(
                "config \(manifest.config.digest.prefix(19)) lists \(oci.rootfs.diffIDs.count) diff_ids for \(manifest.layers.count) layers",
                exitCode: 2)
        }
        try Self.checkExec(oci.config, what: "image \(ref)")
        log(
            "importing \(dir) as \(ref) (manifest \(entry.digest.prefix(19)), \(Self.count(manifest.layers.count, "layer")))"
        )
        if let arch = oci.architecture, arch != OCI.hostArchitecture {
            log("note: the image is for \(arch), this machine is \(OCI.hostArchitecture): its programs may not run")
        }

        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: layers.dir + "/sha256")) ?? [])
        var added: [String] = []
        var imported: [String] = []
        var rehashed = 0
        var saved: String?
        var unpacked = 0
        do {
            for (n, (descriptor, diffID)) in zip(manifest.layers, oci.rootfs.diffIDs).enumerated() {
                let (digest, size) = try importLayer(
                    descriptor, diffID: diffID, number: n + 1, of: manifest.layers.count, blobs: blobs,
                    limit: (unpacked: unpacked, max: maxSize), log: log)
                unpacked += size
                if !before.contains(LayerStore.hex(digest)) { added.append(digest) }
                if digest != diffID { rehashed += 1 }
                imported.append(digest)
            }
            let config = try Self.clabConfig(oci, layers: imported, log: log)
            let id = try images.save(config)
            saved = id
            if let previous = try? images.resolve(ref.description).id, previous != id {
                log("note: \(ref) named image \(previous.prefix(19)) until now")
            }
            try images.tag(id, as: ref)
            log("imported \(ref) (\(id.prefix(19)))")
            return Imported(ref: ref, id: id, layers: imported, rehashed: rehashed)
        } catch {
            if let saved, !images.refs().contains(where: { $0.id == saved }) {
                unlink(images.configsDir + "/" + LayerStore.hex(saved) + ".json")
            }
            dropUnused(added)
            throw error
        }
    }

    /// The name the layout gives its image: `io.containerd.image.name` (as `docker save` and
    /// clab write it: registry and path dropped), or else the ref.name annotation read as NAME[:TAG].
    static func defaultRef(_ entry: OCI.Descriptor, dir: String) throws -> ImageRef {
        let annotations = entry.annotations ?? [:]
        if let full = annotations[OCI.imageNameAnnotation],
            let last = full.split(separator: "/").last,
            let ref = try? ImageRef.parse(String(last))
        {
            return ref
        }
        guard let name = annotations[OCI.refNameAnnotation] else {
            throw ClabError("\(dir)/index.json does not name its image: give --tag NAME[:TAG]", exitCode: 2)
        }
        guard let ref = try? ImageRef.parse(name) else {
            throw ClabError(
                "\(dir) names its image '\(name)', which is not a clab image name: give --tag NAME[:TAG]",
                exitCode: 2)
        }
        return ref
    }

    /// The image's ENV, ENTRYPOINT, CMD and WorkingDir reach execve in the container: refused
    /// before any layer is imported unless they can be given as they are (no NUL, ENV entries
    /// NAME=VALUE).
    static func checkExec(_ exec: OCI.Exec?, what: String) throws {
        guard let exec else { return }
        for (i, entry) in (exec.env ?? []).enumerated() {
            try ContainerSpec.checkEnvEntry(entry, "\(what): ENV entry \(i + 1)")
        }
        for (name, list) in [("ENTRYPOINT", exec.entrypoint), ("CMD", exec.cmd)] {
            for (i, arg) in (list ?? []).enumerated() {
                try ContainerSpec.checkText(arg, "\(what): \(name) argument \(i + 1)")
            }
        }
        if let dir = exec.workingDir { try ContainerSpec.checkText(dir, "\(what): WorkingDir") }
    }

    /// clab's config from the OCI one. clab has no ENTRYPOINT and no USER: an entrypoint is
    /// put in front of CMD (what `docker run` executes), a user is reported and ignored.
    static func clabConfig(_ oci: OCI.Config, layers: [String], log: (String) -> Void) throws -> ImageConfig {
        let exec = oci.config
        var cmd = exec?.cmd
        if let entrypoint = exec?.entrypoint, !entrypoint.isEmpty {
            cmd = entrypoint + (cmd ?? [])
            log("note: ENTRYPOINT \(entrypoint) is put in front of CMD (clab images have only CMD)")
        }
        if let user = exec?.user, !user.isEmpty, user != "0", user != "root", user != "0:0" {
            log("note: USER \(user) is ignored: clab runs the command as root (uid 100000 on the host at stage 9)")
        }
        var history = (oci.history ?? []).map {
            ImageConfig.History(createdBy: $0.createdBy ?? $0.comment ?? "", emptyLayer: $0.emptyLayer ?? false)
        }
        if history.filter({ !$0.emptyLayer }).count != layers.count {
            // `clab image history` pairs each non-empty step with a layer: without a history that
            // matches, each layer gets one step.
            history = layers.map { _ in ImageConfig.History(createdBy: "imported layer", emptyLayer: false) }
        }
        let workdir = exec?.workingDir.flatMap { $0.isEmpty ? nil : $0 }
        return ImageConfig(
            layers: layers, env: exec?.env ?? [], cmd: cmd, workdir: workdir, history: history,
            created: oci.created ?? Date().formatted(.iso8601))
    }

    /// One layer blob into the store: verify, gunzip, extract, convert whiteouts, add. Returns
    /// the layer's digest and what it unpacked to; `limit` is what earlier layers unpacked and
    /// the most all may.
    ///
    /// The layer is hostile: it may hold setuid programs (kept, as Docker keeps them: the store
    /// is closed to other users), device nodes (refused, see LayerStore.allowsDevice), an entry
    /// for `./` that would give the layer's directory its mode and owner (undone), or expand
    /// without end (stopped at the limit).
    ///
    /// The stored digest is the sha256 of clab's canonical tar of the extracted tree. For a
    /// layer clab exported that is exactly the diff_id, so an export round-trips to the same
    /// digests. A foreign tar (real mtimes, its own entry order, user names, hard links) has
    /// the same content but other bytes: the layer is stored under its canonical digest, and
    /// the log says so in one line. The diff_id itself is still checked, against the
    /// uncompressed stream, so a layout whose config and layers disagree is refused.
    func importLayer(
        _ blob: OCI.Descriptor, diffID: String, number: Int, of total: Int, blobs: String,
        limit: (unpacked: Int, max: Int), log: (String) -> Void
    ) throws -> (digest: String, size: Int) {
        guard OCI.isValidDigest(diffID) else {
            throw ClabError(
                "layer \(number): unsupported diff_id '\(diffID.prefix(80))' (clab reads sha256)", exitCode: 2)
        }
        log("layer \(number)/\(total) \(blob.digest.prefix(19)): verifying \(humanBytes(Int64(blob.size)))…")
        let path = try Self.verifiedBlobPath(blob, blobs: blobs)
        // tar gives the tree the `./` entry's owner and mode (uid 100000, 0777) while it extracts,
        // and layers/ lets uid 100000 pass: the tree sits in a directory only root enters, so no
        // other uid swaps a directory for a symlink under tar, which follows it as root.
        let scratch = layers.dir + "/.tmp-import-\(getpid())"
        try? FS.removeTree(scratch)
        defer { try? FS.removeTree(scratch) }
        try FS.makeDirectories(scratch, mode: 0o700)
        let tree = scratch + "/tree"
        try FS.makeDirectories(tree, mode: 0o700)
        let compressed = blob.mediaType != OCI.layerTarType
        log("  unpacking (\(compressed ? "gzip -dc | " : "")tar -x) and hashing…")
        let tooLarge = ClabError(
            "layer \(number): the image unpacks to more than \(humanBytes(Int64(limit.max))) (the --max-size limit): refused; pass a larger --max-size if you trust it",
            exitCode: 2)
        let unpacked: (digest: String, size: Int, completed: Bool)
        do {
            unpacked = try Self.unpack(
                path, gzip: compressed, into: tree, scratch: layers.dir, limit: limit.max - limit.unpacked)
        } catch is TooLarge {
            throw tooLarge
        }
        let (streamDigest, tarSize, completed) = unpacked
        // The stream's size is not the layer's: a sparse member (tar --sparse) or a file with
        // thousands of hard links is a few KiB here and gigabytes of files, every path of which
        // the layer's digest (CanonicalTar) reads.
        let expanded = max(tarSize, ImageStore.treeSize(tree))
        guard expanded <= limit.max - limit.unpacked else { throw tooLarge }
        // The layer's own directory is clab's, whatever the tar's `./` entry says (tar gives
        // `-C` the entry's mode and owner: 0777, or a user's).
        guard chown(tree, 0, 0) == 0, chmod(tree, 0o755) == 0 else { throw SyscallError("chmod \(tree)") }
        if completed {
            log(
                "  note: the tar ends without its end-of-archive blocks (older `umoci insert` wrote such tars); read as complete"
            )
        }
        guard streamDigest == diffID else {
            throw ClabError(
                "layer \(number): the uncompressed blob is \(streamDigest.prefix(19)), but the config's diff_id is \(diffID.prefix(19))",
                exitCode: 2)
        }
        let (whiteouts, opaque) = try Self.convertWhiteouts(tree)
        if whiteouts + opaque > 0 {
            log(
                "  converted to overlayfs form: \(Self.count(whiteouts, "whiteout")), \(Self.count(opaque, "opaque directory", "opaque directories"))"
            )
        }
        log("  hashing and storing the layer (\(humanBytes(Int64(tarSize))))…")
        let (digest, _) = try layers.add(tree: tree)
        if digest == diffID {
            log("  layer \(digest.prefix(19)) (the diff_id)")
        } else {
            log(
                "  layer \(digest.prefix(19)): stored under clab's canonical digest, not the diff_id \(diffID.prefix(19)) (a foreign tar: same files, other mtimes or order)"
            )
        }
        return (digest, expanded)
    }

    static func count(_ n: Int, _ one: String, _ many: String? = nil) -> String {
        "\(n) " + (n == 1 ? one : many ?? one + "s")
    }

    /// Removes layers this import added, unless an image or a kept container uses them by now.
    func dropUnused(_ added: [String]) {
        guard !added.isEmpty else { return }
        var live = Set(KeptContainers(layout: images.layout).list().flatMap(\.layers))
        for (_, id) in images.refs() { live.formUnion((try? images.config(id: id).layers) ?? []) }
        for digest in added where !live.contains(digest) { layers.removeLayer(digest) }
    }

    /// A JSON blob (manifest or config), checked against its descriptor.
    static func readBlob(_ descriptor: OCI.Descriptor, blobs: String) throws -> [UInt8] {
        guard descriptor.size <= 16 << 20 else {
            throw ClabError("blob \(descriptor.digest.prefix(19)) is too large for JSON (\(descriptor.size) bytes)")
        }
        let path = try verifiedBlobPath(descriptor, blobs: blobs)
        guard let data = FileManager.default.contents(atPath: path) else { throw SyscallError("read \(path)") }
        return Array(data)
    }

    /// The blob's path, after checking that its size and sha256 are the descriptor's.
    static func verifiedBlobPath(_ descriptor: OCI.Descriptor, blobs: String) throws -> String {
        guard OCI.isValidDigest(descriptor.digest) else {
            throw ClabError(
                "unsupported digest '\(descriptor.digest.prefix(80))' (clab reads sha256:<64 hex digits>)",
                exitCode: 2)
        }
        let path = blobs + "/" + LayerStore.hex(descriptor.digest)
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ClabError("blob \(descriptor.digest.prefix(19)) is missing from \(blobs)", exitCode: 2)
        }
        guard Int(st.st_size) == descriptor.size else {
            throw ClabError(
                "blob \(descriptor.digest.prefix(19)) has \(st.st_size) bytes, its descriptor says \(descriptor.size)",
                exitCode: 2)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        defer { close(fd) }
        var hash = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw SyscallError("read \(path)") }
            if n == 0 { break }
            hash.update(buffer[0..<n])
        }
        let actual = "sha256:" + hash.finalize()
        guard actual == descriptor.digest else {
            throw ClabError(
                "blob \(descriptor.digest.prefix(19)) does not match its digest (its content is \(actual.prefix(19))): the layout is corrupt",
                exitCode: 2)
        }
        return path
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            let detail: String
            switch error {
            case .keyNotFound(let key, _): detail = "no \"\(key.stringValue)\""
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                let path = context.codingPath.map(\.stringValue).joined(separator: ".")
                detail = (path.isEmpty ? "" : path + ": ") + context.debugDescription
            @unknown default: detail = "\(error)"
            }
            throw ClabError("\(what) is not valid OCI JSON: \(detail)", exitCode: 2)
        }
    }

    /// An import stopped at its `--max-size`.
    struct TooLarge: Error {}

    /// What may follow a tar's end-of-archive blocks: its padding to a record (10 KiB for GNU
    /// tar, up to 1 MiB with a large blocking factor). More is not a layer, but could be a
    /// gzip bomb's zeros, which tar no longer reads.
    static let trailingLimit = 1 << 20

    /// Streams the blob through `gzip -dc` (when compressed) into GNU `tar -x`, hashing the
    /// uncompressed bytes on the way (the diff_id). tar runs as root with `-p --numeric-owner`:
    /// modes and uid/gid numbers as the tar has them. Returns the stream's digest and size.
    /// A tar that ends right after a member's data, without the end-of-archive blocks, is
    /// completed with zeros for tar (not for the digest), as Go-based tools read it: older
    /// `umoci insert` wrote such layers (umoci#436). Returns whether that happened.
    ///
    /// The stream is hostile. clab follows its headers (TarFraming) and stops before tar sees a
    /// device node a layer may not hold; it stops after `limit` uncompressed bytes (throwing
    /// TooLarge), when tar fails, or when more than `trailingLimit` follows the archive's end.
    /// Stopping kills gzip and tar, so a bomb is never decompressed to its end.
    static func unpack(
        _ blob: String, gzip: Bool, into tree: String, scratch: String, limit: Int = .max
    ) throws -> (digest: String, size: Int, completed: Bool) {
        let blobFD = open(blob, O_RDONLY | O_CLOEXEC)
        guard blobFD >= 0 else { throw SyscallError("open \(blob)") }
        defer { close(blobFD) }
        // Tools' messages go to an unlinked file: read back for the error line, never left behind.
        let logPath = scratch + "/.tmp-importlog-\(getpid())"
        let logFD = open(logPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard logFD >= 0 else { throw SyscallError("open \(logPath)") }
        unlink(logPath)
        defer { close(logFD) }
        let name = "layer blob \(Path.basename(blob).prefix(12))"

        var source = blobFD
        var gunzip: Tool?
        if gzip {
            let pipe = try makePipe()
            do {
                gunzip = try Tool.start(["gzip", "-dc"], stdin: blobFD, stdout: pipe.write, stderr: logFD)
            } catch {
                close(pipe.read)
                close(pipe.write)
                throw error
            }
            close(pipe.write)
            source = pipe.read
        }
        defer { if gzip { close(source) } }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            if let gunzip { gunzip.stop() }
            throw SyscallError("socketpair")
        }
        let tar: Tool
        do {
            tar = try Tool.start(
                ["tar", "-x", "-f", "-", "-C", tree, "--numeric-owner", "-p", "--warning=no-unknown-keyword"],
                stdin: pair[1], stdout: logFD, stderr: logFD)
        } catch {
            close(pair[0])
            close(pair[1])
            if let gunzip { gunzip.stop() }
            throw error
        }
        close(pair[1])
        var hash = SHA256()
        var size = 0
        var framing = TarFraming()
        var tarOpen = true
        var tarStatus: Int32?
        var refused: Error?
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var readError: Int32 = 0
        func toTar(_ bytes: ArraySlice<UInt8>) {
            // tar may stop reading after the end-of-archive blocks: the rest is still hashed.
            var rest = bytes
            while tarOpen && !rest.isEmpty {
                let sent = rest.withUnsafeBytes { send(pair[0], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent < 0 && errno == EINTR { continue }
                if sent < 0 {
                    tarOpen = false
                    break
                }
                rest = rest.dropFirst(sent)
            }
        }
        while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { readError = errno }
            if n <= 0 { break }
            size += n
            if size > limit {
                refused = TooLarge()
                break
            }
            // Checked before tar sees the bytes: tar never makes the node.
            framing.consume(buffer[0..<n])
            if let device = framing.refusedDevice {
                refused = ClabError(
                    "\(name) holds a device node, \(device)\(LayerStore.devicePolicy)",
                    exitCode: 2)
                break
            }
            if framing.trailing > trailingLimit {
                refused = ClabError(
                    "\(name): more than \(humanBytes(Int64(trailingLimit))) follows the tar's end-of-archive blocks: it is not a layer",
                    exitCode: 2)
                break
            }
            hash.update(buffer[0..<n])
            toTar(buffer[0..<n])
            if !tarOpen && tarStatus == nil {
                // tar stopped reading: at the archive's end (the rest is still hashed), or it failed.
                tarStatus = tar.wait()
                if tarStatus != 0 { break }
            }
        }
        close(pair[0])
        if refused != nil || (tarStatus ?? 0) != 0 {
            // Nothing more is decompressed: gzip and tar go now (both still unreaped children,
            // so their pids are still theirs).
            if tarStatus == nil { tar.stop() }
            gunzip?.stop()
            if let refused { throw refused }
            throw ClabError("tar could not unpack \(name): \(reason(logFD, tool: "tar"))", exitCode: 2)
        }
        let tail = readError == 0 ? framing.missingTail : 0
        if tail > 0 { toTar([UInt8](repeating: 0, count: tail)[...]) }
        let finalTarStatus = tarStatus ?? tar.wait()
        let gzipStatus = gunzip?.wait() ?? 0
        if gzipStatus != 0 {
            throw ClabError("\(name) is not valid gzip: \(reason(logFD, tool: "gzip"))", exitCode: 2)
        }
        if readError != 0 { throw SyscallError("read \(blob)", errno: readError) }
        if finalTarStatus != 0 {
            throw ClabError("tar could not unpack \(name): \(reason(logFD, tool: "tar"))", exitCode: 2)
        }
        return ("sha256:" + hash.finalize(), size, tail > 0)
    }

    /// The first line a tool wrote into the log that says what went wrong: not tar's notes
    /// ("Removing leading `../'"), nor its closing "Exiting with failure status due to previous
    /// errors", which names no cause.
    static func reason(_ fd: Int32, tool: String) -> String {
        lseek(fd, 0, SEEK_SET)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        let noise = [
            "Removing leading", "A lone zero block", "implausibly old time stamp", "in the future",
            "Exiting with failure status", "Error is not recoverable", "Skipping to next header",
        ]
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix(tool + ": ") }.map { String($0.dropFirst(tool.count + 2)) }
        return lines.first { line in !noise.contains { line.contains($0) } } ?? lines.last ?? "\(tool) failed"
    }

    /// OCI whiteouts to overlayfs's own form, which stage 9 stacks directly:
    /// `.wh.NAME` (an empty file) becomes NAME, a character device 0/0 with the marker's owner;
    /// `.wh..wh..opq` becomes the xattr user.overlay.opaque=y on its directory (user.*, since the
    /// overlay is mounted with userxattr inside the user namespace). Other `.wh..wh.` names are
    /// AUFS bookkeeping and are dropped. Returns the counts (whiteouts, opaque directories).
    static func convertWhiteouts(_ tree: String) throws -> (Int, Int) {
        let markers = FS.walk(tree).filter { Path.basename($0).hasPrefix(".wh.") }.sorted()
        var whiteouts = 0
        var opaque = 0
        for marker in markers {
            var st = stat()
            guard lstat(marker, &st) == 0 else { continue }  // under a path an earlier whiteout removed
            let dir = Path.dirname(marker)
            let name = String(Path.basename(marker).dropFirst(4))
            if name == ".wh..opq" {
                guard clab_lsetxattr(dir, "user.overlay.opaque", "y", 1, 0) == 0 else {
                    throw ClabError(
                        "cannot mark \(dir) opaque (xattr user.overlay.opaque): \(errnoDescription(errno))")
                }
                opaque += 1
                try FS.removeTree(marker)
            } else if name.hasPrefix(".wh.") || name.isEmpty {
                try FS.removeTree(marker)
            } else if name == "." || name == ".." {
                throw ClabError(
                    "the layer has a whiteout for '\(name)' in /\(dir.dropFirst(tree.count + 1))", exitCode: 2)
            } else {
                try FS.removeTree(marker)
                // A whiteout hides the name: nothing of its own. (walk lists real directories
                // only, so `dir` is inside the tree; a symlink at the name is removed, not followed.)
                var old = stat()
                if lstat(dir + "/" + name, &old) == 0 {
                    if (old.st_mode & S_IFMT) == S_IFDIR {
                        try FS.removeTree(dir + "/" + name)
                    } else if unlink(dir + "/" + name) != 0 {
                        throw SyscallError("unlink \(dir)/\(name)")
                    }
                }
                guard mknod(dir + "/" + name, S_IFCHR, 0) == 0 else {
                    throw ClabError("mknod \(dir)/\(name) (a whiteout): \(errnoDescription(errno))")
                }
                guard lchown(dir + "/" + name, st.st_uid, st.st_gid) == 0 else {
                    throw SyscallError("lchown \(dir)/\(name)")
                }
                whiteouts += 1
            }
        }
        return (whiteouts, opaque)
    }
}

/// A host tool with its stdio on given descriptors (posix_spawn, no shell).
struct Tool {
    let pid: pid_t

    static func start(_ argv: [String], stdin: Int32, stdout: Int32, stderr: Int32) throws -> Tool {
        guard let path = Host.which(argv[0]) else {
            throw ClabError("\(argv[0]) is not installed: run `apt-get install \(argv[0])`")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        do {
            return Tool(
                pid: try Host.spawn(
                    path: path, argv: argv, environment: Host.toolEnvironment + ["LC_ALL=C"], actions: &actions))
        } catch let error as SyscallError {
            throw ClabError("cannot run \(argv[0]): \(errnoDescription(error.errno))")
        }
    }

    /// Kills the tool (on an error path) and reaps it. Only for a tool not yet waited for:
    /// until then its pid cannot belong to another process.
    func stop() {
        kill(pid, SIGKILL)
        _ = wait()
    }

    /// Waits for the tool; its exit status (128+signal if killed).
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return ExitStatus(raw: status).code
    }
}

/// `gzip -n` as a filter for one blob. The tar goes in through a socket (send with
/// MSG_NOSIGNAL: a gzip that died is an error, not a SIGPIPE for clab), and the compressed
/// bytes come out of a pipe into the blob file, hashed on the way. One thread: poll(2) moves
/// bytes in whichever direction is ready, so neither side can fill up and block the other.
final class Compressor {
    private var input: Int32
    private var output: Int32
    private let file: Int32
    private let what: String
    private var tool: Tool?
    private var hash = SHA256()
    private var size = 0
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)

    init(file: Int32, what: String) throws {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw SyscallError("socketpair")
        }
        let pipe: (read: Int32, write: Int32)
        do { pipe = try makePipe() } catch {
            close(pair[0])
            close(pair[1])
            throw error
        }
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer {
            close(devNull)
            close(pair[1])
            close(pipe.write)
        }
        do {
            tool = try Tool.start(["gzip", "-n", "-c"], stdin: pair[1], stdout: pipe.write, stderr: devNull)
        } catch {
            close(pair[0])
            close(pipe.read)
            throw error
        }
        input = pair[0]
        output = pipe.read
        self.file = file
        self.what = what
    }

    deinit { cancel() }

    func feed(_ bytes: ArraySlice<UInt8>) throws {
        var rest = bytes
        while !rest.isEmpty {
            var fds = [
                pollfd(fd: input, events: Int16(POLLOUT), revents: 0),
                pollfd(fd: output, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                throw SyscallError("poll")
            }
            if fds[1].revents != 0 {
                guard try drainOnce() else { throw ClabError("gzip -n exited before the layer was packed") }
            }
            if fds[0].revents != 0 {
                let n = rest.withUnsafeBytes {
                    send(input, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                }
                if n < 0 {
                    if errno == EAGAIN || errno == EINTR { continue }
                    throw ClabError("gzip -n stopped reading the layer: \(errnoDescription(errno))")
                }
                rest = rest.dropFirst(n)
            }
        }
    }

    /// Ends the input, takes the rest of gzip's output; the blob's digest and size.
    func finish() throws -> (digest: String, size: Int) {
        close(input)
        input = -1
        while try drainOnce() {}
        close(output)
        output = -1
        let status = tool?.wait() ?? -1
        tool = nil
        guard status == 0 else { throw ClabError("gzip -n failed (status \(status)) packing \(what)") }
        return ("sha256:" + hash.finalize(), size)
    }

    /// Stops gzip (on an error path): closing both ends makes it exit.
    func cancel() {
        if input >= 0 { close(input) }
        if output >= 0 { close(output) }
        input = -1
        output = -1
        _ = tool?.wait()
        tool = nil
    }

    /// One read from gzip into the blob; false at end of output.
    private func drainOnce() throws -> Bool {
        let n = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { return true }
            throw SyscallError("read from gzip")
        }
        if n == 0 { return false }
        hash.update(buffer[0..<n])
        size += n
        try FS.writeAll(file, Array(buffer[0..<n]), what: what)
        return true
    }
}

/// Follows a tar stream's framing (512-byte headers, member data padded to 512 bytes, zero
/// blocks at the end) without interpreting the members, to tell an archive that only lacks its
/// end-of-archive blocks from a complete or a truncated one, and to see each member's type
/// before tar does (a device node is refused before it exists). Whatever it cannot follow (GNU
/// sparse extensions, a size it cannot parse), it leaves to tar; LayerStore.add checks the
/// extracted tree again.
struct TarFraming {
    private var header = [UInt8](repeating: 0, count: 512)
    private var filled = 0
    private var dataLeft = 0
    private var padLeft = 0
    /// A PAX extended header's or a GNU long name's data, collected for the next member.
    private var collected: [UInt8]?
    private var collecting: UInt8 = 0
    private var paxSize: Int?
    private var paxPath: String?
    private var longName: String?
    private(set) var ended = false
    private var lost = false
    /// The first device node that a layer may not hold, described ("dev/sda, a block device 8:0").
    private(set) var refusedDevice: String?
    /// Bytes after the end-of-archive block.
    private(set) var trailing = 0

    /// Zero bytes that make the stream a complete archive: the last member's padding and two
    /// end-of-archive blocks when the stream stopped right after a member's data; else 0.
    var missingTail: Int {
        guard !ended, !lost, filled == 0, dataLeft == 0 else { return 0 }
        return padLeft + 1024
    }

    mutating func consume(_ bytes: ArraySlice<UInt8>) {
        var i = bytes.startIndex
        while i < bytes.endIndex && !lost {
            if ended {
                trailing += bytes.endIndex - i
                return
            }
            if dataLeft > 0 || padLeft > 0 {
                let take = min(dataLeft + padLeft, bytes.endIndex - i)
                let fromData = min(take, dataLeft)
                if fromData > 0, collected != nil { collected?.append(contentsOf: bytes[i..<i + fromData]) }
                dataLeft -= fromData
                padLeft -= take - fromData
                i += take
                if dataLeft == 0, let data = collected {
                    finishCollected(data)
                }
                continue
            }
            let take = min(512 - filled, bytes.endIndex - i)
            header.replaceSubrange(filled..<filled + take, with: bytes[i..<i + take])
            filled += take
            i += take
            if filled == 512 {
                filled = 0
                nextHeader()
            }
        }
    }

    private mutating func finishCollected(_ data: [UInt8]) {
        if collecting == UInt8(ascii: "x") {
            paxSize = Self.paxRecord("size", data).flatMap { Int($0) }
            paxPath = Self.paxRecord("path", data)
        } else {
            longName = Self.string(data[...])
        }
        collected = nil
    }

    private mutating func nextHeader() {
        if header.allSatisfy({ $0 == 0 }) {
            ended = true
            return
        }
        guard let size = Self.number(header[124..<136]) else {
            lost = true
            return
        }
        var data = size
        let type = header[156]
        switch type {
        case UInt8(ascii: "1")...UInt8(ascii: "6"):
            if type == UInt8(ascii: "3") || type == UInt8(ascii: "4") {
                checkDevice(character: type == UInt8(ascii: "3"))
            }
            data = 0  // header-only types, as Go's archive/tar reads them
            endMember()
        case UInt8(ascii: "x"), UInt8(ascii: "L"):
            guard size <= 1 << 20 else {
                lost = true
                return
            }
            collected = []
            collecting = type
        case UInt8(ascii: "g"), UInt8(ascii: "K"):
            break
        case UInt8(ascii: "S") where header[482] != 0:
            lost = true  // old GNU sparse headers continue in extension blocks
            return
        default:
            data = paxSize ?? size
            endMember()
        }
        dataLeft = data
        padLeft = (512 - data % 512) % 512
        if data == 0, let empty = collected {
            finishCollected(empty)
        }
    }

    /// A member's own header was read: what PAX and GNU headers said applied to it alone.
    private mutating func endMember() {
        paxSize = nil
        paxPath = nil
        longName = nil
    }

    private mutating func checkDevice(character: Bool) {
        guard refusedDevice == nil else { return }
        let major = Self.number(header[329..<337]).flatMap { UInt32(exactly: $0) }
        let minor = Self.number(header[337..<345]).flatMap { UInt32(exactly: $0) }
        if let major, let minor, LayerStore.allowsDevice(character: character, major: major, minor: minor) { return }
        let numbers = major.flatMap { major in minor.map { "\(major):\($0)" } } ?? "with unreadable numbers"
        refusedDevice = "\(memberName), a \(character ? "character" : "block") device \(numbers)"
    }

    /// The current member's name: from a PAX record, a GNU long name, or ustar's prefix and name.
    private var memberName: String {
        if let paxPath { return paxPath }
        if let longName { return longName }
        let name = Self.string(header[0..<100])
        let prefix = header[257..<262].elementsEqual("ustar".utf8) ? Self.string(header[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// Bytes up to the first NUL.
    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A numeric field: octal digits, or base-256 (high bit set) for large values.
    static func number(_ field: ArraySlice<UInt8>) -> Int? {
        if field[field.startIndex] & 0x80 != 0 {
            guard field[field.startIndex] == 0x80 else { return nil }  // negative or too large
            var value = 0
            for byte in field.dropFirst() {
                guard value < Int.max >> 8 else { return nil }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var value = 0
        var digits = 0
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if digits > 0 { break }
                continue
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value < Int.max >> 3 else { return nil }
            value = value * 8 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return value
    }

    /// A record from PAX data: "<len> key=value\n", len counting the whole record.
    static func paxRecord(_ key: String, _ records: [UInt8]) -> String? {
        var found: String?
        var rest = records[...]
        while let space = rest.firstIndex(of: UInt8(ascii: " ")),
            let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
            length > space - rest.startIndex + 1, length <= rest.count
        {
            let record = String(decoding: rest[(space + 1)..<(rest.startIndex + length)], as: UTF8.self)
            if record.hasPrefix(key + "=") { found = String(record.dropFirst(key.count + 1).dropLast()) }
            rest = rest.dropFirst(length)
        }
        return found
    }
}
