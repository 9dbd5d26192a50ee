import CShims
import ClabSys
import Glibc

/// `clab-init --probe mountinfo|breakout PID`: the lab verifiers' look inside another process's
/// namespaces (`clab lab check N --pid PID`), done by clab's own code. It never calls execve:
/// running a program found in the container's filesystem (nsenter's `cat`, the image's
/// `breakout`) would run the container's code with the host's credentials.
///
/// Why a mode of clab-init: setns(2) into a mount or user namespace needs a single-threaded
/// process, and clab is multi-threaded (no Swift may run between its fork and exec). clab-init
/// is clab's own small single-threaded binary, executed from the host's filesystem. It opens
/// everything it needs while still on the host (the host's /proc, the target's namespaces and
/// root), drops its supplementary groups, enters the target's user namespace when the target
/// has its own and becomes that namespace's root (so from then on it holds what the container's
/// root holds, nothing of the host's), then enters the mount namespace and does the work.
public enum ProbeProcess {
    public static func main(_ args: [String]) -> Never {
        if args.first == "udp" {
            do { exit(try udp(Array(args.dropFirst()))) } catch { fail("probe udp: \(error)") }
        }
        let arity = ["write": 4, "read": 3, "remove": 3]
        guard args.count == (arity[args.first ?? ""] ?? 2), let pid = Int32(args[1]), pid > 0 else {
            fail(
                "usage: clab-init --probe mountinfo|breakout|sysvipc|links|orphan PID, --probe write PID PATH TEXT, --probe read|remove PID PATH, --probe udp NSFILE_A NSFILE_B ADDRESS"
            )
        }
        do {
            switch args[0] {
            case "sysvipc":
                // /proc/sysvipc/shm lists the IPC namespace of the process that opens it, not of
                // the /proc it is reached through: /proc/PID/root/proc/sysvipc/shm read from the
                // host shows the host's segments. So the probe joins the namespace, then opens it.
                let target = try ProbeTarget(pid: pid)
                try target.enterOnly("ipc", Int32(CLONE_NEWIPC))
                try FS.writeAll(1, try readAll(at: target.procFD, "sysvipc/shm"), what: "stdout")
                exit(0)
            case "links":
                exit(try links(pid: pid))
            case "orphan":
                exit(try orphan(pid: pid))
            case "write", "read", "remove":
                exit(try file(args[0], pid: pid, path: args[2], text: args.count > 3 ? args[3] : ""))
            case "mountinfo":
                let target = try ProbeTarget(pid: pid)
                try target.enter()
                // The host's /proc, opened before entering: thread-self is this process, whose
                // root is now the namespace's root, so its mountinfo lists the whole table.
                let text = try readAll(at: target.procFD, "thread-self/mountinfo")
                try FS.writeAll(1, text, what: "stdout")
                exit(0)
            case "breakout":
                exit(try breakout(pid: pid))
            default:
                fail(
                    "clab-init --probe: unknown probe '\(args[0])' (mountinfo, breakout, sysvipc, links, orphan, udp, write, read, remove)"
                )
            }
        } catch {
            fail("probe \(args[0]) of process \(pid): \(error)")
        }
    }

    /// The chroot escape of images/busybox/breakout.c, from the target's root and inside its
    /// namespaces: chroot into a directory below the root, leaving the working directory
    /// outside it, climb "..", chroot("."). Exit 0: it reached a directory outside the target's
    /// root; 1: ".." stopped at the target's root. Every directory is an fd opened without
    /// following symlinks, so the container cannot swap one for a symlink under the probe.
    static func breakout(pid: Int32) throws -> Int32 {
        var hostRoot = stat()
        try check(stat("/", &hostRoot), "stat / (host)")
        let target = try ProbeTarget(pid: pid)
        var before = stat()
        try check(fstat(target.rootFD, &before), "fstat /proc/\(pid)/root")
        try target.enter()
        // Where the target process is: its root, as our root and working directory.
        try check(fchdir(target.rootFD), "fchdir /proc/\(pid)/root")
        try check(chroot("."), "chroot /proc/\(pid)/root")
        let (inner, made) = try innerDirectory(target.rootFD)
        let madeRoot = fchdir(inner) == 0 && chroot(".") == 0
        let err = errno
        close(inner)
        // Root is the inner directory now; the working directory goes back outside it.
        let outside = fchdir(target.rootFD) == 0
        if let made { _ = unlinkat(target.rootFD, made, AT_REMOVEDIR) }
        guard madeRoot else { throw SyscallError("chroot into a directory below the root", errno: err) }
        guard outside else { throw SyscallError("fchdir /proc/\(pid)/root") }
        for _ in 0..<256 where chdir("..") == 0 {}
        try check(chroot("."), "chroot .")
        var after = stat()
        try check(stat("/", &after), "stat /")
        func place(_ st: stat) -> String { "device \(st.st_dev), inode \(st.st_ino)" }
        if after.st_dev == before.st_dev && after.st_ino == before.st_ino {
            try say("contained: '..' stopped at the container's root (\(place(before)))\n")
            return 1
        }
        let isHost = after.st_dev == hostRoot.st_dev && after.st_ino == hostRoot.st_ino
        try say(
            "escaped: '..' climbed out of the container's root to \(isHost ? "the host's root" : "a directory outside it") (\(place(after))); it holds:\(listing())\n"
        )
        return 0
    }

