import ClabHost
import ClabRuntime
import ClabSpec

/// Namespace identity, for every kind: the container's own for each namespace its stage adds
/// (a line of the stage that adds it), the host's for the rest (a line of the container's stage).
enum NamespaceProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        var r = ProbeList()
        let pid = c.pid
        for ns in c.stage.namespaces {
            guard let owner = Stage.all.first(where: { $0.namespace == ns }) else { continue }
            let mine = c.host.namespaces[ns] ?? "?"
            let theirs = Host.namespaceID(pid: "\(pid)", ns) ?? "?"
            r.add(
                "ns.own.\(ns.rawValue)", owner.number, "own \(ns.rawValue) namespace", theirs != "?" && theirs != mine,
                "/proc/\(pid)/ns/\(ns.rawValue) -> \(theirs); host: \(mine)")
        }
        let shared = Namespace.allCases.filter { !c.stage.has($0) }
        if !shared.isEmpty {
            let same = shared.filter { Host.namespaceID(pid: "\(pid)", $0) == c.host.namespaces[$0] }
            r.add(
                "ns.shared", c.stage.number,
                "not isolated yet (shared with the host): \(shared.map(\.rawValue).joined(separator: ", "))",
                same.count == shared.count,
                "same inode inside and on the host for: \(same.map(\.rawValue).joined(separator: ", "))")
        }
        return r.results
    }
}
