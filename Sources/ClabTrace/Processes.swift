import ClabSys
import Glibc

/// What the reader knows about one traced process: its name, its pid inside its own pid
/// namespace, the files behind its fds (from the opens it was seen to make, strace -y style),
/// and where it is in clab's sequence (see `Phases`).
final class TracedProcess {
    let pid: UInt32
    var comm: String {
        didSet { commJSON = Self.json(comm) }
    }
    /// `comm` as a JSON string literal, made when it changes (at exec), not per event.
    private(set) var commJSON: [UInt8]
    /// The pid in the innermost pid namespace (== pid on the host's).
    var nsPid: UInt32
    var nsLevel: UInt32
    var fds: [Int64: OpenFile]
    var phase: Phase
    /// The stage whose work this process is doing now: clab-init's last marker (see `Phases`).
    var label: StageLabel?
    /// clab's and its cloned child's last markers, per thread (a stage's number; none:
    /// plumbing): clab joins a cgroup on one thread while it plumbs the network on another.
    var threadStages: [UInt32: Int] = [:]
    var execs = 0
    /// The ABI of its last call (strace notes each switch).
    var abi = Syscall.ABI.x86_64
    /// The working directory (strace -y's `AT_FDCWD</home/me>`), where known.
    var cwd: String?
    /// It has clab's root and mounts (read at its start, inherited, lost at its first mount,
    /// chroot, pivot_root, setns or unshare): a path can be resolved in clab's own root once
    /// the process is gone.
    var sameRoot = false

    /// What fd `fd` refers to; AT_FDCWD (-100): the working directory.
    func path(of fd: Int64) -> String? { fd == -100 ? cwd : fds[fd]?.path }

    /// As `path(of:)`, with a netlink socket named `socket:AF_NETLINK` (what the stage view
    /// looks for).
    func stagePath(of fd: Int64) -> String? {
        if let f = fds[fd], f.netlink { return "socket:AF_NETLINK" }
        return path(of: fd)
    }

    init(pid: UInt32, comm: String, nsPid: UInt32, nsLevel: UInt32, fds: [Int64: OpenFile], phase: Phase) {
        self.pid = pid
        self.comm = comm
        commJSON = Self.json(comm)
        self.nsPid = nsPid
        self.nsLevel = nsLevel
        self.fds = fds
        self.phase = phase
    }
}

extension TracedProcess {
    static func json(_ text: String) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: text.utf8.count * 6 + 2)
        let n = bytes.withUnsafeMutableBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            var c = Cursor(p: base, end: base + buffer.count)
            c.jsonString(text)
            return c.p - base
        }
        return Array(bytes.prefix(n))
    }
}

struct OpenFile: Sendable, Equatable {
    var path: String
    var cloexec: Bool
    /// An AF_NETLINK socket (its name is `socket:[inode]`, as strace -y's): the stage view
    /// reads network plumbing off it.
    var netlink = false
}

/// The traced processes, kept current from fork/exec/exit records and from the syscalls that
/// open, duplicate and close fds.
final class ProcessTable {
    private(set) var processes: [UInt32: TracedProcess] = [:]
    /// Threads other than the leader: tid -> tid inside the pid namespace.
    private var threadNsTids: [UInt32: UInt32] = [:]
    private var threadOwners: [UInt32: UInt32] = [:]
    private var lastPid: UInt32 = 0
    private var last: TracedProcess?

    /// Every thread's marker (after lost records, one of them may be missing).
    func forgetThreadMarks() {
        for p in processes.values { p.threadStages.removeAll() }
    }

    /// Registers a root the tracer starts (host mode) or follows (clab itself), with the fds it
    /// has now, read from /proc.
    func addRoot(
        pid: pid_t, comm: String, phase: Phase, fds: [Int64: OpenFile]? = nil, cwd: String? = nil,
        sameRoot: Bool? = nil
    ) {
        let ns = Self.nsPids(of: pid)
        let p = TracedProcess(
            pid: UInt32(pid), comm: comm, nsPid: ns.last ?? UInt32(pid), nsLevel: UInt32(max(0, ns.count - 1)),
            fds: fds ?? Self.openFiles(of: pid), phase: phase)
        p.cwd = cwd ?? Self.link("/proc/\(pid)/cwd")
        p.sameRoot = sameRoot ?? Self.sharesRoot(pid)
        processes[UInt32(pid)] = p
    }

