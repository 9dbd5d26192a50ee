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
}

/// Labels events with the stage that produced them.
///
/// clab marks no phase boundaries for the tracer: the syscalls themselves say where they
/// belong, so the trace shows exactly what clab does, with nothing added. A process's phase
/// changes on fork and execve (clab -> cloned child -> clab-init -> the command). Inside
/// clab-init, the syscall that starts a stage's work sets the label for the calls after it:
/// sethostname starts stage 2, bringing up `lo` stage 6, chroot stage 1 (stages 1-3); a mount
/// is labelled by what it mounts or where (the overlay 9, proc 3, /dev 4, /sys and the cgroup
/// binds 8, a volume 10; pivot_root and umount2 are 4), and the look-ups before it join it; the
/// stat calls that look for the command in PATH have their own short label. Stage 12 comes
/// after pivot_root: a look at or a mount on /proc or /sys there (the masks, the read-only
/// binds), unshare (the cgroup and time namespaces), and the lock-down before execve: the
/// open-files limit, prctl's bounding set, ambient set and no_new_privs, capset, seccomp. On clab's side,
/// uid_map/gid_map files are stage 7, cgroup files stage 8, the overlay's directories 9, the
/// volumes' staging binds 10, and the network's plumbing stage 11:
/// netlink messages (rtnetlink for links, addresses and routes; nftables batches), netlink
/// sockets, /proc/sys/net and setns into a network namespace. (clab-init also calls
/// `clab_mark`, an exported no-op a uprobe could attach to; it is not needed here.)
struct Phases {
    let stage: Int
    let command: [String]

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
            if isCommandLookup(call, pivoted: p.pivoted) {
                p.label = .commandLookup
            } else if let n = initStage(call, pivoted: p.pivoted, begun: p.label?.stage != nil, path: path) {
                p.label = .stage(n)
            }
            if call.name == "pivot_root" && call.ret == 0 { p.pivoted = true }
            return p.label ?? .initStart
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

    /// The stage a clab-init call starts, if it starts one. `pivoted`: after its pivot_root.
    /// Before pivot_root, a mount is labelled by what it mounts (the overlay: 9, proc: 3, a
    /// cgroup directory: 8, a volume: 10) or else where (/dev: 4, /sys: 8); a look-up, open or
    /// close of one of those places joins its stage, so the lookups before a mount sit under the
    /// mount's header, not the previous stage's.
    private func initStage(_ call: Syscall, pivoted: Bool, begun: Bool, path: (Int64) -> String?) -> Int? {
        if stage >= 12, let n = hardeningStage(call, pivoted: pivoted) { return n }
        switch call.name {
        case "sethostname", "setdomainname": return 2
        case "chroot": return 1
        case "pivot_root", "umount2", "chdir": return stage >= 4 ? 4 : nil
        case "mount":
            let fstype = call.string(2).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if fstype == "proc" { return 3 }
            if fstype == "cgroup" || fstype == "cgroup2" { return 8 }
            if fstype == "overlay" { return 9 }
            let source = call.string(0).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let source, let n = placeStage(source, volumeSource: true) { return n }
            var target = call.string(1).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            // clab-init mounts on /proc/self/fd/N, N a descriptor it resolved inside the root.
            if let t = target, t.hasPrefix("/proc/self/fd/"), let fd = Int64(t.dropFirst(14)) { target = path(fd) }
            if let target, let n = placeStage(target, volumeSource: false) { return n }
            return stage >= 4 ? 4 : 3
        // Only once the stages' work has begun: the Swift runtime's own start-up reads
        // /proc/self/maps and /sys/devices/system/cpu, which are no stage's.
        case "openat", "openat2", "mkdirat", "newfstatat", "statx":
            guard begun, !pivoted, let file = firstString(call) else { return nil }
            return placeStage(file, volumeSource: true)
        case "close":
            guard begun, !pivoted, let file = path(Int64(Int32(truncatingIfNeeded: call.args[0]))) else { return nil }
            return placeStage(file, volumeSource: false)
        case "socket":
            if call.args[0] == 16 && stage >= 11 { return 11 }  // a netlink socket: the network's plumbing
            return stage >= 6 ? 6 : nil
        case "setns":
            return Self.joinsNetwork(call, path: path) ? 11 : nil
        default:
            return nil
        }
    }

    /// The stage a place in the new root belongs to, before pivot_root: /proc (3), /dev (4),
    /// /sys and its cgroup directories (8), and (as a source) clab's staged volume binds (10).
    private func placeStage(_ file: String, volumeSource: Bool) -> Int? {
        func under(_ dir: String) -> Bool { file == dir || file.hasPrefix(dir + "/") }
        if under("/proc") && stage >= 3 { return 3 }
        if under("/dev") && stage >= 4 { return 4 }
        if under("/sys") && stage >= 8 { return 8 }
        // Container.stageVolumes binds each volume at <state>/run/containers/ID/volumes/N.
        if volumeSource && stage >= 10 && file.contains("/run/containers/") && file.contains("/volumes/") { return 10 }
        return nil
    }

    /// clab-init's search of the command in the container's PATH (ContainerPath.resolve: a
    /// stat per directory), after the root is in place and before the lock-down and execve.
    private func isCommandLookup(_ call: Syscall, pivoted: Bool) -> Bool {
        guard pivoted || stage < 4, let name = command.first, !name.isEmpty else { return false }
        switch call.name {
        case "newfstatat", "stat", "statx":
            guard let file = firstString(call) else { return false }
            return name.contains("/") ? file == name : file.hasSuffix("/" + name)
        default:
            return false
        }
    }

    /// Stage 12's calls in clab-init (Stages/12-Hardening.swift), in its order: after
    /// pivot_root, the masks and read-only binds (a look at the path, then a mount); the
    /// cgroup and time namespaces; then setrlimit(RLIMIT_NOFILE), prctl(PR_CAPBSET_DROP) for
    /// each capability dropped, prctl(PR_CAP_AMBIENT), capset, prctl(PR_SET_NO_NEW_PRIVS), seccomp.
    private func hardeningStage(_ call: Syscall, pivoted: Bool) -> Int? {
        switch call.name {
        case "capset", "seccomp", "unshare":
            return 12
        case "prctl":
            // PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT
            return [22, 24, 38, 47].contains(call.args[0]) ? 12 : nil
        case "prlimit64":
            return call.args[1] == 7 && call.args[2] != 0 ? 12 : nil  // setting RLIMIT_NOFILE
        case "setrlimit":
            return call.args[0] == 7 ? 12 : nil
        case "mount" where pivoted:
            return 12
        case "newfstatat", "statx", "lstat", "stat", "access", "faccessat", "faccessat2":
            guard pivoted, let file = firstString(call) else { return nil }
            return file.hasPrefix("/proc/") || file.hasPrefix("/sys/") ? 12 : nil
        default:
            return nil
        }
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
