import CShims

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
