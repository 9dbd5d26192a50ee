import CShims
import ClabCgroups
import ClabHost
import ClabSpec
import ClabSys
import FoundationEssentials
import Glibc

/// `clab exec`: what to run in the container.
public struct ExecRequest: Sendable {
    public var command: [String]
    /// `-e K=V`: added to (or replacing) the container's environment.
    public var env: [String] = []
    /// `-w DIR`: else the container's working directory (its image's WORKDIR), else "/".
    public var workdir: String?
    /// `-t`: a pseudo-terminal for all three of stdin, stdout and stderr.
    public var tty = false
    /// `-i`: the caller's stdin reaches the command (else it reads /dev/null).
    public var interactive = false
    /// `-u NAME|UID[:GROUP|GID]`: the user inside (default the container's root).
    public var user: String?

    public init(command: [String]) { self.command = command }
}

/// The host's half of `clab exec`: starts `clab-init --exec` (ExecProcess, in ClabInit),
/// moves it into the container's cgroups before it runs, hands it the spec, relays the
/// terminal and returns the command's exit status.
public final class ExecSession {
    public let record: ContainerRecord
    public let initPath: String
    /// The spec sent to clab-init: the container's, with the exec's command, env and workdir.
    public let spec: ContainerSpec
    /// clab-init's host pid (the command is its only child).
    public private(set) var pid: pid_t = 0
    let initPid: Int32
    /// What clab-init checks the init against (tests change it to play a reused pid).
    var initStartTime: UInt64
    let tty: Bool
    let interactive: Bool
    let user: String?
    private var pidfd: Int32 = -1
    private var socket: Int32 = -1
    private var console: Console?
    private var reaped: ExitStatus?
    /// Tests only: the command's process stops just before its execve until `release()`, so a
    /// test can attack it in the state an attacker would race for.
    var holdBeforeExec = false
    /// clab-runtime's exec: stdio as given (a pty slave from the caller's console socket, or
    /// its pipes), never relayed; with `detach`, clab-init outlives clab-runtime (no death
    /// signal), to be adopted and reaped by the caller.
    public var ociRuntime = false
    public var detach = false

