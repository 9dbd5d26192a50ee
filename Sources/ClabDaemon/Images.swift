import ClabHost
import ClabImages
import ClabRegistry
import ClabRuntime
import ClabSys
import Dispatch
import FoundationEssentials
import NIOCore
import NIOHTTP1
import Synchronization

/// /images/...: list, inspect, tag, remove from clab's image store; pull and push through the
/// registry client (ClabRegistry), answered as Docker's JSON progress stream.
extension Engine {
    func images(_ request: Request, _ parts: [String], _ unsupported: () -> APIError) throws -> Reply {
        let store = ImageStore(layout: layout)
        // The built-in image names itself on first use: a store that has it lists it.
        if FS.exists(store.imageDir(ImageStore.baseName) + "/image.json") {
            _ = try? store.resolve(ImageStore.baseName)
        }
        let method = request.method
        if parts == ["json"] && method == .GET { return .json(.ok, listImages(store)) }
        if parts == ["create"] && method == .POST {
            guard let from = request.query["fromImage"], !from.isEmpty else {
                throw APIError(.notImplemented, "only pulls are supported here (fromImage=): no import (fromSrc=)")
            }
            let tag = request.query["tag"] ?? ""
            let reference = from + (tag.isEmpty ? "" : (tag.hasPrefix("sha256:") ? "@" : ":") + tag)
            return try transfer(pull: true, reference, request)
        }
        guard parts.count >= 2 || method == .DELETE else { throw unsupported() }
        // Names may hold slashes (localhost:5000/bb): the action is the last part.
        let action = method == .DELETE ? "" : parts.last ?? ""
        let name = (method == .DELETE ? parts : Array(parts.dropLast())).joined(separator: "/")
        switch (method, action) {
        case (.GET, "json"):
            let (id, config) = try resolve(store, name)
            return .json(.ok, inspectImage(store, id: id, config: config))
        case (.POST, "tag"):
            let (id, _) = try resolve(store, name)
            guard let repo = request.query["repo"], !repo.isEmpty else {
                throw APIError(.badRequest, "tag needs repo= (and tag=)")
            }
            let target =
                Self.local(repo) + ":"
                + ((request.query["tag"] ?? "").isEmpty ? "latest" : request.query["tag"] ?? "latest")
            do {
                try store.tag(id, as: try ImageRef.parse(target))
            } catch let error as ClabError {
                throw APIError(.badRequest, error.message)
            }
            return .empty(.created)
        case (.POST, "push"):
            let tag = request.query["tag"] ?? ""
            return try transfer(pull: false, name + ":" + (tag.isEmpty ? "latest" : tag), request)
        case (.DELETE, ""):
            let (id, _) = try resolve(store, name)
            let ref = (try? ImageRef.parse(Self.local(name)))?.description ?? name
            do {
                try store.remove(ref)
            } catch let error as ClabError {
                throw APIError(.conflict, error.message)
            }
            var out: [JSON] = [.object([("Untagged", .string(ref))])]
            if !store.refs().contains(where: { $0.id == id }) { out.append(.object([("Deleted", .string(id))])) }
            return .json(.ok, .array(out))
        default:
            throw unsupported()
        }
    }

