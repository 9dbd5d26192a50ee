import CShims
import ClabHost
import ClabSpec
import ClabSys
import Glibc

/// The host's side of config.json's hooks (OCIHooks.swift in ClabSpec has the table of
/// when, where and what failure means): prestart and createRuntime during create, poststart
/// after start, poststop after delete, each in clab's own namespaces and with its credentials.
///
/// A hook gets the state JSON on stdin (a pipe clab writes and closes), its own `env` as its
/// whole environment, clab's stderr as its stdout and stderr (clab's stdout may be a caller's
/// protocol), and is killed with SIGKILL once its timeout passes.
public enum OCIHookRunner {
    /// Runs `phase`'s hooks of `spec` in order; the first that fails (exit status not 0,
    /// killed, or not executable) stops the rest and is thrown, named.
    public static func run(_ phase: OCIHooks.Phase, of spec: ContainerSpec, status: String, pid: Int32) throws {
        guard let oci = spec.oci else { return }
        var state = oci
        state.hostPID = pid
        let json = state.hookState(status: status)
        for (i, hook) in oci.hooks[phase].enumerated() {
            if let failure = runOne(hook, state: json) {
                throw ClabError("hooks.\(phase.rawValue)[\(i)] (\(hook.shown)): \(failure)")
            }
        }
    }

    /// poststart and poststop: a failure is a warning and the rest still run (runtime.md:
    /// "the runtime MUST log a warning, but the remaining hooks and lifecycle continue").
    /// Returns the warnings, one line each.
    public static func runWarning(_ phase: OCIHooks.Phase, of spec: ContainerSpec, status: String, pid: Int32)
        -> [String]
    {
        guard let oci = spec.oci else { return [] }
        var state = oci
        state.hostPID = pid
        let json = state.hookState(status: status)
        return oci.hooks[phase].enumerated().compactMap { i, hook in
            runOne(hook, state: json).map { "warning: hooks.\(phase.rawValue)[\(i)] (\(hook.shown)): \($0)" }
        }
    }

    /// nil when the hook exited 0, else why not.
    static func runOne(_ hook: OCIHooks.Hook, state: String) -> String? {
        guard let fds = try? makePipe() else { return "pipe2: \(errnoDescription(errno))" }
        // The state on stdin, stdout and stderr both clab's stderr.
        let pid: pid_t
        do {
            pid = try Host.spawn(
                path: hook.path, argv: hook.args.isEmpty ? [hook.path] : hook.args, environment: hook.env,
                fds: [.fd(fds.read), .fd(2), .fd(2)], closing: fds.read, failure: "cannot execute \(hook.path)")
        } catch {
            close(fds.write)
            return "\(error)"
        }
        // A few hundred bytes, far below a pipe's buffer: the write never blocks. A hook that
        // exits without reading makes it fail with EPIPE, harmless, but also raises SIGPIPE,
        // which would kill clab: blocked on this thread meanwhile, and a pending one taken.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        let written = Array(state.utf8).withUnsafeBytes { write(fds.write, $0.baseAddress, $0.count) }
        if written < 0 && errno == EPIPE {
            var now = timespec()
            _ = sigtimedwait(&pipeSignal, nil, &now)
        }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        close(fds.write)
        let status = waitWithTimeout(pid, seconds: hook.timeout)
        switch status {
        case .none: return "killed after its timeout of \(hook.timeout ?? 0) s"
        case .some(let s) where s.code == 0 && s.signal == nil: return nil
        case .some(let s):
            if let signal = s.signal { return "killed by signal \(signal)" }
            return "exited \(s.code)"
        }
    }

    /// The hook's exit, or nil when it was killed at its timeout.
    static func waitWithTimeout(_ pid: pid_t, seconds: Int?) -> (code: Int32, signal: Int32?)? {
        let deadline = seconds.map { EventLog.nowMilliseconds() + $0 * 1000 }
        var status: Int32 = 0
        var pause: UInt32 = 500
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return (127, nil) }
            if let deadline, EventLog.nowMilliseconds() >= deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return nil
            }
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
        if status & 0x7f == 0 { return ((status >> 8) & 0xff, nil) }
        return (128 + (status & 0x7f), status & 0x7f)
    }
}