    /// Checks the container can be joined now (running, not paused) and builds the spec.
    public init(_ record: ContainerRecord, _ request: ExecRequest, initPath: String) throws {
        let name = record.displayName
        switch record.status {
        case .created:
            throw ClabError("container \(name) is created, not started: `clab start \(name)` first", exitCode: 2)
        case .stopped:
            throw ClabError("container \(name) is stopped: exec needs a running container", exitCode: 2)
        case .paused:
            throw ClabError(
                "container \(name) is paused: its processes are frozen (`clab unpause \(name)` first)", exitCode: 2)
        case .running: break
        }
        guard let pid = record.livePid, let startTime = Host.startTime(pid: pid) else {
            throw ClabError("container \(name) is stopped: exec needs a running container", exitCode: 2)
        }
        guard let first = request.command.first, !first.isEmpty else {
            throw ClabError("exec: no command: give one after `--` (clab exec \(name) -- sh)", exitCode: 2)
        }
        var spec = try record.spec()
        var env = spec.env
        var extra = request.env
        if request.tty, !env.contains(where: { $0.hasPrefix("TERM=") }),
            !extra.contains(where: { $0.hasPrefix("TERM=") })
        {
            extra.append("TERM=" + (getenv("TERM").map { String(cString: $0) } ?? "xterm"))
        }
        for entry in extra {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
                throw ClabError("-e \(entry): use -e NAME=VALUE", exitCode: 2)
            }
            let key = entry[...eq]
            env = env.filter { !$0.hasPrefix(key) } + [entry]
        }
        spec.command = request.command
        spec.env = env
        if let workdir = request.workdir {
            guard workdir.hasPrefix("/") else {
                throw ClabError("-w \(workdir): give an absolute path inside the container", exitCode: 2)
            }
            try ContainerSpec.checkText(workdir, "-w")
            spec.workdir = workdir
        }
        try ContainerSpec.checkExec(command: spec.command, env: spec.env)
        if let user = request.user {
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:")
            guard !user.isEmpty, !user.hasPrefix(":"), user.count <= 256, user.allSatisfy(allowed.contains) else {
                throw ClabError("-u \(user): give NAME, UID, NAME:GROUP or UID:GID", exitCode: 2)
            }
        }
        self.record = record
        self.initPath = initPath
        self.spec = spec
        self.initPid = pid
        self.initStartTime = startTime
        self.tty = request.tty
        self.interactive = request.interactive
        self.user = request.user
    }

    deinit {
        if pidfd >= 0 { close(pidfd) }
        if socket >= 0 { close(socket) }
    }

    /// Starts clab-init, joins it to the container's cgroups, sends the spec and returns once
    /// the command runs (or throws its failure as one line, clab-init already reaped).
    public func start(stdio: (Int32, Int32, Int32) = (0, 1, 2)) throws {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devNull >= 0 else { throw SyscallError("open /dev/null") }
        defer { close(devNull) }
        let input = interactive || ociRuntime ? stdio.0 : devNull
        let console =
            ociRuntime
            ? nil
            : try tty
                ? Console.forced((input, stdio.1, stdio.2), relayInput: interactive)
                : Console.forStdio((input, stdio.1, stdio.2))
        self.console = console
        if let console, let map = spec.idMapping { console.giveSlave(to: map.host, gid: map.host) }
        let childStdio = console?.containerStdio((input, stdio.1, stdio.2)) ?? (input, stdio.1, stdio.2)

        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw ClabError("exec: \(SyscallError("socketpair"))")
        }
        socket = pair[0]
        var arguments = ["--exec", "\(initPid)", "\(initStartTime)"]
        if tty { arguments.append("--tty") }
        // The command's terminal comes from the container's own devpts (the pty made here is
        // its fallback): clab-init sends its master back before anything else.
        let containerPty = tty && console != nil
        if containerPty { arguments.append("--container-pty") }
        if holdBeforeExec { arguments.append("--hold-before-exec") }
        if let user { arguments.append("--user=" + user) }
        if detach { arguments.append("--orphan") }
        // No new namespaces (it joins the container's); the command makes the pty its
        // controlling terminal itself, in its own session.
        let (result, fd) = Container.spawnInit(
            initPath, arguments: arguments, flags: 0, syncFD: pair[1], stdio: childStdio, becomeRoot: false, ctty: -1,
            joinNetns: -1, orphan: detach)
        pidfd = fd
        close(pair[1])
        console?.closeSlave()
        guard result > 0 else { throw ClabError("exec: clone3: \(errnoDescription(-result))") }
        pid = result
        do {
            // Before "go": nothing of clab-init runs outside the container's limits (and
            // freezer: a pause during the exec stops it too).
            for dir in record.cgroupDirs {
                do {
                    try FS.write("\(pid)", to: dir + "/cgroup.procs")
                } catch let error as SyscallError {
                    throw ClabError("exec: echo \(pid) > \(dir)/cgroup.procs: \(errnoDescription(error.errno))")
                }
            }
            try send([SyncMessage.go])
            for message in try spec.wireMessages() { try send(message) }
        } catch {
            kill(pid, SIGKILL)
            _ = reap()
            throw error
        }
        if containerPty { try receiveTerminal() }
        if holdBeforeExec {
            var byte: UInt8 = 0
            guard recv(socket, &byte, 1, 0) == 1, byte == UInt8(ascii: "H") else {
                let status = reap()
                throw ClabError("exec: the held command did not reach its execve", exitCode: status.code)
            }
            return
        }
        try finishStart()
    }

    /// clab-init's first message with `--container-pty`: "P" and the master of a pty of the
    /// container's devpts (it becomes the console's master), "T" (none there: the pty made here
    /// stays), or its failure.
    private func receiveTerminal() throws {
        var text = [CChar](repeating: 0, count: 4096)
        let fd = clab_recv_fd(socket, &text, Int32(text.count))
        let bytes = text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        if fd >= 0 {
            // Whatever came must be a pty master of a devpts (the container is hostile).
            guard bytes == [UInt8(ascii: "P")], clab_devpts_master_number(fd) >= 0 else {
                close(fd)
                kill(pid, SIGKILL)
                _ = reap()
                throw ClabError("exec: clab-init sent something that is not a terminal's master")
            }
            console?.adopt(master: fd)
            return
        }
        if bytes == [UInt8(ascii: "T")] { return }
        let status = reap()
        console?.restore()
        throw ClabError(
            bytes.isEmpty
                ? "exec: clab-init went away before the command started"
                : InitReport.decode(bytes, stage: spec.stageNumber), exitCode: status.code)
    }

    /// A new size for the command's terminal (`docker exec -it` when the window changes).
    public func resize(rows: UInt16, cols: UInt16) {
        guard let console else { return }
        var size = winsize(ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(console.master, UInt(TIOCSWINSZ), &size)
    }

    /// Tests only: lets a held command go on to its execve.
    func release() throws {
        try send([UInt8(ascii: "R")])
        try finishStart()
    }

    /// The command's pid on the host (the only child of clab-init), once it exists.
    public var commandPid: pid_t? {
        guard pid > 0, let text = FS.read("/proc/\(pid)/task/\(pid)/children") else { return nil }
        return text.split(separator: " ").first.flatMap { Int32($0) }
    }

    private func finishStart() throws {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var n: Int
        repeat {
            n = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        } while n < 0 && errno == EINTR
        close(socket)
        socket = -1
        if n > 0 {
            let status = reap()
            console?.drainOutput(atMost: Console.outputAfterExit)
            console?.restore()
            throw ClabError(InitReport.decode(Array(buffer[0..<n]), stage: spec.stageNumber), exitCode: status.code)
        }
    }

    /// Relays the terminal until the command ends; returns its status (code, or 128+signal).
    /// With `forwardSignals`, SIGINT, SIGTERM, SIGHUP and SIGQUIT reach the command.
    public func wait(forwardSignals: Bool = false) -> ExitStatus {
        if let reaped { return reaped }
        if forwardSignals { clab_forward_signals_to(pid) }
        console?.enterRawMode()
        while true {
            var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)] + (console?.pollFDs ?? [])
            let ready = poll(&fds, nfds_t(fds.count), 250)
            if ready > 0 && fds[0].revents != 0 { break }
            console?.pump(ready > 0 ? Array(fds.dropFirst()) : [])
        }
        if forwardSignals { clab_forward_signals_reset() }
        let status = reap()
        console?.drainOutput(atMost: Console.outputAfterExit)
        console?.restore()
        return status
    }

    private func reap() -> ExitStatus { ExitStatus.reapOnce(pid, &reaped) }

    private func send(_ bytes: ArraySlice<UInt8>) throws {
        guard ExitStatus.sendWhole(socket, bytes) else {
            throw ClabError("exec: clab-init went away before the command started (\(errnoDescription(errno)))")
        }
    }
}

