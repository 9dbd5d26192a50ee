import CShims
import ClabHost
import ClabNetwork
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// Detached containers (`clab run -d`, `clab create`): how they start, end and go.
///
/// Three processes, the way Docker → containerd → shim → runc split it, in miniature:
/// 1. The CLI (`clab run -d`) checks the options, then spawns clab again in a new session, with
///    stdio on /dev/null and a status pipe on fd 3 (`CLAB_DETACHED_FD`), and waits for one line.
/// 2. That clab prepares and clone3s the container as `clab step` would, its stdout and stderr
///    into a pipe, writes `spec.wire` and the events, reports "O <id>" (or "E <code> <error>",
///    with everything already removed), and execve's `clab-init --supervise` (SupervisorProcess):
///    the same pid, so it is still the container's parent, now ~1 MiB instead of clab's ~10.
/// 3. When the container exits, the supervisor records it and execve's `clab _cleanup`, which
///    removes the host's side (`releaseHostResources`) and keeps the record.
/// What `clab run -d` and `clab create` add to a container's options.
public struct DetachedOptions: Sendable {
    /// `-t`: a pseudo-terminal, held by the supervisor, in place of the output pipe.
    public var terminal = false
    /// `--log-max-size`: container.log's cap (one rotated file is kept besides).
    public var logMaxSize = SupervisorInterface.defaultLogMaxSize
    /// `-i`: the container's stdin is a pipe the supervisor holds, fed by attached clients
    /// (`docker run -i`), instead of /dev/null. With -t the terminal is its stdin anyway.
    public var interactive = false

    public init(
        terminal: Bool = false, logMaxSize: Int = SupervisorInterface.defaultLogMaxSize, interactive: Bool = false
    ) {
        self.terminal = terminal
        self.logMaxSize = logMaxSize
        self.interactive = interactive
    }
}

public enum Detached {
    static let fdVariable = "CLAB_DETACHED_FD"

    /// The status fd when this process is step 2 above.
    public static var statusFD: Int32? {
        ProcessInfo.processInfo.environment[fdVariable].flatMap { Int32($0) }
    }

    /// Files of a container directory that outlive the container (until `clab rm`).
    static let recordFiles: Set<String> = [
        "state.json", EventLog.fileName, "container.log", "container.log" + CappedLog.rotatedSuffix, "spec.wire",
        OCIRuntime.recordFile, daemonFile,
    ]

    /// What the Engine API daemon (clabd) keeps of a container it created: the Docker
    /// configuration as the client sent it (`docker inspect` shows it back).
    public static let daemonFile = "daemon.json"

    // MARK: - 1. the CLI

    /// Runs `clab ARGUMENTS` detached (step 2) and returns the container's id once it runs (or is
    /// created), or throws its one-line error. Notes (warnings, image builds) go to `note`.
    public static func launch(clab: String, arguments: [String], note: (String) -> Void) throws -> String {
        let (readEnd, writeEnd) = try makePipe()
        var environment = ProcessInfo.processInfo.environment
        environment[fdVariable] = "3"
        // Its own session, no controlling terminal: the caller's terminal closing (SIGHUP) does
        // not reach it. Nothing of the caller's but the status pipe (Host.spawn).
        defer { close(readEnd) }
        let pid = try Host.spawn(
            path: clab, argv: [clab] + arguments, environment: environment.map { "\($0.key)=\($0.value)" },
            fds: [.null, .null, .null, .fd(writeEnd)], newSession: true, closing: writeEnd,
            failure: "cannot start the detached clab (\(clab))")
        // It becomes the supervisor, never exits while the container lives: no waitpid here. It
        // is reparented when we exit (and reaped by init or a subreaper).
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        for line in text.split(separator: "\n") {
            let body = String(line.dropFirst(2))
            switch line.first {
            case "N": note(body)
            case "O": return body
            case "E":
                let parts = body.split(separator: " ", maxSplits: 1)
                throw ClabError(parts.count > 1 ? String(parts[1]) : "failed", exitCode: Int32(parts[0]) ?? 1)
            default: continue
            }
        }
        // It died before a word: reap it, so its status says how.
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        throw ClabError("the detached clab ended before the container started (status \(ExitStatus(raw: status).code))")
    }

    // MARK: - 2. the detached clab

