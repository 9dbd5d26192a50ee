import CShims
import ClabSpec
import ClabSys
import Glibc

/// `clab-init --exec PID STARTTIME [--tty]`: the in-namespace half of `clab exec`. clab starts
/// it (clone3, no new namespaces, its own session), writes its pid into the container's cgroups,
/// says "go" and sends a spec: the container's own, with the exec's command, env and working
/// directory in place of init's. This process then becomes a process of the container:
///
///     clab (host) ── clone3 ──▶ clab-init --exec           host pid ns, container's cgroups
///                                 │ setns(pidfd, USER|MNT|PID|NET|UTS|IPC|CGROUP|TIME)
///                                 │ setresuid(0): the container's root
///                                 └ fork ──▶ child           pid N in the container's pid ns
///                                             setsid, chdir, capabilities,
///                                             no_new_privs, seccomp, execveat(command)
///
/// Why a mode of clab-init: setns(2) into a user or mount namespace refuses a multi-threaded
/// caller, and clab is multi-threaded; clab-init is clab's own small single-threaded binary.
/// Why the fork: setns(CLONE_NEWPID) moves only the caller's future children into the pid
/// namespace, never the caller. The parent stays outside, forwards signals and passes on the
/// exit status.
///
/// The container is hostile, and these are the doors it would use:
/// - /proc/<pid>/exe of a process that is still clab-init names clab's binary on the host
///   (runc's CVE-2019-5736: container root opened it and overwrote runc). Both processes are
///   non-dumpable from the start until the command's execve, so their /proc files belong to
///   the host's root and ptrace-class access is refused to anything without CAP_SYS_PTRACE in
///   the host's user namespace; the command is opened with RESOLVE_NO_MAGICLINKS, so a command
///   or a PATH entry that is a link to /proc/self/exe cannot make clab-init run itself inside.
/// - Host fds (runc's CVE-2016-9962: a directory fd of the host leaked into the container):
///   every fd but 0, 1, 2 is close-on-exec before execve.
/// - Paths: the working directory and the command are looked up only after setns put this
///   process in the container's mount namespace and root, with openat2 refusing magic links.
/// - Pid reuse: the init pid is turned into a pidfd and checked against the start time clab
///   recorded; setns through the pidfd then names exactly that process, never a newcomer.
public enum ExecProcess {
    static let syncFD: Int32 = 3

    public static func main(_ args: [String]) -> Never {
        // First of all: until execve, nothing in the container may open our /proc files.
        _ = clab_set_dumpable(0)
        // And our /proc/self/exe is a sealed copy, never clab's file on the host (before fd 3
        // becomes close-on-exec: the copy needs it).
        let reexec = withCStrings(CommandLine.arguments) { clab_reexec_sealed($0) }
        if reexec != 0 { report("exec: a sealed copy of clab-init: \(errnoDescription(errno))", code: 125) }
        _ = fcntl(syncFD, F_SETFD, FD_CLOEXEC)
        guard args.count >= 2, let pid = Int32(args[0]), pid > 0, let startTime = UInt64(args[1]) else {
            report("usage: clab-init --exec PID STARTTIME [--tty]", code: 125)
        }
        let tty = args.dropFirst(2).contains("--tty")
        let containerPty = tty && args.dropFirst(2).contains("--container-pty")
        let hold = args.dropFirst(2).contains("--hold-before-exec")
        let user = args.dropFirst(2).first { $0.hasPrefix("--user=") }.map { String($0.dropFirst(7)) }
        // `clab-runtime exec --detach`: clab-runtime exits once the command runs, and its caller
        // (conmon, a subreaper) adopts this process and reaps it for the command's status.
        let orphan = args.dropFirst(2).contains("--orphan")
        let received: ContainerSpec?
        do {
            received = try ContainerSpec.receive(from: syncFD)
        } catch {
            report("exec: \(error)", code: 125)
        }
        guard let spec = received else { report("exec: no spec from clab (did clab exit?)", code: 125) }
        let clab = getppid()
        do {
            let target = try ExecTarget(pid: pid, startTime: startTime)
            try target.join()
            // The uid change cleared the death signal clab's spawn set: again, or a killed clab
            // would leave this process and the command running in the container.
            if !orphan {
                try check(clab_set_pdeathsig(SIGKILL), "prctl(PR_SET_PDEATHSIG)")
                if getppid() != clab { exit(125) }
            }
            // A pidfd of ourselves for the child: getppid() cannot tell it we died, since any
            // parent outside its pid namespace (ours, or whoever inherits it) reads as 0.
            let parent = try check(clab_pidfd_open(getpid()), "pidfd_open(self)")
            let child = clab_fork()
            if child < 0 { throw SyscallError("fork") }
            if child == 0 {
                runCommand(
                    spec, target: target, tty: tty, containerPty: containerPty, hold: hold, user: user, parent: parent)
            }
            // The child holds the sync socket until its execve: clab reads EOF then.
            close(syncFD)
            exit(waitForChild(child))
        } catch {
            report("exec: \(error)", code: 126)
        }
    }

