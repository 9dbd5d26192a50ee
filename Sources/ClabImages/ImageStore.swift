import ClabHost
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// The image store. For now one image, `busybox`, built on first use from Debian's
/// busybox-static: the job an LXC template does (a root filesystem from the distribution's
/// packages), minus the network. Layers arrive with stage 9.
public struct ImageStore: Sendable {
    public let layout: StateLayout
    /// What containers hold, asked before anything they may use is deleted.
    public let holders: any ImageHolders
    public static let baseName = "busybox"
    /// Where Debian's busybox-static puts its binary; CLAB_BUSYBOX overrides it (tests use
    /// this to see what a machine without busybox-static gets).
    public static var busyboxPath: String {
        Env.get("CLAB_BUSYBOX") ?? "/bin/busybox"
    }

    public init(layout: StateLayout, holders: any ImageHolders) {
        self.layout = layout
        self.holders = holders
    }

    public func imageDir(_ name: String) -> String { layout.imagesDir + "/" + name }
    public func rootfs(_ name: String) -> String { imageDir(name) + "/rootfs" }

    /// A copy of the image whose files belong to `base`+id on the host, for containers whose
    /// root is uid `base` there (stage 7). Made once per range and shared, as Docker's
    /// userns-remap does; see lesson 7 for why not id-mapped mounts.
    public func shiftedRootfs(_ name: String, base: UInt32) -> String {
        imageDir(name) + "/shifted-\(base)/rootfs"
    }

    public struct Info: Sendable {
        public let name: String
        public let rootfs: String
        public let sizeBytes: Int
        public let created: String
        public let shiftedCopies: [UInt32]
    }