    static func say(_ fd: Int32, _ kind: Character, _ text: String) {
        let line = "\(kind) " + text.replacing("\n", with: " ") + "\n"
        try? FS.writeAll(fd, Array(line.utf8), what: "status")
    }

    /// Says a note to the CLI (step 1).
    public static func note(_ text: String) {
        if let fd = statusFD { say(fd, "N", text) }
    }

    /// Reports an error to the CLI and exits (nothing of the container is left).
    public static func fail(_ error: ClabError) -> Never {
        if let fd = statusFD { say(fd, "E", "\(error.exitCode) \(error.message)") }
        exit(error.exitCode)
    }

    /// Starts the prepared container with its output into a pipe, records it, reports its id,
    /// and becomes its supervisor. `createOnly`: init waits, set up, for `clab start`.
    public static func serve(
        runtime: Runtime, prepared: PreparedContainer, image: String, createOnly: Bool, ports: [String],
        options: DetachedOptions = DetachedOptions()
    )
        -> Never
    {
        guard let status = statusFD else { exit(2) }
        // The CLI may be gone (killed, its terminal hung up): its status pipe must not kill this
        // process, which owns the container. (clone3's child resets every disposition.)
        signal(SIGPIPE, SIG_IGN)
        let spec = prepared.spec
        let dir = spec.bundleDir
        let container: Container
        // The supervisor's ends: stdout (or the pty master), stderr, stdin (-i; the master with -t).
        var outRead: Int32 = -1
        var errRead: Int32 = -1
        var inWrite: Int32 = -1
        do {
            try FS.makeDirectories(dir)
            // helper X's exec reads this: the spec as started (not the copy with staged volumes).
            try writeFile(spec.wire, to: dir + "/spec.wire")
            container = try runtime.makeContainer(prepared)
            container.detached = DetachedFields(image: image, ports: ports)
            container.waitForStart = createOnly
            // The container's side: pipes for stdout and stderr (and stdin with -i), or with -t a
            // pty slave for all three. Ours go to the supervisor.
            var theirs: [Int32] = []
            defer { for fd in theirs { close(fd) } }
            do {
                if options.terminal {
                    let (master, slave) = try openTerminal(owner: spec.idMapping?.host)
                    (outRead, inWrite) = (master, master)
                    theirs = [slave]
                    container.terminal = slave
                    try container.start(stdio: (slave, slave, slave))
                } else {
                    let out = try makePipe()
                    outRead = out.read
                    theirs.append(out.write)
                    let err = try makePipe()
                    errRead = err.read
                    theirs.append(err.write)
                    var input = open("/dev/null", O_RDONLY | O_CLOEXEC)
                    if options.interactive {
                        let pipe = try makePipe()
                        (input, inWrite) = (pipe.read, pipe.write)
                    }
                    theirs.append(input)
                    try container.start(stdio: (input, out.write, err.write))
                }
            } catch {
                for fd in Set([outRead, errRead, inWrite]) where fd >= 0 { close(fd) }
                Runtime.remove(container, prepared)
                throw error
            }
        } catch let error as ClabError {
            Container.remove(bundleDir: dir)
            fail(error)
        } catch {
            Container.remove(bundleDir: dir)
            fail(ClabError("\(error)"))
        }
        EventLog.append(dir: dir, event: "created", detail: "stage \(spec.stageNumber) image \(image)")
        // `clab start` (created containers) and attached clients' resizes and stdin's end.
        guard mkfifo(dir + "/" + SupervisorInterface.controlName, 0o600) == 0 else {
            kill(container.pid, SIGKILL)
            Runtime.remove(container, prepared)
            fail(ClabError("mkfifo \(dir)/control: \(errnoDescription(errno))"))
        }
        if !createOnly { EventLog.append(dir: dir, event: "started") }
        let (pidfd, sync) = container.handOff()
        for fd in [outRead, errRead, inWrite] where fd >= 0 { _ = fcntl(fd, F_SETFD, 0) }
        // The supervisor says "O": once it runs, with container.log open, so the CLI returns to
        // a container whose output is already being copied (`clab logs` right after has it).
        _ = fcntl(status, F_SETFD, 0)
        let argv = [
            runtime.initPath, "--supervise", Path.dirname(runtime.initPath) + "/clab", runtime.layout.root,
            runtime.layout.runDir, spec.id, "\(pidfd)", "\(container.pid)", "\(sync)", "\(outRead)",
            "\(errRead)", "\(inWrite)", "\(options.logMaxSize)", "\(status)",
        ]
        _ = withCStrings(argv) { cArgv in withCStrings([]) { execve(runtime.initPath, cArgv, $0) } }
        // The container is running and nothing would supervise it: end it, and say so in its log.
        let why = "execve \(runtime.initPath): \(errnoDescription(errno))"
        EventLog.append(dir: dir, event: "lost", detail: why)
        kill(container.pid, SIGKILL)
        say(status, "E", "1 cannot start the supervisor: \(why)")
        exit(1)
    }

