import ClabHost
import ClabSys
import FoundationEssentials
import Glibc

/// Layers by content: `layers/sha256/<hex>/` is a directory tree whose canonical tar has that
/// sha256 (see CanonicalTar), so the same content is stored once, whoever made it. Layers are
/// never written after they are added. For user-namespaced containers each layer also has a
/// copy owned by the mapped range (`layers/shifted-<base>/<hex>/`), made once, like the stage-7
/// copy of the base image.
///
/// Layers keep setuid bits, as Docker's do: the protection is that no other host user can reach
/// them (StateLayout.closedDirectories). Device nodes are another matter: a layer holds none but
/// overlay whiteouts and the character devices every host gives everyone (`allowsDevice`).
public struct LayerStore: Sendable {
    public let layout: StateLayout

    public init(layout: StateLayout) { self.layout = layout }

    public var dir: String { layout.layersDir }

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
        if let device = Self.refusedDevice(in: tree) {
            throw ClabError(
                "the layer holds a device node, \(device)\(Self.devicePolicy)",
                exitCode: 2)
        }
        let (digest, size) = try CanonicalTar(root: tree).digest()
        try layout.prepare()
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
        try ImageStore.shiftedCopy(of: path(digest), at: shiftedPath(digest, base: base), base: base, layout: layout) {
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

    /// The end of every refusal of a device node.
    static let devicePolicy =
        ": a layer may hold no device node but overlay whiteouts and null, zero, full, random, urandom, tty (remove it from the image)"

    /// A device node a layer may hold: an overlay whiteout (character device 0/0), or one of the
    /// character devices that every host opens to everyone (null, zero, full, random, urandom,
    /// tty), which the base image carries for stages 1-3. Any other node, a disk or /dev/mem,
    /// would open that device to whoever reaches the layer.
    static func allowsDevice(character: Bool, major: UInt32, minor: UInt32) -> Bool {
        guard character else { return false }
        return [(0, 0), (1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)].contains { $0 == (major, minor) }
    }

    /// The first device node below `root` that a layer may not hold, described ("/dev/sda, a
    /// block device 8:0"), or nil.
    static func refusedDevice(in root: String) -> String? {
        for path in FS.walk(root).sorted() {
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            let type = st.st_mode & S_IFMT
            guard type == S_IFCHR || type == S_IFBLK else { continue }
            let (major, minor) = deviceNumbers(st.st_rdev)
            if !allowsDevice(character: type == S_IFCHR, major: major, minor: minor) {
                let kind = type == S_IFCHR ? "character" : "block"
                return "/\(path.dropFirst(root.count + 1)), a \(kind) device \(major):\(minor)"
            }
        }
        return nil
    }

    /// glibc's dev_t encoding (gnu_dev_major/minor, which Swift does not import).
    static func deviceNumbers(_ rdev: dev_t) -> (major: UInt32, minor: UInt32) {
        let dev = UInt64(rdev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000)
        let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00)
        return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }
}
