import CShims
import ClabCgroups
import ClabHost
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// The parent's side of one container: create its state, clone it into its namespaces, write
/// what only the parent can (uid/gid maps), say "go", wait, and remove everything afterwards.
public final class Container {
    public let spec: ContainerSpec
    public let layout: StateLayout
    /// The binary the child executes as init (clab itself; the test runner passes clab's path).
    public let initPath: String
    public private(set) var pid: pid_t = 0
    private var pidfd: Int32 = -1
    private var socket: Int32 = -1
    private var reaped: ExitStatus?
    /// Runs after clone3, before "go": the child exists (its host pid is known) but has not run
    /// a single instruction of init yet. The tracer puts it in its process map here; cgroups
    /// move it in here.
    public var beforeGo: [(pid_t) throws -> Void] = []
    /// Where its cgroups are, recorded in the state file as placed, so `clab stats`, delete and
    /// gc (after a crash) use the placement itself instead of probing the directories again.
    public var cgroupPlacement: CgroupPlacement?
    /// The levels above an OCI config's cgroupsPath that clab makes for it: recorded for delete
    /// and gc.
    public var cgroupLevels: [String] = []
    /// Runs once clone3 returned (the child exists or never will): releases what the spawn used.
    public var afterStart: [() -> Void] = []
    /// The container's name (`--name`), recorded in its state.
    public var name: String?
    /// From stage 11 on a bridge: eth0's address, for `clab ps`.
    public var networkAddress: String?
    /// From stage 11, `--net container:NAME`: that container's network namespace (an fd of
    /// /proc/<pid>/ns/net), which the child starts in. Owned by the caller.
    public var joinNetworkFD: Int32 = -1
    /// The container's pseudo-terminal, when clab's stdio includes a terminal.
    private var console: Console?
    /// `clab create`: init sets everything up, then waits for "S" before executing the command;
    /// `start` returns once it is waiting (Lifecycle.swift).
    public var waitForStart = false
    /// A detached container's record (LifecycleRecord.swift): written into its state.json.
    public var detached: DetachedFields?
    /// `clab run -d -t`: a pty slave that is the container's stdin, stdout, stderr and
    /// controlling terminal; its master is the supervisor's (no relay here).
    public var terminal: Int32 = -1
    /// clab-runtime (RuntimeMode.swift): no clab process stays with the container. Init has no
    /// death signal tied to clab (the caller, a subreaper, adopts and reaps it), a created init
    /// waits on `exec.fifo` instead of the sync socket, and stdio is passed as given, never
    /// through a relayed pseudo-terminal.
    public var ociRuntime = false

    public init(spec: ContainerSpec, layout: StateLayout, initPath: String) {
        self.spec = spec
        self.layout = layout
        self.initPath = initPath
    }

    deinit {
        if pidfd >= 0 { close(pidfd) }
        if socket >= 0 { close(socket) }
    }

    /// Starts the container and returns once its command is executing (the sync socket, which
    /// closes on exec, reads EOF). An init failure is thrown as one line, with the container
    /// already reaped and its state removed.
    public func start(stdio: (Int32, Int32, Int32) = (0, 1, 2)) throws {
        do {
            try FS.makeDirectories(spec.rootfsMountPoint)
            try StageMark.host(9) { try makeWritableLayer() }
        } catch let error as SyscallError {
            cleanup()
            throw ClabError("stage \(spec.stageNumber): \(error)")
        }
        // What init receives: the volumes' sources replaced by their locked staging binds.
        var sent = spec
        do {
            sent.volumes = try StageMark.host(10) {
                try VolumeStaging.stage(spec.volumes, bundleDir: spec.bundleDir, owner: spec.idMapping?.host)
            }
        } catch let error as SyscallError {
            cleanup()
            throw ClabError("stage 10: \(error)")
        }

        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            let error = SyscallError("socketpair")
            cleanup()
            throw ClabError("stage \(spec.stageNumber): \(error)")
        }
        socket = pair[0]
        let console: Console?
        do {
            console = terminal >= 0 || ociRuntime ? nil : try Console.forStdio(stdio)
        } catch {
            close(pair[1])
            cleanup()
            throw ClabError("stage \(spec.stageNumber): the container's terminal: \(error)")
        }
        self.console = console
        if let console, let map = spec.idMapping { console.giveSlave(to: map.host, gid: map.host) }
        let childStdio = terminal >= 0 ? (terminal, terminal, terminal) : console?.containerStdio(stdio) ?? stdio
        let (result, fd) = Self.spawnInit(
            initPath, arguments: waitForStart ? [ociRuntime ? "--created-fifo" : "--created"] : [],
            flags: spec.cloneFlags, syncFD: pair[1], stdio: childStdio, becomeRoot: spec.idMapping != nil,
            ctty: terminal >= 0 ? 0 : console?.controllingFD ?? -1, joinNetns: joinNetworkFD, orphan: ociRuntime)
        pidfd = fd
        close(pair[1])
        console?.closeSlave()
        for release in afterStart { release() }
        afterStart = []
        guard result > 0 else {
            cleanup()
            let flags = spec.stage.namespaces.map(\.flagName).joined(separator: "|")
            throw ClabError(
                "stage \(spec.stageNumber): clone3(\(flags.isEmpty ? "0" : flags)): \(errnoDescription(-result))")
        }
        pid = result
        // An OCI bundle's hooks inside the container read the state JSON, which has the host pid.
        sent.oci?.hostPID = pid

