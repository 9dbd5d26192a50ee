import CShims
import ClabSys
import Glibc

/// A container's place in the lifecycle (the OCI runtime spec's states, plus Docker's paused):
///
///     clab create ──▶ created ──clab start──▶ running ◀──unpause── paused
///                       │                      │  └──pause──────────▲
///                       │                      ▼ exit, stop, kill
///                       └────clab stop────▶ stopped ──clab rm──▶ (deleted: the record is gone)
///
/// `clab run -d` is create and start in one. No Foundation: the supervisor (clab-init) records
/// transitions too.
public enum LifecycleStatus: String, Sendable, CaseIterable {
    case created, running, paused, stopped
}

/// What a user (or the supervisor) asks of a container.
public enum LifecycleAction: String, Sendable, CaseIterable {
    case start, pause, unpause, exec, stop, kill, remove, forceRemove
}

/// The state machine: which action is allowed in which state, and where it leads. One table,
/// so the CLI, helper commands and tests agree; everything else is refused with the state named.
public enum Lifecycle {
    /// (from, action) → to. `stop` and `kill` lead to stopped once the process is gone (the
    /// supervisor records the exit); `remove` leaves no state at all (nil).
    public static let transitions: [LifecycleAction: [LifecycleStatus: LifecycleStatus?]] = [
        .start: [.created: .running],
        .pause: [.running: .paused],
        .unpause: [.paused: .running],
        .exec: [.running: .running],
        .stop: [.created: .stopped, .running: .stopped, .paused: .stopped],
        .kill: [.running: .stopped, .paused: .stopped],
        .remove: [.created: nil, .stopped: nil],
        .forceRemove: [.created: nil, .running: nil, .paused: nil, .stopped: nil],
    ]

    /// The state after `action`, or a one-line error naming the container's state and what to do.
    @discardableResult
    public static func check(_ action: LifecycleAction, from status: LifecycleStatus, name: String)
        throws(LifecycleError) -> LifecycleStatus?
    {
        if let allowed = transitions[action], let next = allowed[status] { return next }
        throw LifecycleError(refusal(action, status, name))
    }

    static func refusal(_ action: LifecycleAction, _ status: LifecycleStatus, _ name: String) -> String {
        switch (action, status) {
        case (.start, .running), (.start, .paused):
            return "container \(name) is \(status.rawValue): it has already started"
        case (.start, .stopped):
            return
                "container \(name) is stopped: a stopped container does not start again; `clab rm \(name)` and run a new one"
        case (.remove, _):
            return
                "container \(name) is \(status.rawValue): stop it first (`clab stop \(name)`) or use `clab rm -f \(name)`"
        case (.stop, .stopped):
            return "container \(name) is already stopped"
        case (.pause, .paused):
            return "container \(name) is already paused"
        case (.unpause, _):
            return "container \(name) is \(status.rawValue), not paused"
        case (.exec, .paused):
            return "container \(name) is paused: `clab unpause \(name)` first"
        default:
            return "container \(name) is \(status.rawValue): cannot \(action.rawValue) it"
        }
    }
}

public struct LifecycleError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A container's event history: `<containerDir>/events`, one line per event,
/// `<milliseconds since the epoch> <event> <detail>`, appended with O_APPEND (one write per line,
/// so the CLI and the supervisor never interleave). The last lifecycle event gives the state.
public enum EventLog {
    public static let fileName = "events"

    /// Event names that change the state, and the state they lead to.
    public static let statusAfter: [String: LifecycleStatus] = [
        "created": .created, "started": .running, "paused": .paused, "unpaused": .running,
        "exited": .stopped, "failed": .stopped, "lost": .stopped,
    ]

    public static func append(dir: String, event: String, detail: String = "") {
        // One line per event: a detail quoting the container (its command, a path of its image)
        // must not end it early and forge the next.
        let shown = ShownText.oneLine(detail)
        let line = "\(nowMilliseconds()) \(event)\(shown.isEmpty ? "" : " " + shown)\n"
        let fd = open(dir + "/" + fileName, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        try? FS.writeAll(fd, Array(line.utf8), what: "events")
    }

    public struct Event: Sendable, Equatable {
        public var milliseconds: Int
        public var name: String
        public var detail: String
    }

    public static func parse(_ text: String) -> [Event] {
        text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, let ms = Int(parts[0]) else { return nil }
            return Event(milliseconds: ms, name: String(parts[1]), detail: parts.count > 2 ? String(parts[2]) : "")
        }
    }

    public static func nowMilliseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }
}