    /// Every network device of the target's network namespace with its flags, "lo 0x49" a line:
    /// the names from its /proc/net/dev, the flags by SIOCGIFFLAGS on a socket made after joining
    /// it (a socket belongs to the namespace its creator was in).
    static func links(pid: Int32) throws -> Int32 {
        let target = try ProbeTarget(pid: pid)
        try target.enterOnly("net", Int32(CLONE_NEWNET))
        let dev = String(decoding: try readAll(at: target.procFD, "thread-self/net/dev"), as: UTF8.self)
        var out = ""
        for line in dev.split(separator: "\n").dropFirst(2) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingPrefix(while: { $0 == " " })
            let flags = clab_link_flags(String(name))
            out += flags < 0 ? "\(name) ?\(errnoDescription(errno))\n" : "\(name) \(flags)\n"
        }
        try say(out)
        return 0
    }

    /// write: create PATH (it must not exist) holding TEXT; read: print PATH (a regular file, at
    /// most 4 KiB); remove: unlink PATH. PATH is resolved inside the target's root and mount
    /// namespace, following no symlink: what the target itself would reach, never the host's own
    /// view. A target in the host's mount namespace is refused. Exit 0: done; 1: the kernel
    /// refused (the errno is printed: EROFS is what a read-only mount answers); 2: not tried.
    static func file(_ op: String, pid: Int32, path: String, text: String) throws -> Int32 {
        let target = try ProbeTarget(pid: pid)
        guard target.mountNS != nil else {
            fail("process \(pid) shares the host's mount namespace: the probe writes only inside a container's own")
        }
        try target.enter()
        try check(fchdir(target.rootFD), "fchdir /proc/\(pid)/root")
        try check(chroot("."), "chroot /proc/\(pid)/root")
        let resolve = UInt64(CLAB_RESOLVE_IN_ROOT | CLAB_RESOLVE_NO_SYMLINKS | CLAB_RESOLVE_NO_MAGICLINKS)
        func refused(_ call: String) throws -> Int32 {
            let err = errno
            try say("\(call) \(path): \(errnoName(err)) (\(errnoDescription(err)))\n")
            return 1
        }
        switch op {
        case "write":
            let fd = clab_openat2(target.rootFD, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, resolve)
            guard fd >= 0 else { return try refused("open") }
            defer { close(fd) }
            try FS.writeAll(fd, Array(text.utf8), what: path)
            try say("wrote \(path)\n")
        case "read":
            let fd = clab_openat2(target.rootFD, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, resolve)
            guard fd >= 0 else { return try refused("open") }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { fail("\(path) is not a regular file") }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n >= 0 else { return try refused("read") }
            try FS.writeAll(1, Array(buffer[0..<n]), what: "stdout")
        default:
            let slash = path.lastIndex(of: "/")
            let dir = slash.map { String(path[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            let dirFD = clab_openat2(target.rootFD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, resolve)
            guard dirFD >= 0 else { return try refused("open") }
            defer { close(dirFD) }
            guard unlinkat(dirFD, name, 0) == 0 else { return try refused("unlink") }
            try say("removed \(path)\n")
        }
        return 0
    }

    static func errnoName(_ err: Int32) -> String {
        let names: [Int32: String] = [
            EROFS: "EROFS", EACCES: "EACCES", EPERM: "EPERM", ENOENT: "ENOENT", EEXIST: "EEXIST",
            ENOTDIR: "ENOTDIR", ELOOP: "ELOOP", EXDEV: "EXDEV", ENOSPC: "ENOSPC", EISDIR: "EISDIR",
        ]
        return names[err] ?? "errno \(err)"
    }

    /// A directory just below the root to chroot into: an existing one, so nothing is written in
    /// the container; only a root without any gets a scratch directory (`made`, removed at once).
    static func innerDirectory(_ rootFD: Int32) throws -> (fd: Int32, made: String?) {
        let listFD = openat(rootFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if listFD >= 0, let dir = fdopendir(listFD) {
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { cString($0.bindMemory(to: CChar.self)) }
                if name == "." || name == ".." { continue }
                let fd = openat(rootFD, name, CLAB_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd >= 0 { return (fd, nil) }
            }
        } else if listFD >= 0 {
            close(listFD)
        }
        let name = ".clab-breakout-\(getpid())"
        try check(mkdirat(rootFD, name, 0o700), "mkdir \(name)")
        let fd = openat(rootFD, name, CLAB_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let error = SyscallError("open \(name)")
            _ = unlinkat(rootFD, name, AT_REMOVEDIR)
            throw error
        }
        return (fd, name)
    }

    /// The first names in "/", sorted, as breakout prints them.
    static func listing() -> String {
        guard let dir = opendir("/") else { return " ?" }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { cString($0.bindMemory(to: CChar.self)) }
            if !name.hasPrefix(".") { names.append(name) }
        }
        names.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return names.prefix(24).map { " " + $0 }.joined() + (names.count > 24 ? " ..." : "")
    }

    static func readAll(at dirFD: Int32, _ path: String) throws -> [UInt8] {
        let fd = try check(openat(dirFD, path, O_RDONLY | O_CLOEXEC), "open /proc/\(path)")
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw SyscallError("read /proc/\(path)") }
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }

    static func say(_ text: String) throws { try FS.writeAll(1, Array(text.utf8), what: "stdout") }

    static func fail(_ message: String) -> Never {
        _ = try? FS.writeAll(2, Array((message + "\n").utf8), what: "stderr")
        exit(2)
    }
}

/// The process being probed: fds of the host's /proc, its root and its namespaces, all opened
/// before any setns, while paths still mean the host's.
struct ProbeTarget {
    let pid: Int32
    let procFD: Int32
    let rootFD: Int32
    /// nil when the target shares the probe's (the host's) namespace of that kind.
    let userNS: Int32?
    let mountNS: Int32?
    /// The ids the target's user namespace maps first (0 for a container's root).
    let insideUID: UInt32
    let insideGID: UInt32

    init(pid: Int32) throws {
        self.pid = pid
        procFD = try check(open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open /proc")
        rootFD = try check(
            openat(procFD, "\(pid)/root", CLAB_O_PATH | O_DIRECTORY | O_CLOEXEC),
            "open /proc/\(pid)/root (is \(pid) a running process?)")
        userNS = try Self.own(procFD, pid, "user")
        mountNS = try Self.own(procFD, pid, "mnt")
        insideUID = userNS == nil ? 0 : try Self.firstMapped(procFD, pid, "uid_map")
        insideGID = userNS == nil ? 0 : try Self.firstMapped(procFD, pid, "gid_map")
    }

    /// The target's namespace of this kind, if it is not the probe's own.
    static func own(_ procFD: Int32, _ pid: Int32, _ kind: String) throws -> Int32? {
        let theirs = try check(
            openat(procFD, "\(pid)/ns/\(kind)", O_RDONLY | O_CLOEXEC), "open /proc/\(pid)/ns/\(kind)")
        var a = stat()
        var b = stat()
        guard fstat(theirs, &a) == 0, fstatat(procFD, "self/ns/\(kind)", &b, 0) == 0 else {
            close(theirs)
            throw SyscallError("stat /proc/\(pid)/ns/\(kind)")
        }
        if a.st_dev == b.st_dev && a.st_ino == b.st_ino {
            close(theirs)
            return nil
        }
        return theirs
    }

    /// "0 100000 65536" -> 0: the first id inside the namespace that maps to one outside.
    static func firstMapped(_ procFD: Int32, _ pid: Int32, _ file: String) throws -> UInt32 {
        let text = String(decoding: try ProbeProcess.readAll(at: procFD, "\(pid)/\(file)"), as: UTF8.self)
        guard let first = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).first,
            let id = UInt32(first)
        else { throw ClabError("process \(pid)'s user namespace maps no id (/proc/\(pid)/\(file) is empty)") }
        return id
    }

    /// Host credentials and the user namespace as in enter(), then the target's namespace of
    /// this kind (ipc, net) when it has its own; sharing ours, there is nothing to join.
    func enterOnly(_ kind: String, _ flag: Int32) throws {
        let theirs = try Self.own(procFD, pid, kind)
        defer { if let theirs { close(theirs) } }
        try enterUser()
        if let theirs { try check(clab_setns(theirs, flag), "setns \(kind)") }
    }

    func enterUser() throws {
        try check(setgroups(0, nil), "setgroups")
        if let userNS {
            try check(clab_setns(userNS, Int32(CLONE_NEWUSER)), "setns user")
            try check(clab_setresgid(insideGID), "setresgid \(insideGID)")
            try check(clab_setresuid(insideUID), "setresuid \(insideUID)")
        }
    }

    /// Host credentials go first: no supplementary groups, then (when the target has a user
    /// namespace of its own) its namespace and its root's ids; then its mount namespace, which
    /// also makes the namespace's root our root and working directory.
    func enter() throws {
        try enterUser()
        if let mountNS { try check(clab_setns(mountNS, Int32(CLONE_NEWNS)), "setns mnt") }
    }
}