    /// In the container's pid namespace: the process that becomes the command.
    static func runCommand(
        _ spec: ContainerSpec, target: ExecTarget, tty: Bool, containerPty: Bool, hold: Bool, user: String?,
        parent: Int32
    ) -> Never {
        do {
            _ = clab_set_dumpable(0)  // inherited, but said where it matters
            // If clab-init dies (clab died, which killed it), so does the command.
            try check(clab_set_pdeathsig(SIGKILL), "prctl(PR_SET_PDEATHSIG)")
            ExecProcess.exitIfGone(parent)
            try check(setsid(), "setsid")
            try target.enterRoot()
            if containerPty { try takeContainerTerminal() }
            if tty { try check(clab_ioctl_int(0, UInt(TIOCSCTTY), nil), "ioctl(TIOCSCTTY)") }
            let workdir = spec.workdir ?? "/"
            let dir = clab_openat2(
                AT_FDCWD, workdir, Int32(CLAB_O_PATH | O_DIRECTORY | O_CLOEXEC), UInt64(CLAB_RESOLVE_NO_MAGICLINKS))
            guard dir >= 0 else {
                throw ClabError(
                    "the working directory \(workdir) is not a directory in the container (\(errnoDescription(errno)))",
                    exitCode: 126)
            }
            try check(fchdir(dir), "chdir \(workdir)")
            close(dir)
            let exe = try openCommand(spec.command[0], env: spec.env)
            // Looked up in the container's own /etc/passwd and /etc/group (hostile text, parsed as such).
            let switchUser = try user.map { try ExecUser.resolve($0) }
            // Only 0, 1 and 2 survive execve; the command's fd closes with it too.
            try check(clab_cloexec_from(3), "close_range(3, ~0, CLOSE_RANGE_CLOEXEC)")
            if let hardening = spec.hardening {
                try HardeningStage.lockDown(
                    hardening, switchUser: switchUser.map { u in { try u.apply(parent: parent) } })
            } else {
                try switchUser?.apply(parent: parent)
            }
            // Tests only (`--hold-before-exec`): stop here, as the attacker would want us to.
            if hold {
                var byte = UInt8(ascii: "H")
                guard send(syncFD, &byte, 1, Int32(MSG_NOSIGNAL)) == 1, recv(syncFD, &byte, 1, 0) == 1 else {
                    exit(125)
                }
            }
            _ = withCStrings(spec.command) { argv in
                withCStrings(spec.env) { envp in
                    var rc = clab_execveat_fd(exe, argv, envp)
                    // A script: its interpreter opens /dev/fd/N, so N must stay open for it.
                    if rc < 0 && errno == ENOENT {
                        _ = fcntl(exe, F_SETFD, 0)
                        rc = clab_execveat_fd(exe, argv, envp)
                    }
                    return rc
                }
            }
            let err = errno
            throw ClabError(
                "execve \(spec.command[0]): \(errnoDescription(err))", exitCode: err == ENOENT ? 127 : 126)
        } catch let error as ClabError {
            report("exec: \(error.message)", code: error.exitCode)
        } catch let failure as StageFailure {
            report("exec: \(failure.detail)", code: 126)
        } catch {
            report("exec: \(error)", code: 126)
        }
    }

