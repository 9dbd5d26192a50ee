/// Named constants, as strace prints them. The values are the x86_64 Linux ABI (stable: they
/// are part of the kernel's user interface and never change).
enum Flags {
    typealias Table = [(value: UInt64, name: String)]

    /// Bit flags by name, leftover bits in hex: `CLONE_NEWNS|CLONE_NEWPID|0x4`. Zero prints
    /// `zero` (for example "0", or "O_RDONLY" where 0 has a name).
    static func bits(_ value: UInt64, _ table: Table, zero: String = "0") -> String {
        if value == 0 { return zero }
        var names: [String] = []
        var rest = value
        for (bit, name) in table where bit != 0 && rest & bit == bit {
            names.append(name)
            rest &= ~bit
        }
        if rest != 0 { names.append(hex(rest)) }
        return names.joined(separator: "|")
    }

    /// One value by name, or the number.
    static func value(_ value: UInt64, _ table: Table, signed: Bool = true) -> String {
        if let hit = table.first(where: { $0.value == value }) { return hit.name }
        return signed ? String(Int64(bitPattern: value)) : String(value)
    }

    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    // MARK: - clone, clone3, unshare, setns

    static let clone: Table = [
        (0x100, "CLONE_VM"), (0x200, "CLONE_FS"), (0x400, "CLONE_FILES"), (0x800, "CLONE_SIGHAND"),
        (0x1000, "CLONE_PIDFD"), (0x2000, "CLONE_PTRACE"), (0x4000, "CLONE_VFORK"), (0x8000, "CLONE_PARENT"),
        (0x10000, "CLONE_THREAD"), (0x20000, "CLONE_NEWNS"), (0x40000, "CLONE_SYSVSEM"), (0x80000, "CLONE_SETTLS"),
        (0x100000, "CLONE_PARENT_SETTID"), (0x200000, "CLONE_CHILD_CLEARTID"), (0x400000, "CLONE_DETACHED"),
        (0x800000, "CLONE_UNTRACED"), (0x1000000, "CLONE_CHILD_SETTID"), (0x2000000, "CLONE_NEWCGROUP"),
        (0x4000000, "CLONE_NEWUTS"), (0x8000000, "CLONE_NEWIPC"), (0x1000_0000, "CLONE_NEWUSER"),
        (0x2000_0000, "CLONE_NEWPID"), (0x4000_0000, "CLONE_NEWNET"), (0x8000_0000, "CLONE_IO"),
        (0x1_0000_0000, "CLONE_CLEAR_SIGHAND"), (0x2_0000_0000, "CLONE_INTO_CGROUP"),
    ]

    /// clone3, unshare and setns take CLONE_NEWTIME in the bits clone(2) uses for the signal.
    static let cloneWithTime: Table = clone + [(0x80, "CLONE_NEWTIME")]

    /// clone(2): the low byte is the exit signal.
    static func cloneFlags(_ value: UInt64) -> String {
        let signal = value & 0xFF
        var text = bits(value & ~0xFF, clone, zero: "")
        if signal != 0 { text += (text.isEmpty ? "" : "|") + Flags.signal(signal) }
        return text.isEmpty ? "0" : text
    }

    // MARK: - files

