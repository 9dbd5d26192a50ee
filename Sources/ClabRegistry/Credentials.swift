import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// A user name and password (or token) for one registry.
public struct RegistryAuth: Sendable, Equatable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// Docker's `X-Registry-Auth` header (base64url of {"username","password","serveraddress"}),
    /// as `docker push` sends it to a daemon. nil for an empty or anonymous header.
    public static func fromXRegistryAuth(_ header: String) throws -> RegistryAuth? {
        var text = String(header.filter { !$0.isWhitespace }.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        while text.count % 4 != 0 { text += "=" }
        guard !header.isEmpty else { return nil }
        guard let data = Data(base64Encoded: text) else {
            throw ClabError("X-Registry-Auth is not base64", exitCode: 2)
        }
        struct Header: Decodable {
            var username: String?
            var password: String?
            var identitytoken: String?
        }
        guard let decoded = try? JSONDecoder().decode(Header.self, from: data) else {
            throw ClabError("X-Registry-Auth is not the JSON Docker sends", exitCode: 2)
        }
        guard let user = decoded.username, !user.isEmpty else { return nil }
        return RegistryAuth(username: user, password: decoded.password ?? decoded.identitytoken ?? "")
    }

    /// `Authorization: Basic …`.
    var basic: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }
}

/// Where `clab login` keeps credentials: `<state root>/registry/config.json` (by default
/// /var/lib/clab/registry/config.json), in Docker's config format, so `DOCKER_CONFIG=DIR`
/// tools (skopeo --authfile, docker) read it too:
///
///     {"auths": {"localhost:5000": {"auth": "<base64 of user:password>"}}}
///
/// The directory is 0700 and the file 0600, root's: the password is only base64'd, as Docker
/// stores it without a credential helper. Under the state root rather than ~/.config because
/// clab runs as root and a class's students each have their own root (CLAB_ROOT).
public struct CredentialStore: Sendable {
    public let path: String

    public init(layout: StateLayout) { path = layout.root + "/registry/config.json" }
    public init(path: String) { self.path = path }

    struct File: Codable {
        var auths: [String: Entry]
        struct Entry: Codable { var auth: String? }
    }

    /// Read without following a symlink (the state root may be a user's: a link planted at
    /// this path must not make root read, then rewrite, another file), at most 1 MiB.
    func load() throws -> File {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 && errno == ENOENT { return File(auths: [:]) }
        guard fd >= 0 else { throw ClabError("cannot read \(path): \(errnoDescription(errno)): remove it") }
        defer { close(fd) }
        guard let bytes = FS.readAll(fd, limit: 1 << 20) else {
            throw ClabError(
                errno == EFBIG
                    ? "\(path) is larger than 1 MiB: fix or remove it"
                    : "cannot read \(path): \(errnoDescription(errno))")
        }
        do {
            return try JSONDecoder().decode(File.self, from: Data(bytes))
        } catch {
            throw ClabError("\(path) is not a Docker config file ({\"auths\": {...}}): fix or remove it")
        }
    }

    /// The credentials stored for `registry`, if any.
    public func auth(for registry: String) throws -> RegistryAuth? {
        guard let encoded = try load().auths[registry]?.auth, let data = Data(base64Encoded: encoded) else {
            return nil
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else {
            throw ClabError(
                "\(path): the entry for \(registry) is not base64 of user:password: run `clab login \(registry)` again")
        }
        return RegistryAuth(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
    }

    public func store(_ auth: RegistryAuth, for registry: String) throws {
        var file = try load()
        file.auths[registry] = File.Entry(auth: Data("\(auth.username):\(auth.password)".utf8).base64EncodedString())
        try write(file)
    }

    /// Forgets `registry`; false if nothing was stored for it.
    @discardableResult
    public func remove(_ registry: String) throws -> Bool {
        var file = try load()
        guard file.auths.removeValue(forKey: registry) != nil else { return false }
        try write(file)
        return true
    }

    /// Written aside with mode 0600 from the start (never a moment readable by others), then renamed.
    private func write(_ file: File) throws {
        // Made or fixed through an fd opened with O_NOFOLLOW: a symlink at the directory's path
        // is refused, not followed to a directory root would then chmod and write into.
        try StateLayout.closeDirectory(Path.dirname(path), group: nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let bytes = Array(try encoder.encode(file)) + [0x0a]
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SyscallError("open \(tmp)") }
        do {
            defer { close(fd) }
            guard fchmod(fd, 0o600) == 0 else { throw SyscallError("chmod \(tmp)") }
            try FS.writeAll(fd, bytes, what: tmp)
            guard fsync(fd) == 0 else { throw SyscallError("fsync \(tmp)") }
        } catch {
            unlink(tmp)
            throw error
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw SyscallError("rename \(path)")
        }
    }
}
