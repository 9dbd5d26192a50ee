import CShims
import Glibc

/// How a process ended, in shell terms: the exit code, or 128+signal. Here, below the runtime,
/// so the tracer can speak of how a traced command ended without importing the runtime.
public struct ExitStatus: Sendable, Equatable {
    public let raw: Int32

    /// From a waitpid(2) status.
    public init(raw: Int32) { self.raw = raw }

    public var signal: Int32? { clab_wifsignaled(raw) != 0 ? clab_wtermsig(raw) : nil }

    public var code: Int32 {
        if let signal { return 128 + signal }
        return clab_wifexited(raw) != 0 ? clab_wexitstatus(raw) : 1
    }
}

extension ExitStatus {
    /// Waits for a child of ours (the container's init, an exec's clab-init, a traced child),
    /// through EINTR.
    public static func reap(_ pid: pid_t) -> ExitStatus {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return ExitStatus(raw: status)
    }

    /// `reap`, once: the status is kept in `cache`, so a second wait returns it instead of
    /// waiting on a pid the kernel may have given to another process by then.
    public static func reapOnce(_ pid: pid_t, _ cache: inout ExitStatus?) -> ExitStatus {
        if let cache { return cache }
        let status = reap(pid)
        cache = status
        return status
    }

    /// One message on a sync socket, whole, without SIGPIPE if the child is gone.
    public static func sendWhole(_ socket: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}
