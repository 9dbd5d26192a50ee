/// The structs strace shows by their fields, decoded from the bytes the kernel side read
/// (`ArgKind.record`), and the per-operation argument lists of the multiplexed calls. Layouts
/// are the x86_64 ABI.
extension Decoder {
    static func i32(_ bytes: [UInt8], _ at: Int) -> Int32 { Int32(bitPattern: u32(bytes, at)) }

    /// A signal set of 64 signals, as strace: `[INT QUIT]`, or `~[RTMIN RT_1]` when more than
    /// half are in it.
    static func sigset(_ mask: UInt64) -> String {
        let inverted = mask.nonzeroBitCount > 32
        let shown = inverted ? ~mask : mask
        var names: [String] = []
        for n in 1...64 where shown & (1 << UInt64(n - 1)) != 0 {
            let name = Flags.signal(UInt64(n))
            names.append(name.hasPrefix("SIG") ? String(name.dropFirst(3)) : name)
        }
        return (inverted ? "~[" : "[") + names.joined(separator: " ") + "]"
    }

    /// In strace's order (its xlat's, not the bits').
    static let sigactionFlags: Flags.Table = [
        (0x0400_0000, "SA_RESTORER"), (0x0800_0000, "SA_ONSTACK"), (0x1000_0000, "SA_RESTART"),
        (0x2000_0000, "SA_INTERRUPT"), (0x4000_0000, "SA_NODEFER"), (0x8000_0000, "SA_RESETHAND"), (4, "SA_SIGINFO"),
        (1, "SA_NOCLDSTOP"), (2, "SA_NOCLDWAIT"),
    ]

    /// struct kernel_sigaction (rt_sigaction): handler, flags, restorer, mask.
    static func sigaction(_ bytes: [UInt8]) -> String {
        let handler = u64(bytes, 0)
        let flags = u64(bytes, 8)
        let handlerText = handler == 0 ? "SIG_DFL" : handler == 1 ? "SIG_IGN" : Flags.hex(handler)
        var text = "{sa_handler=" + handlerText + ", sa_mask=" + sigset(u64(bytes, 24)) + ", sa_flags="
        text += Flags.bits(flags, sigactionFlags)
        if flags & 0x0400_0000 != 0 { text += ", sa_restorer=" + Flags.hex(u64(bytes, 16)) }
        return text + "}"
    }

    /// st_mode: `S_IFREG|0644`, `S_IFDIR|S_ISVTX|0777`.
    static func mode(_ m: UInt64) -> String {
        let types: Flags.Table = [
            (0o140000, "S_IFSOCK"), (0o120000, "S_IFLNK"), (0o100000, "S_IFREG"), (0o60000, "S_IFBLK"),
            (0o40000, "S_IFDIR"), (0o20000, "S_IFCHR"), (0o10000, "S_IFIFO"),
        ]
        var parts: [String] = []
        if let type = types.first(where: { $0.value == m & 0o170000 }) { parts.append(type.name) }
        if m & 0o4000 != 0 { parts.append("S_ISUID") }
        if m & 0o2000 != 0 { parts.append("S_ISGID") }
        if m & 0o1000 != 0 { parts.append("S_ISVTX") }
        let perm = String(m & 0o777, radix: 8)
        parts.append(String(repeating: "0", count: max(0, 4 - perm.count)) + perm)
        return parts.joined(separator: "|")
    }

    static func makedev(_ dev: UInt64) -> String {
        let major = (dev >> 8) & 0xfff | (dev >> 32) & ~0xfff
        let minor = dev & 0xff | (dev >> 12) & ~0xff
        return "makedev(" + Flags.hex(major) + ", " + Flags.hex(minor) + ")"
    }

    /// struct stat, abbreviated as strace does by default (its first 56 bytes: mode, rdev, size).
    static func stat(_ bytes: [UInt8]) -> String {
        let m = UInt64(u32(bytes, 24))
        let type = m & 0o170000
        let tail =
            type == 0o20000 || type == 0o60000
            ? "st_rdev=" + makedev(u64(bytes, 40)) : "st_size=" + String(Int64(bitPattern: u64(bytes, 48)))
        return "{st_mode=" + mode(m) + ", " + tail + ", ...}"
    }

