import ClabChecks
import ClabCore
import Foundation
import Glibc
import Testing

/// `clab inspect PID`: the same facts for a host shell, a clab container and a runc container,
/// each checked against what made it.
@Suite("Inspect", .serialized, needsRoot)
struct InspectTests {
    /// The first process named `comm` whose parent is `parent` (a clab's container process).
    static func child(of parent: pid_t, named comm: String, seconds: Double = 20) -> pid_t? {
        var found: pid_t?
        _ = eventually(seconds) {
            let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
            found = pids.first { Host.parentPid($0) == parent && FS.read("/proc/\($0)/comm")?.trimmed == comm }
            return found != nil
        }
        return found
    }

    static func ownMask(_ key: String) -> String {
        let line = (FS.read("/proc/self/status") ?? "").split(separator: "\n").first { $0.hasPrefix(key + ":") }
        let hex = line.map { String($0.dropFirst(key.count + 1)).trimmed } ?? ""
        return hex
    }

    @Test func hostShellSharesEverythingWithTheHost() throws {
        let sleeper = try BackgroundClab(["30"], command: "/bin/sleep")
        defer { sleeper.stop(signal: SIGKILL) }
        #expect(eventually { FS.read("/proc/\(sleeper.pid)/comm")?.trimmed == "sleep" })
        let p = try ProcessInspector(pid: sleeper.pid).profile()
        #expect(p.namespaces.count == 8)
        for ns in p.namespaces { #expect(ns.sharedWithHost, "\(ns.type)") }
        #expect(p.uidMap.kind == "identity" && p.uidMap.rootHostID == 0)
        // "All" is what the host allows: this machine's own bounding set may lack a bit.
        #expect(p.capabilities.effective.mask == Self.ownMask("CapEff"))
        #expect(p.capabilities.effective.summary.hasPrefix("all 41"), "\(p.capabilities.effective.summary)")
        #expect(p.seccomp.mode == 0 && p.seccomp.filters == 0 && !p.noNewPrivs)
        #expect(p.root.kind == "host")
        let verdicts = Dictionary(uniqueKeysWithValues: p.verdicts.map { ($0.risk, $0) })
        #expect(verdicts["root"]?.text == "full root on the host: uid 0 not remapped, all capabilities")
        #expect(verdicts["seccomp"]?.text == "seccomp off: every syscall allowed")
        #expect(verdicts["net"]?.contained == false)

        // The command's JSON: the documented keys, snake_case.
        let out = try clab("inspect", "--json", "\(sleeper.pid)")
        #expect(out.status == 0, "\(out.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any] ?? [:]
        for key in [
            "pid", "command", "ns_pids", "uids", "gids", "namespaces", "uid_map", "gid_map", "capabilities",
            "no_new_privs", "seccomp", "cgroups", "limits", "root", "masked_paths", "read_only_paths", "lsm",
            "verdicts",
        ] {
            #expect(json[key] != nil, "missing \(key)")
        }
        let namespaces = json["namespaces"] as? [[String: Any]] ?? []
        #expect(namespaces.first?["shared_with_host"] as? Bool == true)
        let text = try clab("inspect", "\(sleeper.pid)")
        #expect(text.status == 0 && text.stdout.contains("✗ full root on the host"), "\(text.stdout)")
    }

    @Test func badInputIsOneLine() throws {
        for (arg, expected) in [
            ("999999999", "no process 999999999"), ("abc", "abc is not a pid"), ("0", "0 is not a pid"),
        ] {
            let out = try clab("inspect", arg)
            #expect(out.status != 0)
            #expect(out.stdout.isEmpty)
            let lines = out.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines.first?.contains(expected) == true, "\(out.stderr)")
        }
    }

    @Test func stage11ContainerOwnsItsNamespacesAndIsShifted() throws {
        try TestEnv.ensureImage()
        let run = try BackgroundClab(["step", "11", "--quiet", "--", "sleep", "30"])
        defer { run.stop() }
        let found = Self.child(of: run.pid, named: "sleep")
        try #require(found != nil, "no container process: \(run.output)")
        guard let pid = found else { return }
        let p = try ProcessInspector(pid: pid).profile()
        for type in ["user", "mnt", "pid", "net", "ipc", "uts"] {
            #expect(p.namespace(type)?.sharedWithHost == false, "\(type)")
        }
        #expect(p.uidMap.kind == "shifted" && p.uidMap.rootHostID == IDMapping.defaultRange.host)
        #expect(p.gidMap.kind == "shifted")
        #expect(p.uids.first == IDMapping.defaultRange.host)
        #expect(p.nsPids.last == 1)
        #expect(p.root.kind == "pivoted", "\(p.root)")
        let verdicts = Dictionary(uniqueKeysWithValues: p.verdicts.map { ($0.risk, $0) })
        #expect(verdicts["root"]?.contained == true)
        #expect(verdicts["mount"]?.text == "can mount: SYS_ADMIN in its user namespace (only what that namespace owns)")
        #expect(p.limits.first { $0.resource == "pids" }?.unlimited == false)
    }
}
