import CShims
import ClabSys
import Glibc

/// clab's one way to start a host program (a tool, an OCI hook, the detached clab, the tests'
/// clab): posix_spawn, no shell, with default dispositions and an empty signal mask. clab may
/// block or ignore signals in the calling thread (trace --pid blocks SIGINT/SIGTERM, the hook
/// runner SIGPIPE), and a child inherits both (busybox ping's -W is an alarm(): with SIGALRM
/// blocked it never times out).
extension Host {
    /// What one of the child's descriptors is: one of ours, or a file opened for it.
    public enum ChildFD: Sendable {
        case fd(Int32)
        case open(String, flags: Int32)

        public static let null = ChildFD.open("/dev/null", flags: O_RDWR)
    }

    /// Starts `path` with `fds` as its descriptors 0, 1, 2, … in order, and no other of ours: a
    /// detached clab becomes the supervisor and would hold any inherited fd (a pipe its caller
    /// reads to EOF, say) as long as the container runs, and a tool or a hook has no use for
    /// one. A source fd must not be one of the targets set before it. `newSession`: setsid,
    /// so a terminal that closes (SIGHUP) does not reach it. `closing`: a descriptor of ours to
    /// close once the child has its copy (its end of a pipe), whether or not it started. A
    /// failure is one ClabError: "`failure`: why" ("cannot run tar: No such file or directory").
    public static func spawn(
        path: String, argv: [String], environment: [String], fds: [ChildFD], newSession: Bool = false,
        closing: Int32? = nil, failure: String? = nil
    ) throws -> pid_t {
        defer { if let closing { close(closing) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, source) in fds.enumerated() {
            switch source {
            // dup2 of a descriptor onto itself clears its close-on-exec (glibc ≥ 2.29).
            case .fd(let fd): posix_spawn_file_actions_adddup2(&actions, fd, Int32(target))
            case .open(let file, let flags): posix_spawn_file_actions_addopen(&actions, Int32(target), file, flags, 0)
            }
        }
        _ = clab_spawn_closefrom(&actions, Int32(fds.count))
        do {
            return try spawn(
                path: path, argv: argv, environment: environment, actions: &actions, newSession: newSession)
        } catch let error as SyscallError {
            throw ClabError("\(failure ?? "cannot run \(argv[0])"): \(errnoDescription(error.errno))")
        }
    }

    /// The same with file actions of the caller's own (tests open log files as stdio).
    public static func spawn(
        path: String, argv: [String], environment: [String], actions: UnsafePointer<posix_spawn_file_actions_t>?,
        newSession: Bool = false
    ) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        // POSIX_SPAWN_SETSID is 0x80 in glibc (not imported).
        let setsid: Int32 = newSession ? 0x80 : 0
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsid))
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cArgv in
            withCStrings(environment) { cEnv in posix_spawn(&pid, path, actions, &attr, cArgv, cEnv) }
        }
        guard rc == 0 else { throw SyscallError("posix_spawn \(argv[0])", errno: rc) }
        return pid
    }
}

/// A host tool with its stdio on given descriptors (posix_spawn, no shell).
public struct Tool {
    public let pid: pid_t

    public static func start(_ argv: [String], stdin: Int32, stdout: Int32, stderr: Int32) throws -> Tool {
        guard let path = Host.which(argv[0]) else {
            throw ClabError("\(argv[0]) is not installed: run `apt-get install \(argv[0])`")
        }
        return Tool(
            pid: try Host.spawn(
                path: path, argv: argv, environment: Host.toolEnvironment + ["LC_ALL=C"],
                fds: [.fd(stdin), .fd(stdout), .fd(stderr)]))
    }

    /// Kills the tool (on an error path) and reaps it. Only for a tool not yet waited for:
    /// until then its pid cannot belong to another process.
    public func stop() {
        kill(pid, SIGKILL)
        _ = wait()
    }

    /// Waits for the tool; its exit status (128+signal if killed).
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return ExitStatus(raw: status).code
    }
}
