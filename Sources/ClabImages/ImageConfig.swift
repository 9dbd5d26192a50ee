import ClabHost
import ClabOCI
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// An image: its layers (bottom first) and how to run it. Stored as JSON under
/// images/configs/<hex>.json; the sha256 of that JSON is the image's id, as an OCI config
/// digest is. Names point at ids: images/refs/<name>/<tag>, so one image can carry several tags.
public struct ImageConfig: Codable, Sendable, Equatable {
    public struct History: Codable, Sendable, Equatable {
        public var createdBy: String
        /// ENV, CMD and WORKDIR change only the config; COPY, RUN and commits add a layer.
        public var emptyLayer: Bool
    }

    /// One more step in the image's history (`docker history` shows them): a build line, a
    /// commit.
    public mutating func record(_ createdBy: String, emptyLayer: Bool) {
        history.append(History(createdBy: createdBy, emptyLayer: emptyLayer))
    }

    public var layers: [String]
    public var env: [String]
    public var cmd: [String]?
    public var workdir: String?
    public var history: [History]
    public var created: String

    public init(
        layers: [String], env: [String], cmd: [String]?, workdir: String?, history: [History], created: String
    ) {
        self.layers = layers
        self.env = env
        self.cmd = cmd
        self.workdir = workdir
        self.history = history
        self.created = created
    }

    /// The canonical JSON (sorted keys), whose sha256 is the id.
    public var json: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    public var id: String { "sha256:" + SHA256.hex(Array(json)) }

    /// Refuses what the container could not be given as it is: a NUL (execve would cut the
    /// string short), or an ENV entry that is not NAME=VALUE. `what` names the image in the
    /// message: "image web:1: ENV entry 3 contains a NUL byte".
    public func validate(_ what: String) throws {
        for (i, entry) in env.enumerated() { try ContainerSpec.checkEnvEntry(entry, "\(what): ENV entry \(i + 1)") }
        for (i, arg) in (cmd ?? []).enumerated() {
            try ContainerSpec.checkText(arg, "\(what): CMD argument \(i + 1)")
        }
        if let workdir { try ContainerSpec.checkText(workdir, "\(what): WORKDIR") }
    }
}

/// `name[:tag]`, tag `latest` by default, or `name@sha256:<hex>` (an image pulled by digest).
///
/// A name is one or more `/`-separated components of lowercase letters, digits, '.', '_' and
/// '-'. A first component with a '.' or a ':' or `localhost` names a registry
/// (`localhost:5000/bb:1`), as in Docker's references; clab's own images need none.
public struct ImageRef: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// The tag, or `@sha256:<hex>` for a reference by digest (how the store files it).
    public var tag: String

    public init(name: String, tag: String) {
        self.name = name
        self.tag = tag
    }

    /// The manifest digest of a reference by digest (`name@sha256:...`).
    public var digest: String? { tag.hasPrefix("@") ? String(tag.dropFirst()) : nil }

    public var description: String { digest.map { "\(name)@\($0)" } ?? "\(name):\(tag)" }

    /// The registry part of the name (`localhost:5000`), if it has one.
    public var registry: String? {
        let parts = name.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, Self.isRegistry(parts[0]) else { return nil }
        return String(parts[0])
    }

    /// The name as one directory name under images/refs: '/' cannot be in a name component and
    /// '+' cannot be in a name, so the mapping is one-to-one.
    var storageName: String { name.split(separator: "/", omittingEmptySubsequences: false).joined(separator: "+") }

    static func fromStorage(name: String, tag: String) -> ImageRef {
        ImageRef(name: name.split(separator: "+", omittingEmptySubsequences: false).joined(separator: "/"), tag: tag)
    }

    static func isRegistry(_ component: Substring) -> Bool {
        component == "localhost" || component.contains(".") || component.contains(":")
    }

    public static func parse(_ text: String) throws -> ImageRef {
        let invalid = ClabError(
            "invalid image name '\(text.prefix(300))': use NAME[:TAG] or REGISTRY/NAME[:TAG] (lowercase letters, digits, '.', '_', '-'; a tag up to 128 of those and uppercase; a digest sha256:<64 hex>)",
            exitCode: 2)
        var rest = Substring(text)
        var tag = "latest"
        if let at = rest.firstIndex(of: "@") {
            let digest = String(rest[rest.index(after: at)...])
            guard OCI.isValidDigest(digest) else { throw invalid }
            tag = "@" + digest
            rest = rest[..<at]
        } else if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
            guard let first = tag.first, first.isLetter || first.isNumber || first == "_", tag.count <= 128,
                tag.allSatisfy({ allowed.contains($0) })
            else { throw invalid }
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard !rest.isEmpty, rest.count <= 255 else { throw invalid }
        if components.count > 1, isRegistry(components[0]) {
            let host = components.removeFirst()
            let parts = host.split(separator: ":", omittingEmptySubsequences: false)
            let hostChars = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
            guard parts.count <= 2, let first = parts[0].first, first.isLetter || first.isNumber,
                parts[0].allSatisfy({ hostChars.contains($0) })
            else { throw invalid }
            if parts.count == 2 {
                guard let port = Int(parts[1]), (1...65535).contains(port), parts[1].count <= 5 else { throw invalid }
            }
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789._-")
        for component in components {
            guard let first = component.first, first.isLetter || first.isNumber, component.count <= 128,
                component.allSatisfy({ allowed.contains($0) })
            else { throw invalid }
        }
        return ImageRef(name: String(rest), tag: tag)
    }
}

