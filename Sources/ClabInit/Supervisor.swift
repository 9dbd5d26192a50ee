import CShims
import ClabSpec
import ClabSys
import Glibc

/// The per-container supervisor of a detached container (`clab run -d`, `clab create`): the role
/// of conmon or containerd-shim. The clab process that cloned the container execve's
/// `clab-init --supervise ...`, so it stays the container init's parent (the pidfd, waitpid and
/// PR_SET_PDEATHSIG all survive an execve) while shedding the full clab binary: Foundation, the
/// argument parser, the tracer. Its session is its own (setsid at spawn), with no controlling
/// terminal, so it outlives the CLI and the terminal it was started from.
///
/// It only waits and copies:
/// - the container's stdout and stderr (two pipes, or one pty master with -t) into
///   `<dir>/container.log`, and to every client of `<dir>/attach` (below);
/// - for a created container, "S" on `<dir>/control` (a FIFO `clab start` writes) becomes "S" on
///   the sync socket: init, blocked just before execve, runs the command (clab's exec.fifo);
/// - the sync socket's EOF (the command was executed) or init's one-line failure;
/// - the exit status and time, into `<dir>/events`;
/// then it execve's `clab _cleanup ID` to remove the container's cgroups, network and mounts,
/// keeping the record (state.json, events, container.log, spec.wire) for `clab ps -a` and
/// `clab logs` until `clab rm`.
///
/// Attaching (conmon's design; what `docker attach` and `docker run` without -d need):
/// `<dir>/attach` is a unix stream socket (0600, root's). Each client gets the output as it
/// comes, in Docker's multiplexed framing (8 bytes: stream 1 or 2, three zeros, the length big
/// endian; then the bytes), so the daemon passes it on unchanged. What a client sends is the
/// container's stdin (the pty master with -t, the stdin pipe with -i; else it is discarded).
/// A slow client holds the output back (the container blocks on its pipe, as under Docker)
/// rather than losing it. A client that shuts its sending side (a half-close) ends the
/// container's stdin (`docker run -i`: its input ended); the control FIFO also takes
/// "W ROWS COLS" (resize the pty). All clients are closed
/// after the exit is recorded, so a client that sees EOF finds the exit status.
///
/// Memory (release, static; bench/results-lifecycle.md, 50 supervisors): VmRSS 3.4 MiB, but
/// 3.3 MiB of it is RssFile, clab-init's own pages (text, read-only data, touched at start and
/// mapped with the kernel's fault-around), one copy in the page cache for every supervisor. Its
/// own memory is RssAnon = Private_Dirty ≈ 120 KiB (heap, stack, Swift runtime data; 172 KiB
/// with the earlier 64 KiB zero-filled buffer), and Pss ≈ 190 KiB with the text shared by 50.
/// conmon's RSS is ~1-2 MiB the same way (glib and libc pages included).
/// If it is killed, the container dies with it (PR_SET_PDEATHSIG), and `clab ps -a`/`clab gc`
/// say so and clean up: there is no process left that could record the exit.
public enum SupervisorProcess {
    /// Bytes per read of the container's output: what one pipe holds by default is 64 KiB, but
    /// 16 KiB reads keep the supervisor's private memory small and cost nothing measurable.
    static let chunk = 16 << 10
    /// Bytes of stdin taken from a client at a time: at most PIPE_BUF, so a write to the stdin
    /// pipe that poll called writable is never partial.
    static let stdinChunk = 4096
    static let maxClients = 16

    /// One attached client: how much of the current frame it has been sent, and whether it
    /// still sends stdin.
    struct Client {
        var fd: Int32
        var sent: Int
        var reading = true
    }