        do {
            // Now with the pid (gc already knows the directory and the cgroups: prepareState).
            try writeState()
            if let map = spec.idMapping { try StageMark.host(7) { try UserStage.writeMaps(pid: pid, mapping: map) } }
            for hook in beforeGo { try hook(pid) }
            if networkAddress != nil { try writeState() }
            try send([SyncMessage.go])
            // The header, then the fields in chunks: one message must fit the socket's buffer.
            for message in try sent.wireMessages() { try send(message) }
        } catch {
            kill(pid, SIGKILL)
            _ = reap()
            cleanup()
            throw error
        }
        if let failure = readInitFailure(keepOpenOn: waitForStart ? SyncMessage.created : nil) {
            let status = reap()
            cleanup()
            throw ClabError(failure, exitCode: status.code)
        }
        // The command runs: init has bound the volumes (and made its mounts private first),
        // so the staging binds leave the host's namespace now.
        VolumeStaging.release(bundleDir: spec.bundleDir)
    }

    /// Waits for the container's init (its PID 1, or the command itself) to exit, relaying its
    /// terminal meanwhile. With `forwardSignals`, Ctrl-C and friends reach the container; a
    /// PID 1 that ignores them (it has no handler, see lesson 3) is killed after `grace` seconds.
    public func wait(forwardSignals: Bool = false, grace: Double = 1.0, onEscalate: ((Int32) -> Void)? = nil)
        -> ExitStatus
    {
        if let reaped { return reaped }
        if forwardSignals { clab_forward_signals_to(pid) }
        // Only now: a SIGTERM before the handler above would end clab with raw mode on.
        console?.enterRawMode()
        var firstSignalAt: Date?
        var firstSignal: Int32 = 0
        var escalated = false
        while true {
            var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)] + (console?.pollFDs ?? [])
            var pending = forwardSignals ? clab_pending_signal() : 0
            // On the container's terminal, Ctrl-C is a key clab relays, not a signal clab gets.
            if pending == 0, let console, console.interruptTyped, interruptIgnoredByInit(console) {
                pending = SIGINT
            }
            if pending != 0 && firstSignalAt == nil {
                firstSignalAt = Date()
                firstSignal = pending
            }
            // Bounded even with no signal yet: one that lands between the check above and poll()
            // must still start the grace period.
            let timeout: Int32 = firstSignalAt == nil ? 250 : 100
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready > 0 && fds[0].revents != 0 { break }
            console?.pump(ready > 0 ? Array(fds.dropFirst()) : [])
            if let first = firstSignalAt, !escalated, escalatesIgnoredSignals, Date().timeIntervalSince(first) >= grace
            {
                escalated = true
                console?.drainOutput(atMost: Console.outputPerRound)
                console?.restore()
                onEscalate?(firstSignal)
                kill(pid, SIGKILL)
            }
        }
        if forwardSignals { clab_forward_signals_reset() }
        let status = reap()
        console?.drainOutput(atMost: Console.outputAfterExit)
        console?.restore()
        return status
    }

    /// Removes everything this container made on the host: mounts below its directory (stage 3
    /// makes them in the host's namespace), and the directory itself. From stage 4 on its mounts
    /// lived in its own mount namespace, gone with it, so three syscalls do; should one fail,
    /// the full sweep runs.
    public func cleanup() {
        console?.restore()
        VolumeStaging.release(bundleDir: spec.bundleDir)
        unmountHostSide()
        let dir = spec.bundleDir
        let root = spec.rootfsMountPoint
        if rmdir(root) == 0 || errno == ENOENT, unlink(dir + "/state.json") == 0 || errno == ENOENT, rmdir(dir) == 0 {
            return
        }
        // Something unexpected is left (a mount, a file): the full sweep.
        Container.remove(bundleDir: dir)
    }

    /// A detached container's supervisor takes over the pidfd and the sync socket (-1 once the
    /// command runs) across its execve: they lose close-on-exec, and this object forgets them.
    public func handOff() -> (pidfd: Int32, socket: Int32) {
        let fds = (pidfd, socket)
        for fd in [pidfd, socket] where fd >= 0 { _ = fcntl(fd, F_SETFD, 0) }
        pidfd = -1
        socket = -1
        return fds
    }

    /// clone3 of clab-init (CShims' clab_spawn) with an empty environment: the one place a spawn
    /// request is filled, for a container's init and for `clab exec`'s helper alike. Returns
    /// the pid (or -errno) and the pidfd.
    static func spawnInit(
        _ initPath: String, arguments: [String], flags: UInt64, syncFD: Int32, stdio: (Int32, Int32, Int32),
        becomeRoot: Bool, ctty: Int32, joinNetns: Int32, orphan: Bool = false
    ) -> (pid: pid_t, pidfd: Int32) {
        var pidfd: Int32 = -1
        let pid: pid_t = withCStrings([initPath] + arguments) { cArgv in
            withCStrings([]) { cEnv in
                initPath.withCString { path in
                    var request = clab_spawn_request()
                    request.clone_flags = flags
                    request.sync_fd = syncFD
                    request.stdio = (stdio.0, stdio.1, stdio.2)
                    request.become_root = becomeRoot ? 1 : 0
                    request.ctty = ctty
                    request.join_netns = joinNetns
                    request.no_pdeathsig = orphan ? 1 : 0
                    request.path = path
                    request.argv = cArgv
                    request.envp = cEnv
                    return clab_spawn(&request, &pidfd)
                }
            }
        }
        return (pid, pidfd)
    }

    /// Shared with gc: unmount, then delete, a container directory.
    @discardableResult
    static func remove(bundleDir: String) -> [String] {
        let unmounted = Mounts.unmountAll(under: bundleDir)
        // A mount that would not go may be a user's volume (stage 10 stages them here):
        // a recursive delete would walk into it. Leave the directory for the next gc.
        if Mounts.mounts(under: bundleDir).isEmpty { try? FS.removeTree(bundleDir) }
        return unmounted
    }

    // MARK: - private

    private func reap() -> ExitStatus { ExitStatus.reapOnce(pid, &reaped) }

    private func send(_ bytes: ArraySlice<UInt8>) throws {
        guard ExitStatus.sendWhole(socket, bytes) else {
            throw ClabError(
                "stage \(spec.stageNumber): the container's init went away before it started (\(errnoDescription(errno)))"
            )
        }
    }

    /// EOF: the command is running (the socket was close-on-exec). A message: init failed.
    /// `keepOpenOn`: that one byte is success too (init is created and waits), socket kept.
    private func readInitFailure(keepOpenOn: UInt8? = nil) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var n: Int
        repeat {
            n = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        } while n < 0 && errno == EINTR
        if let keepOpenOn, n == 1, buffer[0] == keepOpenOn { return nil }
        close(socket)
        socket = -1
        guard n > 0 else { return nil }
        return InitReport.decode(Array(buffer[0..<n]), stage: spec.stageNumber)
    }

    private var stateFile: String { spec.bundleDir + "/state.json" }

    /// Records the container before anything else of it exists on the host (its cgroups are
    /// made next), so gc can remove them even if clab dies before clone3.
    public func prepareState() throws {
        do {
            try FS.makeDirectories(spec.bundleDir)
            try writeState()
        } catch {
            cleanup()  // a full disk (ENOSPC) must not leave the directory behind
            throw error
        }
    }

    private func writeState() throws {
        let state = ContainerState(
            id: spec.id, stage: spec.stageNumber, clabPid: getpid(),
            clabStartTime: Host.startTime(pid: getpid()), initPid: pid > 0 ? pid : nil,
            initStartTime: pid > 0 ? Host.startTime(pid: pid) : nil,
            created: Int(time(nil)), command: spec.command.joined(separator: " "), cgroup: cgroupPlacement,
            cgroupLevels: cgroupLevels.isEmpty ? nil : cgroupLevels,
            volumes: spec.volumes.map(\.source), layers: spec.overlay?.lowers.map(Path.basename), name: name,
            address: networkAddress, detached: detached, ociRuntime: ociRuntime ? true : nil)
        try FS.write(try state.fileText(), to: stateFile)
    }
}