extension ContainerRecord {
    /// `clab pause`: freezes every process of the container. One line naming the state when
    /// it is not running.
    public func pause() throws {
        let freezer = try requireFreezer("pause")
        switch status {
        case .created:
            throw ClabError("container \(displayName) is created, not started: nothing runs to pause", exitCode: 2)
        case .stopped: throw ClabError("container \(displayName) is stopped: nothing to pause", exitCode: 2)
        case .paused: throw ClabError("container \(displayName) is already paused", exitCode: 2)
        case .running: try freezer.freeze()
        }
    }

    /// `clab unpause`: thaws it.
    public func unpause() throws {
        let freezer = try requireFreezer("unpause")
        switch status {
        case .created, .stopped:
            throw ClabError("container \(displayName) is \(status.rawValue): nothing to unpause", exitCode: 2)
        case .running: throw ClabError("container \(displayName) is not paused (it is running)", exitCode: 2)
        case .paused: try freezer.thaw()
        }
    }

    private func requireFreezer(_ verb: String) throws -> Freezer {
        guard let freezer else {
            if status == .stopped {
                throw ClabError("container \(displayName) is stopped: nothing to \(verb)", exitCode: 2)
            }
            throw ClabError(
                cgroupDirs.isEmpty
                    ? "container \(displayName) runs below stage 8: it has no cgroup to freeze (start it at stage 8 or later)"
                    : "container \(displayName) has no freezer cgroup (this host mounts no cgroup v1 freezer hierarchy)",
                exitCode: 2)
        }
        return freezer
    }
}
