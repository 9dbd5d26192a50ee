import CShims
import ClabHost
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// `clab-runtime`, black-box, as conmon and runtime-tools call it: runc's command line, the
/// state machine and its errors, pid files, the console socket, stdio passed through, and bad
/// input that leaves nothing behind. Its own state root, so `list` sees only these containers.
@Suite("clab-runtime: runc's command line", needsRoot, .serialized)
struct RuntimeCLITests {
    static let root = TestEnv.root + "/runtime-cli"
    static let binary = Path.dirname(TestEnv.clab) + "/clab-runtime"

    /// One `clab bundle` (its rootfs owned by the mapped root, as clab needs), shared: each
    /// test writes its own config.json beside it, naming that rootfs.
    static let base: Result<String, Error> = Result {
        try TestEnv.ensureImage()
        let dir = TestEnv.root + "/runtime-cli-base"
        if !FileManager.default.fileExists(atPath: dir + "/config.json") {
            let out = try clab("bundle", "busybox", dir, "--", "true")
            guard out.status == 0 else { throw ClabError("clab bundle: \(out.stderr)") }
        }
        return dir
    }

    /// A bundle directory whose config.json runs `args` (terminal as given) over the shared rootfs.
    func bundle(_ args: [String], terminal: Bool = false, change: (inout [String: Any]) -> Void = { _ in }) throws
        -> String
    {
        let base = try Self.base.get()
        let dir = TestEnv.root + "/rt-bundle-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var config = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + "/config.json")))
                as? [String: Any])
        var process = config["process"] as? [String: Any] ?? [:]
        process["args"] = args
        process["terminal"] = terminal
        config["process"] = process
        config["root"] = ["path": base + "/rootfs", "readonly": true]
        change(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
        return dir
    }

    /// `clab-runtime --root ROOT ARGS` to completion (for calls that start nothing that holds
    /// its output pipes: every call but a successful create).
    @discardableResult
    func rt(_ args: String...) throws -> Output {
        try runProcess([Self.binary, "--root", Self.root] + args)
    }