    public func list() -> [Info] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.imagesDir)) ?? []
        return names.sorted().compactMap { name in
            let dir = imageDir(name)
            guard !name.hasPrefix("."), let text = FS.read(dir + "/image.json"),
                let meta = try? JSONDecoder().decode(ImageMeta.self, from: Data(text.utf8))
            else { return nil }
            let shifted = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
                .compactMap { $0.hasPrefix("shifted-") ? UInt32($0.dropFirst(8)) : nil }.sorted()
            return Info(
                name: name, rootfs: rootfs(name), sizeBytes: meta.size, created: meta.created, shiftedCopies: shifted)
        }
    }

    /// Builds the base image unless it exists. Idempotent and safe against a concurrent clab
    /// (an flock on images/.lock; the tree is built aside and renamed into place).
    ///
    /// A base image made by an older clab, which lacks one of the lessons' programs (lesson 12's
    /// `escape` and `ids`), is rebuilt: images built from it keep their layers (the old layer
    /// stays in the store), and its old tree is removed unless a container may still use it.
    public func ensureBase(log: (String) -> Void) throws {
        let final = imageDir(Self.baseName)
        if FS.exists(final + "/image.json") && missingPrograms(final).isEmpty { return }
        let lock = try FileLock(path: layout.imagesDir + "/.lock")
        defer { withExtendedLifetime(lock) {} }
        guard FS.exists(final + "/image.json") else { return try buildBase(into: final, log: log) }
        let missing = missingPrograms(final)
        if missing.isEmpty { return }
        log(
            "the base image '\(Self.baseName)' was built by an older clab (no \(missing.map { "/usr/bin/" + $0 }.joined(separator: ", "))): rebuilding it"
        )
        let old = layout.imagesDir + "/.tmp-old-\(Self.baseName)-\(getpid())"
        guard rename(final, old) == 0 else { throw SyscallError("rename \(final) \(old)") }
        do {
            try buildBase(into: final, log: log)
            // busybox:latest still names the old layer: name the new one.
            if let text = FS.read(final + "/image.json"),
                let meta = try? JSONDecoder().decode(ImageMeta.self, from: Data(text.utf8)), let layers = meta.layers
            {
                try registerBase(layers, source: meta.source)
            }
        } catch {
            _ = rename(old, final)
            throw error
        }
        // A running stage 1-8 container may have its root in the old tree: then `clab gc` removes it later.
        if !holders.anyRunning() { try? FS.removeTree(old) }
    }

    /// The lessons' programs (images/busybox/NAME.c) that the image at `dir` lacks.
    func missingPrograms(_ dir: String) -> [String] {
        guard let share = try? Resources.shareDir() else { return [] }
        let programs = ((try? FileManager.default.contentsOfDirectory(atPath: share + "/images/busybox")) ?? [])
            .filter { $0.hasSuffix(".c") }.map { String($0.dropLast(2)) }
        return programs.filter { !FS.exists(dir + "/rootfs/usr/bin/" + $0) }.sorted()
    }

    private func buildBase(into final: String, log: (String) -> Void) throws {
        let started = Date()
        let busybox = Self.busyboxPath
        guard FS.exists(busybox) else {
            throw ClabError(
                "busybox is not installed (\(busybox) is missing): run `apt-get install busybox-static`")
        }
        guard try ELF.isStatic(busybox) else {
            throw ClabError(
                "\(busybox) is dynamically linked and cannot run inside an empty image: run `apt-get install busybox-static`"
            )
        }
        let share = try Resources.shareDir()
        // The lessons' small attack programs: breakout (the chroot escape), tiocsti (typing
        // into a terminal). Each images/busybox/NAME.c becomes /usr/bin/NAME.
        let programs = ((try? FileManager.default.contentsOfDirectory(atPath: share + "/images/busybox")) ?? [])
            .filter { $0.hasSuffix(".c") }.sorted()
        guard let cc = Host.which("cc") ?? Host.which("gcc") else {
            throw ClabError(
                "no C compiler to build /usr/bin/breakout for the image: run `apt-get install gcc libc6-dev`")
        }

        log("building the base image '\(Self.baseName)' (first use) in \(final)")
        let tmp = layout.imagesDir + "/.tmp-\(Self.baseName)-\(getpid())"
        try? FS.removeTree(tmp)
        do {
            let root = tmp + "/rootfs"
            for dir in [
                "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "proc", "sys", "dev", "var", "home", "mnt",
            ] {
                try FS.makeDirectories(root + "/" + dir)
            }
            try FS.makeDirectories(root + "/tmp", mode: 0o1777)
            chmod(root + "/root", 0o700)

            try FileManager.default.copyItem(atPath: busybox, toPath: root + "/bin/busybox")
            chmod(root + "/bin/busybox", 0o755)
            let applets = try Host.output([busybox, "--list-full"])
                .split(separator: "\n").map(String.init).filter { !$0.isEmpty && $0 != "bin/busybox" }
            for applet in applets {
                let path = root + "/" + applet
                try FS.makeDirectories(Path.dirname(path))
                guard symlink("/bin/busybox", path) == 0 || errno == EEXIST else {
                    throw SyscallError("symlink \(path)")
                }
            }
            let version =
                (try? Host.output([busybox])).flatMap {
                    $0.split(separator: "\n").first.map(String.init)
                } ?? "BusyBox"
            log("  \(applets.count) busybox applets linked to /bin/busybox (\(version))")

            try FS.write(
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", to: root + "/etc/passwd")
            try FS.write("root:x:0:\nnogroup:x:65534:\n", to: root + "/etc/group")
            try FS.write("clab busybox image\n", to: root + "/etc/clab-image")
            try FS.write("127.0.0.1 localhost\n::1 localhost\n", to: root + "/etc/hosts")

            for program in programs {
                let name = String(program.dropLast(2))
                log("  compiling /usr/bin/\(name) (images/busybox/\(program)) with \(cc) -static")
                _ = try Host.output(
                    [cc, "-static", "-O2", "-o", root + "/usr/bin/" + name, share + "/images/busybox/" + program])
            }

            // Device nodes for stages 1-3, which have no mount namespace to put a /dev in.
            var nodes = 0
            for (name, major, minor) in [
                ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
            ] {
                if mknod(root + "/dev/" + name, S_IFCHR | 0o666, dev_t((major << 8) | minor)) == 0 {
                    chmod(root + "/dev/" + name, 0o666)
                    nodes += 1
                }
            }
            if nodes < 6 { log("  note: the filesystem refused device nodes; /dev in stages 1-3 stays empty") }

            let size = Self.treeSize(root)
            // The image's one layer, from the pristine tree: stages 1-8 later write into rootfs/.
            try layout.prepare()
            let layerTmp = layerStore.dir + "/.tmp-base-\(getpid())"
            try? FS.removeTree(layerTmp)
            _ = try Host.output(["cp", "-a", root, layerTmp])
            let (digest, _) = try layerStore.add(tree: layerTmp)
            log("  layer \(digest)")
            var meta = ImageMeta(
                name: Self.baseName, created: Date().formatted(.iso8601), size: size,
                source: "Debian busybox-static: \(version)")
            meta.layers = [digest]
            meta.history = [meta.source]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let json = try encoder.encode(meta)
            try FS.write(String(decoding: json, as: UTF8.self) + "\n", to: tmp + "/image.json")
            guard rename(tmp, final) == 0 else { throw SyscallError("rename \(tmp) \(final)") }
        } catch {
            try? FS.removeTree(tmp)
            throw error
        }
        log("  done in \(fixed(Date().timeIntervalSince(started), 2)) s")
    }

    public var layerStore: LayerStore { LayerStore(layout: layout) }

    /// The image's layers, bottom first; the base image's one layer is made from its rootfs the
    /// first time it is needed (under the lock).
    public func layers(_ ref: String) throws -> [String] {
        try resolve(ref).config.layers
    }

    /// The base image's layer, and its registration as busybox:latest. Made at build time;
    /// images built before clab had layers get theirs here, once.
    func baseLayers() throws -> [String] {
        let name = Self.baseName
        let metaPath = imageDir(name) + "/image.json"
        func load() throws -> ImageMeta {
            guard let text = FS.read(metaPath) else {
                throw ClabError("no image '\(name)': `clab image ls` lists the images")
            }
            return try JSONDecoder().decode(ImageMeta.self, from: Data(text.utf8))
        }
        let lock = try FileLock(path: layout.imagesDir + "/.lock")
        defer { withExtendedLifetime(lock) {} }
        var meta = try load()
        if let layers = meta.layers, layers.allSatisfy(layerStore.exists) {
            try registerBase(layers, source: meta.source)
            return layers
        }
        try layout.prepare()
        let tmp = layerStore.dir + "/.tmp-\(getpid())"
        try? FS.removeTree(tmp)
        do {
            _ = try Host.output(["cp", "-a", rootfs(name), tmp])
            let (digest, _) = try layerStore.add(tree: tmp)
            meta.layers = [digest]
            meta.history = ["\(meta.source)"]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try FS.write(String(decoding: try encoder.encode(meta), as: UTF8.self) + "\n", to: metaPath)
            try registerBase([digest], source: meta.source)
            return [digest]
        } catch {
            try? FS.removeTree(tmp)
            throw error
        }
    }

    /// busybox:latest: the base layer, a shell by default.
    func registerBase(_ layers: [String], source: String) throws {
        try tag(try save(Self.baseConfig(layers, source: source)), as: ImageRef(name: Self.baseName, tag: "latest"))
    }

    static func baseConfig(_ layers: [String], source: String) -> ImageConfig {
        ImageConfig(
            layers: layers, env: ["PATH=\(ContainerSpec.defaultPath)"], cmd: ["/bin/sh"], workdir: nil,
            history: [ImageConfig.History(createdBy: source, emptyLayer: false)], created: "1970-01-01T00:00:00Z")
    }

    /// The built-in image's config, made from its own metadata, never looked up by tag: what
    /// `--userns host` runs (a tag can be moved by another clab at any moment).
    public func builtInConfig() throws -> ImageConfig {
        Self.baseConfig(try baseLayers(), source: "clab's built-in busybox image")
    }

    /// The stage-7 copy: same tree, every owner moved up by `base`. Built once, under the lock.
    public func ensureShifted(_ name: String, base: UInt32, log: (String) -> Void) throws -> String {
        try Self.shiftedCopy(of: rootfs(name), at: shiftedRootfs(name, base: base), base: base, layout: layout) {
            log("making a copy of '\(name)' owned by uid/gid \(base)+ for user-namespaced containers (once)")
        }
    }

    /// A copy of `source` with every owner moved up by `base` (ShiftedCopy), made once: built
    /// aside under the images lock (in `.tmp-<name>-<pid>`, mode 0700, which gc knows) and renamed
    /// into place. Shared by the stage-7 copy of an image and the stage-9 copies of layers.
    ///
    /// The copies live in `shifted-<base>/`, owned by root with the range's root as group, mode
    /// 0710: the mapped root passes through (init mounts the copy from inside its namespace),
    /// other ranges and other users do not (see StateLayout.closedDirectories); kept so when an
    /// older clab made it 0755.
    static func shiftedCopy(
        of source: String, at target: String, base: UInt32, layout: StateLayout, announce: () -> Void
    ) throws -> String {
        let parent = Path.dirname(target)
        if FS.exists(target) {
            try StateLayout.closeDirectory(parent, group: base)
            return target
        }
        let lock = try FileLock(path: layout.imagesDir + "/.lock")
        defer { withExtendedLifetime(lock) {} }
        try StateLayout.closeDirectory(parent, group: base)
        if FS.exists(target) { return target }
        announce()
        let tmp = parent + "/.tmp-" + Path.basename(target) + "-\(getpid())"
        try? FS.removeTree(tmp)
        defer { try? FS.removeTree(tmp) }
        let tree = try ShiftedCopy.copyAside(source, scratch: tmp, shift: .init(from: 0, to: base))
        guard rename(tree, target) == 0 else { throw SyscallError("rename \(tree) \(target)") }
        return target
    }

    /// The bytes of the regular files below `root`, each path counted (hard links as often as
    /// they are named, sparse files at their full size), at most Int.max: the sizes come from
    /// hostile layers too.
    static func treeSize(_ root: String) -> Int {
        var total = 0
        for path in FS.walk(root) {
            var st = stat()
            if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
                let (sum, overflow) = total.addingReportingOverflow(Int(st.st_size))
                total = overflow ? Int.max : sum
            }
        }
        return total
    }
}

/// images/<name>/image.json
struct ImageMeta: Codable {
    var name: String
    var created: String
    var size: Int
    var source: String
    /// Layer digests, bottom first (stage 9 stacks them). Images made before layers existed
    /// get theirs on first use at stage 9.
    var layers: [String]?
    var history: [String]?
}

/// Just enough ELF to tell a static binary: no PT_INTERP program header.
enum ELF {
    static func isStatic(_ path: String) throws -> Bool {
        guard let data = FileManager.default.contents(atPath: path), data.count > 64,
            data.prefix(4) == Data([0x7f, 0x45, 0x4c, 0x46]), data[4] == 2
        else { throw ClabError("\(path) is not a 64-bit ELF binary") }
        func u(_ offset: Int, _ size: Int) -> Int {
            (0..<size).reduce(0) { $0 | Int(data[offset + $1]) << (8 * $1) }
        }
        let phoff = u(32, 8)
        let phentsize = u(54, 2)
        let phnum = u(56, 2)
        for i in 0..<phnum {
            let at = phoff + i * phentsize
            guard at + 4 <= data.count else { break }
            if u(at, 4) == 3 { return false }  // PT_INTERP: needs a dynamic loader
        }
        return true
    }
}
