import ClabHost
import ClabImages
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 16: an image of the learner's own in a registry under two tags, pulled back by digest.
/// The learner builds an image on busybox (one layer more), tags it REGISTRY/lab16:v1 and
/// REGISTRY/lab16:stable, pushes both, and pulls REGISTRY/lab16@sha256:<digest>.
///
/// The verifier asks the registry itself (through clabd, which has the HTTP client: clab has
/// none) for each tag's manifest digest and that manifest's layers, and reads clab's image
/// store for the image pulled by digest. It runs nothing of the learner's.
public enum Lab16Verifier {
    public static let repository = "lab16"
    public static let tags = ["v1", "stable"]

    public enum Property {
        public static let reachable = ProbeName(
            id: "lab16.registry-up", wording: "the registry answers (Distribution API v2)")
        public static let v1 = ProbeName(id: "lab16.tag.v1", wording: "lab16:v1 is in the registry")
        public static let stable = ProbeName(id: "lab16.tag.stable", wording: "lab16:stable is in the registry")
        public static let same = ProbeName(
            id: "lab16.same-digest", wording: "v1 and stable name the same manifest digest")
        public static let own = ProbeName(
            id: "lab16.own-image", wording: "the image is your own: more layers than busybox's one")
        public static let pulled = ProbeName(
            id: "lab16.pulled-by-digest", wording: "the image was pulled back by digest (REGISTRY/lab16@sha256:…)")
    }

    /// What `clabd lab16-facts` reports.
    struct Facts: Decodable {
        var tags: [String: String?]?
        var layers: [String: Int]?
        var error: String?
    }

    public static func verify(registry: String, layouts: [StateLayout]) -> [ProbeResult] {
        let facts: Facts
        do {
            let (status, output) = try Clabd.run(["lab16-facts", registry, repository] + tags)
            let json = output.split(separator: "\n").last.map(String.init) ?? ""
            guard status == 0, let decoded = try? JSONDecoder().decode(Facts.self, from: Data(json.utf8)) else {
                throw ClabError("clabd lab16-facts failed (status \(status)): \(output.prefix(200))")
            }
            facts = decoded
        } catch {
            facts = Facts(tags: nil, layers: nil, error: "\(error)")
        }
        return judge(facts, registry: registry, images: layouts.map { ImageStore(layout: $0) })
    }

    static func judge(_ facts: Facts, registry: String, images: [ImageStore]) -> [ProbeResult] {
        var r = LabResults(stage: 14)
        let name = "\(registry)/\(repository)"
        let rest = [Property.v1, Property.stable, Property.same, Property.own, Property.pulled]
        if let error = facts.error {
            r.add(
                Property.reachable, false, error,
                fix:
                    "start the registry (docker-registry serve DIR/config.yml, listening on \(registry)) and give its address with --registry"
            )
            for p in rest { r.notChecked(p, "the registry did not answer", fix: "see the first line") }
            return r.results
        }
        r.add(Property.reachable, true, "http://\(registry)/v2/ answered", fix: "")
        let digests = facts.tags ?? [:]
        for (tag, property) in zip(tags, [Property.v1, Property.stable]) {
            if let digest = digests[tag] ?? nil {
                r.add(property, true, "\(name):\(tag) → \(digest)", fix: "")
            } else {
                r.add(
                    property, false, "the registry has no manifest for \(name):\(tag)",
                    fix: "clab image tag YOURIMAGE \(name):\(tag) && clab push \(name):\(tag)")
            }
        }
        let v1 = digests["v1"] ?? nil
        let stable = digests["stable"] ?? nil
        if let v1, let stable {
            r.add(
                Property.same, v1 == stable,
                v1 == stable
                    ? "both tags → \(v1)"
                    : "v1 → \(v1.prefix(19))…, stable → \(stable.prefix(19))…: two different images",
                fix:
                    "a tag is a name for a manifest: tag the one image twice (clab image tag \(name):v1 \(name):stable) and push stable again"
            )
        } else {
            r.notChecked(Property.same, "a tag is missing", fix: "push both tags first")
        }
        if let digest = v1 ?? stable {
            let layers = facts.layers?[digest] ?? 0
            r.add(
                Property.own, layers >= 2,
                "manifest \(digest.prefix(19))… has \(layers) layer\(layers == 1 ? "" : "s")",
                fix:
                    "push an image you built FROM busybox with a change (a Clabfile with COPY or RUN: clab image build -t lab16 DIR), not busybox itself"
            )
            let pulledRef = "\(name)@\(digest)"
            let found = images.contains { (try? $0.resolve(pulledRef)) != nil }
            r.add(
                Property.pulled, found,
                found
                    ? "the store holds \(pulledRef.prefix(60))…"
                    : "no image \(name)@\(digest.prefix(19))… in the image store (`clab image ls`)",
                fix: "clab pull \(name)@\(digest) (the digest `clab push` printed)")
        } else {
            r.notChecked(Property.own, "no tag to read", fix: "push both tags first")
            r.notChecked(Property.pulled, "no digest to look for", fix: "push, then pull by the digest push printed")
        }
        return r.results
    }
}
