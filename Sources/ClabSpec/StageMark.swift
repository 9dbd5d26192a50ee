import CShims

/// Which stage's work the calling thread is doing, as it tells a tracer: the value it passes to
/// `clab_mark` (an exported no-op in CShims that `clab trace --step` hooks with a uprobe), so
/// the trace labels each call with the stage that made it instead of guessing from the calls.
/// Both sides mark: clab-init through `step(n)` (ClabInit's Init.swift, which also keeps init's
/// current mark), clab's host side through `StageMark.host(n)` around each stage's host half
/// (ClabRuntime's `Stages/`), and the C child between clone3 and execve around its id calls
/// (shims.c). The values are defined here only: the code sends them, the tracer reads them back
/// with `init(value:)`.
public enum StageMark: Sendable, Equatable {
    /// Plumbing, no stage's: init starts and reads the spec; clab writes state, clones, says "go".
    case plumbing
    /// Stage n's work (1...99).
    case stage(Int)
    /// clab-init's look-up of the command in the container's PATH.
    case commandLookup
    /// clab-init's execve of the command.
    case execute

    public var value: Int32 {
        switch self {
        case .plumbing: 0
        case .stage(let n): Int32(n)
        case .commandLookup: 100
        case .execute: 101
        }
    }

    public init?(value: Int32) {
        switch value {
        case 0: self = .plumbing
        case 1...99: self = .stage(Int(value))
        case 100: self = .commandLookup
        case 101: self = .execute
        default: return nil
        }
    }

    /// Runs `body` as stage `stage`'s host-side work on this thread: marked on entry, plumbing
    /// again after. The host's steps do not nest (each stage's host half is one call), so there
    /// is nothing to restore but plumbing; a tracer keeps the marks per thread, as clab joins
    /// a cgroup on one thread while it plumbs the network on another.
    public static func host<R>(_ stage: Int, _ body: () throws -> R) rethrows -> R {
        clab_mark(Int32(stage))
        defer { clab_mark(0) }
        return try body()
    }
}
