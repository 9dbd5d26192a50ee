import ArgumentParser
import ClabChecks
import ClabHost
import ClabRuntime
import ClabSys
import FoundationEssentials

/// `clab inspect PID [--json]`: the isolation profile of any process against the host, read from
/// /proc only (IsolationProfile documents the facts and the JSON keys).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "How isolated a process is from the host: clab's, runc's, Docker's, or a host shell.",
        discussion: """
            Reads /proc/PID only (never runs or writes anything of the process): namespaces, uid/gid maps, \
            capability sets, no_new_privs, seccomp, cgroups and their limits, its root, Docker's masked and \
            read-only paths, the LSM label, and a verdict per risk. Give a host pid (see `ps -ef`, `clab ps`).

            --json keys (stable, snake_case): pid, command, ns_pids, uids, gids, namespaces[] {type, inode, \
            host_inode, shared_with_host}, uid_map and gid_map {ranges[] {inside, outside, count}, kind, \
            root_host_id}, capabilities {inheritable, permitted, effective, bounding, ambient: {mask, names, \
            unknown_bits, summary}}, no_new_privs, seccomp {mode, mode_name, filters}, cgroups[] {hierarchy, \
            controllers, path}, limits[] {resource, unlimited, value, file}, root {kind, fs_type, source, detail}, \
            masked_paths[] and read_only_paths[] {path, state, how}, lsm, verdicts[] {risk, contained, text}.
            """)

    @Argument(help: "The host pid of the process.")
    var pid: String

    @Flag(help: "Print the profile as JSON (keys above).")
    var json = false

    func run() throws {
        guard let number = Int32(pid), number > 0 else {
            throw ClabError(
                "\(Self.escaped(pid)) is not a pid: give a process id as the host sees it (see `ps -ef` or `clab ps`)",
                exitCode: 2)
        }
        guard Host.startTime(pid: number) != nil else {
            throw ClabError(
                "no process \(number): give the pid of a running process as the host sees it (see `ps -ef`)")
        }
        let profile = try ProcessInspector(pid: number).profile()
        print(json ? try profile.json() : Self.render(profile))
    }

    /// The text form: aligned sections, for a student reading it top to bottom.
    static func render(_ p: IsolationProfile) -> String {
        var lines: [String] = []
        func section(_ title: String) { lines.append(title) }
        // Every value is escaped, whatever its origin: mount sources, paths and labels are the process's.
        func row(_ key: String, _ value: String, width: Int = 14) {
            lines.append("  " + pad(key, width) + Self.escaped(value))
        }

        let chain = p.nsPids.count > 1 ? " (pid \(p.nsPids.map(String.init).joined(separator: " → ")) inside)" : ""
        lines.append("process \(p.pid) \(Self.escaped(p.command))\(chain), measured against the host (clab's own view)")

        section("namespaces")
        for ns in p.namespaces {
            let inode = ns.inode.map(String.init) ?? "?"
            row(
                ns.type,
                pad(inode, 12)
                    + (ns.sharedWithHost ? "host's" : "own (host: \(ns.hostInode.map(String.init) ?? "?"))"), width: 8)
        }

        section("users")
        row(
            "uid/gid",
            "uid \(p.uids.map(String.init).joined(separator: " ")), gid \(p.gids.map(String.init).joined(separator: " ")) on the host (real effective saved fs)"
        )
        for (name, map) in [("uid_map", p.uidMap), ("gid_map", p.gidMap)] {
            let ranges = map.ranges.map { "\($0.inside) \($0.outside) \($0.count)" }.joined(separator: "; ")
            let root = map.rootHostID.map { "root is host id \($0)" } ?? "root unmapped"
            row(name, "\(ranges.isEmpty ? "-" : ranges)  (\(map.kind), \(root))")
        }

        section("capabilities")
        let sets = p.capabilities
        for (name, set) in [
            ("effective", sets.effective), ("permitted", sets.permitted), ("inheritable", sets.inheritable),
            ("bounding", sets.bounding), ("ambient", sets.ambient),
        ] {
            row(name, pad(set.mask, 18) + set.summary)
        }

        section("security")
        row("no_new_privs", p.noNewPrivs ? "1" : "0")
        row(
            "seccomp",
            "\(p.seccomp.mode) (\(p.seccomp.modeName)), \(p.seccomp.filters) filter\(p.seccomp.filters == 1 ? "" : "s")"
        )
        row("lsm", p.lsm)

        section("cgroups")
        for cgroup in p.cgroups {
            row(
                cgroup.controllers.isEmpty ? "(v2)" : cgroup.controllers.joined(separator: ","),
                Self.escaped(cgroup.path))
        }
        section("limits (the tightest on the way up)")
        for limit in p.limits {
            row(limit.resource, limit.unlimited ? "unlimited" : Self.describe(limit))
        }

        section("root")
        row(p.root.kind, p.root.detail)

        section("masked paths (Docker's)")
        for path in p.maskedPaths { row(path.path, path.state + (path.how.map { " (\($0))" } ?? ""), width: 32) }
        section("read-only paths (Docker's)")
        for path in p.readOnlyPaths {
            row(path.path, path.state.replacing("_", with: "-") + (path.how.map { " (\($0))" } ?? ""), width: 32)
        }

        section("verdict")
        for verdict in p.verdicts { lines.append("  \(verdict.contained ? "✓" : "✗") \(Self.escaped(verdict.text))") }
        return lines.joined(separator: "\n")
    }

    static func describe(_ limit: IsolationProfile.Limit) -> String {
        let source = limit.file.map { "  (\(Self.escaped($0)))" } ?? ""
        switch limit.resource {
        case "memory":
            guard let bytes = Double(limit.value) else { return limit.value + source }
            return "\(Int(bytes)) bytes (\(Int(bytes / 1_048_576)) MiB)" + source
        case "cpu":
            let f = limit.value.split(separator: "/").compactMap { Double($0) }
            guard f.count == 2, f[1] > 0 else { return limit.value + source }
            return "\(limit.value) µs (\(Double(Int(f[0] / f[1] * 100)) / 100) CPUs)" + source
        default:
            return limit.value + source
        }
    }

    /// What the process controls (its name, cgroup path, label) is shown with control bytes escaped.
    /// C0, DEL and C1 (U+0080-U+009F: a terminal may read U+009B as CSI).
    static func escaped(_ text: String) -> String {
        text.unicodeScalars.map {
            $0.value < 0x20 || (0x7f...0x9f).contains($0.value) ? "\\x" + String($0.value, radix: 16) : String($0)
        }
        .joined()
    }
}
