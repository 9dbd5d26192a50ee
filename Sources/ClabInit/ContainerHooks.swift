import ClabSpec
import ClabSys
import Glibc

extension OCIHooks {
    /// Runs `hooks` from clab-init, in the container's namespaces (createContainer before
    /// pivot_root, with the host's paths still visible; startContainer just before the
    /// process). `state`: the state JSON the host prepared (OCISetup.hookState), given on each
    /// hook's stdin. A hook that fails or outlives its timeout fails the container, named.
    static func runInContainer(_ hooks: [Hook], phase: Phase, state: String) throws {
        for (i, hook) in hooks.enumerated() {
            let status = try runOne(hook, state: state)
            guard status == 0 else {
                let why = status < 0 ? "was killed after its timeout of \(hook.timeout ?? 0) s" : "exited \(status)"
                throw ClabError("hooks.\(phase.rawValue)[\(i)] (\(hook.shown)) \(why)")
            }
        }
    }

    /// fork, stdin a pipe holding `state`, execve; then wait, killing it at its timeout.
    /// Returns its exit status (128+signal for a signal), or -1 when its timeout killed it.
    /// Init is single-threaded, so fork is safe here.
    private static func runOne(_ hook: Hook, state: String) throws -> Int32 {
        let pipeFDs = try makePipe()
        let pid = fork()
        if pid == 0 {
            _ = dup2(pipeFDs.read, 0)
            let argv = hook.args.isEmpty ? [hook.path] : hook.args
            _ = withCStrings(argv) { a in withCStrings(hook.env) { e in execve(hook.path, a, e) } }
            _exit(127)
        }
        close(pipeFDs.read)
        guard pid > 0 else {
            close(pipeFDs.write)
            throw SyscallError("fork for hook \(hook.path)")
        }
        // The state is a few hundred bytes: far below a pipe's buffer, so this never blocks.
        // A hook that does not read it gets EPIPE on our side, which is ignored (MSG_NOSIGNAL
        // does not apply to write(2): SIGPIPE is ignored in init around it).
        let previous = signal(SIGPIPE, SIG_IGN)
        _ = Array(state.utf8).withUnsafeBytes { write(pipeFDs.write, $0.baseAddress, $0.count) }
        close(pipeFDs.write)
        signal(SIGPIPE, previous)
        var waited = 0.0
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw SyscallError("waitpid for hook \(hook.path)") }
            if let limit = hook.timeout, waited >= Double(limit) {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return -1
            }
            usleep(10_000)
            waited += 0.01
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}
