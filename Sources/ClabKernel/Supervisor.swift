import CShims
import Glibc

/// The per-container supervisor of a detached container (`clab run -d`, `clab create`): the role
/// of conmon or containerd-shim. The clab process that cloned the container execve's
/// `clab-init --supervise ...`, so it stays the container init's parent (the pidfd, waitpid and
/// PR_SET_PDEATHSIG all survive an execve) while shedding the full clab binary: Foundation, the
/// argument parser, the tracer. Its session is its own (setsid at spawn), with no controlling
/// terminal, so it outlives the CLI and the terminal it was started from.
///
/// It only waits and copies:
/// - the container's stdout and stderr (one pipe) into `<dir>/container.log`;
/// - for a created container, "S" on `<dir>/control` (a FIFO `clab start` writes) becomes "S" on
///   the sync socket: init, blocked just before execve, runs the command (clab's exec.fifo);
/// - the sync socket's EOF (the command was executed) or init's one-line failure;
/// - the exit status and time, into `<dir>/events`;
/// then it execve's `clab _cleanup ID` to remove the container's cgroups, network and mounts,
/// keeping the record (state.json, events, container.log, spec.wire) for `clab ps -a` and
/// `clab logs` until `clab rm`.
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
    /// The log's default cap (`--log-max-size`), as Docker's json-file max-size is commonly set.
    public static let defaultLogMaxSize = 10 << 20
    /// Bytes per read of the container's output: what one pipe holds by default is 64 KiB, but
    /// 16 KiB reads keep the supervisor's private memory small and cost nothing measurable.
    static let chunk = 16 << 10

    /// `--supervise CLAB ROOT RUNDIR ID PIDFD PID SYNC OUT LOGMAX STATUS` (SYNC is -1 once the
    /// command runs; OUT is a pipe, or a pty master with -t; LOGMAX is the log's cap in bytes;
    /// STATUS is the CLI's status pipe, told "O <id>" once the log is open, then closed).
    public static func main(_ arguments: [String]) -> Never {
        guard arguments.count == 10, let pidfd = Int32(arguments[4]), let pid = Int32(arguments[5]),
            let syncArgument = Int32(arguments[6]), let out = Int32(arguments[7]), let logMax = Int(arguments[8]),
            logMax > 0, let statusFD = Int32(arguments[9])
        else {
            exit(2)
        }
        let clab = arguments[0]
        let root = arguments[1]
        let runDir = arguments[2]
        let id = arguments[3]
        let dir = runDir + "/containers/" + id
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        var log = CappedLog(path: dir + "/container.log", maxSize: logMax)
        if statusFD >= 0 {
            let line = Array("O \(id)\n".utf8)
            _ = line.withUnsafeBytes { write(statusFD, $0.baseAddress, $0.count) }
            close(statusFD)
        }
        var sync = syncArgument
        // A created container waits for `clab start` on the control FIFO. O_RDWR: opening does
        // not block, and a writer closing never makes it report EOF.
        var control: Int32 = -1
        if sync >= 0 { control = open(dir + "/control", O_RDWR | O_NONBLOCK | O_CLOEXEC) }
        var started = sync < 0
        _ = fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK)
        var outOpen = true
        // Not an Array: the supervisor's only buffer, allocated once and never zero-filled.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)

        func copyOutput() {
            while outOpen {
                let n = read(out, buffer.baseAddress, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN { return }
                // EOF on a pipe; EIO on a pty master once the container's side is closed.
                guard n > 0 else {
                    outOpen = false
                    return
                }
                log.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
        }

        while true {
            var fds = [pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
            if outOpen { fds.append(pollfd(fd: out, events: Int16(POLLIN), revents: 0)) }
            if sync >= 0 && started { fds.append(pollfd(fd: sync, events: Int16(POLLIN), revents: 0)) }
            if control >= 0 && !started { fds.append(pollfd(fd: control, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { continue }
            for fd in fds where fd.revents != 0 {
                if fd.fd == out {
                    copyOutput()
                } else if fd.fd == control {
                    var byte: UInt8 = 0
                    if read(control, &byte, 1) == 1 && byte == UInt8(ascii: "S") {
                        started = true
                        _ = send(sync, &byte, 1, Int32(MSG_NOSIGNAL))
                    }
                } else if fd.fd == sync {
                    // EOF: init executed the command (the socket is close-on-exec). A message: it failed.
                    let n = recv(sync, buffer.baseAddress, buffer.count, 0)
                    if n > 0 {
                        let line = InitReport.decode(Array(buffer[0..<n]), stage: 0)
                        EventLog.append(dir: dir, event: "failed", detail: line)
                        let text = Array(("clab: " + line + "\n").utf8)
                        text.withUnsafeBytes { log.write($0) }
                    } else {
                        EventLog.append(dir: dir, event: "started")
                    }
                    close(sync)
                    sync = -1
                }
            }
            if fds[0].revents != 0 { break }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        copyOutput()
        let signaled = clab_wifsignaled(status) != 0
        let code = signaled ? 128 + clab_wtermsig(status) : clab_wexitstatus(status)
        EventLog.append(
            dir: dir, event: "exited",
            detail: "code=\(code)" + (signaled ? " signal=\(clab_wtermsig(status))" : ""))
        // The host's side goes now (cgroups, veth, mounts); the record stays until `clab rm`.
        let argv = [clab, "_cleanup", id, root, runDir]
        _ = withCStrings(argv) { cArgv in
            withCStrings(["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]) { execve(clab, cArgv, $0) }
        }
        exit(0)
    }
}

/// `container.log`, capped: the run directory is often tmpfs (RAM) and the container hostile,
/// so a container that prints forever must not fill it. At `maxSize` the file becomes
/// `container.log.1` (replacing the one before) and a new one starts, as Docker's json-file
/// driver does with max-size and max-file=2: at most 2 × maxSize on disk, the newest output kept.
public struct CappedLog {
    public static let rotatedSuffix = ".1"
    let path: String
    let maxSize: Int
    private var fd: Int32
    private var size: Int

    public init(path: String, maxSize: Int) {
        self.path = path
        self.maxSize = max(maxSize, 1)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        var st = stat()
        size = fd >= 0 && fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Appends `bytes`, rotating whenever the file would pass the cap. Output that cannot be
    /// written (a full disk) is dropped: the container must not block on its supervisor.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty && fd >= 0 {
            if size >= maxSize { rotate() }
            let part = UnsafeRawBufferPointer(rebasing: rest.prefix(maxSize - size))
            var done = 0
            while done < part.count {
                let n = Glibc.write(fd, part.baseAddress.map { $0 + done }, part.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                done += n
            }
            size += done
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(done))
        }
    }

    /// Every step a rename, so both names always exist for `clab logs`: the current file also
    /// becomes `.1` (a second link, renamed over the old one), then a new empty file takes the name.
    private mutating func rotate() {
        close(fd)
        let rotated = path + Self.rotatedSuffix
        unlink(rotated + ".tmp")
        if link(path, rotated + ".tmp") == 0 { _ = rename(rotated + ".tmp", rotated) }
        fd = open(path + ".tmp", O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd >= 0 && rename(path + ".tmp", path) != 0 {
            close(fd)
            fd = -1
        }
        size = 0
    }
}
