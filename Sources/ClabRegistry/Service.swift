import AsyncHTTPClient
import ClabHost
import ClabImages
import ClabOCI
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Push and pull between clab's image store and a registry: the library API behind
/// `clab push`/`clab pull` and the daemon's `POST /images/create?fromImage=` and
/// `POST /images/{name}/push`.
///
/// Neither reimplements the image store's safety: a pull downloads the image into a private
/// OCI image layout (every blob hashed while it streams, sizes capped before reading), then
/// hands it to `OCILayout.importLayout`, the same import `clab image import` uses (digests
/// checked again, diff_ids, device nodes refused, the unpacked size capped, nothing left on
/// failure). A push exports the image with `OCILayout.export` (canonical tar, `gzip -n`: the
/// same image always pushes to the same digests) and uploads what the registry lacks.
public struct RegistryService: Sendable {
    public let layout: StateLayout
    /// Blobs larger than this go up in PATCH chunks of this size; smaller ones in one PUT.
    public var chunkSize = 16 << 20
    /// The most a pulled image may unpack to (as `clab image import --max-size`).
    public var maxSize = OCILayout.defaultMaxSize
    public var http: HTTPClient = RegistryClient.sharedHTTP

    public init(layout: StateLayout) { self.layout = layout }

    var images: ImageStore { ImageStore(layout: layout) }

    /// The credentials for a registry: those given (the daemon's X-Registry-Auth), else what
    /// `clab login` stored.
    func credentials(_ given: RegistryAuth?, for registry: String) throws -> RegistryAuth? {
        try given ?? CredentialStore(layout: layout).auth(for: registry)
    }

    /// A private scratch directory in the images directory (`clab gc` removes one whose
    /// process died: `.tmp-<what>-<pid>`).
    func scratch(_ what: String) throws -> String {
        try layout.prepare()
        let dir = layout.imagesDir + "/.tmp-\(what)\(UInt32.random(in: 0...UInt32.max))-\(getpid())"
        guard mkdir(dir, 0o700) == 0 else { throw SyscallError("mkdir \(dir)") }
        return dir
    }

    // MARK: - Pull

    public struct Pulled: Sendable {
        public let ref: ImageRef
        /// The image's id in clab's store.
        public let id: String
        /// The manifest's digest in the registry (of the platform's manifest, for an index).
        public let digest: String
    }