/// What gc and `clab ps` need to know about a container directory.
public struct ContainerState: Codable, Sendable {
    public var id: String
    public var stage: Int
    public var clabPid: Int32
    public var clabStartTime: UInt64?
    public var initPid: Int32?
    /// The init's start time (/proc/<pid>/stat field 22): with the pid, it names the process
    /// even after the pid is reused (`clab exec` checks it before joining).
    public var initStartTime: UInt64?
    /// Seconds since the epoch (a date formatter would load time zone files on every start).
    public var created: Int
    public var command: String?
    /// Its cgroups as clab placed them (stage 8 on): version, directory per controller, the
    /// `clab` parents, and an OCI config's cgroupsPath. Taken only as far as the directories
    /// are the container's own (`ContainerRecord.ownCgroups`): the file may be damaged.
    public var cgroup: CgroupPlacement?
    /// The levels clab made above an OCI cgroupsPath, removed with the container's cgroups.
    public var cgroupLevels: [String]?
    /// Host directories mounted as volumes (so `clab volume rm` can refuse one in use).
    public var volumes: [String]?
    /// The layers under its overlay, by hex digest (so `clab image rm` keeps them).
    public var layers: [String]?
    /// Its `--name`, and from stage 11 eth0's address on a bridge network.
    public var name: String?
    public var address: String?
    /// A detached container's (`clab run -d`, `clab create`): kept until `clab rm`.
    public var detached: DetachedFields?
    /// Started by clab-runtime: no clab process stays with it (the caller reaps its init), so
    /// its init's life, not clab's, says whether it is still there.
    public var ociRuntime: Bool?

