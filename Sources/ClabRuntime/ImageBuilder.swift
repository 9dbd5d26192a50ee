import ClabHost
import ClabImages
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// `clab image build`: a small Dockerfile. FROM, then ENV, WORKDIR and CMD (config only), COPY
/// (a layer from the build directory) and RUN (a stage-9 container whose writable layer becomes
/// the next layer). Each step is cached by (the image so far, the instruction, the copied
/// content), as Docker's build cache is: a rebuild reuses what did not change.
public struct ImageBuilder {
    public let runtime: Runtime

    public init(runtime: Runtime) { self.runtime = runtime }

    public struct Instruction: Equatable, Sendable {
        public var line: Int
        public var keyword: String
        public var argument: String
        public var text: String { "\(keyword) \(argument)" }
    }

    public static let keywords = ["FROM", "COPY", "RUN", "ENV", "WORKDIR", "CMD"]

    /// Parses a build file; every error names the file and line.
    public static func parse(_ text: String, file: String) throws -> [Instruction] {
        var out: [Instruction] = []
        var pending = ""
        var startLine = 0
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // A NUL would cut an ENV value or CMD argument short in execve (and once added
            // records to the spec clab sends to init): refused, wherever it is.
            if raw.utf8.contains(0) {
                throw ClabError("\(file) line \(i + 1) contains a NUL byte: build files are text", exitCode: 2)
            }
            let line = raw.trimmed
            if pending.isEmpty && (line.isEmpty || line.hasPrefix("#")) { continue }
            if pending.isEmpty { startLine = i + 1 }
            if line.hasSuffix("\\") {
                pending += String(line.dropLast()) + " "
                continue
            }
            let full = (pending + line).trimmed
            pending = ""
            let keyword = String(full.prefix { !$0.isWhitespace })
            let argument = full.dropFirst(keyword.count).trimmed
            guard keywords.contains(keyword.uppercased()) else {
                throw ClabError(
                    "\(file) line \(startLine): unknown instruction '\(keyword)' (clab knows \(keywords.joined(separator: ", ")))",
                    exitCode: 2)
            }
            guard !argument.isEmpty else {
                throw ClabError("\(file) line \(startLine): \(keyword.uppercased()) needs an argument", exitCode: 2)
            }
            out.append(Instruction(line: startLine, keyword: keyword.uppercased(), argument: argument))
        }
        if !pending.isEmpty {
            throw ClabError("\(file): the last line ends with '\\' and nothing follows", exitCode: 2)
        }
        guard let first = out.first else {
            throw ClabError("\(file) has no instructions: start with FROM", exitCode: 2)
        }
        guard first.keyword == "FROM" else {
            throw ClabError(
                "\(file) line \(first.line): the first instruction must be FROM, not \(first.keyword)", exitCode: 2)
        }
        if let again = out.dropFirst().first(where: { $0.keyword == "FROM" }) {
            throw ClabError(
                "\(file) line \(again.line): only one FROM (multi-stage builds are not supported)", exitCode: 2)
        }
        for i in out {
            if i.keyword == "COPY" && i.argument.split(whereSeparator: \.isWhitespace).count != 2 {
                throw ClabError(
                    "\(file) line \(i.line): COPY takes a source and a destination: COPY site /www", exitCode: 2)
            }
            if i.keyword == "ENV" && !i.argument.contains("=")
                && i.argument.split(whereSeparator: \.isWhitespace).count < 2
            {
                throw ClabError("\(file) line \(i.line): ENV takes KEY=VALUE", exitCode: 2)
            }
            if i.keyword == "ENV" {
                try ContainerSpec.checkEnvEntry(envEntry(i.argument), "\(file) line \(i.line): ENV")
            }
            if i.keyword == "CMD" {
                // The exec form is JSON, where "\u0000" is a NUL.
                for (n, arg) in commandLine(i.argument).enumerated() {
                    try ContainerSpec.checkText(arg, "\(file) line \(i.line): CMD argument \(n + 1)")
                }
            }
        }
        return out
    }

    /// Builds and tags the image; returns its id. `log` gets the progress lines.
    public func build(file: String, context: String, tag: ImageRef, log: (String) -> Void) throws -> String {
        guard let text = FS.read(file) else { throw ClabError("cannot read build file \(file)", exitCode: 2) }
        guard FS.isDirectory(context) else { throw ClabError("build directory \(context) does not exist", exitCode: 2) }
        let instructions = try Self.parse(text, file: file)
        let store = runtime.images
        try runtime.layout.prepare()
        try store.ensureBase(log: log)
        var (id, config) = try store.resolve(instructions[0].argument)
        try config.validate("\(file) line \(instructions[0].line): FROM \(instructions[0].argument)")
        log("step 1/\(instructions.count): FROM \(instructions[0].argument) → \(id.prefix(19))")
        for (n, instruction) in instructions.enumerated().dropFirst() {
            let prefix = "step \(n + 1)/\(instructions.count): \(instruction.text)"
            var key = id + "\n" + instruction.text
            if instruction.keyword == "COPY" {
                key += "\n" + (try copySource(instruction, context: context).digest)
            }
            let cacheFile = store.layout.imagesDir + "/build-cache/" + SHA256.hex(Array(key.utf8))
            if let cached = FS.read(cacheFile)?.trimmed, let hit = try? store.config(id: cached),
                hit.layers.allSatisfy(store.layerStore.exists)
            {
                (id, config) = (cached, hit)
                log("\(prefix)  (cached)")
                continue
            }
            log(prefix)
            config = try apply(instruction, to: config, context: context, log: log)
            id = try store.save(config)
            try FS.makeDirectories(Path.dirname(cacheFile))
            try FS.write(id + "\n", to: cacheFile)
        }
        try store.tag(id, as: tag)
        log("built \(id.prefix(19)) as \(tag)")
        return id
    }

    func apply(_ i: Instruction, to config: ImageConfig, context: String, log: (String) -> Void) throws -> ImageConfig {
        var next = config
        next.created = Date().formatted(.iso8601)
        var emptyLayer = true
        switch i.keyword {
        case "ENV":
            next.env = Env.setting([Self.envEntry(i.argument)], in: config.env)
        case "WORKDIR":
            next.workdir = Self.containerPath(i.argument, from: config.workdir)
        case "CMD":
            next.cmd = Self.commandLine(i.argument)
        case "COPY":
            let (source, _) = try copySource(i, context: context)
            let parts = i.argument.split(whereSeparator: \.isWhitespace).map(String.init)
            // Inside the image, whatever `..` it holds: it is joined to a directory on the host.
            var dest = Self.containerPath(parts[1], from: config.workdir) + (parts[1].hasSuffix("/") ? "/" : "")
            let scratch = runtime.images.layerStore.dir + "/.tmp-copy-\(getpid())"
            try? FS.removeTree(scratch)
            defer { try? FS.removeTree(scratch) }
            // Root's alone while it is made: cp gives the tree the source's modes (a 0777
            // directory), and layers/ lets uid 100000 pass.
            guard mkdir(scratch, 0o700) == 0 else { throw SyscallError("mkdir \(scratch)") }
            let tmp = scratch + "/tree"
            if FS.isDirectory(source) {
                // As Docker: a directory's contents go into the destination directory.
                try FS.makeDirectories(tmp + dest)
                _ = try Host.output(["cp", "-a", "--no-preserve=ownership", source + "/.", tmp + dest])
            } else {
                if dest.hasSuffix("/") { dest += Path.basename(source) }  // COPY f /dir/ → /dir/f
                try FS.makeDirectories(tmp + Path.dirname(dest))
                _ = try Host.output(["cp", "-a", "--no-preserve=ownership", source, tmp + dest])
            }
            try chownTree(tmp, to: 0)
            next.layers.append(try addLayer(tmp, log: log))
            emptyLayer = false
        case "RUN":
            let rw = runtime.images.layerStore.dir + "/.tmp-run-\(getpid())"
            try? FS.removeTree(rw)
            defer { try? FS.removeTree(rw) }
            try FS.makeDirectories(rw)
            var request = RunRequest(stage: try Stage.numbered(9), command: ["/bin/sh", "-c", i.argument])
            request.layersOverride = config.layers
            request.rwDir = rw
            // The image being built, not the base: its env and workdir.
            let tmpID = try runtime.images.save(config)
            let tmpRef = ImageRef(name: "clab-build-tmp", tag: String(LayerStore.hex(tmpID).prefix(12)))
            try runtime.images.tag(tmpID, as: tmpRef)
            defer {
                unlink(runtime.images.layout.imagesDir + "/refs/clab-build-tmp/" + tmpRef.tag)
                rmdir(runtime.images.layout.imagesDir + "/refs/clab-build-tmp")
            }
            request.image = tmpRef.description
            let prepared = try runtime.prepare(request, log: log)
            let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
            defer { close(devNull) }
            let result = try runtime.run(prepared, stdio: (devNull, 1, 2))
            guard result.status.code == 0 else {
                throw ClabError("line \(i.line): RUN \(i.argument) failed with status \(result.status.code)")
            }
            // The writable layer belonged to container root (the mapped uid): a copy, 0-based, made
            // where no other uid reaches it (uid 100000 may have linked or swapped things in).
            let tree = try ShiftedCopy.copyAside(
                rw + "/upper", scratch: rw + "/copy", shift: .init(from: prepared.spec.idMapping?.host ?? 0, to: 0))
            next.layers.append(try addLayer(tree, log: log))
            emptyLayer = false
        default:
            break
        }
        next.record(i.text, emptyLayer: emptyLayer)
        return next
    }

    /// The COPY source inside the build directory (never outside it), and its content digest.
    func copySource(_ i: Instruction, context: String) throws -> (path: String, digest: String) {
        let src = String(i.argument.split(whereSeparator: \.isWhitespace)[0])
        guard !src.hasPrefix("/"), !src.split(separator: "/").contains("..") else {
            throw ClabError(
                "line \(i.line): COPY \(src): the source must be a path inside the build directory", exitCode: 2)
        }
        let path = context + "/" + src
        guard FS.exists(path) else {
            throw ClabError("line \(i.line): COPY \(src): no such file in \(context)", exitCode: 2)
        }
        // A symlink on the way (secrets -> /etc) must not reach outside the build directory.
        guard let real = Self.realPath(path), let realContext = Self.realPath(context),
            real == realContext || real.hasPrefix(realContext + "/")
        else {
            throw ClabError(
                "line \(i.line): COPY \(src): it leads outside the build directory (through a symlink)", exitCode: 2)
        }
        if FS.isDirectory(path) { return (path, try CanonicalTar(root: path).digest().digest) }
        // The bytes and the mode: a chmod +x or a changed binary byte must miss the cache.
        var h = SHA256()
        h.update(Array(FileManager.default.contents(atPath: path) ?? Data()))
        var st = stat()
        _ = stat(path, &st)
        h.update(Array("\nmode \(st.st_mode & 0o7777)".utf8))
        return (path, h.finalize())
    }

    /// An absolute path inside the container: relative to `workdir`, with `.` and `..` resolved
    /// lexically and never above `/`.
    static func containerPath(_ path: String, from workdir: String?) -> String {
        let joined = path.hasPrefix("/") ? path : (workdir ?? "/") + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                _ = parts.popLast()
            } else {
                parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    func addLayer(_ tree: String, log: (String) -> Void) throws -> String {
        log("  hashing and storing the layer…")
        let (digest, size) = try runtime.images.layerStore.add(tree: tree)
        log("  layer \(digest.prefix(19)) (\(humanBytes(Int64(size))))")
        return digest
    }

    func chownTree(_ root: String, to owner: UInt32) throws {
        for path in FS.walk(root) {
            guard lchown(path, owner, owner) == 0 else { throw SyscallError("lchown \(path)") }
        }
    }

    /// `ENV K=V` or `ENV K V` as the entry `K=V`.
    static func envEntry(_ argument: String) -> String {
        argument.contains("=") ? argument : argument.split(separator: " ", maxSplits: 1).joined(separator: "=")
    }

    /// `["a", "b"]` (JSON, exec form) or `a b` (run by /bin/sh -c).
    static func commandLine(_ text: String) -> [String] {
        if text.hasPrefix("["), let data = text.data(using: .utf8),
            let array = try? JSONDecoder().decode([String].self, from: data)
        {
            return array
        }
        return ["/bin/sh", "-c", text]
    }
}