extension ImageStore {
    var refsDir: String { layout.imagesDir + "/refs" }
    var configsDir: String { layout.imagesDir + "/configs" }

    /// Stores a config (idempotent) and returns its id.
    @discardableResult
    public func save(_ config: ImageConfig) throws -> String {
        try FS.makeDirectories(configsDir)
        let id = config.id
        let path = configsDir + "/" + LayerStore.hex(id) + ".json"
        if !FS.exists(path) {
            let tmp = path + ".tmp-\(getpid())"
            do {
                try FS.write(String(decoding: config.json, as: UTF8.self), to: tmp)
                guard rename(tmp, path) == 0 else { throw SyscallError("rename \(path)") }
            } catch {
                unlink(tmp)  // a full disk leaves nothing half-written behind
                throw error
            }
        }
        return id
    }

    public func config(id: String) throws -> ImageConfig {
        guard let text = FS.read(configsDir + "/" + LayerStore.hex(id) + ".json") else {
            throw ClabError("image \(id.prefix(19)) is missing from the store")
        }
        return try JSONDecoder().decode(ImageConfig.self, from: Data(text.utf8))
    }

    public func tag(_ id: String, as ref: ImageRef) throws {
        try FS.makeDirectories(refsDir + "/" + ref.storageName)
        let path = refsDir + "/" + ref.storageName + "/" + ref.tag
        // Written aside under a name no tag can have (tags never start with "."), then renamed.
        let tmp = refsDir + "/" + ref.storageName + "/." + ref.tag + ".tmp-\(getpid())"
        do {
            try FS.write(id + "\n", to: tmp)
            guard rename(tmp, path) == 0 else { throw SyscallError("rename \(path)") }
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// The image a name points at. The base image registers itself on first use.
    public func resolve(_ text: String) throws -> (id: String, config: ImageConfig) {
        let ref = try ImageRef.parse(text)
        let path = refsDir + "/" + ref.storageName + "/" + ref.tag
        if !FS.exists(path) && ref.name == Self.baseName && ref.tag == "latest" {
            _ = try baseLayers()
        }
        guard let id = FS.read(path)?.trimmed, !id.isEmpty else {
            throw ClabError("no image '\(ref)': `clab image ls` lists the images", exitCode: 2)
        }
        return (id, try config(id: id))
    }

    /// Every name:tag and the image it points at.
    public func refs() -> [(ref: ImageRef, id: String)] {
        var out: [(ImageRef, String)] = []
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: refsDir)) ?? []).sorted() {
            for tag in ((try? FileManager.default.contentsOfDirectory(atPath: refsDir + "/" + name)) ?? []).sorted()
            where !tag.hasPrefix(".") {
                if let id = FS.read(refsDir + "/" + name + "/" + tag)?.trimmed {
                    out.append((ImageRef.fromStorage(name: name, tag: tag), id))
                }
            }
        }
        return out
    }

    /// Removes a name. The config and layers stay while another name or a kept container
    /// uses them; layers no image references any more are deleted.
    public func remove(_ text: String) throws {
        let ref = try ImageRef.parse(text)
        let (id, removed) = try resolve(text)
        let users = holders.kept().filter { (try? ImageRef.parse($0.image)) == ref }
        guard users.isEmpty else {
            throw ClabError(
                "image '\(ref)' is used by kept container \(users.map(\.name).joined(separator: ", ")): `clab rm` it first"
            )
        }
        guard unlink(refsDir + "/" + ref.storageName + "/" + ref.tag) == 0 else { throw SyscallError("rm \(ref)") }
        rmdir(refsDir + "/" + ref.storageName)
        // Garbage: configs no name points at, then layers no config or kept container uses.
        let liveIDs = Set(refs().map(\.id))
        if !liveIDs.contains(id) { unlink(configsDir + "/" + LayerStore.hex(id) + ".json") }
        var liveLayers = Set(holders.kept().flatMap(\.layers))
        for live in liveIDs { liveLayers.formUnion((try? config(id: live).layers) ?? []) }
        let running = holders.runningLayers()
        for layer in removed.layers where !liveLayers.contains(layer) && !running.contains(LayerStore.hex(layer)) {
            layerStore.removeLayer(layer)
        }
    }
}