    /// A pseudo-terminal for `-t`: (master, slave), both close-on-exec; the slave belongs to
    /// container root (as a login's terminal does) and starts at 80×24.
    static func openTerminal(owner: uid_t?) throws -> (Int32, Int32) {
        var slave: Int32 = -1
        let master = clab_open_pty(&slave)
        guard master >= 0 else {
            throw ClabError("-t: cannot open a pseudo-terminal (/dev/ptmx): \(errnoDescription(errno))")
        }
        if let owner { _ = fchown(slave, owner, owner) }
        var size = winsize(ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        return (master, slave)
    }

    static func writeFile(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SyscallError("open \(path)") }
        defer { close(fd) }
        try FS.writeAll(fd, bytes, what: path)
    }

    // MARK: - 3. after the exit, and `clab rm`

    /// Removes what the container has on the host (cgroups, network attachment, mounts, its root
    /// and writable layer), keeping its record. Idempotent: the supervisor's `_cleanup`, gc and
    /// `clab rm` all call it.
    @discardableResult
    public static func releaseHostResources(layout: StateLayout, id: String) -> [String] {
        // One directory of containers/, never a path out of it.
        guard !id.isEmpty, !id.contains("/"), id != ".", id != ".." else { return [] }
        let dir = layout.containerDir(id)
        let state = ContainerState.load(dir + "/state.json")
        var removed = state.map(GarbageCollector.removeCgroups) ?? []
        NetworkStore(root: layout.root, runDir: layout.runDir).detach(containerID: id)
        VolumeStaging.release(bundleDir: dir)
        removed += Mounts.unmountAll(under: dir)
        guard Mounts.mounts(under: dir).isEmpty else { return removed }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where !recordFiles.contains(name)
        {
            try? FS.removeTree(dir + "/" + name)
        }
        return removed
    }

    /// `clab rm [-f]`: the container ended (killed first with `force`), its supervisor gone,
    /// its host resources and its record removed.
    public static func remove(_ record: ContainerRecord, layout: StateLayout, force: Bool) throws {
        try record.check(force ? .forceRemove : .remove)
        // An OCI bundle's poststop hooks run once everything is gone (read before it goes).
        let spec = try? record.spec()
        defer { if let spec { OCIBundle.afterDelete(spec) } }
        if record.status != .stopped, let pid = record.state.initPid {
            ContainerRecord.signal(pid, startTime: record.state.initStartTime, SIGKILL)
            // A frozen v1 process does not die of SIGKILL until thawed.
            if record.status == .paused { try? record.freezer?.thaw() }
        }
        // Its supervisor (or clab) records the exit and cleans up: wait for it, bounded.
        waitGone(record.state.clabPid, startTime: record.state.clabStartTime, seconds: 10)
        releaseHostResources(layout: layout, id: record.id)
        if let name = record.state.name { ContainerNames.release(name, id: record.id, layout: layout) }
        Container.remove(bundleDir: record.dir)
        if FS.exists(record.dir) {
            throw ClabError(
                "container \(record.name): \(record.dir) could not be removed (a mount is busy): try `clab gc`")
        }
    }

    /// Until the process is gone (its pid unused or reused), at most `seconds`: woken by its
    /// pidfd (ContainerWatch), not a poll.
    @discardableResult
    public static func waitGone(_ pid: Int32, startTime: UInt64?, seconds: Double) -> Bool {
        ContainerWatch.waitGone(pid, startTime: startTime, milliseconds: Int(seconds * 1000))
    }
}
