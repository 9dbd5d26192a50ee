import CShims
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
        guard args.count == 2, let pid = Int32(args[1]), pid > 0 else {
            fail("usage: clab-init --probe mountinfo|breakout PID")
        }
        do {
            switch args[0] {
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
                fail("clab-init --probe: unknown probe '\(args[0])' (mountinfo or breakout)")
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

    /// Host credentials go first: no supplementary groups, then (when the target has a user
    /// namespace of its own) its namespace and its root's ids; then its mount namespace, which
    /// also makes the namespace's root our root and working directory.
    func enter() throws {
        try check(setgroups(0, nil), "setgroups")
        if let userNS {
            try check(clab_setns(userNS, Int32(CLONE_NEWUSER)), "setns user")
            try check(clab_setresgid(insideGID), "setresgid \(insideGID)")
            try check(clab_setresuid(insideUID), "setresuid \(insideUID)")
        }
        if let mountNS { try check(clab_setns(mountNS, Int32(CLONE_NEWNS)), "setns mnt") }
    }
}