    /// struct timespec (x86_64's, and the 64-bit __kernel_timespec) as strace prints it: tv_sec
    /// signed, tv_nsec unsigned (strace zero-extends it).
    static func timespec(_ bytes: [UInt8], at offset: Int = 0) -> String {
        secondsAnd("tv_nsec", bytes, at: offset)
    }

    /// struct timeval (and __kernel_sock_timeval), the same way.
    static func timeval(_ bytes: [UInt8], at offset: Int = 0) -> String {
        secondsAnd("tv_usec", bytes, at: offset)
    }

    private static func secondsAnd(_ fraction: String, _ bytes: [UInt8], at offset: Int) -> String {
        "{tv_sec=" + String(Int64(bitPattern: u64(bytes, offset))) + ", " + fraction + "="
            + String(u64(bytes, offset + 8))
            + "}"
    }

    /// wait4's status: `[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`.
    static func waitStatus(_ bytes: [UInt8]) -> String {
        let s = u32(bytes, 0)
        let sig = UInt64(s & 0x7f)
        if sig == 0 { return "[{WIFEXITED(s) && WEXITSTATUS(s) == \((s >> 8) & 0xff)}]" }
        if sig == 0x7f { return "[{WIFSTOPPED(s) && WSTOPSIG(s) == " + Flags.signal(UInt64((s >> 8) & 0xff)) + "}]" }
        return "[{WIFSIGNALED(s) && WTERMSIG(s) == " + Flags.signal(sig) + (s & 0x80 != 0 ? " && WCOREDUMP(s)}]" : "}]")
    }

    /// pipe2's and socketpair's fds, named as strace -y names them when the kernel side said
    /// what they are: `[3<pipe:[4242]>, 4<pipe:[4242]>]`.
    static func fdPair(_ bytes: [UInt8], _ call: Syscall) -> String {
        func fd(_ at: Int) -> String {
            let n = i32(bytes, at)
            return call.madeName(Int64(n)).map { "\(n)<\($0)>" } ?? String(n)
        }
        return "[" + fd(0) + ", " + fd(4) + "]"
    }

    /// uname's struct new_utsname, abbreviated as strace: `{sysname="Linux", nodename="vm", ...}`.
    static func uname(_ bytes: [UInt8]) -> String {
        func field(_ i: Int) -> String {
            let raw = bytes.dropFirst(i * 65).prefix(65)
            return quote(Array(raw.prefix { $0 != 0 }))
        }
        return "{sysname=" + field(0) + ", nodename=" + field(1) + ", ...}"
    }

    /// struct sysinfo (x86_64), every field, as strace.
    static func sysinfo(_ bytes: [UInt8]) -> String {
        let loads = [8, 16, 24].map { String(u64(bytes, $0)) }.joined(separator: ", ")
        let procs = UInt64(u32(bytes, 80) & 0xFFFF)
        return "{uptime=" + String(Int64(bitPattern: u64(bytes, 0))) + ", loads=[" + loads + "], totalram="
            + String(u64(bytes, 32)) + ", freeram=" + String(u64(bytes, 40)) + ", sharedram=" + String(u64(bytes, 48))
            + ", bufferram=" + String(u64(bytes, 56)) + ", totalswap=" + String(u64(bytes, 64)) + ", freeswap="
            + String(u64(bytes, 72)) + ", procs=" + String(procs) + ", totalhigh=" + String(u64(bytes, 88))
            + ", freehigh=" + String(u64(bytes, 96)) + ", mem_unit=" + String(u32(bytes, 104)) + "}"
    }

    /// struct statx, abbreviated as strace: mask, attributes, mode, size.
    static func statx(_ bytes: [UInt8]) -> String {
        "{stx_mask=" + Flags.bits(UInt64(u32(bytes, 0)), Flags.statxMask) + ", stx_attributes="
            + Flags.bits(u64(bytes, 8), Flags.statxAttributes) + ", stx_mode=" + mode(UInt64(u32(bytes, 28) & 0xFFFF))
            + ", stx_size=" + String(u64(bytes, 40)) + ", ...}"
    }

