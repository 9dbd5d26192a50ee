// The x32 ABI's numbering (the `syscall` instruction with __X32_SYSCALL_BIT, 0x40000000, set),
// from the kernel's arch/x86/entry/syscalls/syscall_64.tbl. Both lists are frozen there: the
// 512-547 range takes no new calls, and every call added since is "common" (the same number and
// handler for x86_64 and x32). Debian's <asm/unistd_x32.h> is older than the running kernels,
// so this is written out rather than generated from it.

extension SyscallTable {
    /// x32's own calls, by number without the bit: 32-bit pointers and compat structs.
    static let x32Names: [Int: String] = [
        512: "rt_sigaction", 513: "rt_sigreturn", 514: "ioctl", 515: "readv", 516: "writev", 517: "recvfrom",
        518: "sendmsg", 519: "recvmsg", 520: "execve", 521: "ptrace", 522: "rt_sigpending",
        523: "rt_sigtimedwait", 524: "rt_sigqueueinfo", 525: "sigaltstack", 526: "timer_create",
        527: "mq_notify", 528: "kexec_load", 529: "waitid", 530: "set_robust_list", 531: "get_robust_list",
        532: "vmsplice", 533: "move_pages", 534: "preadv", 535: "pwritev", 536: "rt_tgsigqueueinfo",
        537: "recvmmsg", 538: "sendmmsg", 539: "process_vm_readv", 540: "process_vm_writev",
        541: "setsockopt", 542: "getsockopt", 543: "io_setup", 544: "io_submit", 545: "execveat",
        546: "preadv2", 547: "pwritev2",
    ]

    /// The x86_64 numbers below 512 whose ABI is "64": an x32 process gets ENOSYS from them
    /// (strace names them `rt_sigaction#64`). Every other x86_64 number is x32's too.
    static let x32Excluded: Set<Int> = [
        13, 15, 16, 19, 20, 45, 46, 47, 54, 55, 59, 101, 127, 128, 129, 131, 134, 156, 174, 177, 178, 180,
        205, 206, 209, 211, 214, 215, 222, 236, 244, 246, 247, 273, 274, 278, 279, 295, 296, 297, 299,
        307, 310, 311, 322, 327, 328,
    ]
}
