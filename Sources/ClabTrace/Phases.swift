import ClabSpec
import Glibc

/// Where a traced process is in clab's sequence (`clab trace --step N`); host traces have none.
enum Phase: Sendable, Equatable {
    /// A host trace: no stages.
    case other
    /// clab itself: the host side (state, clone3, uid_map, cgroups, "go").
    case clab
    /// The container's first process between clone3 and its execve of clab-init (C only).
    case child
    /// clab-init inside the namespaces, doing each stage's setup.
    case initSetup
    /// The container's command, and everything it starts.
    case command

    /// The phase a process forked in this phase starts in: clab's one fork is the container.
    var child: Phase { self == .clab ? .child : self }

    /// The phase after a successful execve.
    var afterExec: Phase {
        switch self {
        case .child: return .initSetup
        case .initSetup: return .command
        default: return self
        }
    }
}

/// The stage step an event belongs to, and the lesson to read about it.
public struct StageLabel: Sendable, Equatable {
    public let title: String
    public let lesson: String?
    /// The stage number, for stage work; nil for clab's own plumbing and the command.
    public let stage: Int?

    static func stage(_ n: Int) -> StageLabel {
        let title = (try? Stage.numbered(n)).map(\.title) ?? pendingTitles[n]
        return StageLabel(title: "stage \(n)" + (title.map { " · " + $0 } ?? ""), lesson: "clab lesson \(n)", stage: n)
    }

    /// Titles of stages the tracer labels before the stage catalogue has them; the
    /// catalogue's own title wins once it does.
    static let pendingTitles = [11: "container networking"]

    static let clab = StageLabel(title: "clab · host side: state directory, clone3, \"go\"", lesson: nil, stage: nil)
    static let child = StageLabel(
        title: "clab · the cloned child, in its new namespaces, before it executes clab-init", lesson: nil, stage: nil)
    static let initStart = StageLabel(
        title: "clab-init · starts inside the namespaces, reads the spec", lesson: nil, stage: nil)
    static let commandLookup = StageLabel(title: "clab-init · finds the command in PATH", lesson: nil, stage: nil)
    static let execute = StageLabel(title: "clab-init · executes the command", lesson: nil, stage: nil)
    /// clab-init's calls when its markers cannot be read (the uprobe did not attach).
    static let initUnmarked = StageLabel(title: "clab-init · setting up the stages", lesson: nil, stage: nil)
}

/// Labels events with the stage that produced them.
///
/// A process's phase changes on fork and execve (clab -> cloned child -> clab-init -> the
/// command). Every stage's work is marked, not inferred: the code says which stage it is in by
/// calling `clab_mark` (ClabSpec's `StageMark`), and a uprobe on it writes each marker into
/// the stream between the calls (CLAB_EV_MARK). clab-init marks through `step(n)`, which marks
/// the stage on entry and the enclosing one's on exit; clab's host side through
/// `StageMark.host(n)` around each stage's host half (ClabRuntime's `Stages/`: the id maps, the
/// cgroups, the writable layer, the volumes' staging binds, the network's plumbing); the C
/// child between clone3 and execve around its id calls. A call is labelled with the last marker
/// of its process (clab-init, one thread) or of its thread (clab, which joins a cgroup on one
/// thread while it plumbs the network on another); the markers themselves are not shown.
/// Without a binary's uprobe (the tracer said why on stderr) its calls get one label per
/// phase, never a guess: clab-init's `initUnmarked` (`marked` false), clab's and the child's
/// their phase's, as no marker comes.
struct Phases {
    let stage: Int
    let command: [String]
    /// The uprobe on clab-init's `clab_mark` is attached: its markers label its calls.
    var marked = true

    var commandLabel: StageLabel {
        StageLabel(title: "container · " + command.joined(separator: " "), lesson: nil, stage: nil)
    }

    func label(_ call: Syscall, in p: TracedProcess, path: (Int64) -> String?) -> StageLabel? {
        switch p.phase {
        case .other:
            return nil
        case .command:
            return commandLabel
        case .clab:
            return p.threadStages[call.tid].map(StageLabel.stage) ?? .clab
        case .child:
            return p.threadStages[call.tid].map(StageLabel.stage) ?? .child
        case .initSetup:
            // Before its first marker: the Swift runtime's start-up and the spec's reading.
            return marked ? p.label ?? .initStart : .initUnmarked
        }
    }

    /// A marker (CLAB_EV_MARK, a `StageMark`'s value) of thread `tid`: its next calls are that
    /// work. The command's markers (it could call a clab_mark of its own) mean nothing.
    func mark(_ value: Int32, tid: UInt32, in p: TracedProcess) {
        guard let mark = StageMark(value: value) else { return }
        switch (p.phase, mark) {
        case (.initSetup, .plumbing): p.label = .initStart
        case (.initSetup, .stage(let n)): p.label = .stage(n)
        case (.initSetup, .commandLookup): p.label = .commandLookup
        case (.initSetup, .execute): p.label = .execute
        case (.clab, .stage(let n)), (.child, .stage(let n)): p.threadStages[tid] = n
        case (.clab, _), (.child, _): p.threadStages[tid] = nil
        case (.command, _), (.other, _): break
        }
    }

    /// The default terminal view of a `--step` trace shows what the lessons are about and
    /// counts the rest; `--all` (and JSON) show everything.
    static let focusCalls: Set<String> = [
        "clone", "clone3", "fork", "vfork", "execve", "execveat", "exit_group", "unshare", "setns", "mount",
        "umount2", "pivot_root", "chroot", "chdir", "sethostname", "setdomainname", "setresuid", "setresgid",
        "setgroups", "setuid", "setgid", "kill", "prctl", "socket", "bind", "connect", "sendto", "sendmsg", "mkdir",
        "symlink", "mknod", "capset", "seccomp",
    ]

    static func inFocus(_ call: Syscall, label: StageLabel?) -> Bool {
        inFocus(name: call.name, errno: call.errno, label: label)
    }

    static func inFocus(name: String, errno: Int32?, label: StageLabel?) -> Bool {
        if label?.stage != nil { return true }
        if let err = errno, !isProbe(name, err) { return true }
        return focusCalls.contains(name)
    }

    /// Failures that are how a program looks around, not news: the dynamic loader trying
    /// library directories (ENOENT), a tty check on a pipe (ENOTTY).
    static func isProbe(_ name: String, _ err: Int32) -> Bool {
        switch name {
        case "openat", "open", "newfstatat", "stat", "lstat", "access", "faccessat", "readlink", "statx":
            return err == ENOENT
        case "mkdir", "mkdirat":
            return err == EEXIST
        case "ioctl":
            return err == ENOTTY
        default:
            return false
        }
    }
}
