extension SeccompProfile {
    /// Docker's default profile (default.json of moby/profiles/seccomp v0.2.3, as vendored by
    /// moby's master at b985e23), transcribed rule for rule: an allowlist, EPERM
    /// (errnoRet 1) for everything else, and the rules that depend on the architecture, the
    /// kernel and the capabilities the container keeps. Notable choices it makes:
    /// - `clone` only without namespace flags (mask 0x7E020000) unless CAP_SYS_ADMIN is kept;
    ///   `clone3` (whose flags sit in memory a filter cannot read) gets ENOSYS, so glibc falls
    ///   back to `clone`, whose flags it can check.
    /// - `socket` for every family but AF_VSOCK (40); `personality` only for the five harmless
    ///   personas.
    /// - mount, unshare, setns, bpf, ptrace, module loading, reboot, kexec, … only with the
    ///   capability the kernel would check anyway (defence in depth: a kernel bug behind one of
    ///   them is out of reach without it).
    public static let dockerDefault = SeccompProfile(
        defaultAction: .errno,
        defaultErrnoRet: 1,
        archMap: [
            SeccompArchMap("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            SeccompArchMap("SCMP_ARCH_AARCH64", ["SCMP_ARCH_ARM"]),
            SeccompArchMap("SCMP_ARCH_MIPS64", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"]),
            SeccompArchMap("SCMP_ARCH_MIPS64N32", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"]),
            SeccompArchMap("SCMP_ARCH_MIPSEL64", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"]),
            SeccompArchMap("SCMP_ARCH_MIPSEL64N32", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"]),
            SeccompArchMap("SCMP_ARCH_S390X", ["SCMP_ARCH_S390"]),
            SeccompArchMap("SCMP_ARCH_RISCV64"),
            SeccompArchMap("SCMP_ARCH_LOONGARCH64"),
        ],
        syscalls: [
            SeccompRule(
                [
                    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset",
                    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
                    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
                    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
                    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
                    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
                    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
                    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
                    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
                    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
                    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake",
                    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
                    "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername",
                    "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32",
                    "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
                    "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
                    "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
                    "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
                    "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule",
                    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
                    "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek",
                    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack",
                    "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat",
                    "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify",
                    "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
                    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
                    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
                    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
                    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
                    "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
                    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
                    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename",
                    "renameat", "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction",
                    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
                    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
                    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
                    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
                    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
                    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64",
                    "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
                    "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
                    "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
                    "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address",
                    "setuid", "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
                    "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
                    "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
                    "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
                    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
                    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
                    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
                    "unlink", "unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes", "vfork",
                    "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
                ],
                .allow),
            SeccompRule(
                [
                    "process_vm_readv", "process_vm_writev", "ptrace",
                ],
                .allow,
                includes: SeccompCondition(minKernel: SeccompKernelVersion(4, 8))),
            SeccompRule(
                [
                    "socket"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 38, op: .lessThan)]),
            SeccompRule(
                [
                    "socket"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 39, op: .equal)]),
            SeccompRule(
                [
                    "socket"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 40, op: .greaterThan)]),
            SeccompRule(
                [
                    "personality"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 0, op: .equal)]),
            SeccompRule(
                [
                    "personality"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 8, op: .equal)]),
            SeccompRule(
                [
                    "personality"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 131072, op: .equal)]),
            SeccompRule(
                [
                    "personality"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 131080, op: .equal)]),
            SeccompRule(
                [
                    "personality"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 4_294_967_295, op: .equal)]),
            SeccompRule(
                [
                    "sync_file_range2", "swapcontext",
                ],
                .allow,
                includes: SeccompCondition(arches: ["ppc64le"])),
            SeccompRule(
                [
                    "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                    "set_tls",
                ],
                .allow,
                includes: SeccompCondition(arches: ["arm", "arm64"])),
            SeccompRule(
                [
                    "arch_prctl"
                ],
                .allow,
                includes: SeccompCondition(arches: ["amd64", "x32"])),
            SeccompRule(
                [
                    "modify_ldt"
                ],
                .allow,
                includes: SeccompCondition(arches: ["amd64", "x32", "x86"])),
            SeccompRule(
                [
                    "s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr",
                ],
                .allow,
                includes: SeccompCondition(arches: ["s390", "s390x"])),
            SeccompRule(
                [
                    "riscv_flush_icache"
                ],
                .allow,
                includes: SeccompCondition(arches: ["riscv64"])),
            SeccompRule(
                [
                    "open_by_handle_at"
                ],
                .allow,
                includes: SeccompCondition(caps: [.dacReadSearch])),
            SeccompRule(
                [
                    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                    "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
                    "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
                    "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysAdmin])),
            SeccompRule(
                [
                    "clone"
                ],
                .allow,
                args: [SeccompArg(index: 0, value: 2_114_060_288, op: .maskedEqual)],
                excludes: SeccompCondition(caps: [.sysAdmin], arches: ["s390", "s390x"])),
            SeccompRule(
                [
                    "clone"
                ],
                .allow,
                args: [SeccompArg(index: 1, value: 2_114_060_288, op: .maskedEqual)],
                comment: "s390 parameter ordering for clone is different",
                includes: SeccompCondition(arches: ["s390", "s390x"]),
                excludes: SeccompCondition(caps: [.sysAdmin])),
            SeccompRule(
                [
                    "clone3"
                ],
                .errno,
                errnoRet: 38,
                excludes: SeccompCondition(caps: [.sysAdmin])),
            SeccompRule(
                [
                    "reboot"
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysBoot])),
            SeccompRule(
                [
                    "chroot"
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysChroot])),
            SeccompRule(
                [
                    "delete_module", "init_module", "finit_module",
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysModule])),
            SeccompRule(
                [
                    "acct"
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysPacct])),
            SeccompRule(
                [
                    "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysPtrace])),
            SeccompRule(
                [
                    "iopl", "ioperm",
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysRawio])),
            SeccompRule(
                [
                    "settimeofday", "stime", "clock_settime", "clock_settime64",
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysTime])),
            SeccompRule(
                [
                    "vhangup"
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysTtyConfig])),
            SeccompRule(
                [
                    "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node",
                ],
                .allow,
                includes: SeccompCondition(caps: [.sysNice])),
            SeccompRule(
                [
                    "syslog"
                ],
                .allow,
                includes: SeccompCondition(caps: [.syslog])),
            SeccompRule(
                [
                    "bpf"
                ],
                .allow,
                includes: SeccompCondition(caps: [.bpf])),
            SeccompRule(
                [
                    "perf_event_open"
                ],
                .allow,
                includes: SeccompCondition(caps: [.perfmon])),
        ])
}