    /// In strace's order (its xlat's): O_TMPFILE before O_DIRECTORY, whose bit it includes.
    static let openBits: Table = [
        (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"), (0o4010000, "O_SYNC"), (0o10000, "O_DSYNC"), (0o40000, "O_DIRECT"),
        (0o100000, "O_LARGEFILE"), (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"), (0o20200000, "O_TMPFILE"), (0o200000, "O_DIRECTORY"), (0o20000, "FASYNC"),
    ]

    static func open(_ value: UInt64) -> String {
        let mode = ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"][Int(value & 3)]
        let rest = value & ~3
        return rest == 0 ? mode : mode + "|" + bits(rest, openBits)
    }

    /// preadv2/pwritev2's flags.
    static let rwf: Table = [
        (1, "RWF_HIPRI"), (2, "RWF_DSYNC"), (4, "RWF_SYNC"), (8, "RWF_NOWAIT"), (16, "RWF_APPEND"),
    ]

    static func needsMode(_ flags: UInt64) -> Bool { flags & 0o100 != 0 || flags & 0o20000000 != 0 }

    static let at: Table = [
        (0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
        (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"), (0x2000, "AT_STATX_FORCE_SYNC"),
        (0x4000, "AT_STATX_DONT_SYNC"), (0x8000, "AT_RECURSIVE"),
    ]

    /// statx's flags: the sync type first (0 is AT_STATX_SYNC_AS_STAT), then the AT_ flags.
    static func statxFlags(_ value: UInt64) -> String {
        let sync = ["AT_STATX_SYNC_AS_STAT", "AT_STATX_FORCE_SYNC", "AT_STATX_DONT_SYNC", "AT_STATX_SYNC_TYPE"]
        let rest = value & ~0x6000
        return sync[Int((value >> 13) & 3)] + (rest == 0 ? "" : "|" + bits(rest, at))
    }

    /// STATX_ALL and STATX_BASIC_STATS before the bits they stand for, as strace.
    static let statxMask: Table = [
        (0xfff, "STATX_ALL"), (0x7ff, "STATX_BASIC_STATS"), (0x1, "STATX_TYPE"), (0x2, "STATX_MODE"),
        (0x4, "STATX_NLINK"), (0x8, "STATX_UID"), (0x10, "STATX_GID"), (0x20, "STATX_ATIME"), (0x40, "STATX_MTIME"),
        (0x80, "STATX_CTIME"), (0x100, "STATX_INO"), (0x200, "STATX_SIZE"), (0x400, "STATX_BLOCKS"),
        (0x800, "STATX_BTIME"), (0x1000, "STATX_MNT_ID"), (0x2000, "STATX_DIOALIGN"), (0x4000, "STATX_MNT_ID_UNIQUE"),
        (0x8000, "STATX_SUBVOL"), (0x10000, "STATX_WRITE_ATOMIC"), (0x20000, "STATX_DIO_READ_ALIGN"),
    ]

    static let statxAttributes: Table = [
        (0x4, "STATX_ATTR_COMPRESSED"), (0x10, "STATX_ATTR_IMMUTABLE"), (0x20, "STATX_ATTR_APPEND"),
        (0x40, "STATX_ATTR_NODUMP"), (0x800, "STATX_ATTR_ENCRYPTED"), (0x1000, "STATX_ATTR_AUTOMOUNT"),
        (0x2000, "STATX_ATTR_MOUNT_ROOT"), (0x100000, "STATX_ATTR_VERITY"), (0x200000, "STATX_ATTR_DAX"),
        (0x400000, "STATX_ATTR_WRITE_ATOMIC"),
    ]

    static let access: Table = [(4, "R_OK"), (2, "W_OK"), (1, "X_OK")]

    static let seek: Table = [(0, "SEEK_SET"), (1, "SEEK_CUR"), (2, "SEEK_END"), (3, "SEEK_DATA"), (4, "SEEK_HOLE")]

    static let fcntl: Table = [
        (0, "F_DUPFD"), (1, "F_GETFD"), (2, "F_SETFD"), (3, "F_GETFL"), (4, "F_SETFL"), (5, "F_GETLK"),
        (6, "F_SETLK"), (7, "F_SETLKW"), (8, "F_SETOWN"), (9, "F_GETOWN"), (36, "F_OFD_GETLK"),
        (37, "F_OFD_SETLK"), (38, "F_OFD_SETLKW"), (1030, "F_DUPFD_CLOEXEC"), (1031, "F_SETPIPE_SZ"),
        (1032, "F_GETPIPE_SZ"), (1033, "F_ADD_SEALS"), (1034, "F_GET_SEALS"),
    ]

    static let ioctl: Table = [
        (0x5401, "TCGETS"), (0x5402, "TCSETS"), (0x5403, "TCSETSW"), (0x540F, "TIOCGPGRP"), (0x5410, "TIOCSPGRP"),
        (0x5413, "TIOCGWINSZ"), (0x5414, "TIOCSWINSZ"), (0x541B, "FIONREAD"), (0x5421, "FIONBIO"),
        (0x5450, "FIONCLEX"), (0x5451, "FIOCLEX"), (0x540E, "TIOCSCTTY"), (0x8912, "SIOCGIFCONF"),
        (0x8913, "SIOCGIFFLAGS"), (0x8914, "SIOCSIFFLAGS"), (0x8915, "SIOCGIFADDR"), (0x8916, "SIOCSIFADDR"),
        (0x8921, "SIOCGIFMTU"), (0x8933, "SIOCGIFINDEX"), (0x8004_5430, "TIOCGPTN"), (0x4004_5431, "TIOCSPTLCK"),
    ]

    // MARK: - mounts

    static let mount: Table = [
        (1, "MS_RDONLY"), (2, "MS_NOSUID"), (4, "MS_NODEV"), (8, "MS_NOEXEC"), (16, "MS_SYNCHRONOUS"),
        (32, "MS_REMOUNT"), (64, "MS_MANDLOCK"), (128, "MS_DIRSYNC"), (256, "MS_NOSYMFOLLOW"), (1024, "MS_NOATIME"),
        (2048, "MS_NODIRATIME"), (4096, "MS_BIND"), (8192, "MS_MOVE"), (16384, "MS_REC"), (32768, "MS_SILENT"),
        (1 << 16, "MS_POSIXACL"), (1 << 17, "MS_UNBINDABLE"), (1 << 18, "MS_PRIVATE"), (1 << 19, "MS_SLAVE"),
        (1 << 20, "MS_SHARED"), (1 << 21, "MS_RELATIME"), (1 << 22, "MS_KERNMOUNT"), (1 << 23, "MS_I_VERSION"),
        (1 << 24, "MS_STRICTATIME"), (1 << 25, "MS_LAZYTIME"),
    ]

    /// mount(2) flags; the old magic number in the high half prints as MS_MGC_VAL.
    static func mountFlags(_ value: UInt64) -> String {
        if value & 0xFFFF_0000 == 0xC0ED_0000 {
            let rest = value & 0xFFFF
            return rest == 0 ? "MS_MGC_VAL" : "MS_MGC_VAL|" + bits(rest, mount)
        }
        return bits(value, mount)
    }

    static let umount: Table = [(1, "MNT_FORCE"), (2, "MNT_DETACH"), (4, "MNT_EXPIRE"), (8, "UMOUNT_NOFOLLOW")]

    // MARK: - memory

    static let prot: Table = [
        (1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC"), (0x0100_0000, "PROT_GROWSDOWN"),
        (0x0200_0000, "PROT_GROWSUP"),
    ]

    static let mmap: Table = [
        (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x40, "MAP_32BIT"), (0x100, "MAP_GROWSDOWN"),
        (0x800, "MAP_DENYWRITE"), (0x1000, "MAP_EXECUTABLE"), (0x2000, "MAP_LOCKED"), (0x4000, "MAP_NORESERVE"),
        (0x8000, "MAP_POPULATE"), (0x10000, "MAP_NONBLOCK"), (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"),
        (0x80000, "MAP_SYNC"), (0x100000, "MAP_FIXED_NOREPLACE"),
    ]

    static func mmapFlags(_ value: UInt64) -> String {
        let type = ["0", "MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE"][Int(value & 3)]
        let rest = value & ~0xF
        return rest == 0 ? type : type + "|" + bits(rest, mmap)
    }

    // MARK: - processes and signals

    static let signals = [
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1",
        "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP",
        "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",
        "SIGIO", "SIGPWR", "SIGSYS",
    ]

    static func signal(_ value: UInt64) -> String {
        let n = Int(truncatingIfNeeded: value)
        if n >= 1 && n <= signals.count { return signals[n - 1] }
        if n == 32 { return "SIGRTMIN" }  // strace's names: SIGRTMIN, SIGRT_1 ... SIGRT_32
        if n > 32 && n <= 64 { return "SIGRT_\(n - 32)" }
        return String(Int64(bitPattern: value))
    }

    static let sigprocmaskHow: Table = [(0, "SIG_BLOCK"), (1, "SIG_UNBLOCK"), (2, "SIG_SETMASK")]

    static let wait: Table = [
        (1, "WNOHANG"), (2, "WUNTRACED"), (4, "WEXITED"), (8, "WCONTINUED"), (0x0100_0000, "WNOWAIT"),
        (0x2000_0000, "__WNOTHREAD"), (0x4000_0000, "__WALL"), (0x8000_0000, "__WCLONE"),
    ]

    static let prctl: Table = [
        (1, "PR_SET_PDEATHSIG"), (2, "PR_GET_PDEATHSIG"), (3, "PR_GET_DUMPABLE"), (4, "PR_SET_DUMPABLE"),
        (7, "PR_GET_KEEPCAPS"), (8, "PR_SET_KEEPCAPS"), (15, "PR_SET_NAME"), (16, "PR_GET_NAME"),
        (22, "PR_SET_SECCOMP"), (23, "PR_CAPBSET_READ"), (24, "PR_CAPBSET_DROP"), (27, "PR_GET_SECUREBITS"),
        (28, "PR_SET_SECUREBITS"), (35, "PR_SET_MM"), (36, "PR_SET_CHILD_SUBREAPER"),
        (37, "PR_GET_CHILD_SUBREAPER"), (38, "PR_SET_NO_NEW_PRIVS"), (39, "PR_GET_NO_NEW_PRIVS"),
        (47, "PR_CAP_AMBIENT"), (0x5356_4d41, "PR_SET_VMA"),
    ]

    // MARK: - sockets

    static let family: Table = [
        (0, "AF_UNSPEC"), (1, "AF_UNIX"), (2, "AF_INET"), (10, "AF_INET6"), (16, "AF_NETLINK"), (17, "AF_PACKET"),
    ]

    static func socketType(_ value: UInt64) -> String {
        let types: Table = [
            (1, "SOCK_STREAM"), (2, "SOCK_DGRAM"), (3, "SOCK_RAW"), (4, "SOCK_RDM"), (5, "SOCK_SEQPACKET"),
            (10, "SOCK_PACKET"),
        ]
        let base = Flags.value(value & 0xF, types)
        let rest = value & ~0xF
        return rest == 0 ? base : base + "|" + bits(rest, [(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")])
    }

    /// send/recv flags.
    static let msg: Table = [
        (0x1, "MSG_OOB"), (0x2, "MSG_PEEK"), (0x4, "MSG_DONTROUTE"), (0x8, "MSG_CTRUNC"), (0x20, "MSG_TRUNC"),
        (0x40, "MSG_DONTWAIT"), (0x80, "MSG_EOR"), (0x100, "MSG_WAITALL"), (0x4000, "MSG_NOSIGNAL"),
        (0x8000, "MSG_MORE"), (0x10000, "MSG_WAITFORONE"), (0x4000_0000, "MSG_CMSG_CLOEXEC"),
    ]

    static let netlink: Table = [
        (0, "NETLINK_ROUTE"), (4, "NETLINK_SOCK_DIAG"), (6, "NETLINK_XFRM"), (9, "NETLINK_AUDIT"),
        (12, "NETLINK_NETFILTER"), (15, "NETLINK_KOBJECT_UEVENT"), (16, "NETLINK_GENERIC"),
    ]
}
