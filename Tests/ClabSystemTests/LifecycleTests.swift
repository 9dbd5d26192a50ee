import Foundation
import Glibc
import Testing

@testable import ClabHost
@testable import ClabRuntime
@testable import ClabSpec
@testable import ClabSys

/// Checks a document against the rules of opencontainers/runtime-spec schema/state-schema.json
/// (draft-04): an object; required ociVersion, id, status, bundle; ociVersion, id, bundle
/// strings; status one of creating/created/running/stopped; pid an integer ≥ 0; annotations a
/// map of strings to strings (defs.json mapStringString, keys of at least one character) or null.
/// The spec's prose adds: pid is required while created or running.
func stateSchemaViolations(_ text: String) -> [String] {
    guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        return ["not a JSON object"]
    }
    var bad: [String] = []
    for key in ["ociVersion", "id", "status", "bundle"] where object[key] == nil { bad.append("missing \(key)") }
    for key in ["ociVersion", "id", "bundle", "status"] where object[key] != nil && !(object[key] is String) {
        bad.append("\(key) not a string")
    }
    let status = object["status"] as? String
    if let status, !["creating", "created", "running", "stopped"].contains(status) { bad.append("status \(status)") }
    if let pid = object["pid"] {
        // An integer: digits only in the text (JSONSerialization reads 1.0 and 1 alike).
        if (pid as? NSNumber).map({ $0.int64Value < 0 }) != false
            || text.firstMatch(of: /"pid":\s*[0-9]+\s*[,}\n]/) == nil
        {
            bad.append("pid \(pid) not an integer ≥ 0")
        }
    } else if status == "created" || status == "running" {
        bad.append("no pid while \(status ?? "")")
    }
    if let annotations = object["annotations"], !(annotations is NSNull) {
        if let map = annotations as? [String: Any] {
            for (key, value) in map where key.isEmpty || !(value is String) { bad.append("annotation \(key)") }
        } else {
            bad.append("annotations not an object")
        }
    }
    return bad
}

@Suite("lifecycle: detached containers", needsRoot)
struct DetachedLifecycleTests {
    init() throws { try TestEnv.ensureImage() }

    func unique(_ what: String) -> String { "lc-\(what)-\(UUID().uuidString.prefix(6).lowercased())" }