    /// The file's text: the synthesized Codable is the schema, both ways (JSONValueEncoder, not
    /// JSONEncoder, which costs half a millisecond on every container start).
    func fileText() throws -> String { try JSONValueEncoder().encode(self).text + "\n" }

    /// From a state file's text (its id unchecked: `load` checks it).
    static func decoded(_ text: String) throws -> ContainerState {
        try JSONValueDecoder().decode(ContainerState.self, from: JSON.parse(Array(text.utf8), source: "state.json"))
    }

    /// Its cgroup directories, as recorded (unchecked: see `ContainerRecord.ownCgroups`).
    public var cgroups: [String]? { cgroup?.allDirs }
    /// An OCI config's cgroupsPath that names the container's own cgroups (each ends with it).
    public var cgroupsPath: String? { cgroup?.exclusive == true ? cgroup?.cgroupsPath : nil }

    public var isRunning: Bool { managerAlive }

    /// The process that keeps the container: its clab (or supervisor); for clab-runtime's,
    /// which have none once created, the init itself (before it exists, the creating clab-runtime).
    public var managerAlive: Bool {
        if ociRuntime == true, let initPid { return ContainerRecord.alive(initPid, startTime: initStartTime) }
        return Host.isAlive(pid: clabPid, startTime: clabStartTime)
    }

    /// The containers of a state directory whose clab is still running.
    public static func running(in layout: StateLayout) -> [ContainerState] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: layout.containersDir)) ?? []
        return ids.sorted().compactMap { load(layout.containerDir($0) + "/state.json") }.filter(\.isRunning)
    }

    /// nil unless its id is its directory's name: every use turns the id back into a path
    /// (`containerDir(id)`, whose host side `clab rm` and gc remove), so an id like "../.." in
    /// a damaged record would have unmounted and removed whatever that path names.
    static func load(_ path: String) -> ContainerState? {
        guard let text = FS.read(path), let state = try? decoded(text),
            state.id == Path.basename(Path.dirname(path))
        else { return nil }
        return state
    }
}