    /// `clab exec -t`, `docker exec -it`: a terminal of the container's own devpts, as runc
    /// makes one, so that inside `tty` names it (/dev/pts/N) and the window size is its own.
    /// In the container's mount namespace and root: its /dev/pts/ptmx (no symlink followed, and
    /// checked to be a devpts ptmx: the container is hostile), the slave in place of 0, 1 and 2
    /// (the pty clab made, whose settings and size it takes), the master to clab over the sync
    /// socket with SCM_RIGHTS ("P"). A container with no devpts (clab's own /dev with init's
    /// terminal bound in, `clab run -t`) answers "T": the command keeps the pty clab made.
    static func takeContainerTerminal() throws {
        let flags = O_RDWR | O_NOCTTY | O_CLOEXEC
        let master = clab_openat2(
            AT_FDCWD, "/dev/pts/ptmx", Int32(flags),
            UInt64(CLAB_RESOLVE_NO_SYMLINKS | CLAB_RESOLVE_NO_MAGICLINKS))
        let slave = master >= 0 && clab_devpts_master_number(master) >= 0 ? clab_pty_peer(master) : -1
        guard slave >= 0 else {
            if master >= 0 { close(master) }
            var byte = UInt8(ascii: "T")
            guard send(syncFD, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 else { exit(125) }
            return
        }
        var settings = termios()
        if tcgetattr(0, &settings) == 0 { tcsetattr(slave, TCSANOW, &settings) }
        var size = winsize()
        if ioctl(0, UInt(TIOCGWINSZ), &size) == 0 { _ = ioctl(master, UInt(TIOCSWINSZ), &size) }
        var byte = UInt8(ascii: "P")
        try check(clab_send_fd(syncFD, master, &byte, 1), "send the terminal's master to clab")
        close(master)
        for fd in Int32(0)...2 { try check(dup2(slave, fd), "dup2 the terminal onto \(fd)") }
        close(slave)
    }

    /// The command as an O_PATH fd, found in the container's PATH (a name with a slash as it
    /// is). No lookup follows a magic link (/proc/self/exe would be clab-init's binary).
    static func openCommand(_ name: String, env: [String]) throws -> Int32 {
        func open(_ path: String) -> Int32? {
            let fd = clab_openat2(AT_FDCWD, path, Int32(CLAB_O_PATH | O_CLOEXEC), UInt64(CLAB_RESOLVE_NO_MAGICLINKS))
            guard fd >= 0 else { return nil }
            var st = stat()
            if fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG { return fd }
            close(fd)
            return nil
        }
        if name.contains("/") {
            if let fd = open(name) { return fd }
            throw ClabError(
                "\(name): not an executable file in the container (\(errnoDescription(errno)))", exitCode: 127)
        }
        let path =
            env.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? ContainerSpec.defaultPath
        for dir in path.split(separator: ":") {
            if let fd = open("\(dir)/\(name)") { return fd }
        }
        throw ClabError("command '\(name)' not found in the container's PATH", exitCode: 127)
    }

    /// Forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the child, waits, and returns its status
    /// the way a shell reports it (the code, or 128+signal).
    static func waitForChild(_ child: pid_t) -> Int32 {
        clab_forward_signals_to(child)
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 {
            if errno != EINTR { return 125 }
        }
        if clab_wifsignaled(status) != 0 { return 128 + clab_wtermsig(status) }
        return clab_wifexited(status) != 0 ? clab_wexitstatus(status) : 125
    }

    /// Right after setting the death signal: if the parent (a pidfd) died before, no signal
    /// will come, so stop here.
    static func exitIfGone(_ parent: Int32) {
        var fd = pollfd(fd: parent, events: Int16(POLLIN), revents: 0)
        if poll(&fd, 1, 0) != 0 { exit(125) }
    }

    static func report(_ message: String, code: Int32) -> Never {
        let bytes = InitReport.encode(message)
        _ = bytes.withUnsafeBytes { send(syncFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        exit(code)
    }
}

/// The container's init, named by a pidfd, and what of it to join.
struct ExecTarget {
    let pid: Int32
    let pidfd: Int32
    /// CLONE_NEW* of every namespace the init does not share with us.
    let flags: Int32
    /// The ids of the container's root (the first ids its user namespace maps), when it has one.
    let rootIDs: (uid: UInt32, gid: UInt32)?
    /// The init's root directory, for a container without a mount namespace (stages 1-3).
    let rootFD: Int32?

    static let kinds: [(String, Int32)] = [
        ("user", Int32(CLONE_NEWUSER)), ("mnt", Int32(CLONE_NEWNS)), ("pid", Int32(CLONE_NEWPID)),
        ("net", Int32(CLONE_NEWNET)), ("uts", Int32(CLONE_NEWUTS)), ("ipc", Int32(CLONE_NEWIPC)),
        ("cgroup", Int32(CLONE_NEWCGROUP)), ("time", Int32(CLONE_NEWTIME)),
    ]

    init(pid: Int32, startTime: UInt64) throws {
        self.pid = pid
        let procFD = try check(open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open /proc")
        defer { close(procFD) }
        pidfd = try check(clab_pidfd_open(pid), "pidfd_open(\(pid)) (has the container stopped?)")
        // After pidfd_open: if the process at this pid now is the one clab recorded, the pidfd
        // is that process (a pid is not reused while its process exists).
        guard Self.startTime(procFD, pid) == startTime else {
            throw ClabError("process \(pid) is not the container's init any more (it exited; its pid was reused)")
        }
        var flags: Int32 = 0
        for (kind, flag) in Self.kinds {
            var theirs = stat()
            var ours = stat()
            guard fstatat(procFD, "\(pid)/ns/\(kind)", &theirs, 0) == 0 else {
                if errno == ENOENT { continue }  // a kernel without this namespace type
                throw SyscallError("stat /proc/\(pid)/ns/\(kind)")
            }
            try check(fstatat(procFD, "self/ns/\(kind)", &ours, 0), "stat /proc/self/ns/\(kind)")
            if theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino { flags |= flag }
        }
        self.flags = flags
        rootIDs =
            flags & Int32(CLONE_NEWUSER) != 0
            ? (
                try ProbeTarget.firstMapped(procFD, pid, "uid_map"),
                try ProbeTarget.firstMapped(procFD, pid, "gid_map")
            ) : nil
        rootFD =
            flags & Int32(CLONE_NEWNS) == 0
            ? try check(openat(procFD, "\(pid)/root", CLAB_O_PATH | O_DIRECTORY | O_CLOEXEC), "open /proc/\(pid)/root")
            : nil
        // Everything above read /proc/<pid>: still the same process only if it has not exited.
        var alive = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        guard poll(&alive, 1, 0) == 0 else { throw ClabError("the container's init exited") }
    }

    /// Host credentials go first (supplementary groups), then every namespace in one setns on
    /// the pidfd: atomic, and the kernel enters the user namespace before the others, so each
    /// later one is joined with the capabilities the container's root holds there. Then the
    /// container root's ids.
    func join() throws {
        try check(setgroups(0, nil), "setgroups")
        if flags != 0 { try check(clab_setns(pidfd, flags), "setns(pidfd of \(pid), \(flagNames))") }
        if let ids = rootIDs {
            try check(clab_setresgid(ids.gid), "setresgid \(ids.gid)")
            try check(clab_setresuid(ids.uid), "setresuid \(ids.uid)")
        }
    }

    /// Stages 1-3 share the host's mount namespace: the init's root is a chroot, entered here.
    func enterRoot() throws {
        guard let rootFD else { return }
        try check(fchdir(rootFD), "fchdir /proc/\(pid)/root")
        try check(chroot("."), "chroot /proc/\(pid)/root")
    }

    var flagNames: String {
        let names = [
            "user": "CLONE_NEWUSER", "mnt": "CLONE_NEWNS", "pid": "CLONE_NEWPID", "net": "CLONE_NEWNET",
            "uts": "CLONE_NEWUTS", "ipc": "CLONE_NEWIPC", "cgroup": "CLONE_NEWCGROUP", "time": "CLONE_NEWTIME",
        ]
        return Self.kinds.filter { flags & $0.1 != 0 }.compactMap { names[$0.0] }.joined(separator: "|")
    }

    /// Field 22 of /proc/<pid>/stat, in clock ticks since boot.
    static func startTime(_ procFD: Int32, _ pid: Int32) -> UInt64? {
        guard let bytes = try? ProbeProcess.readAll(at: procFD, "\(pid)/stat") else { return nil }
        return ProcStat(String(decoding: bytes, as: UTF8.self))?.startTime
    }
}

/// `clab exec -u NAME|UID[:GROUP|GID]`: ids from the container's /etc/passwd and /etc/group
/// (read after joining its mount namespace, no magic links), as Docker does: a name's primary
/// group unless one is given, and the groups that list the user as supplementary ones.
struct ExecUser: Equatable {
    var uid: UInt32
    var gid: UInt32
    var groups: [UInt32]

    static func resolve(_ spec: String) throws -> ExecUser {
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        return try resolve(
            user: parts[0], group: parts.count > 1 ? parts[1] : nil, passwd: Self.read("/etc/passwd"),
            groupFile: Self.read("/etc/group"))
    }

    /// From the files' text (tests pass their own).
    static func resolve(user: String, group: String?, passwd: String, groupFile: String) throws -> ExecUser {
        let users = records(passwd)
        let groups = records(groupFile)
        var name: String?
        var uid: UInt32
        var gid: UInt32 = 0
        if let number = UInt32(user) {
            uid = number
            if let entry = users.first(where: { $0.count > 3 && $0[2] == user }) {
                name = entry[0]
                gid = UInt32(entry[3]) ?? 0
            }
        } else if let entry = users.first(where: { $0.count > 3 && $0[0] == user }), let id = UInt32(entry[2]) {
            name = user
            uid = id
            gid = UInt32(entry[3]) ?? 0
        } else {
            throw ClabError("-u \(user): no such user in the container's /etc/passwd", exitCode: 126)
        }
        if let group {
            if let number = UInt32(group) {
                gid = number
            } else if let entry = groups.first(where: { $0.count > 2 && $0[0] == group }), let id = UInt32(entry[2]) {
                gid = id
            } else {
                throw ClabError("-u: no group \(group) in the container's /etc/group", exitCode: 126)
            }
        }
        // (uid_t)-1 is no id: setresuid(-1) keeps the container's root, whatever -u said.
        guard uid != UInt32.max, gid != UInt32.max else {
            throw ClabError(
                "-u \(user)\(group.map { ":" + $0 } ?? ""): 4294967295 is not a user or group id", exitCode: 126)
        }
        var extra: [UInt32] = []
        var seen: Set<UInt32> = [gid]
        if let name, group == nil {
            for entry in groups where entry.count > 3 && entry[3].split(separator: ",").contains(Substring(name)) {
                if let id = UInt32(entry[2]), id != UInt32.max, seen.insert(id).inserted { extra.append(id) }
            }
        }
        // The container's file chooses how many: the kernel takes at most NGROUPS_MAX.
        guard extra.count <= 65536 else {
            throw ClabError("-u \(user): the container's /etc/group lists it in more than 65536 groups", exitCode: 126)
        }
        return ExecUser(uid: uid, gid: gid, groups: extra)
    }

    static func records(_ text: String) -> [[String]] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
            $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// A file of the container's, at most 1 MiB; missing is empty (numeric ids need none).
    /// O_NONBLOCK and O_NOCTTY: a FIFO or a terminal put there must not hold the open (a FIFO
    /// without a writer blocks it for ever) or become our terminal; only a regular file is read.
    static func read(_ path: String) -> String {
        let fd = clab_openat2(
            AT_FDCWD, path, Int32(O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), UInt64(CLAB_RESOLVE_NO_MAGICLINKS))
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return "" }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while out.count < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The ids, then the death signal again: the uid change cleared it.
    func apply(parent: Int32) throws {
        let list = groups.map { gid_t($0) }
        try check(list.withUnsafeBufferPointer { setgroups($0.count, $0.baseAddress) }, "setgroups")
        try check(clab_setresgid(gid), "setresgid \(gid)")
        try check(clab_setresuid(uid), "setresuid \(uid)")
        try check(clab_set_pdeathsig(SIGKILL), "prctl(PR_SET_PDEATHSIG)")
        ExecProcess.exitIfGone(parent)
    }
}
