import ClabChecks
import ClabHost
import ClabImages
import ClabRuntime
import ClabSpec
import ClabSys
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

    /// A runc container from a bundle of clab's busybox image, with runc's default spec. Its
    /// cgroups: runc 1.1's fs manager joins a RELATIVE cgroupsPath to runc's own cgroup in every
    /// v1 hierarchy (libcontainer/cgroups/fs/paths.go, subsysPath; an absolute one is joined to
    /// each hierarchy's root instead, outside our cgroup). So a relative, unique path keeps
    /// everything runc creates beneath our own cgroups; the test checks that, and that nothing
    /// is left afterwards.
    @Test func runcContainerHasRuncsDefaults() throws {
        guard let runc = Host.which("runc") else {
            print("skipped: runc is not installed (apt-get install runc)")
            return
        }
        try TestEnv.ensureImage()
        let id = "clabtest-inspect-\(UUID().uuidString.prefix(8).lowercased())"
        let dir = TestEnv.root + "/" + id
        let bundle = dir + "/bundle"
        let state = dir + "/runc-state"
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        defer { try? FS.removeTree(dir) }
        let rootfs = ImageStore(layout: TestEnv.layout).rootfs(ImageStore.baseName)
        try #require(try runProcess(["/bin/cp", "-a", rootfs, bundle + "/rootfs"]).status == 0)
        try #require(try runProcess([runc, "spec"], cwd: bundle).status == 0)

        let configPath = bundle + "/config.json"
        var config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any]
            ?? [:]
        var process = config["process"] as? [String: Any] ?? [:]
        process["args"] = ["sleep", "30"]
        process["terminal"] = false
        config["process"] = process
        var linux = config["linux"] as? [String: Any] ?? [:]
        linux["cgroupsPath"] = id
        config["linux"] = linux
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))

        // Where runc may create cgroups: beneath our own in each hierarchy (/proc/self/cgroup).
        let hierarchies = Mounts.table().filter { $0.fsType == "cgroup" || $0.fsType == "cgroup2" }
        let own = ProcessInspector.parseCgroups(FS.read("/proc/self/cgroup") ?? "")
        var allowed: Set<String> = []
        for mount in hierarchies {
            let controllers = mount.superOptions.split(separator: ",").map(String.init)
            let entry: IsolationProfile.CgroupEntry?
            if mount.fsType == "cgroup2" {
                entry = own.first { $0.hierarchy == 0 }
            } else {
                entry = own.first { e in e.controllers.contains { controllers.contains($0) } }
            }
            guard let entry else { continue }
            allowed.insert(mount.mountPoint + (entry.path == "/" ? "" : entry.path) + "/" + id)
        }
        func created() throws -> [String] {
            try runProcess(["/usr/bin/find", "/sys/fs/cgroup", "-name", id, "-type", "d"]).stdout
                .split(separator: "\n").map(String.init)
        }

        let start = try runProcess(
            [
                "/bin/sh", "-c", "exec \"$0\" --root \"$1\" run -d \"$2\" </dev/null >/dev/null 2>\"$3\"", runc, state,
                id,
                dir + "/runc.err",
            ], cwd: bundle)
        defer {
            _ = try? runProcess([runc, "--root", state, "kill", id, "KILL"])
            _ = try? runProcess([runc, "--root", state, "delete", "-f", id])
            // Nothing left: no cgroup (ours, by its unique name), no mount, no state.
            let left = (try? created()) ?? []
            #expect(left.isEmpty, "cgroups left: \(left)")
            for path in left.sorted(by: { $0.count > $1.count }) { rmdir(path) }
            #expect(!(FS.read("/proc/self/mountinfo") ?? "").contains(dir), "a mount of the bundle is left")
            #expect(!FS.exists(state + "/" + id), "runc's state is left")
        }
        try #require(start.status == 0, "runc run: \(FS.read(dir + "/runc.err") ?? "")")
        let stateJSON = try runProcess([runc, "--root", state, "state", id]).stdout
        let pid = (try JSONSerialization.jsonObject(with: Data(stateJSON.utf8)) as? [String: Any])?["pid"] as? Int
        try #require(pid != nil, "runc state: \(stateJSON)")
        guard let pid else { return }

        let made = try created()
        #expect(!made.isEmpty)
        for path in made { #expect(allowed.contains(path), "runc created \(path), outside our own cgroups") }

        let p = try ProcessInspector(pid: Int32(pid)).profile()
        // runc's defaults: no user namespace, its own pid/mnt/ipc/uts/net.
        #expect(p.namespace("user")?.sharedWithHost == true)
        #expect(p.uidMap.kind == "identity" && p.uidMap.rootHostID == 0)
        for type in ["pid", "mnt", "ipc", "uts", "net"] {
            #expect(p.namespace(type)?.sharedWithHost == false, "\(type)")
        }
        #expect(p.capabilities.effective.names == ["KILL", "NET_BIND_SERVICE", "AUDIT_WRITE"])
        #expect(p.capabilities.bounding.summary == "KILL NET_BIND_SERVICE AUDIT_WRITE")
        #expect(p.noNewPrivs)
        #expect(p.root.kind == "pivoted", "\(p.root)")
        #expect(p.cgroups.contains { $0.path.hasSuffix("/" + id) })
        for path in p.maskedPaths where FS.exists(path.path) {
            #expect(path.state == "masked", "\(path.path): \(path.state)")
        }
        #expect(p.readOnlyPaths.first { $0.path == "/proc/sys" }?.state == "read_only")
        let verdicts = Dictionary(uniqueKeysWithValues: p.verdicts.map { ($0.risk, $0) })
        #expect(
            verdicts["root"]?.text
                == "root on the host: uid 0 not remapped, capabilities KILL NET_BIND_SERVICE AUDIT_WRITE")
        #expect(verdicts["mount"]?.contained == true && verdicts["no_new_privs"]?.contained == true)
    }

    /// Stage 12's hardening as the host sees it. Runs once stage 12 is in the catalogue (main
    /// adds it); before that it says why it skips.
    @Test func stage12ContainerIsHardened() throws {
        guard Stage.all.count >= 12 else {
            print("skipped: stage 12 is not in this build's catalogue yet")
            return
        }
        try TestEnv.ensureImage()
        let run = try BackgroundClab(["step", "12", "--quiet", "--", "sleep", "30"])
        defer { run.stop() }
        let found = Self.child(of: run.pid, named: "sleep")
        try #require(found != nil, "no container process: \(run.output)")
        guard let pid = found else { return }
        let p = try ProcessInspector(pid: pid).profile()
        let docker = Capability.dockerDefault.sorted().map(\.name)
        #expect(p.capabilities.effective.names == docker)
        #expect(p.capabilities.effective.summary == "Docker default 14")
        #expect(p.capabilities.bounding.summary == "Docker default 14")
        #expect(p.capabilities.ambient.summary == "none")
        #expect(p.noNewPrivs)
        let verdicts = Dictionary(uniqueKeysWithValues: p.verdicts.map { ($0.risk, $0) })
        #expect(p.seccomp.mode == 2 && p.seccomp.filters >= 1, "\(p.seccomp)")
        #expect(verdicts["seccomp"]?.contained == true)
        // Paths the container cannot see at all (no /sys mounted) are "absent"; none is exposed.
        for path in p.maskedPaths { #expect(path.state != "exposed", "\(path.path): \(path.state)") }
        #expect(p.maskedPaths.first { $0.path == "/proc/keys" }?.state == "masked")
        #expect(p.readOnlyPaths.first { $0.path == "/proc/sys" }?.state == "read_only")
        #expect(p.namespace("cgroup")?.sharedWithHost == false)
        #expect(p.namespace("user")?.sharedWithHost == false)
        #expect(verdicts["masked_paths"]?.contained == true)
    }
}