    /// A pull or push as Docker's progress stream: one JSON object per line, an error line at
    /// the end if it failed (the CLI prints it and exits non-zero). Docker Hub, the CLI's
    /// default for a bare name, is never contacted: clab names its registries.
    func transfer(pull: Bool, _ reference: String, _ request: Request) throws -> Reply {
        for hub in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] where reference.hasPrefix(hub) {
            let bare = Self.local(reference)
            throw APIError(
                .notFound,
                "clab's daemon does not \(pull ? "pull from" : "push to") Docker Hub: name a registry, e.g. localhost:5000/\(bare) (\(pull ? "no such image here: " + bare : ""))"
            )
        }
        let auth: RegistryAuth?
        do {
            auth = try request.headers.first(name: "X-Registry-Auth").flatMap { try RegistryAuth.fromXRegistryAuth($0) }
        } catch let error as ClabError {
            throw APIError(.badRequest, error.message)
        }
        let service = RegistryService(layout: layout)
        return .stream(contentType: "application/json") { writer in
            let encoder = JSONEncoder()
            let sink: ProgressSink = { message in
                if let line = try? encoder.encode(message) { writer.send(Array(line) + [0x0a]) }
            }
            let done = DispatchSemaphore(value: 0)
            let failure = Mutex<String?>(nil)
            Task {
                do {
                    if pull {
                        let pulled = try await service.pull(reference, auth: auth, progress: sink)
                        sink(ProgressMessage(status: "Digest: \(pulled.digest)"))
                        sink(ProgressMessage(status: "Status: Downloaded newer image for \(pulled.ref)"))
                    } else {
                        _ = try await service.push(reference, auth: auth, progress: sink)
                    }
                } catch {
                    let message = (error as? ClabError)?.message ?? "\(error)"
                    failure.withLock { $0 = message }
                }
                done.signal()
            }
            done.wait()
            if let message = failure.withLock({ $0 }) { sink(ProgressMessage(error: message)) }
            try writer.write([])
        }
    }

    /// `docker login REGISTRY`: the credentials are tried against the registry (GET /v2/, as
    /// `clab login` does), then stored in clab's own credential file (0600), where clabd's
    /// pulls and pushes find them when the CLI sends none. Docker Hub is never contacted.
    func login(_ request: Request) throws -> Reply {
        let body = try request.json()
        guard let user = body["username"].string, !user.isEmpty, !user.contains(":"),
            let password = body["password"].string, !password.isEmpty
        else {
            throw APIError(.badRequest, "give a user name (no ':') and a password")
        }
        var address = body["serveraddress"].string ?? ""
        for suffix in ["/v1/", "/v2/"] where address.hasSuffix(suffix) { address.removeLast(suffix.count - 1) }
        let host: String
        do {
            host = try RegistryReference.parseRegistry(address)
        } catch let error as ClabError {
            throw APIError(.badRequest, error.message)
        }
        guard !["docker.io", "index.docker.io", "registry-1.docker.io"].contains(host) else {
            throw APIError(
                .badRequest, "clab's daemon does not log in to Docker Hub: name a registry, e.g. localhost:5000")
        }
        let auth = RegistryAuth(username: user, password: password)
        let done = DispatchSemaphore(value: 0)
        let failure = Mutex<String?>(nil)
        Task {
            do {
                try await RegistryClient(registry: host, auth: auth).ping()
            } catch {
                failure.withLock { $0 = (error as? ClabError)?.message ?? "\(error)" }
            }
            done.signal()
        }
        done.wait()
        if let message = failure.withLock({ $0 }) { throw APIError(.unauthorized, message) }
        do {
            try CredentialStore(layout: layout).store(auth, for: host)
        } catch let error as ClabError {
            throw APIError(.internalServerError, error.message)
        }
        return .json(.ok, .object([("Status", .string("Login Succeeded")), ("IdentityToken", .string(""))]))
    }

    func resolve(_ store: ImageStore, _ name: String) throws -> (String, ImageConfig) {
        do {
            return try store.resolve(try imageName(name))
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.notFound, "No such image: \(name)")
        }
    }

    func listImages(_ store: ImageStore) -> JSON {
        var byID: [(String, [String])] = []
        for (ref, id) in store.refs() {
            if let i = byID.firstIndex(where: { $0.0 == id }) {
                byID[i].1.append(ref.description)
            } else {
                byID.append((id, [ref.description]))
            }
        }
        return .array(
            byID.compactMap { id, tags in
                guard let config = try? store.config(id: id) else { return nil }
                let size = config.layers.reduce(0) { $0 + store.layerStore.size($1) }
                return .object([
                    ("Id", .string(id)), ("ParentId", .string("")), ("RepoTags", .strings(tags)),
                    ("RepoDigests", .array([])), ("Created", .int(Self.epoch(config.created))), ("Size", .int(size)),
                    ("SharedSize", .int(-1)), ("VirtualSize", .int(size)), ("Labels", .object([])),
                    ("Containers", .int(-1)),
                ])
            })
    }

    func inspectImage(_ store: ImageStore, id: String, config: ImageConfig) -> JSON {
        let size = config.layers.reduce(0) { $0 + store.layerStore.size($1) }
        let tags = store.refs().filter { $0.id == id }.map(\.ref.description)
        let imageConfig: JSON = .object([
            ("Env", .strings(config.env)), ("Cmd", config.cmd.map { .strings($0) } ?? .null),
            ("WorkingDir", .string(config.workdir ?? "")), ("Entrypoint", .null), ("Labels", .null),
        ])
        return .object([
            ("Id", .string(id)), ("RepoTags", .strings(tags)), ("RepoDigests", .array([])), ("Parent", .string("")),
            ("Comment", .string("")), ("Created", .string(config.created)), ("DockerVersion", .string("")),
            ("Author", .string("")), ("Config", imageConfig), ("Architecture", .string("amd64")),
            ("Os", .string("linux")), ("Size", .int(size)), ("VirtualSize", .int(size)),
            ("GraphDriver", .object([("Data", .null), ("Name", .string("overlay"))])),
            ("RootFS", .object([("Type", .string("layers")), ("Layers", .strings(config.layers))])),
            ("Metadata", .object([("LastTagTime", .string(""))])),
        ])
    }

    /// "2024-01-02T03:04:05Z" → seconds since the epoch (0 if unreadable).
    static func epoch(_ text: String) -> Int {
        (try? Date(text, strategy: .iso8601)).map { Int($0.timeIntervalSince1970) } ?? 0
    }
}
