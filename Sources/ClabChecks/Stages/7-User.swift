import ClabSys

/// Stage 7: root inside is an unprivileged uid outside: both id maps, uid 0 inside, and the
/// owner on the host of a file made inside.
enum UserProbes {
    static func evaluate(_ c: ProbeContext) -> [ProbeResult] {
        guard c.stage.has(.user), let map = c.spec.idMapping else { return [] }
        var r = ProbeList()
        let f = c.facts
        let pid = c.pid
        for file in ["uid_map", "gid_map"] {
            let text = (FS.read("/proc/\(pid)/\(file)") ?? "").split(whereSeparator: \.isWhitespace).joined(
                separator: " ")
            let want = "\(map.inside) \(map.host) \(map.count)"
            r.add(
                "user.root-mapped.\(file)", 7, "\(file) maps container root to \(map.host)", text == want,
                "/proc/\(pid)/\(file): \(text)")
        }
        r.add(
            "user.root-inside", 7, "the command runs as root inside", f["uid"] == "0",
            "inside: id -u = \(f["uid"] ?? "?")")
        let owner = FS.lstat("/tmp/\(c.tag)", inRoot: "/proc/\(pid)/root").map { Int($0.st_uid) } ?? -1
        r.add(
            "user.file-owner-mapped", 7, "a file created inside belongs to uid \(map.host) on the host",
            f["touch"] == "ok" && owner == Int(map.host),
            "touch /tmp/\(c.tag) inside; host: owner uid \(owner)")
        return r.results
    }
}
