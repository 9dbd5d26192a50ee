import ClabCore
import ClabKernel
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
/// command). Inside clab-init the stages are marked, not inferred: every stage's work there goes
/// through `step(n)` (ClabKernel/Init.swift), which calls `clab_mark` with the stage's number on
/// entry and the enclosing one's on exit, and a uprobe on `clab_mark` writes each marker into the
/// stream between init's syscalls (CLAB_EV_MARK). A call is labelled with the last marker its
/// process wrote (`InitMark`: init's own plumbing, stage n, the command's look-up in PATH, the
/// execve); the markers themselves are not shown. Without the uprobe (`marked` false: the
/// tracer said why on stderr) init's calls get one label, never a guess.
///
/// clab's own process and its cloned child carry no markers: their stages are still inferred
/// from the calls. On clab's side, uid_map/gid_map files are stage 7, cgroup files stage 8, the
/// overlay's directories 9, the volumes' staging binds 10, and the network's plumbing stage 11:
/// netlink messages (rtnetlink for links, addresses and routes; nftables batches), netlink
/// sockets, /proc/sys/net and setns into a network namespace. The child's id calls
/// (setgroups, setresgid, setresuid) are stage 7, its setns into a network namespace 11.
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
            if let n = hostSideStage(call, path: path) {
                p.label = .stage(n)
                return .stage(n)
            }
            // `mkdir -p`'s parents that already exist are no work of their own: they stay under
            // the header before them instead of cutting a stage in two.
            if call.errno == EEXIST && (call.name == "mkdir" || call.name == "mkdirat") { return p.label ?? .clab }
            p.label = nil
            return .clab
        case .child:
            switch call.name {
            case "setgroups", "setresgid", "setresuid": return .stage(7)
            case "setns" where Self.joinsNetwork(call, path: path): return .stage(11)
            default: return .child
            }
        case .initSetup:
            // Before its first marker: the Swift runtime's start-up and the spec's reading.
            return marked ? p.label ?? .initStart : .initUnmarked
        }
    }

    /// clab-init's marker (CLAB_EV_MARK, an `InitMark`'s value): its next calls are that work.
    func mark(_ value: Int32, in p: TracedProcess) {
        guard p.phase == .initSetup, let mark = InitMark(value: value) else { return }
        switch mark {
        case .plumbing: p.label = .initStart
        case .stage(let n): p.label = .stage(n)
        case .commandLookup: p.label = .commandLookup
        case .execute: p.label = .execute
        }
    }

    /// clab's own calls that are a stage's work: the user namespace's id maps, cgroup files, and
    /// the network plumbing (stage 11): rtnetlink and nftables messages, netlink sockets,
    /// network namespace files, /proc/sys/net, setns into a network namespace.
    private func hostSideStage(_ call: Syscall, path: (Int64) -> String?) -> Int? {
        if call.netlink != nil { return 11 }
        let file: String?
        switch call.name {
        case "openat", "mkdir", "mkdirat", "rmdir", "unlinkat", "newfstatat", "statx", "statfs":
            file = firstString(call)
        case "mount":  // the volume's staging bind (Container.stageVolumes)
            file = call.string(1).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        case "write", "read", "close", "pwrite64", "bind", "connect", "getsockname", "setsockopt", "getsockopt",
            "sendto", "recvfrom", "sendmsg", "recvmsg":
            file = path(Int64(Int32(truncatingIfNeeded: call.args[0])))
        case "socket":
            return call.args[0] == 16 ? 11 : nil  // AF_NETLINK
        case "setns":
            return Self.joinsNetwork(call, path: path) ? 11 : nil
        default:
            file = nil
        }
        guard let file else { return nil }
        if file.hasPrefix("/proc/"),
            file.hasSuffix("/uid_map") || file.hasSuffix("/gid_map") || file.hasSuffix("/setgroups")
        {
            return 7
        }
        if file.hasPrefix("/sys/fs/cgroup") { return 8 }
        if Self.isNetworkFile(file) || file.hasPrefix("/run/clab/net") || file.contains("/run/networks") { return 11 }
        // The container's state directory: the overlay's directories (9), the volumes' binds (10).
        if let r = file.firstRange(of: "/run/containers/") {
            let parts = file[r.upperBound...].split(separator: "/")
            if parts.count >= 2 && ["rootfs", "upper", "work"].contains(parts[1]) && stage >= 9 { return 9 }
            if parts.count >= 2 && parts[1] == "volumes" && stage >= 10 { return 10 }
        }
        return nil
    }

    /// A netlink socket (as the fd table names it), a network namespace, or a network sysctl
    /// (net.ipv4.ip_forward).
    static func isNetworkFile(_ file: String) -> Bool {
        file == "socket:AF_NETLINK" || file.hasPrefix("/proc/sys/net/") || file.hasPrefix("/run/netns/")
            || file.hasPrefix("/proc/") && file.hasSuffix("/ns/net")
    }

    /// setns into a network namespace: CLONE_NEWNET, or 0 with a /proc/PID/ns/net fd.
    static func joinsNetwork(_ call: Syscall, path: (Int64) -> String?) -> Bool {
        let nstype = call.args[1] & 0xFFFF_FFFF
        if nstype & 0x4000_0000 != 0 { return true }
        guard nstype == 0, let file = path(Int64(Int32(truncatingIfNeeded: call.args[0]))) else { return false }
        return file.hasSuffix("/ns/net") || file.hasPrefix("/run/netns/")
    }

    private func firstString(_ call: Syscall) -> String? {
        call.strings.lazy.compactMap { $0 }.first.map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
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
