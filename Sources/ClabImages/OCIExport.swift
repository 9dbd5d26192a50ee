import ClabHost
import ClabOCI
import ClabSys
import FoundationEssentials
import Glibc

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
}
