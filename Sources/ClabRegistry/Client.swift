import AsyncHTTPClient
import ClabImages
import ClabOCI
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1

/// A client of one registry, speaking the Distribution HTTP API v2
/// (https://distribution.github.io/distribution/spec/api/): manifests and blobs by GET, HEAD
/// and PUT, uploads (POST, then PATCH chunks, then PUT with the digest), cross-repository
/// mounts, tag lists. Authentication follows the registry's 401 challenge: `Basic` sends the
/// stored credentials, `Bearer realm=… service=… scope=…` trades them at the realm for a token
/// (cached per scope).
///
/// Everything a registry returns is hostile: sizes are capped before reading, every blob and
/// manifest is hashed while it streams and refused unless its sha256 is the digest asked for.
/// Every address it hands back (a redirect, an upload location, a token realm) is checked by
/// `checked(_:what:)` before anything is sent there: a registry must not steer clab's requests,
/// or the credentials it holds, to another address.
public actor RegistryClient {
    public let registry: String
    let base: String
    let origin: Origin
    let http: HTTPClient
    let auth: RegistryAuth?
    /// The Authorization header that worked, per scope (`Basic …` is the same for all).
    private var authorizations: [String: String] = [:]

    /// The largest manifest or index clab reads: Distribution refuses manifests over 4 MiB.
    public static let maxManifest = 4 << 20
    /// The largest image config (JSON) clab reads, as `clab image import` does.
    public static let maxConfig = 16 << 20

    /// One HTTP client for the process (never shut down: it lives as long as clabd). A refused
    /// connection fails the request at once: AHC's default retries until the connect timeout,
    /// which is 10 s of silence for a registry that is simply not running. Redirects are not
    /// followed by the client: `send` follows them itself, after `checked` (AHC would follow a
    /// 307 anywhere, method and body included); bodies are never decompressed (a layer's bytes
    /// are hashed as they are).
    public static let sharedHTTP: HTTPClient = {
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(10), read: .seconds(120))
        config.connectionPool.retryConnectionEstablishment = false
        config.redirectConfiguration = .disallow
        config.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }()

    public init(registry: String, auth: RegistryAuth?, http: HTTPClient = RegistryClient.sharedHTTP) {
        self.registry = registry
        let scheme = RegistryReference.scheme(for: registry)
        base = scheme + "://" + registry
        // The registry string is a parsed reference's host[:port], so this cannot fail; the
        // fallback only keeps the initializer total.
        origin = Origin(base) ?? Origin(scheme: scheme, host: registry.lowercased(), port: 0)
        self.http = http
        self.auth = auth
    }

    // MARK: - Requests

    struct Response {
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        let body: HTTPClientResponse.Body
    }

    /// One request with the scope's authorization; a 401 is answered once by the challenge's
    /// scheme and the request sent again. A redirect of a GET or HEAD (a blob served from
    /// elsewhere) is followed, at most 5 times, to an address `checked` allows, and the
    /// registry's authorization goes only to the registry's own origin; any other method's
    /// redirect is refused (a 307 keeps the method and body: a push would go elsewhere).
    func send(
        _ method: HTTPMethod, _ url: String, scope: [String], headers: [(String, String)] = [],
        body: ByteBuffer? = nil, timeout: TimeAmount = .seconds(300)
    ) async throws -> Response {
        let key = scope.joined(separator: " ")
        var retried = false
        var target = try checked(url, what: "an address")
        var redirects = 0
        while true {
            var request = HTTPClientRequest(url: target)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let authorization = authorizations[key], Origin(target) == origin {
                request.headers.replaceOrAdd(name: "Authorization", value: authorization)
            }
            if let body {
                request.body = .bytes(body)
                request.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
            } else if method == .PUT || method == .POST || method == .PATCH {
                request.headers.replaceOrAdd(name: "Content-Length", value: "0")
            }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: timeout)
            } catch {
                throw ClabError("cannot reach the registry \(registry) (\(base)): \(Self.describe(error))")
            }
            if [301, 302, 303, 307, 308].contains(response.status.code) {
                _ = try? await response.body.collect(upTo: 64 << 10)
                guard method == .GET || method == .HEAD else {
                    throw ClabError(
                        "\(registry) redirected a \(method.rawValue) (answer \(response.status.code)): clab follows redirects of GET and HEAD only; refused"
                    )
                }
                guard redirects < 5, let location = response.headers.first(name: "Location") else {
                    throw ClabError("\(registry) redirected more than 5 times, or without a Location: refused")
                }
                target = try checked(resolve(location), what: "a redirect")
                redirects += 1
                continue
            }
            guard response.status == .unauthorized, !retried, Origin(target) == origin else {
                if response.status == .unauthorized {
                    _ = try? await response.body.collect(upTo: 64 << 10)
                    throw unauthorized()
                }
                return Response(status: response.status, headers: response.headers, body: response.body)
            }
            retried = true
            let challenge = response.headers.first(name: "WWW-Authenticate") ?? ""
            _ = try? await response.body.collect(upTo: 64 << 10)
            authorizations[key] = try await authorize(challenge, scope: scope)
        }
    }

    private func unauthorized() -> ClabError {
        if let auth {
            return ClabError(
                "\(registry) refused the credentials of '\(auth.username)': check them and run `clab login \(registry)` again"
            )
        }
        return ClabError("\(registry) requires authentication: run `clab login \(registry)` first")
    }

    /// The Authorization header for a challenge.
    func authorize(_ challenge: String, scope: [String]) async throws -> String {
        let parsed = Challenge(challenge)
        switch parsed.scheme {
        case "basic":
            guard let auth else { throw unauthorized() }
            return auth.basic
        case "bearer":
            return "Bearer " + (try await token(parsed, scope: scope))
        default:
            throw ClabError(
                "\(registry) asks for authentication clab does not speak (WWW-Authenticate: \(challenge.prefix(80))); clab speaks Basic and Bearer"
            )
        }
    }

    /// A token from the challenge's realm (the Docker token protocol): GET realm?service=…&scope=…,
    /// with Basic credentials if there are any; the answer is {"token": …} or {"access_token": …}.
    func token(_ challenge: Challenge, scope: [String]) async throws -> String {
        guard let given = challenge.parameters["realm"], given.hasPrefix("http://") || given.hasPrefix("https://")
        else {
            throw ClabError("\(registry) sent a Bearer challenge without an http(s) realm: cannot get a token")
        }
        // The credentials go to the realm: only to the registry itself, or over HTTPS.
        let realm = try checked(given, what: "a token realm")
        var query: [String] = []
        if let service = challenge.parameters["service"] { query.append("service=" + Self.percentEncode(service)) }
        for s in scope { query.append("scope=" + Self.percentEncode(s)) }
        if let auth { query.append("account=" + Self.percentEncode(auth.username)) }
        var request = HTTPClientRequest(url: realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&"))
        if let auth { request.headers.add(name: "Authorization", value: auth.basic) }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(60))
        } catch {
            throw ClabError("cannot reach the token service \(realm): \(Self.describe(error))")
        }
        let body = try await Self.collect(response.body, limit: 1 << 20, what: "the token answer")
        guard response.status == .ok else {
            if response.status == .unauthorized { throw unauthorized() }
            throw ClabError("the token service \(realm) answered \(response.status.code): \(Self.errorText(body))")
        }
        struct Answer: Decodable {
            var token: String?
            var access_token: String?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(body)),
            let token = answer.token ?? answer.access_token, !token.isEmpty
        else { throw ClabError("the token service \(realm) sent no token") }
        return token
    }

    // MARK: - API

    func url(_ repository: String, _ rest: String) -> String { base + "/v2/" + repository + "/" + rest }

    static func pull(_ repository: String) -> [String] { ["repository:\(repository):pull"] }
    static func push(_ repository: String) -> [String] { ["repository:\(repository):pull,push"] }

    /// GET /v2/: is it a registry, and do the credentials work (what `clab login` tries).
    public func ping() async throws {
        let response = try await send(.GET, base + "/v2/", scope: [])
        let body = try await Self.collect(response.body, limit: 1 << 20, what: "the answer to /v2/")
        guard response.status == .ok else {
            throw ClabError(
                "\(base)/v2/ answered \(response.status.code), not 200: is \(registry) a registry? \(Self.errorText(body))"
            )
        }
    }

    /// A manifest or index: its bytes (checked against `reference` if that is a digest), its
    /// media type and its digest.
    public func manifest(_ repository: String, _ reference: String) async throws -> (
        bytes: [UInt8], mediaType: String, digest: String
    ) {
        let response = try await send(
            .GET, url(repository, "manifests/" + reference), scope: Self.pull(repository),
            headers: [("Accept", MediaType.accept)])
        let body = try await Self.collect(response.body, limit: Self.maxManifest, what: "manifest \(reference)")
        guard response.status == .ok else {
            throw ClabError(
                "\(registry)/\(repository): manifest \(reference) \(response.status == .notFound ? "not found" : "answered \(response.status.code)"): \(Self.errorText(body))",
                exitCode: response.status == .notFound ? 2 : 1)
        }
        let digest = "sha256:" + SHA256.hex(body)
        if reference.hasPrefix("sha256:"), digest != reference {
            throw ClabError(
                "digest mismatch: manifest \(reference.prefix(19)) from \(registry)/\(repository) hashes to \(digest.prefix(19)); refused"
            )
        }
        if let claimed = response.headers.first(name: "Docker-Content-Digest"), claimed.hasPrefix("sha256:"),
            claimed != digest
        {
            throw ClabError(
                "digest mismatch: \(registry) says manifest \(reference) is \(claimed.prefix(19)), its bytes hash to \(digest.prefix(19)); refused"
            )
        }
        return (body, MediaType.bare(response.headers.first(name: "Content-Type")), digest)
    }

    /// HEAD of a manifest: its digest, or nil if there is none.
    public func manifestDigest(_ repository: String, _ reference: String) async throws -> String? {
        let response = try await send(
            .HEAD, url(repository, "manifests/" + reference), scope: Self.pull(repository),
            headers: [("Accept", MediaType.accept)])
        if response.status == .notFound { return nil }
        guard response.status == .ok else {
            throw ClabError("\(registry)/\(repository): HEAD manifest \(reference) answered \(response.status.code)")
        }
        // The digest names the next request (a lab verifier fetches the manifest by it): a
        // registry's header is taken only in the form clab itself accepts.
        guard let digest = response.headers.first(name: "Docker-Content-Digest") else { return nil }
        guard OCI.isValidDigest(digest) else {
            throw ClabError(
                "\(registry)/\(repository): HEAD manifest \(reference) gave the digest '\(digest.prefix(80))', not sha256:<64 hex digits>: refused"
            )
        }
        return digest
    }

    /// The repository's tags.
    public func tags(_ repository: String) async throws -> [String] {
        let response = try await send(.GET, url(repository, "tags/list"), scope: Self.pull(repository))
        let body = try await Self.collect(response.body, limit: 4 << 20, what: "the tag list")
        if response.status == .notFound { return [] }
        guard response.status == .ok else {
            throw ClabError(
                "\(registry)/\(repository): tags/list answered \(response.status.code): \(Self.errorText(body))")
        }
        struct List: Decodable { var tags: [String]? }
        guard let list = try? JSONDecoder().decode(List.self, from: Data(body)) else {
            throw ClabError("\(registry)/\(repository): tags/list is not a tag list")
        }
        return list.tags ?? []
    }

    /// Whether the repository has the blob (HEAD), and its size there.
    public func blobSize(_ repository: String, _ digest: String) async throws -> Int? {
        let response = try await send(.HEAD, url(repository, "blobs/" + digest), scope: Self.pull(repository))
        if response.status == .notFound { return nil }
        guard response.status == .ok else {
            throw ClabError(
                "\(registry)/\(repository): HEAD blob \(digest.prefix(19)) answered \(response.status.code)")
        }
        return response.headers.first(name: "Content-Length").flatMap { Int($0) } ?? 0
    }

    /// Downloads a blob into `path` (created 0600, must not exist), hashing as it streams; more
    /// bytes than the descriptor's size, fewer, or another sha256 is an error and removes the
    /// file. `progress` gets the bytes so far.
    public func download(
        _ repository: String, digest: String, size: Int, to path: String, progress: (Int) -> Void = { _ in }
    ) async throws {
        let descriptor = (digest: digest, size: size)
        guard OCI.isValidDigest(descriptor.digest) else {
            throw ClabError("unsupported digest '\(descriptor.digest.prefix(80))' (clab reads sha256:<64 hex digits>)")
        }
        guard descriptor.size >= 0 else { throw ClabError("blob \(descriptor.digest.prefix(19)) has a negative size") }
        let response = try await send(.GET, url(repository, "blobs/" + descriptor.digest), scope: Self.pull(repository))
        guard response.status == .ok else {
            let body = try await Self.collect(response.body, limit: 64 << 10, what: "an error")
            throw ClabError(
                "\(registry)/\(repository): blob \(descriptor.digest.prefix(19)) answered \(response.status.code): \(Self.errorText(body))"
            )
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(path) }
        }
        var hash = SHA256()
        var size = 0
        var lastReport = 0
        for try await buffer in response.body {
            let (sum, overflow) = size.addingReportingOverflow(buffer.readableBytes)
            guard !overflow, sum <= descriptor.size else {
                throw ClabError(
                    "blob \(descriptor.digest.prefix(19)) from \(registry) is longer than the \(descriptor.size) bytes its manifest says: refused"
                )
            }
            let bytes = Array(buffer.readableBytesView)
            hash.update(bytes)
            try FS.writeAll(fd, bytes, what: path)
            size = sum
            if size - lastReport >= 512 << 10 || size == descriptor.size {
                progress(size)
                lastReport = size
            }
        }
        guard size == descriptor.size else {
            throw ClabError(
                "blob \(descriptor.digest.prefix(19)) from \(registry) ended after \(size) of \(descriptor.size) bytes: refused"
            )
        }
        let digest = "sha256:" + hash.finalize()
        guard digest == descriptor.digest else {
            throw ClabError(
                "digest mismatch: blob \(descriptor.digest.prefix(19)) from \(registry)/\(repository) hashes to \(digest.prefix(19)) (corrupted or tampered with): refused, nothing was stored"
            )
        }
        ok = true
    }

    /// How a blob went up.
    public enum Upload: Sendable, Equatable {
        case existed
        case mounted(from: String)
        case monolithic
        case chunked(parts: Int)
    }

    /// Uploads the file at `path` (whose sha256 is `digest`) unless the repository has it:
    /// a mount from `mountFrom` (another repository of the registry that may hold it), else
    /// POST for an upload URL, then the bytes in one PUT, or, above `chunkSize`, in PATCH
    /// chunks with Content-Range and a final PUT with the digest.
    public func upload(
        _ repository: String, path: String, digest: String, size: Int, chunkSize: Int, mountFrom: [String] = [],
        progress: (Int) -> Void = { _ in }
    ) async throws -> Upload {
        if try await blobSize(repository, digest) != nil { return .existed }
        var location: String?
        for from in mountFrom where from != repository {
            let response = try await send(
                .POST,
                url(repository, "blobs/uploads/?mount=\(digest)&from=\(Self.percentEncode(from))"),
                scope: Self.push(repository) + Self.pull(from))
            _ = try? await response.body.collect(upTo: 64 << 10)
            if response.status == .created { return .mounted(from: from) }
            if response.status == .accepted, let next = response.headers.first(name: "Location") {
                location = next  // not mounted: the registry opened an ordinary upload instead
                break
            }
        }
        if location == nil {
            let response = try await send(.POST, url(repository, "blobs/uploads/"), scope: Self.push(repository))
            let body = try await Self.collect(response.body, limit: 64 << 10, what: "an upload answer")
            guard response.status == .accepted, let next = response.headers.first(name: "Location") else {
                throw ClabError(
                    "\(registry)/\(repository): starting an upload answered \(response.status.code): \(Self.errorText(body))"
                )
            }
            location = next
        }
        guard let first = location else { throw ClabError("no upload location") }
        var upload = try checked(resolve(first), what: "an upload location")
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        defer { close(fd) }
        func readChunk(_ count: Int) throws -> ByteBuffer {
            var bytes = [UInt8](repeating: 0, count: count)
            var filled = 0
            while filled < count {
                let n = bytes.withUnsafeMutableBytes { raw in
                    raw.baseAddress.map { read(fd, $0 + filled, count - filled) } ?? -1
                }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw ClabError("\(path) is shorter than \(size) bytes") }
                filled += n
            }
            return ByteBuffer(bytes: bytes)
        }
        let chunked = size > chunkSize
        var offset = 0
        var parts = 0
        if chunked {
            while offset < size {
                let count = min(chunkSize, size - offset)
                let response = try await send(
                    .PATCH, upload, scope: Self.push(repository),
                    headers: [
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Range", "\(offset)-\(offset + count - 1)"),
                    ], body: try readChunk(count))
                let body = try await Self.collect(response.body, limit: 64 << 10, what: "an upload answer")
                guard response.status == .accepted, let next = response.headers.first(name: "Location") else {
                    throw ClabError(
                        "\(registry)/\(repository): upload chunk at \(offset) answered \(response.status.code): \(Self.errorText(body))"
                    )
                }
                upload = try checked(resolve(next), what: "an upload location")
                offset += count
                parts += 1
                progress(offset)
            }
        }
        let final = try chunked ? ByteBuffer() : readChunk(size)
        let response = try await send(
            .PUT, upload + (upload.contains("?") ? "&" : "?") + "digest=" + digest, scope: Self.push(repository),
            headers: [("Content-Type", "application/octet-stream")], body: final)
        let body = try await Self.collect(response.body, limit: 64 << 10, what: "an upload answer")
        guard response.status == .created else {
            throw ClabError(
                "\(registry)/\(repository): finishing the upload of \(digest.prefix(19)) answered \(response.status.code): \(Self.errorText(body))"
            )
        }
        if !chunked { progress(size) }
        return chunked ? .chunked(parts: parts) : .monolithic
    }

    /// PUT of a manifest under a tag (or its digest); returns the digest the registry gives it.
    @discardableResult
    public func putManifest(_ repository: String, _ reference: String, bytes: [UInt8], mediaType: String)
        async throws -> String
    {
        let response = try await send(
            .PUT, url(repository, "manifests/" + reference), scope: Self.push(repository),
            headers: [("Content-Type", mediaType)], body: ByteBuffer(bytes: bytes))
        let body = try await Self.collect(response.body, limit: 64 << 10, what: "the manifest answer")
        guard response.status == .created else {
            throw ClabError(
                "\(registry)/\(repository): PUT manifest \(reference) answered \(response.status.code): \(Self.errorText(body))"
            )
        }
        let digest = "sha256:" + SHA256.hex(bytes)
        if let given = response.headers.first(name: "Docker-Content-Digest"), given != digest {
            throw ClabError("\(registry) stored the manifest as \(given.prefix(19)), clab sent \(digest.prefix(19))")
        }
        return digest
    }

    // MARK: - Helpers

    /// A Location header: absolute, or a path on this registry.
    func resolve(_ location: String) -> String {
        location.hasPrefix("http://") || location.hasPrefix("https://") ? location : base + location
    }

    /// `url` if clab may send a request there: the registry's own origin (scheme, host and
    /// port), or, for a registry spoken to over HTTPS, another HTTPS address (a blob store or
    /// token service of a real registry). A loopback registry in plain HTTP gets nothing beyond
    /// itself: not another port (clabd's own API on --tcp), not another address, so neither its
    /// credentials nor a redirected request reach an address the user never named.
    func checked(_ url: String, what: String) throws -> String {
        guard let target = Origin(url) else {
            throw ClabError("\(registry) sent \(what) that is not an http(s) URL (\(url.prefix(120))): refused")
        }
        if target == origin || (origin.scheme == "https" && target.scheme == "https") { return url }
        throw ClabError(
            "\(registry) sent \(what) on another address (\(target.scheme)://\(target.host):\(target.port)): clab sends a plain-HTTP registry's requests only to \(base); refused"
        )
    }

    static func collect(_ body: HTTPClientResponse.Body, limit: Int, what: String) async throws -> [UInt8] {
        do {
            let buffer = try await body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw ClabError("\(what) is larger than \(limit) bytes: refused")
        }
    }

    /// A registry's error body ({"errors":[{"code","message"}]}) as one line.
    static func errorText(_ body: [UInt8]) -> String {
        struct Errors: Decodable {
            struct Entry: Decodable {
                var code: String?
                var message: String?
            }
            var errors: [Entry]?
        }
        if let errors = try? JSONDecoder().decode(Errors.self, from: Data(body)).errors, !errors.isEmpty {
            return errors.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: ": ") }.joined(
                separator: "; ")
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self).split(whereSeparator: \.isNewline).joined(
            separator: " ")
        return text.isEmpty ? "(no details)" : text
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        if let error = error as? IOError { return errnoDescription(error.errnoCode) }
        return "\(error)"
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}