    static let epollFlags: Flags.Table = [
        (0x1, "EPOLLIN"), (0x2, "EPOLLPRI"), (0x4, "EPOLLOUT"), (0x8, "EPOLLERR"), (0x10, "EPOLLHUP"),
        (0x20, "EPOLLNVAL"), (0x40, "EPOLLRDNORM"), (0x80, "EPOLLRDBAND"), (0x100, "EPOLLWRNORM"),
        (0x200, "EPOLLWRBAND"), (0x400, "EPOLLMSG"), (0x2000, "EPOLLRDHUP"), (1 << 28, "EPOLLEXCLUSIVE"),
        (1 << 29, "EPOLLWAKEUP"), (1 << 30, "EPOLLONESHOT"), (1 << 31, "EPOLLET"),
    ]

    /// struct epoll_event (x86_64: packed, 12 bytes): `{events=EPOLLIN, data={u32=3, u64=3}}`;
    /// an array of `count` of them (at most `max` read) for epoll_wait.
    static func epollEvents(_ bytes: [UInt8], count: Int, max: Int) -> String {
        func event(_ at: Int) -> String {
            let data = UInt64(u32(bytes, at + 4)) | UInt64(u32(bytes, at + 8)) << 32
            return "{events=" + Flags.bits(UInt64(u32(bytes, at)), epollFlags) + ", data={u32="
                + String(UInt32(truncatingIfNeeded: data)) + ", u64=" + String(data) + "}}"
        }
        if max == 1 { return event(0) }
        let shown = (0..<min(count, max)).filter { $0 * 12 + 12 <= bytes.count }
        return "[" + shown.map { event($0 * 12) }.joined(separator: ", ") + (count > shown.count ? ", ...]" : "]")
    }

    static let pollFlags: Flags.Table = [
        (0x1, "POLLIN"), (0x2, "POLLPRI"), (0x4, "POLLOUT"), (0x8, "POLLERR"), (0x10, "POLLHUP"), (0x20, "POLLNVAL"),
        (0x40, "POLLRDNORM"), (0x80, "POLLRDBAND"), (0x100, "POLLWRNORM"), (0x200, "POLLWRBAND"), (0x400, "POLLMSG"),
        (0x1000, "POLLREMOVE"), (0x2000, "POLLRDHUP"),
    ]

    /// poll's struct pollfd array, as asked: `[{fd=3<pipe:[7]>, events=POLLIN}]`.
    static func pollFDs(_ bytes: [UInt8], count: Int, more: Bool, fdPath: (Int64) -> String?) -> String {
        var items: [String] = []
        for i in 0..<count where i * 8 + 8 <= bytes.count {
            let fd = Int64(i32(bytes, i * 8))
            let events = UInt64(u32(bytes, i * 8 + 4) & 0xFFFF)
            let name = fdPath(fd).map { "<" + $0 + ">" } ?? ""
            items.append("{fd=\(fd)" + name + ", events=" + Flags.bits(events, pollFlags) + "}")
        }
        return "[" + items.joined(separator: ", ") + (more ? ", ...]" : "]")
    }

    /// poll's result, as strace: `1 ([{fd=3, revents=POLLIN}])`, `0 (Timeout)`.
    static func pollResult(_ call: Syscall) -> String? {
        if call.ret == 0 { return "0 (Timeout)" }
        guard let bytes = call.string(0) else { return nil }
        let n = Int(min(call.args[1], 7))
        var ready: [String] = []
        for i in 0..<n where i * 8 + 8 <= bytes.count {
            let revents = UInt64(u32(bytes, i * 8 + 4) >> 16)
            if revents != 0 {
                ready.append("{fd=\(i32(bytes, i * 8)), revents=" + Flags.bits(revents, pollFlags) + "}")
            }
        }
        // More were asked for than were read: the list may miss some.
        let cut = call.args[1] > 7 ? ", ..." : ""
        return "\(call.ret) ([" + ready.joined(separator: ", ") + cut + "])"
    }