    /// The NSpid line of /proc/PID/status: the pid in each pid namespace, outermost first.
    static func nsPids(of pid: pid_t) -> [UInt32] {
        guard let status = ProcFS.read("/proc/\(pid)/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") })
        else { return [] }
        return line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
    }

    func process(_ pid: UInt32) -> TracedProcess {
        if pid == lastPid, let last { return last }
        let p: TracedProcess
        if let known = processes[pid] {
            p = known
        } else {
            // Seen before its fork record (records from different CPUs can arrive out of order).
            p = TracedProcess(pid: pid, comm: "?", nsPid: pid, nsLevel: 0, fds: [:], phase: .other)
            processes[pid] = p
        }
        lastPid = pid
        last = p
        return p
    }

    func nsTid(_ tid: UInt32, of p: TracedProcess) -> UInt32 {
        tid == p.pid ? p.nsPid : threadNsTids[tid] ?? tid
    }

    func apply(_ event: ProcessEvent) {
        switch event {
        case .fork(_, let pid, _, let childPid, let childTid, let childNsPid, let nsLevel, let thread, let comm):
            if thread {
                threadNsTids[childTid] = childNsPid
                threadOwners[childTid] = pid
                return
            }
            let parent = process(pid)
            let child = TracedProcess(
                pid: childPid, comm: comm, nsPid: childNsPid, nsLevel: nsLevel, fds: parent.fds,
                phase: parent.phase.child)
            child.label = parent.label
            child.cwd = parent.cwd
            child.sameRoot = parent.sameRoot
            processes[childPid] = child
            if lastPid == childPid { last = child }
        case .exec(_, let pid, _, let nsPid, let nsLevel, let comm):
            let p = process(pid)
            p.comm = comm
            p.nsPid = nsPid
            p.nsLevel = nsLevel
            p.execs += 1
            p.fds = p.fds.filter { !$0.value.cloexec }
        case .exit(_, let pid, _, _):
            processes[pid] = nil
            if lastPid == pid {
                lastPid = 0
                last = nil
            }
        case .oom, .cgroup:
            break
        }
    }

    /// How a syscall changes the fd table, by syscall number (looked up per event: no names).
    enum FDEffect: Equatable {
        case open, openat, close, closeRange, dup, dup2, dup3, fcntl, socket, pair, accept
        case anon(String)
        case chdir, fchdir, newRoot
    }

    /// /proc/PID/root is clab's own root.
    static func sharesRoot(_ pid: pid_t) -> Bool {
        var a = stat()
        var b = stat()
        return fstatat(AT_FDCWD, "/proc/\(pid)/root", &a, 0) == 0 && fstatat(AT_FDCWD, "/", &b, 0) == 0
            && a.st_dev == b.st_dev
            && a.st_ino == b.st_ino
    }

    static let fdEffects: [FDEffect?] = {
        var table = [FDEffect?](repeating: nil, count: 1024)
        let names: [(String, FDEffect)] = [
            ("open", .open), ("creat", .open), ("openat", .openat), ("openat2", .openat), ("close", .close),
            ("close_range", .closeRange), ("dup", .dup), ("dup2", .dup2), ("dup3", .dup3), ("fcntl", .fcntl),
            ("socket", .socket), ("pipe", .pair), ("pipe2", .pair), ("socketpair", .pair), ("accept", .accept),
            ("accept4", .accept), ("eventfd", .anon("anon_inode:[eventfd]")),
            ("eventfd2", .anon("anon_inode:[eventfd]")), ("epoll_create", .anon("anon_inode:[eventpoll]")),
            ("epoll_create1", .anon("anon_inode:[eventpoll]")), ("signalfd4", .anon("anon_inode:[signalfd]")),
            ("timerfd_create", .anon("anon_inode:[timerfd]")), ("inotify_init1", .anon("anon_inode:inotify")),
            ("pidfd_open", .anon("anon_inode:[pidfd]")), ("chdir", .chdir), ("fchdir", .fchdir),
            ("mount", .newRoot), ("umount2", .newRoot), ("move_mount", .newRoot), ("pivot_root", .newRoot),
            ("chroot", .newRoot), ("setns", .newRoot), ("unshare", .newRoot),
        ]
        for (name, effect) in names { if let nr = SyscallCatalog.number(name) { table[nr] = effect } }
        return table
    }()

    /// Keeps the fd table current after a syscall returned.
    func apply(_ call: Syscall, to p: TracedProcess) {
        guard call.nr >= 0, Int(call.nr) < Self.fdEffects.count, let effect = Self.fdEffects[Int(call.nr)],
            call.errno == nil, !call.noReturn, !call.unfinished
        else { return }
        let ret = call.ret
        let cloexec: UInt64 = 0o2000000
        switch effect {
        case .open:
            if let path = path(call, slot: 0) {
                let real = Self.resolve(path, base: p.cwd, pid: p.pid, sameRoot: p.sameRoot)
                p.fds[ret] = OpenFile(path: real, cloexec: call.args[1] & cloexec != 0)
            }
        case .openat:
            if let path = path(call, slot: 0) {
                let flags = call.nr == 257 ? call.args[2] : 0
                let base = p.path(of: Int64(Int32(truncatingIfNeeded: call.args[0])))
                p.fds[ret] = OpenFile(
                    path: Self.resolve(path, base: base, pid: p.pid, sameRoot: p.sameRoot),
                    cloexec: flags & cloexec != 0)
            }
        case .anon(let name):
            p.fds[ret] = OpenFile(path: name, cloexec: false)
        case .chdir:
            if let path = path(call, slot: 0) {
                p.cwd = Self.resolve(path, base: p.cwd, pid: p.pid, sameRoot: p.sameRoot)
            }
        case .newRoot:
            p.sameRoot = false
        case .fchdir:
            p.cwd = p.fds[Int64(Int32(truncatingIfNeeded: call.args[0]))]?.path
        case .close:
            p.fds[Int64(Int32(truncatingIfNeeded: call.args[0]))] = nil
        case .closeRange:
            let first = Int64(call.args[0])
            let last = Int64(min(call.args[1], 1 << 20))
            p.fds = p.fds.filter { $0.key < first || $0.key > last }
        case .dup:
            if var f = p.fds[Int64(call.args[0])] {
                f.cloexec = false
                p.fds[ret] = f
            }
        case .dup2, .dup3:
            let new = Int64(call.args[1])
            if var f = p.fds[Int64(call.args[0])] {
                f.cloexec = effect == .dup3 && call.args[2] & cloexec != 0
                p.fds[new] = f
            } else {
                p.fds[new] = nil
            }
        case .fcntl:
            if call.args[1] == 0 || call.args[1] == 1030, var f = p.fds[Int64(call.args[0])] {
                f.cloexec = call.args[1] == 1030
                p.fds[ret] = f
            }
        case .socket:
            // strace -y's `socket:[inode]` when the kernel side said; the family otherwise.
            let name = call.madeName(ret) ?? "socket:" + Flags.value(call.args[0], Flags.family)
            p.fds[ret] = OpenFile(path: name, cloexec: call.args[1] & cloexec != 0, netlink: call.args[0] == 16)
        case .pair:
            // pipe2's flags, socketpair's type: O_CLOEXEC and SOCK_CLOEXEC are the same bit.
            let flags = call.nr == 22 ? 0 : call.args[1]
            for made in call.madeFDs {
                guard let name = made.name else { continue }
                p.fds[made.fd] = OpenFile(path: name, cloexec: flags & cloexec != 0)
            }
        case .accept:
            let flags = call.nr == 288 ? call.args[3] : 0
            if let name = call.madeName(ret) {
                let listening = p.fds[Int64(Int32(truncatingIfNeeded: call.args[0]))]
                p.fds[ret] = OpenFile(path: name, cloexec: flags & cloexec != 0, netlink: listening?.netlink ?? false)
            }
        }
    }

    /// A path as strace -y shows an fd's: absolute, with every symlink followed (`/lib/x` is
    /// `/usr/lib/x` on a merged-/usr system), resolved now in the process's own root
    /// (/proc/PID/root; a container's). `base`: the directory a relative path starts from (nil:
    /// unknown, the path stays as given). When the process is gone, or a component cannot be
    /// read, what is known is kept: the absolute path as given, never a guess.
    static func resolve(_ path: String, base: String?, pid: UInt32, sameRoot: Bool = false) -> String {
        let absolute: String
        if path.hasPrefix("/") {
            absolute = path
        } else if let base, base.hasPrefix("/") {
            absolute = path.isEmpty ? base : (base == "/" ? "/" : base + "/") + path
        } else {
            return path
        }
        var root = "/proc/\(pid)/root"
        if sameRoot && access(root, F_OK) != 0 { root = "" }  // gone: clab's root is the same
        var done: [Substring] = []
        var todo = absolute.split(separator: "/", omittingEmptySubsequences: true).reversed().map { $0 }
        var links = 0
        while let part = todo.popLast() {
            if part == "." { continue }
            if part == ".." {
                _ = done.popLast()
                continue
            }
            let candidate = "/" + (done + [part]).joined(separator: "/")
            var st = stat()
            guard lstat(root + candidate, &st) == 0 else {
                // Does not exist (yet, or any more): the rest as given.
                return "/" + (done + [part] + todo.reversed()).joined(separator: "/")
            }
            if st.st_mode & S_IFMT == S_IFLNK, let target = link(root + candidate) {
                links += 1
                if links > 40 { return absolute }
                if target.hasPrefix("/") { done = [] }
                todo += target.split(separator: "/", omittingEmptySubsequences: true).reversed()
            } else {
                done.append(part)
            }
        }
        return "/" + done.joined(separator: "/")
    }

    static func link(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func path(_ call: Syscall, slot: Int) -> String? {
        guard let bytes = call.string(slot) else { return nil }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// /proc/PID/fd, for a process the tracer did not see open its files.
    static func openFiles(of pid: pid_t) -> [Int64: OpenFile] {
        var result: [Int64: OpenFile] = [:]
        guard let dir = opendir("/proc/\(pid)/fd") else { return result }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let fd = Int64(name) else { continue }
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/\(pid)/fd/\(name)", &buffer, buffer.count - 1)
            guard n > 0 else { continue }
            let target = buffer.prefix(n).map { UInt8(bitPattern: $0) }
            let flags = fcntlFlags(pid: pid, fd: name)
            result[fd] = OpenFile(path: String(decoding: target, as: UTF8.self), cloexec: flags)
        }
        return result
    }

    /// Whether /proc/PID/fdinfo/FD lists O_CLOEXEC.
    private static func fcntlFlags(pid: pid_t, fd: String) -> Bool {
        let fdinfo = open("/proc/\(pid)/fdinfo/\(fd)", O_RDONLY | O_CLOEXEC)
        guard fdinfo >= 0 else { return false }
        defer { close(fdinfo) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { read(fdinfo, $0.baseAddress, $0.count) }
        guard n > 0 else { return false }
        let text = String(decoding: buffer.prefix(n), as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags:") }),
            let flags = UInt64(line.dropFirst(6).trimmingPrefix(while: { $0 == " " || $0 == "\t" }), radix: 8)
        else { return false }
        return flags & 0o2000000 != 0
    }
}

/// Small reads of /proc.
enum ProcFS {
    /// Exited: no such process, or a zombie (its exit already happened).
    static func isGone(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0, let stat = read("/proc/\(pid)/stat").flatMap(ProcStat.init) else { return true }
        return !stat.isLive
    }

    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self) : nil
    }

    /// `pid` and every process below it, parents first, from the ppid field of /proc/*/stat.
    static func tree(of root: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        if let dir = opendir("/proc") {
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                guard let pid = pid_t(name), let stat = read("/proc/\(name)/stat").flatMap(ProcStat.init) else {
                    continue
                }
                children[stat.parentPid, default: []].append(pid)
            }
        }
        var result = [root]
        var i = 0
        while i < result.count {
            result += children[result[i]] ?? []
            i += 1
        }
        return result
    }

    static func comm(_ pid: pid_t) -> String { commIfRunning(pid) ?? "?" }

    /// nil: the process is gone.
    static func commIfRunning(_ pid: pid_t) -> String? {
        read("/proc/\(pid)/comm").map { String($0.prefix { $0 != "\n" }) }
    }

    static func cmdline(_ pid: pid_t) -> [String] {
        guard let text = read("/proc/\(pid)/cmdline") else { return [] }
        return text.split(separator: "\0").map(String.init)
    }
}