/// A `WWW-Authenticate` header: its scheme (lowercased) and auth-params, quoted or not.
struct Challenge {
    var scheme = ""
    var parameters: [String: String] = [:]

    init(_ header: String) {
        let text = header.trimmingSpaces
        guard let space = text.firstIndex(of: " ") else {
            scheme = text.lowercased()
            return
        }
        scheme = text[..<space].lowercased()
        var rest = text[text.index(after: space)...]
        while !rest.isEmpty {
            while let first = rest.first, first == " " || first == "," { rest = rest.dropFirst() }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = String(rest[..<equals]).trimmingSpaces.lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let c = rest.first, c != "\"" {
                    // A backslash quotes the next character (`rest.count` here was quadratic).
                    if c == "\\", let next = rest.dropFirst().first {
                        value.append(next)
                        rest = rest.dropFirst(2)
                    } else {
                        value.append(c)
                        rest = rest.dropFirst()
                    }
                }
                rest = rest.dropFirst()
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<end]).trimmingSpaces
                rest = rest[end...]
            }
            parameters[key] = value
        }
    }
}

/// Where a URL sends a request: scheme, host (lowercased) and port (the scheme's default if
/// none). nil for anything but a plain `http(s)://host[:port]` URL, user info included (it
/// would hide the real host from a reader of the URL).
struct Origin: Equatable {
    var scheme: String
    var host: String
    var port: Int
}

extension Origin {
    init?(_ url: String) {
        let scheme: String
        if url.hasPrefix("http://") {
            scheme = "http"
        } else if url.hasPrefix("https://") {
            scheme = "https"
        } else {
            return nil
        }
        let rest = url.dropFirst(scheme.count + 3)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains("\\") else { return nil }
        var host = Substring(authority)
        var port = scheme == "https" ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let n = Int(after.dropFirst()), (1...65535).contains(n) else { return nil }
                port = n
            }
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            guard let n = Int(authority[authority.index(after: colon)...]), (1...65535).contains(n) else { return nil }
            port = n
        }
        guard !host.isEmpty else { return nil }
        self.init(scheme: scheme, host: host.lowercased(), port: port)
    }
}