    /// An int passed by pointer (setsockopt's value): `[1]`.
    static func intRef(_ bytes: [UInt8]) -> String { "[\(i32(bytes, 0))]" }

    /// siginfo as strace shows it in `--- SIGCHLD {...} ---`.
    static func siginfo(_ s: SignalDelivery) -> String {
        let b = s.info
        let signo = Flags.signal(UInt64(s.signal))
        let code = i32(b, 8)
        var parts = ["si_signo=" + signo]
        let codes: [Int32: String] = [
            0: "SI_USER", 0x80: "SI_KERNEL", -1: "SI_QUEUE", -2: "SI_TIMER", -3: "SI_MESGQ", -4: "SI_ASYNCIO",
            -5: "SI_SIGIO", -6: "SI_TKILL",
        ]
        if s.signal == 17 && code > 0 {
            let cld = ["CLD_EXITED", "CLD_KILLED", "CLD_DUMPED", "CLD_TRAPPED", "CLD_STOPPED", "CLD_CONTINUED"]
            parts.append("si_code=" + (Int(code) <= cld.count ? cld[Int(code) - 1] : String(code)))
            parts.append("si_pid=\(i32(b, 16))")
            parts.append("si_uid=\(u32(b, 20))")
            let status = i32(b, 24)
            parts.append("si_status=" + (code == 1 ? String(status) : Flags.signal(UInt64(status))))
            parts.append("si_utime=\(Int64(bitPattern: u64(b, 32)))")
            parts.append("si_stime=\(Int64(bitPattern: u64(b, 40)))")
        } else if let name = codes[code] {
            parts.append("si_code=" + name)
            if code <= 0 {
                parts.append("si_pid=\(i32(b, 16))")
                parts.append("si_uid=\(u32(b, 20))")
            }
        } else if [4, 7, 8, 11].contains(s.signal) {  // SIGILL, SIGBUS, SIGFPE, SIGSEGV: a fault address
            let segv = [1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR"]
            parts.append("si_code=" + (s.signal == 11 ? segv[Int(code)] ?? String(code) : String(code)))
            let addr = u64(b, 16)
            parts.append("si_addr=" + (addr == 0 ? "NULL" : Flags.hex(addr)))
        } else {
            parts.append("si_code=\(code)")
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// clone(2) as strace: `clone(child_stack=NULL, flags=...|SIGCHLD, child_tidptr=0x...)`;
    /// x86_64's argument order is flags, stack, parent_tid, child_tid, tls.
    static func cloneCall(_ call: Syscall) -> String {
        let flags = call.args[0]
        func ptr(_ v: UInt64) -> String { v == 0 ? "NULL" : Flags.hex(v) }
        var parts = ["child_stack=" + ptr(call.args[1]), "flags=" + Flags.cloneFlags(flags)]
        if flags & 0x100000 != 0 { parts.append("parent_tid=" + ptr(call.args[2])) }
        if flags & 0x1200000 != 0 { parts.append("child_tidptr=" + ptr(call.args[3])) }
        if flags & 0x80000 != 0 { parts.append("tls=" + ptr(call.args[4])) }
        return parts.joined(separator: ", ")
    }

    /// fcntl's third argument by command (nil: the command takes none).
    static func fcntlArg(_ call: Syscall) -> String? {
        let v = call.args[2]
        switch call.args[1] {
        // F_GETFD, F_GETFL, F_GETOWN, F_GETSIG, F_GETLEASE, F_GETPIPE_SZ, F_GET_SEALS
        case 1, 3, 9, 11, 1025, 1032, 1034: return nil
        case 2: return v & 1 != 0 ? "FD_CLOEXEC" : "0"  // F_SETFD
        case 4: return Flags.open(v)  // F_SETFL
        // F_DUPFD, F_DUPFD_CLOEXEC, F_SETOWN, F_SETSIG, F_SETPIPE_SZ
        case 0, 1030, 8, 10, 1031: return String(Int32(truncatingIfNeeded: v))
        default: return v == 0 ? "NULL" : Flags.hex(v)
        }
    }

    /// prctl's arguments after the option, as many as the option takes.
    static let futexOps = [
        "FUTEX_WAIT", "FUTEX_WAKE", "FUTEX_FD", "FUTEX_REQUEUE", "FUTEX_CMP_REQUEUE", "FUTEX_WAKE_OP",
        "FUTEX_LOCK_PI", "FUTEX_UNLOCK_PI", "FUTEX_TRYLOCK_PI", "FUTEX_WAIT_BITSET", "FUTEX_WAKE_BITSET",
        "FUTEX_WAIT_REQUEUE_PI", "FUTEX_CMP_REQUEUE_PI", "FUTEX_LOCK_PI2",
    ]

    /// futex's operation: `FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME`.
    static func futexOp(_ op: UInt64) -> String {
        let cmd = Int(op & 127)
        guard cmd < futexOps.count, op & ~UInt64(127 | 128 | 256) == 0 else { return Flags.hex(op) }
        return futexOps[cmd] + (op & 128 != 0 ? "_PRIVATE" : "") + (op & 256 != 0 ? "|FUTEX_CLOCK_REALTIME" : "")
    }

    /// futex's arguments after the operation (`i` from 2), as many as the operation takes, as
    /// strace prints them; nil: not shown. A timeout is shown as its address (not read).
    static func futexArgs(_ i: Int, _ call: Syscall) -> String? {
        let op = call.args[1]
        let cmd = op & 127
        guard Int(cmd) < futexOps.count, op & ~UInt64(127 | 128 | 256) == 0 else { return Flags.hex(call.args[i]) }
        let val = String(Int32(truncatingIfNeeded: call.args[2]))
        let val2 = String(UInt32(truncatingIfNeeded: call.args[3]))
        let timeout = call.args[3] == 0 ? "NULL" : Flags.hex(call.args[3])
        let uaddr2 = call.args[4] == 0 ? "NULL" : Flags.hex(call.args[4])
        let val3 = UInt32(truncatingIfNeeded: call.args[5])
        let bitset = val3 == UInt32.max ? "FUTEX_BITSET_MATCH_ANY" : Flags.hex(UInt64(val3))
        let shown: [String]
        switch cmd {
        case 0: shown = [val, timeout]  // WAIT
        case 9: shown = [val, timeout, bitset]  // WAIT_BITSET (uaddr2 is not used)
        case 1: shown = [val]  // WAKE
        case 10: shown = [val, bitset]  // WAKE_BITSET
        case 3: shown = [val, val2, uaddr2]  // REQUEUE
        case 4, 12: shown = [val, val2, uaddr2, String(Int32(bitPattern: val3))]  // CMP_REQUEUE(_PI)
        case 5: shown = [val, val2, uaddr2, Flags.hex(UInt64(val3))]  // WAKE_OP
        case 6, 13: shown = [timeout]  // LOCK_PI(2)
        case 11: shown = [val, timeout, uaddr2]  // WAIT_REQUEUE_PI
        case 2: shown = [val]  // FD
        default: shown = []  // UNLOCK_PI, TRYLOCK_PI
        }
        return i - 2 < shown.count ? shown[i - 2] : nil
    }

    static func prctlArgs(_ i: Int, _ call: Syscall) -> String? {
        switch call.args[0] {
        case 3, 7, 39, 27, 37, 2, 21:  // the GETs with no argument (PR_GET_PDEATHSIG writes through arg 2)
            if call.args[0] == 2 || call.args[0] == 37 { return i == 1 ? Flags.hex(call.args[1]) : nil }
            return nil
        // PR_SET_DUMPABLE, PR_SET_KEEPCAPS, PR_SET_CHILD_SUBREAPER
        case 4, 8, 36: return i == 1 ? String(call.args[1]) : nil
        case 15, 16:  // PR_SET_NAME, PR_GET_NAME: the name (argument 1), then nothing
            return i == 1 ? Flags.hex(call.args[1]) : nil
        default: return Flags.prctlArg(i, call)
        }
    }
}

extension Flags {
    static let clocks: Table = [
        (0, "CLOCK_REALTIME"), (1, "CLOCK_MONOTONIC"), (2, "CLOCK_PROCESS_CPUTIME_ID"), (3, "CLOCK_THREAD_CPUTIME_ID"),
        (4, "CLOCK_MONOTONIC_RAW"), (5, "CLOCK_REALTIME_COARSE"), (6, "CLOCK_MONOTONIC_COARSE"), (7, "CLOCK_BOOTTIME"),
        (8, "CLOCK_REALTIME_ALARM"), (9, "CLOCK_BOOTTIME_ALARM"), (11, "CLOCK_TAI"),
    ]

    static let madvise: Table = [
        (0, "MADV_NORMAL"), (1, "MADV_RANDOM"), (2, "MADV_SEQUENTIAL"), (3, "MADV_WILLNEED"), (4, "MADV_DONTNEED"),
        (8, "MADV_FREE"), (9, "MADV_REMOVE"), (10, "MADV_DONTFORK"), (11, "MADV_DOFORK"), (12, "MADV_MERGEABLE"),
        (13, "MADV_UNMERGEABLE"), (14, "MADV_HUGEPAGE"), (15, "MADV_NOHUGEPAGE"), (16, "MADV_DONTDUMP"),
        (17, "MADV_DODUMP"), (18, "MADV_WIPEONFORK"), (19, "MADV_KEEPONFORK"), (20, "MADV_COLD"), (21, "MADV_PAGEOUT"),
        (22, "MADV_POPULATE_READ"), (23, "MADV_POPULATE_WRITE"), (24, "MADV_DONTNEED_LOCKED"), (25, "MADV_COLLAPSE"),
    ]

    static let cloexecOnly: Table = [(0o2000000, "O_CLOEXEC")]
    static let eventfd: Table = [(1, "EFD_SEMAPHORE"), (0o4000, "EFD_NONBLOCK"), (0o2000000, "EFD_CLOEXEC")]
    static let pipeFlags: Table = [(0o4000, "O_NONBLOCK"), (0o40000, "O_DIRECT"), (0o2000000, "O_CLOEXEC")]
    static let getrandom: Table = [(1, "GRND_NONBLOCK"), (2, "GRND_RANDOM"), (4, "GRND_INSECURE")]
    static let shutdown: Table = [(0, "SHUT_RD"), (1, "SHUT_WR"), (2, "SHUT_RDWR")]
    static let socketLevel: Table = [
        (0, "SOL_IP"), (1, "SOL_SOCKET"), (6, "SOL_TCP"), (17, "SOL_UDP"), (41, "SOL_IPV6"),
    ]
    static let socketOptions: Table =
        [
            (1, "SO_DEBUG"), (2, "SO_REUSEADDR"), (3, "SO_TYPE"), (4, "SO_ERROR"), (5, "SO_DONTROUTE"),
            (6, "SO_BROADCAST"), (7, "SO_SNDBUF"), (8, "SO_RCVBUF"), (9, "SO_KEEPALIVE"), (10, "SO_OOBINLINE"),
            (13, "SO_LINGER"), (15, "SO_REUSEPORT"), (16, "SO_PASSCRED"), (17, "SO_PEERCRED"), (20, "SO_RCVTIMEO"),
            (21, "SO_SNDTIMEO"), (32, "SO_SNDBUFFORCE"), (33, "SO_RCVBUFFORCE"),
        ] + timestamps
    /// The receive-timestamp options, which are also the control messages' types that carry them.
    static let timestamps: Table = [
        (29, "SO_TIMESTAMP_OLD"), (35, "SO_TIMESTAMPNS_OLD"), (37, "SO_TIMESTAMPING_OLD"), (63, "SO_TIMESTAMP_NEW"),
        (64, "SO_TIMESTAMPNS_NEW"), (65, "SO_TIMESTAMPING_NEW"),
    ]
    static let epollCtl: Table = [(1, "EPOLL_CTL_ADD"), (2, "EPOLL_CTL_DEL"), (3, "EPOLL_CTL_MOD")]
}
