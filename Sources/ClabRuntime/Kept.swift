import ClabHost
import ClabImages
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// Containers kept after they exit (`clab step 9 --name NAME --keep`): their writable layer,
/// with the layers it sits on, under `kept/<name>/`. `clab diff` reads it, `clab rm` deletes it;
/// gc never does (it is user data).
public struct KeptContainers: Sendable {
    public let layout: StateLayout

    public init(layout: StateLayout) { self.layout = layout }

    public var dir: String { layout.keptDir }
    public func path(_ name: String) -> String { dir + "/" + name }

    public struct Meta: Codable, Sendable {
        public var name: String
        public var id: String
        public var image: String
        public var layers: [String]
        public var created: Int
    }

    public static func validateName(_ name: String) throws {
        guard isPlainName(name, uppercase: false) else {
            throw ClabError(
                "invalid container name '\(name)': use lowercase letters, digits, '_', '.' or '-'", exitCode: 2)
        }
    }

    /// Claims the name (refusing one in use) and returns the directory for upper/ and work/.
    public func reserve(_ name: String, id: String, image: String, layers: [String]) throws -> String {
        try Self.validateName(name)
        try layout.prepare()
        let target = path(name)
        guard mkdir(target, 0o755) == 0 else {
            if errno == EEXIST {
                throw ClabError(
                    "a container named '\(name)' exists: `clab rm \(name)` first, or pick another name", exitCode: 2)
            }
            throw SyscallError("mkdir \(target)")
        }
        let meta = Meta(name: name, id: id, image: image, layers: layers, created: time(nil))
        try FS.write(String(decoding: try JSONEncoder().encode(meta), as: UTF8.self) + "\n", to: target + "/meta.json")
        return target
    }

    public func meta(_ name: String) throws -> Meta {
        try Self.validateName(name)
        guard let text = FS.read(path(name) + "/meta.json") else {
            throw ClabError("no kept container '\(name)': keep one with `clab step 9 --name \(name) --keep`")
        }
        return try JSONDecoder().decode(Meta.self, from: Data(text.utf8))
    }

    public func list() -> [Meta] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().compactMap { try? meta($0) }
    }

    public func remove(_ name: String) throws {
        let m = try meta(name)
        if ContainerState.running(in: layout).contains(where: { $0.id == m.id }) {
            throw ClabError("container '\(name)' is running: let it exit first")
        }
        try FS.removeTree(path(name))
    }

    /// `docker commit`: the kept container's writable layer becomes a new layer on top of its
    /// image's, under a new name.
    public func commit(_ name: String, as ref: ImageRef, log: (String) -> Void) throws -> String {
        let m = try meta(name)
        if ContainerState.running(in: layout).contains(where: { $0.id == m.id }) {
            throw ClabError("container '\(name)' is running: commit it after it exits")
        }
        let images = ImageStore(layout: layout)
        var config = try images.resolve(m.image).config
        config.layers = m.layers
        let tmp = LayerStore(layout: layout).dir + "/.tmp-commit-\(getpid())"
        try? FS.removeTree(tmp)
        defer { try? FS.removeTree(tmp) }
        // The writable layer belongs to the mapped root: copied aside, root's (see ShiftedCopy).
        let tree = try ShiftedCopy.copyAside(
            path(name) + "/upper", scratch: tmp, shift: .init(from: IDMapping.defaultRange.host, to: 0))
        log("hashing and storing the container's changes as a layer…")
        let (digest, size) = try LayerStore(layout: layout).add(tree: tree)
        log("layer \(digest.prefix(19)) (\(humanBytes(Int64(size))))")
        config.layers.append(digest)
        config.record("clab commit \(name)", emptyLayer: false)
        config.created = Date().formatted(.iso8601)
        let id = try images.save(config)
        try images.tag(id, as: ref)
        return id
    }

    /// `docker diff`: what the writable layer holds, against the layers under it.
    /// A: added, C: changed (or a directory with changes inside), D: deleted (a whiteout).
    /// The container wrote the upper directory and an image wrote the layers: no symlink in
    /// either is followed (FS.walk, FS.lstat(beneath:)), so `etc -> /root` is listed as itself,
    /// never as the host's /root.
    public func diff(_ name: String) throws -> [(kind: Character, path: String)] {
        let m = try meta(name)
        let upper = path(name) + "/upper"
        let lowers = m.layers.reversed().map { LayerStore(layout: layout).path($0) }
        var out: [(Character, String)] = []
        for full in FS.walk(upper).sorted() {
            let rel = String(full.dropFirst(upper.count))
            guard let st = FS.lstat(upper, beneath: rel) else { continue }
            if (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0 {
                out.append(("D", rel))
            } else if lowers.contains(where: { FS.lstat($0, beneath: rel) != nil }) {
                out.append(("C", rel))
                // An opaque directory replaced the layers' one: what they had there is gone.
                if (st.st_mode & S_IFMT) == S_IFDIR && CanonicalTar.isOpaque(full) {
                    var hidden = Set<String>()
                    for lower in lowers {
                        for path in FS.walk(lower, beneath: rel) { hidden.insert(String(path.dropFirst(lower.count))) }
                    }
                    for path in hidden where FS.lstat(upper, beneath: path) == nil { out.append(("D", path)) }
                }
            } else {
                out.append(("A", rel))
            }
        }
        return out.sorted { $0.1 < $1.1 }
    }
}