    /// `--supervise CLAB ROOT RUNDIR ID PIDFD PID SYNC OUT ERR IN LOGMAX STATUS` (SYNC is -1
    /// once the command runs; OUT is the stdout pipe, or a pty master with -t; ERR the stderr
    /// pipe or -1; IN the stdin pipe's write end, the master with -t, or -1; LOGMAX is the log's
    /// cap in bytes; STATUS is the CLI's status pipe, told "O <id>" once the log is open, then
    /// closed).
    public static func main(_ arguments: [String]) -> Never {
        guard arguments.count == 12, let pidfd = Int32(arguments[4]), let pid = Int32(arguments[5]),
            let syncArgument = Int32(arguments[6]), let out = Int32(arguments[7]), let err = Int32(arguments[8]),
            let stdinArgument = Int32(arguments[9]), let logMax = Int(arguments[10]), logMax > 0,
            let statusFD = Int32(arguments[11])
        else {
            exit(2)
        }
        let clab = arguments[0]
        let root = arguments[1]
        let runDir = arguments[2]
        let id = arguments[3]
        let dir = runDir + "/containers/" + id
        let headerSize = SupervisorInterface.headerSize
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        var log = CappedLog(path: dir + "/container.log", maxSize: logMax)
        let listener = listen(at: dir + "/" + SupervisorInterface.attachName)
        // "S" (start), "W" (resize). Open before "O" goes out: whoever starts the container
        // next finds a reader (a FIFO without one refuses a non-blocking writer). O_RDWR:
        // opening does not block, and a writer closing never makes it report EOF.
        let control = open(dir + "/" + SupervisorInterface.controlName, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        if statusFD >= 0 {
            let line = Array("O \(id)\n".utf8)
            _ = line.withUnsafeBytes { write(statusFD, $0.baseAddress, $0.count) }
            close(statusFD)
        }
        var sync = syncArgument
        var stdinFD = stdinArgument
        var started = sync < 0
        var sources: [(fd: Int32, stream: UInt8)] = [(out, 1)]
        if err >= 0 { sources.append((err, 2)) }
        for source in sources { _ = fcntl(source.fd, F_SETFL, fcntl(source.fd, F_GETFL) | O_NONBLOCK) }
        if stdinFD >= 0 { _ = fcntl(stdinFD, F_SETFL, fcntl(stdinFD, F_GETFL) | O_NONBLOCK) }
        var clients: [Client] = []
        // Not Arrays: the supervisor's only buffers, allocated once and never zero-filled. The
        // output frame (header + chunk), pending stdin, and a scratch area for messages.
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: headerSize + chunk, alignment: 16)
        var frameLength = 0
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: stdinChunk, alignment: 16)
        var inputStart = 0
        var inputEnd = 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)

        /// Whether some client still lacks part of the current frame.
        func framePending() -> Bool { clients.contains { $0.sent < frameLength } }

        /// One read of `source` into a new frame: logged, then offered to every client.
        func readOutput(_ index: Int) {
            let source = sources[index]
            let body = frame.baseAddress.map { $0 + headerSize }
            var n: Int
            repeat { n = read(source.fd, body, chunk) } while n < 0 && errno == EINTR
            if n < 0 && errno == EAGAIN { return }
            // EOF on a pipe; EIO on a pty master once the container's side is closed.
            guard n > 0 else {
                sources.remove(at: index)
                return
            }
            log.write(UnsafeRawBufferPointer(rebasing: frame[headerSize..<headerSize + n]))
            frame[0] = source.stream
            frame[1] = 0
            frame[2] = 0
            frame[3] = 0
            frame[4] = UInt8(truncatingIfNeeded: n >> 24)
            frame[5] = UInt8(truncatingIfNeeded: n >> 16)
            frame[6] = UInt8(truncatingIfNeeded: n >> 8)
            frame[7] = UInt8(truncatingIfNeeded: n)
            frameLength = headerSize + n
            for i in clients.indices { clients[i].sent = 0 }
            offer()
        }

        /// Sends what each client lacks of the frame, without blocking.
        func offer() {
            var kept: [Client] = []
            for var client in clients {
                if client.sent < frameLength {
                    let n = send(
                        client.fd, frame.baseAddress.map { $0 + client.sent }, frameLength - client.sent,
                        Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                    if n > 0 {
                        client.sent += n
                    } else if !(n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        close(client.fd)
                        continue
                    }
                }
                kept.append(client)
            }
            clients = kept
        }

        /// Writes pending stdin to the container without blocking.
        func flushInput() {
            guard stdinFD >= 0, inputStart < inputEnd else { return }
            let n = write(stdinFD, input.baseAddress.map { $0 + inputStart }, inputEnd - inputStart)
            if n > 0 {
                inputStart += n
            } else if n < 0 && errno != EAGAIN && errno != EINTR {
                // The container closed its stdin: what clients send from now on is dropped.
                inputStart = inputEnd
            }
            if inputStart == inputEnd {
                inputStart = 0
                inputEnd = 0
            }
        }

        /// Control messages: "S", "W ROWS COLS", one per line (a bare "S" from older clab).
        func readControl() {
            let n = read(control, scratch.baseAddress, scratch.count)
            guard n > 0 else { return }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: scratch[0..<n]), as: UTF8.self)
            for message in text.split(separator: "\n") {
                let fields = message.split(separator: " ")
                switch fields.first {
                case "S":
                    if !started && sync >= 0 {
                        started = true
                        var byte = SyncMessage.start
                        _ = send(sync, &byte, 1, Int32(MSG_NOSIGNAL))
                    }
                case "W":
                    if fields.count == 3, let rows = UInt16(fields[1]), let cols = UInt16(fields[2]) {
                        var size = winsize(ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0)
                        _ = ioctl(out, UInt(TIOCSWINSZ), &size)
                    }
                default: continue
                }
            }
        }

        /// A client's stdin, or its going.
        func clientReady(_ index: Int, _ revents: Int16) {
            if revents & Int16(POLLOUT) != 0 { offer() }
            guard index < clients.count else { return }
            if revents & Int16(POLLIN) != 0 && clients[index].reading && inputStart == inputEnd {
                let n = recv(clients[index].fd, input.baseAddress, stdinChunk, Int32(MSG_DONTWAIT))
                if n > 0 {
                    // Without a stdin (no -i, no -t) what it sends goes nowhere.
                    if stdinFD >= 0 {
                        inputStart = 0
                        inputEnd = n
                        flushInput()
                    }
                    return
                }
                if n == 0 || !(errno == EAGAIN || errno == EINTR) { clients[index].reading = false }
                // A half-close (the client shut its sending side but still reads: no POLLHUP) is
                // the end of stdin (`docker run -i`'s input ended): the container's stdin pipe
                // closes, after what was sent before it. A pty's master stays (it is the output).
                if n == 0 && revents & Int16(POLLHUP) == 0 && stdinFD >= 0 && stdinFD != out
                    && inputStart == inputEnd
                {
                    close(stdinFD)
                    stdinFD = -1
                }
            }
            // Gone (both ways closed), and nothing left to read from it.
            let gone = revents & Int16(POLLHUP | POLLERR) != 0
            if gone && (!clients[index].reading || revents & Int16(POLLIN) == 0) {
                close(clients[index].fd)
                clients.remove(at: index)
            }
        }

        while true {
            var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
            // Output waits while a client lacks part of the last frame (it is sent first).
            if !framePending() {
                for source in sources { fds.append(pollfd(fd: source.fd, events: Int16(POLLIN), revents: 0)) }
            }
            if sync >= 0 && started { fds.append(pollfd(fd: sync, events: Int16(POLLIN), revents: 0)) }
            if control >= 0 { fds.append(pollfd(fd: control, events: Int16(POLLIN), revents: 0)) }
            if listener >= 0 { fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
            if stdinFD >= 0 && inputStart < inputEnd {
                fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0))
            }
            for client in clients {
                var events: Int16 = 0
                if client.reading && inputStart == inputEnd { events |= Int16(POLLIN) }
                if client.sent < frameLength { events |= Int16(POLLOUT) }
                fds.append(pollfd(fd: client.fd, events: events, revents: 0))
            }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { continue }
            for fd in fds where fd.revents != 0 {
                if let index = sources.firstIndex(where: { $0.fd == fd.fd }),
                    fd.fd != stdinFD || fd.events != Int16(POLLOUT)
                {
                    if !framePending() { readOutput(index) }
                } else if fd.fd == control {
                    readControl()
                } else if fd.fd == listener {
                    // accept4 is not imported; single-threaded, so nothing forks between the two.
                    let client = accept(listener, nil, nil)
                    if client >= 0 {
                        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                        _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                        if clients.count < maxClients {
                            clients.append(Client(fd: client, sent: frameLength))
                        } else {
                            close(client)
                        }
                    }
                } else if fd.fd == stdinFD && fd.events == Int16(POLLOUT) {
                    flushInput()
                } else if fd.fd == sync {
                    // EOF: init executed the command (the socket is close-on-exec). A message: it failed.
                    let n = recv(sync, scratch.baseAddress, scratch.count, 0)
                    if n > 0 {
                        let line = InitReport.decode(Array(scratch[0..<n]), stage: 0)
                        EventLog.append(dir: dir, event: "failed", detail: line)
                        let text = Array(("clab: " + line + "\n").utf8)
                        text.withUnsafeBytes { log.write($0) }
                    } else {
                        EventLog.append(dir: dir, event: "started")
                    }
                    close(sync)
                    sync = -1
                } else if let index = clients.firstIndex(where: { $0.fd == fd.fd }) {
                    clientReady(index, fd.revents)
                }
            }
            if fds[0].revents != 0 { break }
        }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // What is left in the pipes, to the log and the clients (bounded: a client that takes
        // nothing for 2 s is left behind).
        let deadline = monotonicMilliseconds() + 2000
        while !sources.isEmpty && monotonicMilliseconds() < deadline {
            if framePending() {
                var fds = clients.filter { $0.sent < frameLength }.map {
                    pollfd(fd: $0.fd, events: Int16(POLLOUT), revents: 0)
                }
                _ = poll(&fds, nfds_t(fds.count), 100)
                offer()
                continue
            }
            let before = sources.count
            let length = frameLength
            readOutput(0)
            // Nothing more right now (EAGAIN): done with this source.
            if sources.count == before && frameLength == length && !framePending() { sources.removeFirst() }
        }
        while framePending() && monotonicMilliseconds() < deadline {
            var fds = clients.filter { $0.sent < frameLength }.map {
                pollfd(fd: $0.fd, events: Int16(POLLOUT), revents: 0)
            }
            _ = poll(&fds, nfds_t(fds.count), 100)
            offer()
        }
        let signaled = clab_wifsignaled(status) != 0
        let code = signaled ? 128 + clab_wtermsig(status) : clab_wexitstatus(status)
        EventLog.append(
            dir: dir, event: "exited",
            detail: "code=\(code)" + (signaled ? " signal=\(clab_wtermsig(status))" : ""))
        // Recorded: now attached clients see EOF (and find the exit status).
        for client in clients { close(client.fd) }
        if listener >= 0 { close(listener) }
        // The host's side goes now (cgroups, veth, mounts); the record stays until `clab rm`.
        let argv = [clab, "_cleanup", id, root, runDir]
        _ = withCStrings(argv) { cArgv in
            withCStrings(["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]) { execve(clab, cArgv, $0) }
        }
        exit(0)
    }

    /// The attach socket: root's only (0600 from the start, by umask: no moment where another
    /// user could connect), or -1 (the path is too long for a socket address; nothing attaches).
    static func listen(at path: String) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return -1 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        unlink(path)
        let mask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(mask)
        guard bound == 0, Glibc.listen(fd, 8) == 0 else {
            close(fd)
            return -1
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    static func monotonicMilliseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }
}
