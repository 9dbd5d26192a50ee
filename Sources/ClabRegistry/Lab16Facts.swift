import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// `clabd lab16-facts REGISTRY REPOSITORY TAG...`: what the lab 16 verifier needs from the
/// registry, as one JSON line on stdout: each tag's manifest digest (or null), and for each
/// digest its number of layers. The verifier (ClabChecks, in clab, which has no HTTP client)
/// runs this and judges; a registry it cannot reach is `{"error": "..."}`.
public enum Lab16Facts {
    struct Facts: Encodable {
        var tags: [String: String?] = [:]
        var layers: [String: Int] = [:]
        var error: String?
    }

    public static func main(_ arguments: [String]) async -> Int32 {
        var facts = Facts()
        do {
            guard arguments.count >= 3 else {
                throw ClabError("usage: clabd lab16-facts REGISTRY REPOSITORY TAG...")
            }
            let registry = try RegistryReference.parseRegistry(arguments[0])
            let repository = arguments[1]
            _ = try RegistryReference(registry + "/" + repository)
            let client = RegistryClient(registry: registry, auth: nil)
            for tag in arguments.dropFirst(2) {
                let digest = try await client.manifestDigest(repository, tag)
                facts.tags[tag] = .some(digest)
                if let digest, facts.layers[digest] == nil {
                    var (bytes, mediaType, _) = try await client.manifest(repository, digest)
                    let document = try RegistryService.decodeManifest(bytes, mediaType: &mediaType, what: repository)
                    facts.layers[digest] = document.layers?.count ?? 0
                }
            }
        } catch let error as ClabError {
            facts.error = error.message
        } catch {
            facts.error = "\(error)"
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: (try? encoder.encode(facts)) ?? Data("{}".utf8), as: UTF8.self))
        return 0
    }
}
