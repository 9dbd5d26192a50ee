import ClabHost
import ClabRegistry
import ClabRuntime
import ClabSys
import Foundation
import Glibc
import Testing

/// clabd driven by the real docker CLI (DOCKER_HOST on a temporary socket) and by raw requests
/// (curl --unix-socket), on a state root of its own: `clab ps` and `docker ps` must agree on it.
/// The docker client: Docker's own where installed, else Debian's docker.io (`make test`).
@Suite(
    "daemon: the docker CLI drives clabd", needsRoot,
    .enabled(if: Host.which("docker") != nil, "no docker client on PATH: `make test` installs Debian's docker.io"),
    .serialized)
final class DaemonTests {
    static let docker = Host.which("docker")
    let root: String
    let socket: String
    let config: String
    let pid: pid_t

    init() throws {
        root = TestEnv.root + "/daemon-\(UUID().uuidString.prefix(6))"
        socket = root + "/d.sock"
        config = root + "/docker-config"
        try FS.makeDirectories(config)
        try TestEnv.ensureImage(root: root)
        let clabd = Path.dirname(TestEnv.clab) + "/clabd"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/zero", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, root + "/clabd.log", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        pid = try Host.spawn(
            path: clabd, argv: [clabd, "--root", root, "--socket", socket],
            environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], actions: &actions)
        let up = eventually(10) { FS.exists(self.socket) }
        #expect(up, "clabd did not create \(socket): \(FS.read(root + "/clabd.log") ?? "")")
    }

    deinit {
        // Containers first (through clab, not the daemon), then the daemon by its pid, then the root.
        let ids = (try? runProcess([TestEnv.clab, "ps", "-a", "-q", "--root", root]).stdout) ?? ""
        for id in ids.split(separator: "\n") {
            _ = try? runProcess([TestEnv.clab, "rm", "-f", "--root", root, String(id)])
        }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        _ = Mounts.unmountAll(under: root)
        try? FileManager.default.removeItem(atPath: root)
    }

    @discardableResult
    func docker(_ args: String..., stdin: String = "") throws -> Output {
        try docker(args, stdin: stdin)
    }

    @discardableResult
    func docker(_ args: [String], stdin: String = "") throws -> Output {
        try runProcess(
            [Self.docker ?? "docker"] + args, env: ["DOCKER_HOST": "unix://" + socket, "DOCKER_CONFIG": config],
            stdin: stdin)
    }

    /// `curl --unix-socket`: (status, body).
    func curl(_ method: String, _ path: String, body: String? = nil) throws -> (Int, String) {
        var argv = ["/usr/bin/curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--unix-socket", socket]
        if body != nil { argv += ["-H", "Content-Type: application/json", "--data-binary", "@-"] }
        let out = try runProcess(argv + ["http://clab" + path], stdin: body ?? "")
        let lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    func clabIDs(all: Bool) throws -> Set<String> {
        let out = try runProcess([TestEnv.clab, "ps", "-q", "--root", root] + (all ? ["-a"] : []))
        return Set(out.stdout.split(separator: "\n").map(String.init))
    }

    func dockerIDs(all: Bool) throws -> Set<String> {
        let out = all ? try docker("ps", "-a", "-q", "--no-trunc") : try docker("ps", "-q", "--no-trunc")
        #expect(out.status == 0, "\(out.stderr)")
        return Set(out.stdout.split(separator: "\n").map(String.init))
    }

    @Test func versionInfoAndTheSocket() throws {
        let version = try docker("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
        #expect(version.status == 0, "\(version.stderr)")
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1.41 1.41")
        let info = try docker("info", "--format", "{{.DockerRootDir}} {{.OSType}}")
        #expect(info.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == root + " linux", "\(info.stderr)")
        // Root's alone: 0660 root:root.
        var st = stat()
        #expect(stat(socket, &st) == 0 && st.st_mode & 0o777 == 0o660 && st.st_uid == 0 && st.st_gid == 0)
        #expect(try curl("GET", "/_ping") == (200, "OK"))
    }

    @Test func runRemovePassesOutputAndStatus() throws {
        let run = try docker("run", "--rm", "busybox", "sh", "-c", "echo hi; echo oops >&2; exit 3")
        #expect(run.status == 3)
        #expect(run.stdout == "hi\n")
        #expect(run.stderr.contains("oops") && !run.stdout.contains("oops"))
        // Removed (AutoRemove) by the time the CLI returned: neither front end lists it.
        #expect(try dockerIDs(all: true).isEmpty)
        #expect(try clabIDs(all: true).isEmpty)
        let piped = try docker("run", "-i", "--rm", "busybox", "cat", stdin: "through stdin\n")
        #expect(piped.status == 0 && piped.stdout == "through stdin\n", "\(piped.stderr)")
    }

    @Test func detachedContainerThroughBothFrontEnds() throws {
        let name = "d-\(UUID().uuidString.prefix(6).lowercased())"
        let run = try docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo started; exec sleep 100")
        #expect(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try dockerIDs(all: false) == [id])
        #expect(try clabIDs(all: false) == [id])
        let ps = try docker("ps", "--format", "{{.Names}} {{.Image}} {{.State}}")
        #expect(ps.stdout == "\(name) busybox running\n")
        #expect(eventually { (try? self.docker("logs", name).stdout) == "started\n" })
        let exec = try docker("exec", name, "sh", "-c", "echo inside $(hostname); exit 5")
        #expect(exec.status == 5 && exec.stdout == "inside \(id)\n", "\(exec.stderr)")
        let inspect = try docker("inspect", "-f", "{{.State.Status}} {{.Name}} {{.Config.Image}}", name)
        #expect(inspect.stdout == "running /\(name) busybox\n", "\(inspect.stderr)")
        #expect(try docker("stop", "-t", "1", name).status == 0)
        let stopped = try docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
        #expect(stopped.stdout == "exited 137\n")
        #expect(try clabIDs(all: true) == [id] && dockerIDs(all: false).isEmpty)
        #expect(try docker("rm", name).status == 0)
        let gone = try docker("inspect", name)
        #expect(gone.status != 0 && gone.stderr.contains("No such"), "\(gone.stderr)")
        #expect(try clabIDs(all: true).isEmpty)
        #expect(!FS.exists(StateLayout.resolve(rootOption: root).containerDir(id)))
    }

    @Test func publishedPortAndFollowedLogs() throws {
        let port = Int.random(in: 20000..<30000)
        let web = try docker("run", "-d", "--name", "web", "-p", "\(port):80", "busybox", "httpd", "-f", "-p", "80")
        #expect(web.status == 0, "\(web.stderr)")
        let ports = try docker("ps", "--format", "{{.Ports}}")
        #expect(ports.stdout == "0.0.0.0:\(port)->80/tcp\n", "\(ports.stdout)")
        // busybox httpd answers 404 for a root with no index: an answer from inside the container.
        #expect(
            eventually(10) {
                let page = try? runProcess(["/usr/bin/curl", "-s", "--max-time", "2", "http://127.0.0.1:\(port)/"])
                return page?.stdout.contains("404 Not Found") == true
            })
        #expect(try docker("rm", "-f", "web").status == 0)
        // -f follows until the container stops, then returns.
        let talk = try docker("run", "-d", "busybox", "sh", "-c", "echo one; sleep 1; echo two")
        let id = talk.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let follow = try docker("logs", "-f", id)
        #expect(follow.status == 0 && follow.stdout == "one\ntwo\n", "\(follow.stdout) \(follow.stderr)")
        #expect(try docker("logs", "--tail", "1", id).stdout == "two\n")
    }

    /// docker push and pull through clabd to Debian's docker-registry on 127.0.0.1, with basic
    /// auth from the CLI's own config (it sends X-Registry-Auth); Docker Hub is never tried.
    @Test(.enabled(if: LocalRegistry.available, "needs docker-registry (`make test` installs it)"))
    func pushAndPullThroughTheDaemon() throws {
        let registry = try LocalRegistry(user: "student", password: "s3cret")
        defer { registry.stop() }
        let ref = registry.address + "/bb:1"
        #expect(try docker("tag", "busybox", ref).status == 0)
        let refused = try docker("push", ref)
        #expect(refused.status != 0, "pushed without credentials: \(refused.stdout)")
        let auth = Data("student:s3cret".utf8).base64EncodedString()
        try "{\"auths\": {\"\(registry.address)\": {\"auth\": \"\(auth)\"}}}".write(
            toFile: config + "/config.json", atomically: true, encoding: .utf8)
        let push = try docker("push", ref)
        #expect(push.status == 0 && push.stdout.contains("digest: sha256:"), "\(push.stdout) \(push.stderr)")
        #expect(try docker("rmi", ref).status == 0)
        let pull = try docker("pull", ref)
        #expect(pull.status == 0, "\(pull.stdout) \(pull.stderr)")
        let run = try docker("run", "--rm", ref, "echo", "pulled")
        #expect(run.status == 0 && run.stdout == "pulled\n", "\(run.stderr)")
        let hub = try docker("pull", "nosuchimage")
        #expect(hub.status != 0 && hub.stderr.contains("Docker Hub"), "\(hub.stderr)")
    }

    /// `docker login` through clabd (POST /auth): the credentials are tried on the registry,
    /// then kept in clab's own store (0600); wrong ones are refused and nothing is stored.
    @Test(.enabled(if: LocalRegistry.available, "needs docker-registry (`make test` installs it)"))
    func loginThroughTheDaemon() throws {
        let registry = try LocalRegistry(user: "student", password: "s3cret")
        defer { registry.stop() }
        let store = CredentialStore(layout: StateLayout.resolve(rootOption: root))
        let wrong = try docker("login", "-u", "student", "--password-stdin", registry.address, stdin: "nope\n")
        #expect(wrong.status != 0 && wrong.stderr.contains(registry.address), "\(wrong.stdout) \(wrong.stderr)")
        #expect(try store.auth(for: registry.address) == nil)
        let right = try docker("login", "-u", "student", "--password-stdin", registry.address, stdin: "s3cret\n")
        #expect(right.status == 0 && right.stdout.contains("Login Succeeded"), "\(right.stdout) \(right.stderr)")
        #expect(try store.auth(for: registry.address) == RegistryAuth(username: "student", password: "s3cret"))
        var st = stat()
        #expect(stat(store.path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let body = #"{"username":"a","password":"b","serveraddress":"https://index.docker.io/v1/"}"#
        let hub = try curl("POST", "/v1.41/auth", body: body)
        #expect(hub.0 == 400 && hub.1.contains("Docker Hub"), "\(hub.1)")
    }

    /// `docker run -e` reaches the container's environment (over the image's), through
    /// `clab create --env`; an entry without NAME= is refused before anything is made.
    @Test func environmentFromTheCLI() throws {
        let run = try docker(
            "run", "--rm", "-e", "GREETING=hi there", "-e", "PATH=/bin", "busybox", "sh", "-c", "echo $GREETING:$PATH")
        #expect(run.status == 0 && run.stdout == "hi there:/bin\n", "\(run.stdout) \(run.stderr)")
        let bad = try curl(
            "POST", "/v1.41/containers/create", body: #"{"Image":"busybox","Cmd":["true"],"Env":["=oops"]}"#)
        #expect(bad.0 == 400 && bad.1.contains("NAME=VALUE"), "\(bad.1)")
        #expect(try clabIDs(all: true).isEmpty)
        // clab's own run takes it the same way.
        let direct = try runProcess(
            [TestEnv.clab, "run", "--root", root, "-e", "X=from-clab", "busybox", "--", "sh", "-c", "echo $X"])
        #expect(direct.status == 0 && direct.stdout == "from-clab\n", "\(direct.stdout) \(direct.stderr)")
        let refused = try runProcess([TestEnv.clab, "run", "--root", root, "-e", "oops", "busybox", "--", "true"])
        #expect(refused.status == 2 && refused.stderr.contains("-e oops: use -e NAME=VALUE"), "\(refused.stderr)")
    }

    /// `docker events`: the containers' own event records as Docker's events, bounded by
    /// --since/--until, or followed (inotify) until the client goes.
    @Test func eventsFromTheRecords() throws {
        let start = Int(Date().timeIntervalSince1970) - 1
        // Followed: started before the container exists.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/zero", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, root + "/events.out", O_WRONLY | O_CREAT, 0o600)
        let docker = Self.docker ?? "docker"
        let follower = try Host.spawn(
            path: docker,
            argv: [docker, "events", "--since", "\(start)", "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
            environment: ["DOCKER_HOST=unix://" + socket, "DOCKER_CONFIG=" + config, "PATH=/usr/bin:/bin"],
            actions: &actions)
        defer {
            kill(follower, SIGKILL)
            var status: Int32 = 0
            waitpid(follower, &status, 0)
        }
        #expect(try self.docker("run", "--name", "ev", "busybox", "sh", "-c", "exit 3").status == 3)
        func seen(_ wanted: [String]) -> Bool {
            let lines = (FS.read(root + "/events.out") ?? "").split(separator: "\n").map(String.init)
            return wanted.allSatisfy(lines.contains)
        }
        // From the record (if it connected late) or as they came; the destroy only as it comes.
        #expect(eventually(15) { seen(["create ev", "start ev", "die ev"]) }, "\(FS.read(root + "/events.out") ?? "")")
        #expect(try self.docker("rm", "ev").status == 0)
        #expect(eventually(15) { seen(["destroy ev"]) }, "\(FS.read(root + "/events.out") ?? "")")
        // Bounded: what the records hold between the times (a removed container has none left).
        #expect(try self.docker("run", "-d", "--name", "ev2", "busybox", "sh", "-c", "exit 4").status == 0)
        #expect(try self.docker("wait", "ev2").stdout == "4\n")
        let window = ["--since", "\(start)", "--until", "\(Int(Date().timeIntervalSince1970) + 1)"]
        let past = try self.docker(
            ["events"] + window + ["--filter", "container=ev2", "--format", "{{.Action}} {{.Actor.Attributes.name}}"])
        #expect(past.status == 0 && past.stdout == "create ev2\nstart ev2\ndie ev2\n", "\(past.stdout) \(past.stderr)")
        let died = try self.docker(
            ["events"] + window + ["--filter", "event=die", "--format", "{{.Actor.Attributes.exitCode}}"])
        #expect(died.stdout == "3\n4\n" || died.stdout == "4\n", "\(died.stdout) \(died.stderr)")
    }

    @Test func imagesTagAndRemove() throws {
        let list = try docker("images", "--format", "{{.Repository}}:{{.Tag}}")
        #expect(list.stdout.split(separator: "\n").contains("busybox:latest"), "\(list.stdout) \(list.stderr)")
        let tag = try docker("tag", "busybox", "dtest:1")
        #expect(tag.status == 0, "\(tag.stderr)")
        let tagged = try docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
        let ids = tagged.stdout.split(separator: "\n").map { $0.split(separator: " ") }
        #expect(ids.contains { $0.first == "dtest:1" } && Set(ids.compactMap(\.last)).count == 1, "\(tagged.stdout)")
        #expect(try docker("rmi", "dtest:1").status == 0)
        #expect(!(try docker("images").stdout.contains("dtest")))
        let missing = try docker("run", "--rm", "nosuchimage")
        #expect(missing.status != 0 && missing.stderr.contains("pull"), "\(missing.stderr)")
    }

    @Test func badRequestsGetAPIErrorsAndTheDaemonStaysUp() throws {
        let (status, body) = try curl("POST", "/v1.41/containers/create", body: "{not json")
        #expect(status == 400 && body.contains("\"message\""), "\(body)")
        #expect(try curl("POST", "/v1.41/containers/create", body: "{\"Image\":\"nosuch\"}").0 == 404)
        let privileged = try curl(
            "POST", "/v1.41/containers/create", body: "{\"Image\":\"busybox\",\"HostConfig\":{\"Privileged\":true}}")
        #expect(privileged.0 == 400 && privileged.1.contains("HostConfig.Privileged"), "\(privileged.1)")
        #expect(try curl("GET", "/v1.41/swarm").0 == 501)
        #expect(try curl("GET", "/v9.99/containers/json").0 == 400)
        let huge = try curl("POST", "/v1.41/containers/create", body: String(repeating: " ", count: 2 << 20))
        #expect(huge.0 == 413)
        // Bytes that are not HTTP: a 400, and the connection closed.
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
            s.sendall(b"GARBAGE\\r\\n\\r\\n"); print(s.recv(100).split(b"\\r\\n")[0].decode())
            """
        let garbage = try runProcess(["/usr/bin/python3", "-c", script, socket])
        #expect(garbage.stdout.hasPrefix("HTTP/1.1 400"), "\(garbage.stdout) \(garbage.stderr)")
        let list = try curl("GET", "/v1.41/containers/json")
        #expect(list == (200, "[]\n"))
        #expect(kill(pid, 0) == 0)
    }

    @Test func webPagesOddBodiesAndBadSurrogatesAreRefused() throws {
        func raw(_ extra: [String]) throws -> Int {
            let out = try runProcess(
                ["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socket] + extra)
            return Int(out.stdout) ?? 0
        }
        // A browser's cross-origin POST (text/plain needs no preflight) and any request with an Origin.
        let create = "http://clab/v1.41/containers/create"
        #expect(
            try raw([
                "-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", "{\"Image\":\"busybox\"}", create,
            ]) == 403)
        #expect(try raw(["-H", "Origin: http://evil.example", "http://clab/v1.41/containers/json"]) == 403)
        // A high surrogate followed by no low one crashed the JSON reader (an overflow).
        let (status, body) = try curl("POST", "/v1.41/containers/create", body: #"{"Image":"\uD800\u0041"}"#)
        #expect(status == 400 && body.contains("surrogate"), "\(status) \(body)")
        #expect(try curl("GET", "/_ping") == (200, "OK"))
        #expect(try clabIDs(all: true).isEmpty)
    }

    /// Over `--tcp` the API answers only a loopback Host: a page whose DNS name was rebound to
    /// 127.0.0.1 sends its own name. The docker CLI on tcp:// still works.
    @Test func overTCPOnlyALoopbackHostIsServed() throws {
        let other = root + "/tcp"
        try FS.makeDirectories(other)
        let port = try LocalRegistry.freePort()
        let clabd = Path.dirname(TestEnv.clab) + "/clabd"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/zero", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, other + "/clabd.log", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let tcpd = try Host.spawn(
            path: clabd,
            argv: [clabd, "--root", other, "--socket", other + "/d.sock", "--tcp", "127.0.0.1:\(port)"],
            environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], actions: &actions)
        defer {
            kill(tcpd, SIGTERM)
            var status: Int32 = 0
            _ = waitpid(tcpd, &status, 0)
        }
        func code(_ host: String) throws -> String {
            try runProcess([
                "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: \(host)",
                "http://127.0.0.1:\(port)/_ping",
            ]).stdout
        }
        #expect(eventually(10) { (try? code("127.0.0.1:\(port)")) == "200" }, "\(FS.read(other + "/clabd.log") ?? "")")
        #expect(try code("localhost:\(port)") == "200")
        #expect(try code("rebound.example:\(port)") == "403")
        let version = try runProcess(
            [Self.docker ?? "docker", "version", "--format", "{{.Server.APIVersion}}"],
            env: ["DOCKER_HOST": "tcp://127.0.0.1:\(port)", "DOCKER_CONFIG": config])
        #expect(version.stdout == "1.41\n", "\(version.stdout) \(version.stderr)")
    }

    /// An exec instance goes with its container: before, clabd kept every `docker exec` it was
    /// ever asked for, for its whole life.
    @Test func execInstancesGoWithTheirContainer() throws {
        #expect(try docker("run", "-d", "--name", "exgc", "busybox", "sleep", "600").status == 0)
        let (status, body) = try curl("POST", "/v1.41/containers/exgc/exec", body: #"{"Cmd":["true"]}"#)
        #expect(status == 201, "\(body)")
        let id = try #require(body.split(separator: "\"").dropFirst(3).first.map(String.init))
        #expect(try curl("GET", "/v1.41/exec/\(id)/json").0 == 200)
        #expect(try docker("rm", "-f", "exgc").status == 0)
        let (gone, text) = try curl("GET", "/v1.41/exec/\(id)/json")
        #expect(gone == 404 && text.contains("No such exec instance"), "\(gone) \(text)")
    }

    /// A client that stops reading `yes`: clabd stops reading the exec's output (backpressure)
    /// instead of queueing it in memory. Without it clabd grew by hundreds of MiB in seconds.
    @Test func aSlowReaderHoldsTheOutputNotTheDaemonsMemory() throws {
        #expect(try docker("run", "-d", "--name", "bp", "busybox", "sleep", "600").status == 0)
        let (status, body) = try curl(
            "POST", "/v1.41/containers/bp/exec", body: #"{"Cmd":["yes"],"AttachStdout":true,"AttachStderr":true}"#)
        #expect(status == 201, "\(body)")
        let id = try #require(body.split(separator: "\"").dropFirst(3).first.map(String.init))
        let script = #"""
            import socket, sys, time, json
            path, exec_id, pid = sys.argv[1:4]
            def rss():
                for line in open("/proc/%s/status" % pid):
                    if line.startswith("VmRSS:"): return int(line.split()[1])
            before = rss()
            s = socket.socket(socket.AF_UNIX); s.connect(path)
            body = b'{"Detach":false,"Tty":false}'
            s.sendall(b"POST /v1.41/exec/%s/start HTTP/1.1\r\nHost: clab\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (exec_id.encode(), len(body)) + body)
            s.settimeout(10); first = s.recv(4096)
            time.sleep(4)
            after = rss()
            print(json.dumps({"before": before, "after": after, "head": first[:12].decode(errors="replace")}))
            s.close()
            """#
        let out = try runProcess(["/usr/bin/python3", "-c", script, socket, id, String(pid)])
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        let before = try #require(json?["before"] as? Int, "\(out.stdout) \(out.stderr)")
        let after = try #require(json?["after"] as? Int)
        #expect((json?["head"] as? String)?.hasPrefix("HTTP/1.1 101") == true, "\(out.stdout)")
        #expect(after - before < 64 << 10, "clabd grew from \(before) to \(after) KiB under a reader that stopped")
        #expect(try curl("GET", "/_ping") == (200, "OK"))
        #expect(try docker("rm", "-f", "bp").status == 0)
    }

    @Test func terminalRunAndResize() throws {
        // A real terminal for the CLI: script(1) runs it on a pty of its own.
        let command =
            "stty rows 30 cols 100; \(Self.docker ?? "docker") run -it --rm busybox sh -c 'tty; stty size; exit 4'"
        let out = try runProcess(
            ["/bin/sh", "-c", "sleep 3 | script -qec \"$0\" /dev/null", command],
            env: ["DOCKER_HOST": "unix://" + socket, "DOCKER_CONFIG": config])
        #expect(out.status == 4, "\(out.stdout) \(out.stderr)")
        #expect(out.stdout.contains("/dev/pts/") && out.stdout.contains("30 100"), "\(out.stdout)")
    }

    /// `docker wait` and `docker start` follow the container through kernel events (a pidfd on
    /// its supervisor, inotify on its events file), not polls: checked for order and result,
    /// never for time (bench/daemon.sh measures that).
    @Test func waitAndStartFollowTheContainer() throws {
        let layout = StateLayout.resolve(rootOption: root)
        // Exits with 7 once told to (a file appears), so the wait begins while it runs.
        let run = try docker(
            "run", "-d", "--name", "w", "busybox", "sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; exit 7")
        #expect(run.status == 0, "\(run.stderr)")
        let id = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/zero", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, root + "/wait.out", O_WRONLY | O_CREAT, 0o600)
        let docker = Self.docker ?? "docker"
        let waiter = try Host.spawn(
            path: docker, argv: [docker, "wait", "w"],
            environment: ["DOCKER_HOST=unix://" + socket, "DOCKER_CONFIG=" + config, "PATH=/usr/bin:/bin"],
            actions: &actions)
        var status: Int32 = 0
        // Not early: a request later (the daemon has the wait), it still waits on a running container.
        #expect(try self.docker("exec", "w", "true").status == 0)
        #expect(waitpid(waiter, &status, WNOHANG) == 0, "docker wait returned while the container ran")
        #expect(try self.docker("exec", "w", "touch", "/go").status == 0)
        // It returns (with the code); bounded only so a broken wait fails instead of hanging.
        let returned = eventually(30) { waitpid(waiter, &status, WNOHANG) == waiter }
        if !returned {
            kill(waiter, SIGKILL)
            waitpid(waiter, &status, 0)
        }
        #expect(returned && FS.read(root + "/wait.out") == "7\n", "\(FS.read(root + "/wait.out") ?? "")")
        // Not before the exit was recorded and the host's side removed: the supervisor is gone.
        let record = try ContainerRecord.find(id, in: layout)
        #expect(record.status == .stopped && record.exitCode == 7)
        #expect(!ContainerRecord.alive(record.state.clabPid, startTime: record.state.clabStartTime))
        // The supervisor was clabd's child (`clab create` becomes it): reaped, not left a zombie.
        #expect(eventually(10) { !self.zombieChildren().contains(record.state.clabPid) })

        // `docker start` returns once the supervisor recorded "started" (or the exit after it).
        let created = try self.docker("create", "--name", "s", "busybox", "sh", "-c", "exit 5")
        let sid = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try ContainerRecord.find(sid, in: layout).status == .created)
        #expect(try self.docker("start", "s").status == 0)
        let started = try ContainerRecord.find(sid, in: layout)
        #expect(started.status != .created && started.events.contains { $0.name == "started" }, "\(started.events)")
        #expect(try self.docker("wait", "s").stdout == "5\n")
    }

    /// clabd's children that have exited and were not reaped.
    func zombieChildren() -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.compactMap { Int32($0) }.filter { child in
            guard let stat = FS.read("/proc/\(child)/stat"), let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && fields[0] == "Z" && Int32(fields[1]) == pid
        }
    }

    /// `docker exec -it` and `clab exec -t`: the terminal is one of the container's own devpts
    /// (opened inside, its master sent out), so `tty` names it and the size sent reaches it.
    @Test func execTerminalIsTheContainers() throws {
        #expect(try docker("run", "-d", "--name", "x", "busybox", "sleep", "300").status == 0)
        // The docker CLI sends the size just after the start: the command waits for it (bounded).
        let script = """
            tty; i=0; while [ "$(stty size 2>/dev/null)" != "30 100" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; stty size; exit 6
            """
        let command = "stty rows 30 cols 100; \(Self.docker ?? "docker") exec -it x sh -c '\(script)'"
        let out = try runProcess(
            ["/bin/sh", "-c", "sleep 3 | script -qec \"$0\" /dev/null", command],
            env: ["DOCKER_HOST": "unix://" + socket, "DOCKER_CONFIG": config])
        #expect(out.status == 6, "\(out.stdout) \(out.stderr)")
        #expect(out.stdout.contains("/dev/pts/0") && out.stdout.contains("30 100"), "\(out.stdout)")
        // clab's own exec takes the same path; its terminal starts at the user's size.
        let clab = "stty rows 31 cols 101; \(TestEnv.clab) exec -t --root \(root) x -- sh -c 'tty; stty size'"
        let direct = try runProcess(["/bin/sh", "-c", "sleep 3 | script -qec \"$0\" /dev/null", clab])
        #expect(direct.stdout.contains("/dev/pts/") && direct.stdout.contains("31 101"), "\(direct.stdout)")
        #expect(!direct.stdout.contains("not a tty"))
    }

    @Test func clientKilledMidAttach() throws {
        var pid: pid_t = 0
        let argv = [Self.docker ?? "docker", "run", "--name", "victim", "busybox", "sh", "-c", "echo x; exec sleep 60"]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/zero", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, root + "/victim.out", O_WRONLY | O_CREAT, 0o600)
        pid = try Host.spawn(
            path: argv[0], argv: argv,
            environment: ["DOCKER_HOST=unix://" + socket, "DOCKER_CONFIG=" + config, "PATH=/usr/bin:/bin"],
            actions: &actions)
        #expect(eventually(15) { FS.read(self.root + "/victim.out") == "x\n" })
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        // The daemon answers; the container runs on (as under Docker) until removed.
        #expect(try curl("GET", "/_ping") == (200, "OK"))
        let ps = try docker("ps", "--format", "{{.Names}}")
        #expect(ps.stdout == "victim\n")
        #expect(try docker("rm", "-f", "victim").status == 0)
        #expect(try clabIDs(all: true).isEmpty)
    }
}
