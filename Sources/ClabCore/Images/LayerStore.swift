import FoundationEssentials
import Glibc

/// Layers by content: `layers/sha256/<hex>/` is a directory tree whose canonical tar has that
/// sha256 (see CanonicalTar), so the same content is stored once, whoever made it. Layers are
/// never written after they are added. For user-namespaced containers each layer also has a
/// copy owned by the mapped range (`layers/shifted-<base>/<hex>/`), made once, like the stage-7
/// copy of the base image.
public struct LayerStore: Sendable {
    public let layout: StateLayout

    public init(layout: StateLayout) { self.layout = layout }

    public var dir: String { layout.root + "/layers" }

    public func path(_ digest: String) -> String { dir + "/sha256/" + Self.hex(digest) }

    public func shiftedPath(_ digest: String, base: UInt32) -> String {
        dir + "/shifted-\(base)/" + Self.hex(digest)
    }

    public static func hex(_ digest: String) -> String {
        digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : digest
    }

    public func exists(_ digest: String) -> Bool { FS.isDirectory(path(digest)) }

    /// Moves a finished tree into the store under its digest. If a layer with that digest is
    /// already there, the tree is removed: one copy of each content. Returns the digest and the
    /// tar's size.
    public func add(tree: String) throws -> (digest: String, size: Int) {
        let (digest, size) = try CanonicalTar(root: tree).digest()
        try FS.makeDirectories(dir + "/sha256")
        let target = path(digest)
        if FS.isDirectory(target) {
            try FS.removeTree(tree)
        } else {
            guard rename(tree, target) == 0 else { throw SyscallError("rename \(tree) \(target)") }
        }
        try FS.write("\(size)\n", to: dir + "/sha256/" + Self.hex(digest) + ".size")
        return (digest, size)
    }

    /// The tar size recorded when the layer was added.
    public func size(_ digest: String) -> Int {
        Int(FS.read(dir + "/sha256/" + Self.hex(digest) + ".size")?.trimmed ?? "") ?? 0
    }

    /// The layer's copy owned by uid/gid base+, made once (under the images lock).
    public func shifted(_ digest: String, base: UInt32, log: (String) -> Void = { _ in }) throws -> String {
        try ImageStore(layout: layout).shiftedCopy(of: path(digest), at: shiftedPath(digest, base: base), base: base) {
            log(
                "making a copy of layer \(digest.prefix(19)) owned by uid/gid \(base)+ for user-namespaced containers (once)"
            )
        }
    }

    /// Deletes a layer and its shifted copies (only for layers no image uses any more).
    public func removeLayer(_ digest: String) {
        try? FS.removeTree(path(digest))
        unlink(dir + "/sha256/" + Self.hex(digest) + ".size")
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where entry.hasPrefix("shifted-")
        {
            try? FS.removeTree(dir + "/" + entry + "/" + Self.hex(digest))
        }
    }

    /// Recomputes a layer's digest from its tree: it must still be its name.
    public func verify(_ digest: String) throws -> Bool {
        try CanonicalTar(root: path(digest)).digest().digest == digest
    }
}
