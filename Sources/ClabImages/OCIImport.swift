import ClabHost
import ClabOCI
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// `clab image import`: an OCI image layout (skopeo's, umoci's, podman's, Docker's) into the
/// image store, every blob verified and every layer unpacked through the tar framing checks.
extension OCILayout {
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
        var live = Set(images.holders.kept().flatMap(\.layers))
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
}