    /// `clab-runtime ARGS` with its stdio on these fds (a created container or a detached exec
    /// keeps them, as conmon's pipes): returns its exit status.
    func spawn(_ args: [String], stdio: (Int32, Int32, Int32)) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdio.0, 0)
        posix_spawn_file_actions_adddup2(&actions, stdio.1, 1)
        posix_spawn_file_actions_adddup2(&actions, stdio.2, 2)
        var pid: pid_t = 0
        let rc = spawnWithDefaultSignals(
            &pid, [Self.binary, "--root", Self.root] + args, environment: [:], actions: &actions)
        guard rc == 0 else { throw SyscallError("posix_spawn", errno: rc) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return ExitStatus(raw: status).code
    }

    func create(_ id: String, bundle: String, stdio: (Int32, Int32, Int32), extra: [String] = []) throws -> Int32 {
        try spawn(["create", "--bundle", bundle] + extra + [id], stdio: stdio)
    }

    /// With stdio on /dev/zero and /dev/null (never the test's pipes).
    func spawnQuiet(_ args: [String]) throws -> Int32 {
        let zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer {
            close(zero)
            close(null)
        }
        return try spawn(args, stdio: (zero, null, null))
    }

    func createQuiet(_ id: String, bundle: String, extra: [String] = []) throws -> Int32 {
        try spawnQuiet(["create", "--bundle", bundle] + extra + [id])
    }

    func state(_ id: String) throws -> [String: Any] {
        let out = try rt("state", id)
        try #require(out.status == 0, "\(out.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    }

    /// The clab record behind an OCI id (its cgroups, its directory).
    func record(_ id: String) -> ContainerRecord? {
        ContainerRecord.all(in: StateLayout.resolve(rootOption: Self.root)).first { $0.state.name == id }
    }

    func alive(_ pid: Int32) -> Bool { ContainerRecord.alive(pid, startTime: nil) }

    /// Nothing of the container is left: no record or directory, no name claim, no cgroup.
    func expectGone(_ id: String, cgroups: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let layout = StateLayout.resolve(rootOption: Self.root)
        #expect(record(id) == nil, sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: layout.runDir + "/names/" + id), sourceLocation: sourceLocation)
        for dir in cgroups {
            #expect(!FileManager.default.fileExists(atPath: dir), "\(dir)", sourceLocation: sourceLocation)
        }
    }

    @Test func theStateMachineAndItsErrors() throws {
        let dir = try bundle(["sleep", "60"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "rt-states-\(getpid())"
        let pidFile = dir + "/pidfile"
        #expect(try createQuiet(id, bundle: dir, extra: ["--pid-file", pidFile]) == 0)
        var s = try state(id)
        #expect(s["status"] as? String == "created")
        #expect(s["id"] as? String == id)
        #expect(s["bundle"] as? String == dir)
        let pid = try #require(s["pid"] as? Int)
        // The pid file: init's host pid, written whole (rename): nothing else beside it.
        #expect(try String(contentsOfFile: pidFile, encoding: .utf8) == "\(pid)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["config.json", "pidfile"])
        #expect(alive(Int32(pid)))
        // Created: set up, waiting for start: still clab-init, not the command.
        #expect(FS.read("/proc/\(pid)/cmdline")?.contains("clab-init") == true)
        let cgroups = try #require(record(id)).cgroupDirs
        #expect(!cgroups.isEmpty)
        #expect(cgroups.allSatisfy { FS.read($0 + "/cgroup.procs")?.contains("\(pid)") == true })

        #expect(try rt("start", id).status == 0)
        s = try state(id)
        #expect(s["status"] as? String == "running")
        #expect(eventually { FS.read("/proc/\(pid)/cmdline")?.hasPrefix("sleep") == true })
        let again = try rt("start", id)
        #expect(again.status == 1)
        #expect(again.stderr == "clab-runtime: cannot start container \(id): it is already running\n")
        let busy = try rt("delete", id)
        #expect(busy.status == 1)
        #expect(busy.stderr.contains("it is running"))
        #expect(try state(id)["status"] as? String == "running")

        #expect(try rt("pause", id).status == 0)
        #expect(try state(id)["status"] as? String == "paused")
        #expect(try rt("resume", id).status == 0)
        #expect(try state(id)["status"] as? String == "running")

        #expect(try rt("kill", id, "KILL").status == 0)
        #expect(eventually { (try? state(id))?["status"] as? String == "stopped" })
        #expect(try state(id)["pid"] as? Int == 0)
        let stopped = try rt("start", id)
        #expect(stopped.status == 1)
        #expect(stopped.stderr.contains("it has stopped"))
        #expect(try rt("kill", id, "TERM").stderr.contains("is not running"))
        #expect(try rt("list", "-q").stdout.split(separator: "\n").contains(Substring(id)))

        #expect(try rt("delete", id).status == 0)
        expectGone(id, cgroups: cgroups)
        let missing = try rt("state", id)
        #expect(missing.status == 1)
        #expect(missing.stderr == "clab-runtime: container \(id) does not exist\n")
    }

    @Test func aCreatedContainerIsDeletedWithoutForceAndSignalsByName() throws {
        let dir = try bundle(["sleep", "60"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "rt-created-\(getpid())"
        #expect(try createQuiet(id, bundle: dir) == 0)
        let pid = Int32(try #require(try state(id)["pid"] as? Int))
        let cgroups = try #require(record(id)).cgroupDirs
        // runc deletes a created container (it never ran) without --force.
        #expect(try rt("delete", id).status == 0)
        #expect(eventually { !alive(pid) })
        expectGone(id, cgroups: cgroups)
    }

    @Test func deleteForceEndsARunningContainer() throws {
        let dir = try bundle(["sleep", "60"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "rt-force-\(getpid())"
        #expect(try createQuiet(id, bundle: dir) == 0)
        #expect(try rt("start", id).status == 0)
        let pid = Int32(try #require(try state(id)["pid"] as? Int))
        let cgroups = try #require(record(id)).cgroupDirs
        #expect(try rt("delete", "--force", id).status == 0)
        #expect(!alive(pid))
        expectGone(id, cgroups: cgroups)
    }

    /// `start` runs config.json's poststart hooks once the process runs, with the state
    /// ("running", init's pid) on their stdin.
    @Test func startRunsPoststartHooks() throws {
        let out = TestEnv.root + "/rt-poststart-\(getpid())"
        defer { unlink(out) }
        let dir = try bundle(["sleep", "60"]) { config in
            config["hooks"] = ["poststart": [["path": "/bin/sh", "args": ["sh", "-c", "cat > " + out]]]]
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "rt-poststart-\(getpid())"
        defer { _ = try? rt("delete", "--force", id) }
        #expect(try createQuiet(id, bundle: dir) == 0)
        #expect(!FS.exists(out), "poststart ran at create")
        let pid = try #require(try state(id)["pid"] as? Int)
        #expect(try rt("start", id).status == 0)
        let text = FS.read(out) ?? ""
        #expect(text.contains(#""status":"running""#) && text.contains(#""pid":\#(pid)"#), "\(text)")
    }

    /// linux.cgroupsPath is the container's own cgroup (exactly that path, in every hierarchy),
    /// and the levels above it clab made are recorded: after the init is killed (kill -9, nobody
    /// deletes it), `clab gc` removes the cgroups and those levels, and nothing else.
    @Test func cgroupsPathIsTheContainersCgroupAndGcRemovesIt() throws {
        let group = "rt-cgpath-\(getpid())"
        let dir = try bundle(["sleep", "60"]) { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["cgroupsPath"] = group + "/a/c"
            linux["resources"] = ["pids": ["limit": 77]]
            config["linux"] = linux
        }
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            for base in OCIConformanceTests.ownCgroups() {
                for sub in ["/a/c", "/a", ""] { rmdir(base + "/" + group + sub) }
            }
        }
        let id = "rt-cgpath-\(getpid())"
        #expect(try createQuiet(id, bundle: dir) == 0)
        let r = try #require(record(id))
        let cgroups = r.cgroupDirs
        #expect(!cgroups.isEmpty && cgroups.allSatisfy { $0.hasSuffix("/\(group)/a/c") }, "\(cgroups)")
        let pids = try #require(cgroups.first { FS.exists($0 + "/pids.max") })
        #expect(FS.read(pids + "/pids.max")?.trimmed == "77")
        let levels = r.state.cgroupLevels ?? []
        #expect(Set(levels.map { Path.basename($0) }) == ["a", group], "\(levels)")
        let pid = Int32(try #require(try state(id)["pid"] as? Int))
        kill(pid, SIGKILL)
        #expect(eventually { !alive(pid) })
        let gc = try clab("gc", "--root", Self.root)
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect((cgroups + levels).filter(FS.exists).isEmpty, "left: \((cgroups + levels).filter(FS.exists))")
        #expect(try rt("delete", id).status == 0)
    }

    /// The state letter of /proc/PID/stat ("S" sleeping, "T" stopped).
    func stateLetter(_ pid: Int) -> String? {
        guard let stat = FS.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(close, offsetBy: 2)...].split(separator: " ").first.map(String.init)
    }

    @Test func killAllReachesEveryProcessOfTheContainer() throws {
        let dir = try bundle(["sh", "-c", "sleep 60 & sleep 60 & wait"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "rt-killall-\(getpid())"
        #expect(try createQuiet(id, bundle: dir) == 0)
        #expect(try rt("start", id).status == 0)
        var pids: [Int] = []
        #expect(
            eventually {
                pids =
                    (try? JSONSerialization.jsonObject(with: Data(rt("ps", "--format", "json", id).stdout.utf8)))
                    as? [Int] ?? []
                return pids.count == 3
            })
        let initPid = try #require(try state(id)["pid"] as? Int)
        let others = pids.filter { $0 != initPid }
        try #require(others.count == 2)
        // SIGSTOP (no process can catch it): without --all only init stops.
        #expect(try rt("kill", id, "STOP").status == 0)
        #expect(eventually { stateLetter(initPid) == "T" })
        #expect(others.allSatisfy { stateLetter($0) == "S" })
        // With --all, every process of the container's cgroup; then SIGKILL to all of them.
        #expect(try rt("kill", "--all", id, "19").status == 0)
        #expect(eventually { others.allSatisfy { stateLetter($0) == "T" } })
        #expect(try rt("kill", "--all", id, "SIGKILL").status == 0)
        #expect(eventually { pids.allSatisfy { !alive(Int32($0)) } })
        #expect(eventually { (try? state(id))?["status"] as? String == "stopped" })
        #expect(try rt("delete", id).status == 0)
    }

    @Test func stdioIsTheCallersPipes() throws {
        let dir = try bundle(["sh", "-c", "read line; echo got:$line; echo to-stderr >&2; exit 3"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "rt-stdio-\(getpid())"
        let input = try makePipe()
        let out = try makePipe()
        let err = try makePipe()
        #expect(try create(id, bundle: dir, stdio: (input.read, out.write, err.write)) == 0)
        close(input.read)
        close(out.write)
        close(err.write)
        defer {
            close(out.read)
            close(err.read)
        }
        #expect(try rt("start", id).status == 0)
        _ = "hello\n".withCString { write(input.write, $0, 6) }
        close(input.write)
        #expect(String(decoding: readAll(out.read), as: UTF8.self) == "got:hello\n")
        #expect(String(decoding: readAll(err.read), as: UTF8.self) == "to-stderr\n")
        #expect(eventually { (try? state(id))?["status"] as? String == "stopped" })
        #expect(try rt("delete", id).status == 0)
    }

    @Test func theConsoleSocketGetsThePtyMaster() throws {
        let dir = try bundle(["sh"], terminal: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "rt-console-\(getpid())"
        let path = dir + "/console.sock"
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(listener) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(bound == 0 && listen(listener, 1) == 0)
        // Without the socket, a terminal is refused (runc's rule), and nothing is left.
        let refused = try rt("create", "--bundle", dir, id)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("process.terminal is true: give --console-socket"))
        #expect(record(id) == nil)

        #expect(try createQuiet(id, bundle: dir, extra: ["--console-socket", path]) == 0)
        let connection = accept(listener, nil, nil)
        try #require(connection >= 0)
        defer { close(connection) }
        var name = [CChar](repeating: 0, count: 256)
        let master = clab_recv_fd(connection, &name, Int32(name.count))
        try #require(master >= 0)
        defer { close(master) }
        let sent = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(sent.hasPrefix("/dev/pts/"))
        #expect(try rt("start", id).status == 0)
        _ = "echo tty-$((6*7)); exit 3\n".withCString { write(master, $0, strlen($0)) }
        var seen = ""
        #expect(
            eventually(10) {
                var buffer = [UInt8](repeating: 0, count: 4096)
                var fd = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
                if poll(&fd, 1, 100) > 0 {
                    let n = read(master, &buffer, buffer.count)
                    if n > 0 { seen += String(decoding: buffer[0..<n], as: UTF8.self) }
                }
                return seen.contains("tty-42")
            }, "\(seen)")
        #expect(eventually { (try? state(id))?["status"] as? String == "stopped" })
        #expect(try rt("delete", id).status == 0)
    }

    @Test func execRunsInTheContainerAndDetachesWithAPidFile() throws {
        let dir = try bundle(["sleep", "60"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "rt-exec-\(getpid())"
        #expect(try createQuiet(id, bundle: dir) == 0)
        #expect(try rt("start", id).status == 0)
        let initPid = try #require(try state(id)["pid"] as? Int)
        let out = try rt("exec", id, "sh", "-c", "echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' '); exit 7")
        #expect(out.status == 7)
        #expect(out.stdout == "pid1=sleep 60\n")
        // podman's form: --process FILE, --detach, --pid-file.
        let process = dir + "/process.json"
        try #"{"args": ["sleep", "30"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}"#
            .write(toFile: process, atomically: true, encoding: .utf8)
        let pidFile = dir + "/exec.pid"
        // Detached, it keeps its stdio (as runc's): not the test's pipes.
        #expect(try spawnQuiet(["exec", "--process", process, "--detach", "--pid-file", pidFile, id]) == 0)
        let execPid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8)))
        #expect(alive(execPid))
        // In the container's cgroup, beside init.
        let pids = try rt("ps", "--format", "json", id).stdout
        #expect(pids.contains("\(execPid)") && pids.contains("\(initPid)"))
        #expect(try rt("delete", "--force", id).status == 0)
        #expect(eventually { !alive(execPid) })
    }

    @Test func aRuncSpecBundleRuns() throws {
        try TestEnv.ensureImage()
        let dir = TestEnv.root + "/rt-runc-spec-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = try runProcess(["/usr/sbin/runc", "spec"], cwd: dir)
        try #require(spec.status == 0, "\(spec.stderr)")
        let copy = try runProcess(["/bin/cp", "-a", TestEnv.runtime.images.rootfs("busybox"), dir + "/rootfs"])
        try #require(copy.status == 0, "\(copy.stderr)")
        try OCIBundleConfigTests.edit(dir) { config in
            var process = config["process"] as? [String: Any] ?? [:]
            process["terminal"] = false
            process["args"] = ["sh", "-c", "echo hostname=$(hostname); exit 4"]
            config["process"] = process
        }
        let out = try rt("run", "--bundle", dir, "rt-runc-spec-\(getpid())")
        #expect(out.status == 4, "\(out.stderr)")
        #expect(out.stdout == "hostname=runc\n")
        #expect(record("rt-runc-spec-\(getpid())") == nil)
    }

    @Test func featuresAndSpec() throws {
        let features = try rt("features")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(features.stdout.utf8)) as? [String: Any])
        #expect(json["ociVersionMax"] as? String == "1.2.0")
        let linux = try #require(json["linux"] as? [String: Any])
        #expect((linux["namespaces"] as? [String])?.contains("user") == true)
        let dir = TestEnv.root + "/rt-spec-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try rt("spec", "--bundle", dir).status == 0)
        let config = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json")))
                as? [String: Any])
        let mappings = (config["linux"] as? [String: Any])?["uidMappings"] as? [[String: Int]]
        #expect(mappings == [["containerID": 0, "hostID": 100000, "size": 65536]])
        let again = try rt("spec", "--bundle", dir)
        #expect(again.status == 1)
        #expect(again.stderr.contains("exists: remove it first"))
    }

    /// Every refusal: exit 1, one line on stderr (and in the json log), nothing in the state root.
    @Test func badInputIsOneLineAndLeavesNothing() throws {
        let good = try bundle(["true"])
        // Fails in init, after its cgroups (in a cgroupsPath clab makes) exist: all of it goes.
        let cgroupName = "rt-bad-cgroup-\(getpid())"
        let missing = try bundle(["/no/such/command"]) { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["cgroupsPath"] = cgroupName + "/level2"
            config["linux"] = linux
        }
        let badField = try bundle(["true"]) { config in
            var linux = config["linux"] as? [String: Any] ?? [:]
            linux["bogusField"] = true
            config["linux"] = linux
        }
        defer {
            for dir in [good, missing, badField] { try? FileManager.default.removeItem(atPath: dir) }
        }
        let log = TestEnv.root + "/rt-bad-\(getpid()).log"
        defer { unlink(log) }
        let cases: [([String], String)] = [
            (["create", "--bundle", "/nonexistent-bundle", "rt-bad"], "--bundle /nonexistent-bundle: No such file"),
            (["create", "--bundle", badField, "rt-bad"], "linux.bogusField is not a runtime-spec field"),
            (["create", "--bundle", missing, "rt-bad"], "command '/no/such/command' not found"),
            (["create", "--bundle", good, "Bad_ID"], "container id 'Bad_ID' is not valid"),
            (["create", "--bundle", good, "--bogus", "rt-bad"], "create: unknown option --bogus"),
            (["create", "--bundle", good], "give the container's ID"),
            (["--systemd-cgroup", "create", "--bundle", good, "rt-bad"], "--systemd-cgroup is not supported"),
            (["start", "rt-bad"], "container rt-bad does not exist"),
            (["kill", "rt-bad", "NOPE"], "'NOPE' is not a signal"),
            (["delete", "rt-bad"], "container rt-bad does not exist"),
            (["frobnicate"], "unknown command 'frobnicate'"),
        ]
        for (args, message) in cases {
            let out = try runProcess([Self.binary, "--root", Self.root, "--log", log, "--log-format", "json"] + args)
            #expect(out.status == 1, "\(args)")
            #expect(out.stdout.isEmpty, "\(args)")
            #expect(out.stderr.hasPrefix("clab-runtime: ") && out.stderr.contains(message), "\(args): \(out.stderr)")
            #expect(out.stderr.split(separator: "\n").count == 1, "\(args): \(out.stderr)")
            #expect(record("rt-bad") == nil, "\(args)")
        }
        // Each error is a json line conmon can read back.
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        let errors = lines.compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: String]
        }.filter { $0["level"] == "error" }
        #expect(errors.count == cases.count)
        #expect(errors.allSatisfy { $0["msg"] != nil && $0["time"]?.hasSuffix("Z") == true })
        // No state, no name, no cgroup anywhere.
        let layout = StateLayout.resolve(rootOption: Self.root)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: layout.containersDir)) ?? []).isEmpty)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.runDir + "/names")) ?? []
        #expect(names.filter { $0 != ".lock" }.isEmpty)
        let found = try runProcess(["/usr/bin/find", "/sys/fs/cgroup", "-name", cgroupName])
        #expect(found.stdout.isEmpty)
    }
}