    /// Pulls `reference` (REGISTRY/NAME[:TAG] or REGISTRY/NAME@sha256:…) into the store,
    /// named by it, so `clab run REFERENCE` runs it.
    public func pull(
        _ reference: String, auth: RegistryAuth? = nil, progress: ProgressSink = { _ in },
        log: @Sendable (String) -> Void = { _ in }
    ) async throws -> Pulled {
        let ref = try RegistryReference(reference)
        let client = RegistryClient(
            registry: ref.registry, auth: try credentials(auth, for: ref.registry), http: http)
        progress(ProgressMessage(status: "Pulling from \(ref.repository)", id: ref.reference))
        var (bytes, mediaType, digest) = try await client.manifest(ref.repository, ref.reference)
        var document = try Self.decodeManifest(bytes, mediaType: &mediaType, what: "\(ref)")
        if MediaType.indexes.contains(mediaType) {
            let (os, arch) = ("linux", OCI.hostArchitecture)
            let entries = document.manifests ?? []
            guard let entry = entries.first(where: { $0.platform?.os == os && $0.platform?.architecture == arch })
            else {
                let platforms = entries.compactMap { $0.platform.map { "\($0.os)/\($0.architecture)" } }
                throw ClabError(
                    "\(ref) is an index without a \(os)/\(arch) image (it has: \(platforms.isEmpty ? "none" : platforms.joined(separator: ", ")))",
                    exitCode: 2)
            }
            guard MediaType.manifests.contains(entry.mediaType), OCI.isValidDigest(entry.digest) else {
                throw ClabError(
                    "\(ref): the \(os)/\(arch) entry of the index is \(entry.mediaType.prefix(80)) \(entry.digest.prefix(80)), not an image manifest",
                    exitCode: 2)
            }
            log("index \(digest.prefix(19)): taking the \(os)/\(arch) manifest \(entry.digest.prefix(19))")
            (bytes, mediaType, digest) = try await client.manifest(ref.repository, entry.digest)
            document = try Self.decodeManifest(bytes, mediaType: &mediaType, what: "\(ref) (\(os)/\(arch))")
            guard MediaType.manifests.contains(mediaType) else {
                throw ClabError("\(ref): an index inside an index: clab reads one level", exitCode: 2)
            }
        }
        guard let config = document.config, let layers = document.layers else {
            throw ClabError("\(ref): manifest \(digest.prefix(19)) lacks its config or layers", exitCode: 2)
        }
        try checkBlobs(config: config, layers: layers, what: "\(ref)")

        let dir = try scratch("pull")
        defer { try? FS.removeTree(dir) }
        let blobs = dir + "/blobs/sha256"
        try FS.makeDirectories(blobs)
        try await client.download(
            ref.repository, digest: config.digest, size: config.size, to: blobs + "/" + LayerStore.hex(config.digest))
        for layer in layers {
            progress(ProgressMessage(status: "Pulling fs layer", id: ProgressMessage.shortID(layer.digest)))
        }
        for layer in layers {
            let id = ProgressMessage.shortID(layer.digest)
            let path = blobs + "/" + LayerStore.hex(layer.digest)
            if FS.exists(path) {
                progress(ProgressMessage(status: "Download complete", id: id))
                continue
            }
            log("layer \(layer.digest.prefix(19)): downloading \(humanBytes(Int64(layer.size)))")
            try await client.download(ref.repository, digest: layer.digest, size: layer.size, to: path) { done in
                progress(ProgressMessage(status: "Downloading", id: id, current: done, total: layer.size))
            }
            progress(ProgressMessage(status: "Verifying Checksum", id: id))
            progress(ProgressMessage(status: "Download complete", id: id))
        }
        // The manifest and an index naming it: an OCI image layout, for the store's own import.
        let manifestPath = blobs + "/" + LayerStore.hex(digest)
        if !FS.exists(manifestPath) { try FS.write(String(decoding: bytes, as: UTF8.self), to: manifestPath) }
        try FS.write(#"{"imageLayoutVersion":"1.0.0"}"#, to: dir + "/oci-layout")
        let index = LayoutIndex(manifests: [.init(mediaType: mediaType, digest: digest, size: bytes.count)])
        try FS.write(String(decoding: try JSONEncoder().encode(index), as: UTF8.self), to: dir + "/index.json")
        for layer in layers {
            progress(ProgressMessage(status: "Extracting", id: ProgressMessage.shortID(layer.digest)))
        }
        let imported = try OCILayout(images: images).importLayout(
            from: dir, as: ref.image, maxSize: maxSize, log: { log($0) })
        for layer in layers {
            progress(ProgressMessage(status: "Pull complete", id: ProgressMessage.shortID(layer.digest)))
        }
        progress(ProgressMessage(status: "Digest: \(digest)"))
        progress(ProgressMessage(status: "Status: Downloaded image for \(ref)"))
        return Pulled(ref: ref.image, id: imported.id, digest: digest)
    }

    /// The manifest's JSON, with its media type checked: the Content-Type and the document's own
    /// mediaType must agree where both are given, and be a manifest or an index clab reads.
    static func decodeManifest(_ bytes: [UInt8], mediaType: inout String, what: String) throws -> ManifestDocument {
        guard let document = try? JSONDecoder().decode(ManifestDocument.self, from: Data(bytes)) else {
            throw ClabError("\(what): the manifest is not JSON clab can read", exitCode: 2)
        }
        let header = mediaType
        if let own = document.mediaType {
            if !header.isEmpty && header != "application/json" && header != own {
                throw ClabError(
                    "\(what): the registry says \(header.prefix(80)), the manifest says \(own.prefix(80)): refused",
                    exitCode: 2)
            }
            mediaType = own
        } else if header.isEmpty || header == "application/json" {
            // OCI lets mediaType be left out: a config makes it a manifest, a list an index.
            mediaType = document.manifests != nil ? MediaType.ociIndex : MediaType.ociManifest
        }
        if MediaType.dockerSchema1.contains(mediaType) || document.schemaVersion == 1 {
            throw ClabError(
                "\(what) is a Docker schema 1 manifest (deprecated, no config): push it again with a current tool (schema 2 or OCI)",
                exitCode: 2)
        }
        guard MediaType.manifests.contains(mediaType) || MediaType.indexes.contains(mediaType) else {
            throw ClabError(
                "\(what): unsupported manifest media type \(mediaType.prefix(80)) (clab reads \((MediaType.manifests + MediaType.indexes).joined(separator: ", ")))",
                exitCode: 2)
        }
        guard document.schemaVersion == 2 else {
            throw ClabError(
                "\(what): schemaVersion \(document.schemaVersion.map(String.init) ?? "missing"), not 2", exitCode: 2)
        }
        return document
    }

    /// Media types and sizes, before a byte of a blob is fetched.
    func checkBlobs(config: OCI.Descriptor, layers: [OCI.Descriptor], what: String) throws {
        let configTypes = [OCI.configType, "application/vnd.docker.container.image.v1+json"]
        guard configTypes.contains(config.mediaType) else {
            throw ClabError("\(what): unsupported config media type \(config.mediaType.prefix(80))", exitCode: 2)
        }
        guard config.size >= 0, config.size <= RegistryClient.maxConfig else {
            throw ClabError(
                "\(what): the config is \(config.size) bytes, more than clab reads (\(RegistryClient.maxConfig))",
                exitCode: 2)
        }
        let layerTypes = [OCI.layerGzipType, OCI.layerTarType, "application/vnd.docker.image.rootfs.diff.tar.gzip"]
        var total = 0
        for (n, layer) in layers.enumerated() {
            guard layerTypes.contains(layer.mediaType) else {
                throw ClabError(
                    "\(what): layer \(n + 1) has media type \(layer.mediaType.prefix(80)); clab reads tar and tar+gzip layers",
                    exitCode: 2)
            }
            guard OCI.isValidDigest(layer.digest) else {
                throw ClabError(
                    "\(what): layer \(n + 1) has digest '\(layer.digest.prefix(80))'; clab reads sha256", exitCode: 2)
            }
            let (sum, overflow) = total.addingReportingOverflow(layer.size)
            guard layer.size >= 0, !overflow, sum <= maxSize else {
                throw ClabError(
                    "\(what): the layers are more than \(humanBytes(Int64(maxSize))) to download (the --max-size limit): refused",
                    exitCode: 2)
            }
            total = sum
        }
    }

    /// index.json of the scratch layout.
    struct LayoutIndex: Encodable {
        var schemaVersion = 2
        var manifests: [Entry]
        struct Entry: Encodable {
            var mediaType: String
            var digest: String
            var size: Int
        }
    }

    // MARK: - Push

    public struct Pushed: Sendable {
        public let ref: ImageRef
        public let digest: String
        public let size: Int
        /// How each layer and the config went up, in order (layers, then the config).
        public let uploads: [RegistryClient.Upload]
    }

    /// Pushes the store's image named `reference` (REGISTRY/NAME[:TAG]) to that registry under
    /// that tag. Blobs the repository has are skipped; blobs another repository of the same
    /// registry may have (one clab knows an image of) are mounted, not uploaded.
    public func push(
        _ reference: String, auth: RegistryAuth? = nil, progress: ProgressSink = { _ in },
        log: @Sendable (String) -> Void = { _ in }
    ) async throws -> Pushed {
        let ref = try RegistryReference(reference)
        guard !ref.isDigest else {
            throw ClabError("push a tag, not a digest: REGISTRY/NAME:TAG (\(ref))", exitCode: 2)
        }
        let (id, _) = try images.resolve(ref.image.description)
        let client = RegistryClient(
            registry: ref.registry, auth: try credentials(auth, for: ref.registry), http: http)
        progress(ProgressMessage(status: "The push refers to repository [\(ref.registry)/\(ref.repository)]"))
        let dir = try scratch("push")
        defer { try? FS.removeTree(dir) }
        let exported = try OCILayout(images: images).export(ref.image.description, to: dir + "/oci", log: { log($0) })
        let blobs = dir + "/oci/blobs/sha256/"
        let siblings = Array(
            Set(
                images.refs().compactMap { entry -> String? in
                    guard entry.ref.registry == ref.registry, entry.ref.name != ref.image.name else { return nil }
                    return String(entry.ref.name.dropFirst(ref.registry.count + 1))
                })
        ).sorted()
        var uploads: [RegistryClient.Upload] = []
        for layer in exported.layers {
            progress(ProgressMessage(status: "Preparing", id: ProgressMessage.shortID(layer.digest)))
        }
        for blob in exported.layers + [exported.config] {
            let short = ProgressMessage.shortID(blob.digest)
            let isLayer = blob.digest != exported.config.digest
            let how = try await client.upload(
                ref.repository, path: blobs + LayerStore.hex(blob.digest), digest: blob.digest, size: blob.size,
                chunkSize: chunkSize, mountFrom: isLayer ? siblings : []
            ) { done in
                if isLayer { progress(ProgressMessage(status: "Pushing", id: short, current: done, total: blob.size)) }
            }
            uploads.append(how)
            if isLayer {
                switch how {
                case .existed: progress(ProgressMessage(status: "Layer already exists", id: short))
                case .mounted(let from): progress(ProgressMessage(status: "Mounted from \(from)", id: short))
                case .monolithic, .chunked: progress(ProgressMessage(status: "Pushed", id: short))
                }
            }
            log("blob \(blob.digest.prefix(19)) (\(humanBytes(Int64(blob.size)))): \(how)")
        }
        guard let manifest = FileManager.default.contents(atPath: blobs + LayerStore.hex(exported.manifest.digest))
        else {
            throw ClabError("the exported manifest is missing from \(dir)")
        }
        let digest = try await client.putManifest(
            ref.repository, ref.reference, bytes: Array(manifest), mediaType: OCI.manifestType)
        progress(ProgressMessage(status: "\(ref.reference): digest: \(digest) size: \(manifest.count)"))
        log("pushed \(ref) (image \(id.prefix(19)))")
        return Pushed(ref: ref.image, digest: digest, size: manifest.count, uploads: uploads)
    }
}
