import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials
import Glibc

/// Lab 7: a user namespace whose maps the learner wrote by hand. Root inside must be uid 300000
/// on the host (65536 ids from there, for uids and gids), and the process must really run as
/// that root: a map names ids, it does not change the ids of a process that already runs.
/// Everything is read from the host's /proc/<pid>; nothing of the process is executed.
public enum Lab7Verifier {
    public static let hostBase = 300_000
    public static let count = 65_536
    static var wantedMap: String { "0 \(hostBase) \(count)" }

    public static func verify(pid: Int32, layouts: [StateLayout]) throws -> [ProbeResult] {
        let p = try ProcessInspector(pid: pid)
        var r = LabResults(byHand: pid, layouts: layouts, stage: 7)
        let ownUser = r.addOwns(
            p, .user, "own user namespace",
            fix:
                "start it with unshare --user (as uid \(hostBase): setpriv --reuid=\(hostBase) --regid=\(hostBase) --clear-groups unshare --user ...)"
        )
        for (file, kind) in [("uid_map", "uid"), ("gid_map", "gid")] {
            let property = ProbeName(
                id: "lab7.map.\(file)", wording: "\(file) maps \(kind) 0 to \(hostBase), \(count) ids")
            guard let text = FS.read("/proc/\(pid)/\(file)") else {
                r.notChecked(property, "cannot read /proc/\(pid)/\(file)", fix: "give the pid of a running process")
                continue
            }
            let lines = text.split(separator: "\n").map {
                $0.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            }
            let shown = lines.isEmpty ? "empty: no map written yet" : lines.joined(separator: "; ")
            let write = "echo '\(wantedMap)' > /proc/\(pid)/\(file), as root on the host (a map is written once)"
            r.add(
                property, ownUser && lines == [wantedMap], "/proc/\(pid)/\(file): \(shown)",
                fix: !ownUser
                    ? "it shares the host's user namespace, whose map is the identity: unshare --user first"
                    : lines.isEmpty
                        ? write : "the map must be exactly one line, \(wantedMap): make a new namespace and \(write)")
        }
        let status = Host.status(pid: "\(pid)") ?? [:]
        for (field, kind) in [("Uid", "uid"), ("Gid", "gid")] {
            let property = ProbeName(
                id: "lab7.root-inside.\(kind)", wording: "it runs as root inside: \(kind) \(hostBase) on the host")
            guard let line = status[field] else {
                r.notChecked(property, "cannot read /proc/\(pid)/status", fix: "give the pid of a running process")
                continue
            }
            let ids = line.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
            let ok = ids.count == 4 && ids.allSatisfy { $0 == hostBase }
            let fix =
                ids.contains(0)
                ? "it is still the host's root (\(kind) 0): a map does not change the ids of a running process. Create the namespace as uid \(hostBase) (setpriv --reuid=\(hostBase) --regid=\(hostBase) --clear-groups unshare --user ...), then write the maps"
                : "its \(kind)s must all be \(hostBase) on the host (root inside): start it as \(hostBase), or setresuid(0) inside after the maps are written"
            r.add(
                property, ok, "/proc/\(pid)/status \(field): \(ids.map(String.init).joined(separator: " "))", fix: fix)
        }
        let effective = UInt64(status["CapEff"] ?? "", radix: 16)
        let bounding = UInt64(status["CapBnd"] ?? "", radix: 16)
        r.add(
            "lab7.capabilities-in-ns", "root inside holds its capabilities, in its own namespace only",
            ownUser && effective != nil && effective != 0 && effective == bounding,
            "/proc/\(pid)/status CapEff: \(status["CapEff"] ?? "?"), CapBnd: \(status["CapBnd"] ?? "?")",
            fix:
                "exec the final program after both maps are written, as the mapped root: execve by an id the map does not hold (here: not uid 300000) keeps no capabilities"
        )
        return r.results
    }
}