    func state(_ name: String) throws -> [String: Any] {
        let out = try clab("state", name)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(stateSchemaViolations(out.stdout) == [], "\(out.stdout)")
        return (try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    /// Everything of the container on the host: its directory, mounts and cgroups.
    func leftovers(_ id: String) -> [String] {
        var found: [String] = []
        let dir = TestEnv.layout.containerDir(id)
        if FS.exists(dir) { found.append(dir) }
        found += Mounts.mounts(under: dir)
        let cgroups =
            (try? runProcess(["/usr/bin/find", "/sys/fs/cgroup", "-maxdepth", "8", "-name", id]).stdout) ?? ""
        found += cgroups.split(separator: "\n").map(String.init)
        return found
    }

    func hostSide(_ id: String) -> [String] {
        leftovers(id).filter { $0 != TestEnv.layout.containerDir(id) }
            + ((try? FileManager.default.contentsOfDirectory(atPath: TestEnv.layout.containerDir(id))) ?? []).filter {
                !["state.json", "events", "container.log", "spec.wire"].contains($0)
            }
    }

    @Test func runDetachedPsLogsStopRm() throws {
        let name = unique("web")
        let run = try clab("run", "-d", "--name", name, "--", "sh", "-c", "echo to-out; echo to-err >&2; sleep 100")
        #expect(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.count == 12)
        defer { _ = try? clab("rm", "-f", id) }
        let ps = try clab("ps")
        let row = ps.stdout.split(separator: "\n").first { $0.hasPrefix(id) }.map(String.init) ?? ""
        #expect(row.contains(name) && row.contains("Up ") && row.contains("busybox"), "\(ps.stdout)")
        #expect(eventually { (try? clab("logs", name).stdout) == "to-out\nto-err\n" })
        // spec.wire: the spec as started, readable with ContainerSpec(wire:), root's alone.
        let wirePath = TestEnv.layout.containerDir(id) + "/spec.wire"
        let wire = try [UInt8](Data(contentsOf: URL(fileURLWithPath: wirePath)))
        let spec = try ContainerSpec(wire: wire)
        #expect(spec.id == id && spec.command == ["sh", "-c", "echo to-out; echo to-err >&2; sleep 100"])
        var st = stat()
        #expect(stat(wirePath, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_uid == 0)
        // By a unique id prefix too.
        #expect(try state(String(id.prefix(5)))["status"] as? String == "running")

        let stop = try clab("stop", "-t", "1", name)
        #expect(stop.status == 0 && stop.stdout == "\(name)\n", "\(stop.stderr)")
        let after = try clab("ps", "-a")
        #expect(after.stdout.contains("Exited (137)"), "\(after.stdout)")
        #expect(!(try clab("ps").stdout.contains(id)))
        #expect(try state(name)["status"] as? String == "stopped")
        let events = try clab("events", name).stdout
        for event in ["created", "started", "stop", "kill", "exited   code=137 signal=9"] {
            #expect(events.contains(event), "\(events)")
        }
        // Stopped: its host side is gone, its record (logs) stays until rm.
        #expect(hostSide(id) == [])
        #expect(try clab("logs", name).stdout == "to-out\nto-err\n")
        let rm = try clab("rm", name)
        #expect(rm.status == 0, "\(rm.stderr)")
        #expect(leftovers(id) == [])
    }

    @Test func exitStatusAndLogsRecorded() throws {
        let name = unique("exit")
        let run = try clab("run", "-d", "--name", name, "--", "sh", "-c", "echo bye; exit 3")
        #expect(run.status == 0, "\(run.stderr)")
        defer { _ = try? clab("rm", "-f", name) }
        #expect(eventually { (try? clab("ps", "-a").stdout.contains("Exited (3)")) == true })
        #expect(try clab("logs", name).stdout == "bye\n")
        #expect(try clab("events", name).stdout.contains("exited   code=3"))
        #expect(eventually { hostSide(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == [] })
    }

    @Test func createThenStart() throws {
        let name = unique("create")
        let created = try clab("create", "--name", name, "--", "sh", "-c", "echo started; sleep 100")
        #expect(created.status == 0, "\(created.stderr)")
        defer { _ = try? clab("rm", "-f", name) }
        let before = try state(name)
        #expect(before["status"] as? String == "created")
        // Set up and waiting: init exists, the command has not run.
        let pid = (before["pid"] as? NSNumber)?.int32Value ?? 0
        #expect(pid > 0 && FS.readLink("/proc/\(pid)/exe")?.hasSuffix("clab-init") == true)
        #expect(try clab("logs", name).stdout == "")
        #expect(try clab("ps").stdout.contains("Created"))
        let start = try clab("start", name)
        #expect(start.status == 0, "\(start.stderr)")
        #expect(try state(name)["status"] as? String == "running")
        #expect(eventually { (try? clab("logs", name).stdout) == "started\n" })
        let again = try clab("start", name)
        #expect(again.status != 0 && again.stderr == "clab: container \(name) is running: it has already started\n")
    }

    @Test func invalidTransitionsNameTheState() throws {
        let name = unique("bad")
        #expect(try clab("run", "-d", "--name", name, "--", "sleep", "100").status == 0)
        defer { _ = try? clab("rm", "-f", name) }
        let rm = try clab("rm", name)
        #expect(rm.status != 0 && rm.stderr.contains("is running") && rm.stderr.split(separator: "\n").count == 1)
        let taken = try clab("run", "-d", "--name", name, "--", "true")
        #expect(taken.status != 0 && taken.stderr.contains("already named \(name) (running"), "\(taken.stderr)")
        #expect(try clab("kill", "-s", "KILL", name).status == 0)
        #expect(eventually { (try? state(name)["status"] as? String) == "stopped" })
        let stop = try clab("stop", name)
        #expect(stop.status != 0 && stop.stderr == "clab: container \(name) is already stopped\n")
        let start = try clab("start", name)
        #expect(start.status != 0 && start.stderr.contains("is stopped"))
        let taken2 = try clab("run", "-d", "--name", name, "--", "true")
        #expect(taken2.status != 0 && taken2.stderr.contains("(stopped"), "\(taken2.stderr)")
        #expect(try clab("rm", name).status == 0)
        let gone = try clab("rm", name)
        #expect(gone.status != 0 && gone.stderr.contains("no container '\(name)'"))
    }

    @Test func initFailureIsOneLineAndLeavesNothing() throws {
        let before = (try? FileManager.default.contentsOfDirectory(atPath: TestEnv.layout.containersDir)) ?? []
        let name = unique("fail")
        let run = try clab("run", "-d", "--name", name, "--", "no-such-command")
        #expect(run.status == 127 && run.stdout == "", "\(run)")
        #expect(run.stderr.contains("no-such-command") && run.stderr.split(separator: "\n").count == 1)
        let after = (try? FileManager.default.contentsOfDirectory(atPath: TestEnv.layout.containersDir)) ?? []
        // Other tests start containers meanwhile: only this one's count. A directory with no
        // state yet may be another test's between its mkdir and its state file: give it a moment.
        func state(_ id: String) -> ContainerState? {
            ContainerState.load(TestEnv.layout.containerDir(id) + "/state.json")
        }
        var fresh = Set(after).subtracting(before)
        for _ in 0..<20 where fresh.contains(where: { state($0) == nil && FS.exists(TestEnv.layout.containerDir($0)) })
        {
            usleep(100_000)
        }
        fresh = fresh.filter { FS.exists(TestEnv.layout.containerDir($0)) }
        let ours = fresh.filter { state($0) == nil || state($0)?.name == name }
        #expect(ours.isEmpty, "\(ours)")
        #expect(try clab("ps", "-a").stdout.contains(name) == false)
    }

    /// kill -9 of the supervisor: the container dies with it (PR_SET_PDEATHSIG), `ps -a` says
    /// so, gc removes the host side and keeps the record, rm removes the rest.
    @Test func supervisorKilledThenReconciled() throws {
        let name = unique("orphan")
        let run = try clab("run", "-d", "--name", name, "--", "sleep", "100")
        #expect(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? clab("rm", "-f", id) }
        let record = try ContainerRecord.find(id, in: TestEnv.layout)
        let supervisor = record.state.clabPid
        let initPid = record.state.initPid ?? 0
        // The detached clab reports the id just before it execve's the supervisor.
        #expect(eventually { FS.readLink("/proc/\(supervisor)/exe")?.hasSuffix("clab-init") == true })
        #expect(Host.parentPid(initPid) == supervisor)
        #expect(kill(supervisor, SIGKILL) == 0)
        #expect(eventually { !ContainerRecord.alive(initPid, startTime: record.state.initStartTime) })
        let ps = try clab("ps", "-a")
        let row = ps.stdout.split(separator: "\n").first { $0.hasPrefix(id) }.map(String.init) ?? ""
        #expect(row.contains("supervisor (pid \(supervisor)) gone"), "\(ps.stdout)")
        #expect(try state(name)["status"] as? String == "stopped")
        let gc = try clab("gc")
        #expect(gc.stdout.contains("reconciled container \(id)"), "\(gc.stdout)")
        #expect(hostSide(id) == [])
        #expect(try clab("events", name).stdout.contains("lost"))
        #expect(try clab("rm", name).status == 0)
        #expect(leftovers(id) == [])
    }

    /// `clab run -d` returns; the container goes on, in a session of its own, under its supervisor.
    @Test func survivesTheCLI() throws {
        let name = unique("survive")
        let run = try clab("run", "-d", "--name", name, "--", "sleep", "100")
        #expect(run.status == 0, "\(run.stderr)")
        defer { _ = try? clab("rm", "-f", name) }
        // The CLI has exited (runProcess waited for it); the container runs.
        usleep(200_000)
        let record = try ContainerRecord.find(name, in: TestEnv.layout)
        #expect(record.status == .running)
        let supervisor = record.state.clabPid
        #expect(getsid(supervisor) == supervisor, "the supervisor leads its own session")
        #expect(getsid(supervisor) != getsid(0))
        #expect(Host.parentPid(supervisor) != getpid())
        let rm = try clab("rm", "-f", name)
        #expect(rm.status == 0, "\(rm.stderr)")
        #expect(leftovers(record.id) == [])
    }
}
