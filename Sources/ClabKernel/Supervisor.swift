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
/// Measured RSS (release, static): ~3.4 MiB per supervisor (bench/results-lifecycle.md); conmon is ~1-2 MiB.
/// If it is killed, the container dies with it (PR_SET_PDEATHSIG), and `clab ps -a`/`clab gc`
/// say so and clean up: there is no process left that could record the exit.
public enum SupervisorProcess {
    /// `--supervise CLAB ROOT RUNDIR ID PIDFD PID SYNC OUT` (SYNC is -1 once the command runs).
    public static func main(_ arguments: [String]) -> Never {
        guard arguments.count == 8, let pidfd = Int32(arguments[4]), let pid = Int32(arguments[5]),
            let syncArgument = Int32(arguments[6]), let out = Int32(arguments[7])
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
        let log = open(dir + "/container.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        var sync = syncArgument
        // A created container waits for `clab start` on the control FIFO. O_RDWR: opening does
        // not block, and a writer closing never makes it report EOF.
        var control: Int32 = -1
        if sync >= 0 { control = open(dir + "/control", O_RDWR | O_NONBLOCK | O_CLOEXEC) }
        var started = sync < 0
        _ = fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_NONBLOCK)
        var outOpen = true
        var buffer = [UInt8](repeating: 0, count: 65536)

        func copyOutput() {
            while outOpen {
                let n = buffer.withUnsafeMutableBytes { read(out, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n == 0 { outOpen = false }
                guard n > 0 else { return }
                if log >= 0 { try? FS.writeAll(log, Array(buffer[0..<n]), what: "container.log") }
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
                    let n = buffer.withUnsafeMutableBytes { recv(sync, $0.baseAddress, $0.count, 0) }
                    if n > 0 {
                        let line = InitReport.decode(Array(buffer[0..<n]), stage: 0)
                        EventLog.append(dir: dir, event: "failed", detail: line)
                        if log >= 0 { try? FS.writeAll(log, Array(("clab: " + line + "\n").utf8), what: "log") }
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
