import ClabCore
import FoundationEssentials
import NIOCore
import NIOHTTP1

/// /images/...: list, inspect, tag, remove from clab's image store. Pull and push need the
/// registry client (ClabRegistry); until it is wired in they answer 501.
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
            throw APIError(
                .notImplemented,
                "clab's daemon cannot pull yet (no registry client in this build): images come from `clab image` (busybox is built in)"
            )
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
            throw APIError(.notImplemented, "clab's daemon cannot push yet (no registry client in this build)")
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
