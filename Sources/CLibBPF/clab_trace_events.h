// The records the BPF program (bpf/clab_trace.bpf.c) writes to its ring buffer and maps, shared
// with the Swift reader (Sources/ClabTrace). Fixed-width types only: one layout for both sides.
#ifndef CLAB_TRACE_EVENTS_H
#define CLAB_TRACE_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define CLAB_MAX_SYSCALLS 1024  // syscall numbers below this are traced (x86_64 uses < 500)
#define CLAB_MAX_PROCS 16384    // traced processes at once
#define CLAB_STR_SLOTS 4        // strings captured per syscall
#define CLAB_STR_MAX 256        // bytes per string slot (including the NUL)
#define CLAB_DATA_MAX 1280      // slot i at i * CLAB_STR_MAX; execve's argv packed from slot 1 on
#define CLAB_ARGV_MAX 32        // execve arguments captured
#define CLAB_SMALL_MAX 64       // bytes of a lone buffer argument (write's data, sethostname's name)
#define CLAB_NL_MAX 1024        // bytes of a netlink message buffer (a whole nftables batch of a few rules)

enum clab_event_kind {
    CLAB_EV_SYSCALL = 1,  // struct clab_syscall_event (+ struct clab_strings with CLAB_F_STRINGS)
    CLAB_EV_FORK = 2,     // struct clab_proc_event: a traced task made a process or a thread
    CLAB_EV_EXEC = 3,     // struct clab_proc_event: a traced process executed a new program
    CLAB_EV_EXIT = 4,     // struct clab_proc_event: the last thread of a traced process exited
                          // (with CLAB_F_THREAD: another thread of it; `tid` is that thread)
    CLAB_EV_OOM = 5,      // struct clab_proc_event: the OOM killer chose a traced process (oom:mark_victim)
    CLAB_EV_CGROUP = 6,   // struct clab_cgroup_event: a traced task moved into a cgroup
    CLAB_EV_LONGSTR = 7,  // struct clab_longstr_event: a string slot's whole text (longer than a slot)
    CLAB_EV_SIGNAL = 8,   // struct clab_signal_event: a signal delivered to a traced thread
    CLAB_EV_LOST = 9,     // struct clab_lost_event: records dropped (ring buffer full) just before this one
    CLAB_EV_FDS = 10,     // struct clab_fds_event: what the fds a call made are (pipe:[inode], socket:[inode])
    CLAB_EV_IOV = 11,     // struct clab_iov_event: readv/writev's iovecs, sendmsg/recvmsg's msghdr
    CLAB_EV_BLOB = 12,    // struct clab_blob_event: a struct larger than a string slot (statx, uname)
    CLAB_EV_CMSG = 13,    // struct clab_cmsg_event: sendmsg/recvmsg's control messages (msg_control)
    CLAB_EV_MARK = 14,    // struct clab_mark_event: a traced task called clab_mark (its stage)
};

enum clab_event_flags {
    CLAB_F_NORETURN = 1,    // exit/exit_group: reported at entry, there is no return
    CLAB_F_UNFINISHED = 2,  // the thread died inside the syscall (killed while blocked)
    CLAB_F_STRINGS = 4,     // a struct clab_strings follows
    CLAB_F_ARGV_MORE = 8,   // execve: argv had more than CLAB_ARGV_MAX entries or bytes
    CLAB_F_THREAD = 16,     // fork: the child is a thread of the parent's process
    CLAB_F_SMALL = 32,      // a struct clab_small_data follows (one short buffer)
    CLAB_F_NETLINK = 64,    // a struct clab_netlink_data follows (sendto/recvfrom/sendmsg/recvmsg on netlink)
    CLAB_F_COMPAT = 128,    // a 32-bit call (int $0x80, sysenter): `nr` is from the i386 table
    CLAB_F_ARGV_FAULT = 256,  // execve: argv could not be read (not paged in): show the pointer
    CLAB_F_ARGV_EXEC = 512,   // execve: argv read from the new program's stack at sched_process_exec
    CLAB_F_X32 = 1024,        // an x32 call (syscall with __X32_SYSCALL_BIT): `nr` without the bit
};

// Which arguments to capture, one byte per string slot, written by the reader into the
// `capture` map (indexed by syscall number). Zero: nothing to capture. A spec with only slot 0,
// a buffer with a length (write, sethostname), makes a small record: the first CLAB_SMALL_MAX
// bytes in a struct clab_small_data instead of a struct clab_strings.
//   bits 0-2  argument index + 1 holding the user pointer (0: slot unused)
//   bits 3-5  0: a NUL-terminated string; 1-6: argument index + 1 holding the length;
//             7: the return value is the length (read's buffer)
//   bit 6     with bits 3-5 zero: the pointer is an argv array, strings packed NUL-separated
//             from slot 1 on; with bits 3-5 nonzero: a fixed-size struct of (bits 3-5) * 8
//             bytes (capset's header and data, seccomp's struct sock_fprog, a struct rlimit64)
//   bit 7     capture at entry (execve: the memory is gone once it returns)
#define CLAB_CAP_ARG(i) ((__u8)((i) + 1))
#define CLAB_CAP_LEN_ARG(i) ((__u8)(((i) + 1) << 3))
#define CLAB_CAP_LEN_RET ((__u8)(7 << 3))
#define CLAB_CAP_ARGV ((__u8)0x40)
#define CLAB_CAP_STRUCT(words) ((__u8)(0x40 | ((words) << 3)))
#define CLAB_CAP_AT_ENTRY ((__u8)0x80)

struct clab_syscall_event {
    __u16 kind;   // CLAB_EV_SYSCALL
    __u16 flags;  // enum clab_event_flags
    __s32 nr;     // syscall number (x86_64)
    __u32 pid;    // process (tgid), host pid namespace
    __u32 tid;    // thread, host pid namespace
    __u64 ts;     // entry, CLOCK_MONOTONIC ns
    __u64 dur;    // entry to return, ns
    __s64 ret;    // return value; -4095..-1 is -errno
    __u64 args[6];
};

struct clab_strings {
    __u16 len[CLAB_STR_SLOTS];  // bytes captured per slot (strings: with their NUL); 0: none
    __u16 argc;                 // execve: arguments captured in argv
    __u16 argv_len;             // execve: bytes of packed argv
    __u32 pad;                  // the kernel side's own use: slots whose string filled the slot
    char data[CLAB_DATA_MAX];
};

struct clab_syscall_strings_event {
    struct clab_syscall_event ev;
    struct clab_strings s;
};

struct clab_small_data {
    __u16 len;  // bytes captured
    __u16 pad[3];
    char data[CLAB_SMALL_MAX];
};

// A string argument that filled its slot (CLAB_STR_MAX bytes with the NUL) read again up to
// CLAB_LONGSTR_MAX, written just before its syscall's record (same tid): paths up to PATH_MAX are
// shown whole, and one of exactly 255 bytes is not mistaken for a cut one.
#define CLAB_LONGSTR_MAX 4096
struct clab_longstr_event {
    __u16 kind;  // CLAB_EV_LONGSTR
    __u16 slot;  // the string slot it replaces
    __u32 tid;
    __u32 len;   // bytes with the NUL (CLAB_LONGSTR_MAX: cut there)
    __u32 pad;
    char data[CLAB_LONGSTR_MAX];
};

// signal:signal_deliver for a traced thread: strace's `--- SIGCHLD {si_signo=...} ---`.
#define CLAB_SIG_IGNORED 1  // clab_signal_event.flags: discarded as ignored (see clab_pending.ign_sig)
#define CLAB_SIG_FATAL 2    // clab_signal_event.flags: ended the process without a delivery
struct clab_signal_event {
    __u16 kind;  // CLAB_EV_SIGNAL
    __u16 flags;  // CLAB_SIG_IGNORED
    __u32 pid;
    __u32 tid;
    __s32 sig;
    __u64 ts;
    __u8 info[48];  // the kernel_siginfo (the x86_64 siginfo_t's first 48 bytes)
};

// pipe, pipe2, socketpair, socket, accept and accept4 that succeeded: the inode behind each fd
// they made, read from the fd table at the return (strace -y's `3<pipe:[4242]>`), written just
// before its syscall's record (same tid). An fd whose file could not be read has mode 0.
struct clab_fds_event {
    __u16 kind;   // CLAB_EV_FDS
    __u16 count;  // fds described (1 or 2)
    __u32 tid;
    __s32 fd[2];
    __u32 mode[2];  // the inode's i_mode (S_IFIFO, S_IFSOCK); 0: unknown
    __u64 ino[2];
};

// readv, writev, preadv, pwritev, preadv2, pwritev2, and sendmsg/recvmsg on sockets other than
// netlink: the iovec array (and the struct user_msghdr) read at the return, written just before
// the call's record (same tid). A read's buffers hold what the call returned, in order.
#define CLAB_IOV_MAX 8    // iovecs read
#define CLAB_IOV_DATA 64  // bytes read of each (strace -s 64)
#define CLAB_IOV_NAME 112 // bytes of msg_name read (a struct sockaddr_un is 110)
struct clab_iov_event {
    __u16 kind;   // CLAB_EV_IOV
    __u16 count;  // iovecs read (fewer than iovlen: the rest not read)
    __u32 tid;
    __s32 nr;     // the syscall it belongs to
    __u32 flags;  // 1: the msghdr was read (sendmsg/recvmsg)
    __u64 iovlen; // the call's iovcnt, or msg_iovlen
    __u8 msghdr[56];  // struct user_msghdr (x86_64)
    __u32 name_len;   // bytes read of msg_name
    __u32 pad;
    __u8 name[CLAB_IOV_NAME];
    __u64 base[CLAB_IOV_MAX];
    __u64 len[CLAB_IOV_MAX];
    __u16 got[CLAB_IOV_MAX];  // bytes read from each buffer
    __u8 data[CLAB_IOV_MAX][CLAB_IOV_DATA];
};

// A struct a call filled that is larger than a capture slot holds, read at a successful return
// (uname's first two fields, sysinfo, statx), written just before the call's record (same tid).
#define CLAB_BLOB_MAX 256
struct clab_blob_event {
    __u16 kind;  // CLAB_EV_BLOB
    __u16 len;   // bytes read
    __u32 tid;
    __s32 nr;    // the syscall it belongs to
    __u32 pad;
    __u8 data[CLAB_BLOB_MAX];
};

// sendmsg and recvmsg (a successful one) with a control buffer, on sockets other than netlink:
// msg_control's first CLAB_CMSG_MAX bytes, read at the return (a receive's are filled by then;
// the kernel does not change a send's), written just before the call's record (same tid), after
// its iovec record. When the first message is SCM_RIGHTS, what its first CLAB_CMSG_FDS fds are,
// read from the caller's fd table at the return (a receiver's new fds are installed by then), as
// struct clab_fds_event has them: strace -y names them.
#define CLAB_CMSG_MAX 256
#define CLAB_CMSG_FDS 8
struct clab_cmsg_event {
    __u16 kind;  // CLAB_EV_CMSG
    __u16 len;   // bytes read of the control buffer
    __u32 tid;
    __s32 nr;    // the syscall it belongs to
    __u32 nfds;  // fds described in mode and ino
    __u64 controllen;  // msg_controllen (a receive's: what the kernel filled)
    __u32 mode[CLAB_CMSG_FDS];  // the inode's i_mode; 0: unknown
    __u64 ino[CLAB_CMSG_FDS];
    __u8 data[CLAB_CMSG_MAX];
};

struct clab_syscall_small_event {
    struct clab_syscall_event ev;
    struct clab_small_data d;
};

// sendto, recvfrom, sendmsg and recvmsg on an AF_NETLINK socket: the messages themselves, read
// at the return (a receive's buffer is filled by then), in place of the usual capture.
struct clab_netlink_data {
    __u32 len;       // bytes captured in data
    __u32 buf_len;   // the buffer's length: sendto/recvfrom's len, or the first iovec's iov_len
    __u64 base;      // the buffer's address (shown when nothing could be read)
    __u64 iovlen;    // sendmsg/recvmsg: msg_iovlen (only the first iovec is read)
    __u16 protocol;  // the socket's netlink protocol: NETLINK_ROUTE (0), NETLINK_NETFILTER (12), ...
    __u16 addr_len;  // bytes in addr: sendto's dest_addr or sendmsg's msg_name (0: none)
    __u32 pad;
    __u8 addr[16];   // struct sockaddr_nl (12 bytes)
    char data[CLAB_NL_MAX];
};

struct clab_syscall_netlink_event {
    struct clab_syscall_event ev;
    struct clab_netlink_data nl;
};

struct clab_proc_event {
    __u16 kind;     // CLAB_EV_FORK, CLAB_EV_EXEC or CLAB_EV_EXIT
    __u16 flags;    // CLAB_F_THREAD
    __u32 pid;      // fork: the parent's tgid; exec/exit: the process
    __u32 tid;      // fork: the parent thread; exec: the thread that executed (now tid == pid)
    __u32 child_pid;  // fork: the child's tgid; exec: the thread id before exec
    __u32 child_tid;  // fork: the child's thread id
    __u32 ns_pid;     // fork: the child's pid in its own (innermost) pid namespace; exec: the process's
    __s32 exit_code;  // exit: wait status (code << 8, or the signal)
    __u32 ns_level;   // pid namespace depth (0: the host's)
    __u64 ts;
    char comm[16];
};

// A call of clab_mark(mark) (a uprobe) by clab-init, clab or its cloned child, written between
// the task's syscall records: the stage its next calls are the work of. `mark` is a ClabSpec
// StageMark's value.
struct clab_mark_event {
    __u16 kind;  // CLAB_EV_MARK
    __u16 flags;
    __u32 pid;
    __u32 tid;
    __s32 mark;
    __u64 ts;
};

struct clab_cgroup_event {
    __u16 kind;  // CLAB_EV_CGROUP
    __u16 flags;
    __u32 pid;        // the task's tgid
    __u32 tid;        // the task
    __u32 hierarchy;  // the cgroup hierarchy's id (v1: one per controller set; v2: the unified one)
    __u64 ts;
    char path[CLAB_STR_MAX];  // the cgroup's path within its hierarchy
};

// Records the ring buffer had no room for since the last such record: written before the next
// record that fits, so the reader shows the gap where it happened.
struct clab_lost_event {
    __u16 kind;  // CLAB_EV_LOST
    __u16 flags;
    __u32 pad;
    __u64 count;    // records dropped
    __u64 first_ts;  // the first drop, CLOCK_MONOTONIC ns
    __u64 last_ts;   // the last drop
};

// Count-only mode: per syscall number, summed over CPUs by the reader. The `stats` map has
// 3 * CLAB_MAX_SYSCALLS entries: a 32-bit call (int $0x80) is counted at CLAB_MAX_SYSCALLS plus
// its i386 number, an x32 call at 2 * CLAB_MAX_SYSCALLS plus its number without the x32 bit,
// never under the x86_64 call that has the same number.
#define CLAB_STATS_ENTRIES (3 * CLAB_MAX_SYSCALLS)
struct clab_syscall_stat {
    __u64 count;
    __u64 errors;
    __u64 ns;
};

// Per-thread state, in task-local storage (the `inflight` map): whether the thread is traced
// and the syscall it is in. The reader creates it for the roots it follows (keyed by a pidfd);
// the program creates it for every thread and process a traced one forks.
enum clab_trace_state {
    CLAB_UNTRACED = 0,
    CLAB_TRACED = 1,
    CLAB_ARMED = 2,  // a root the reader spawned: traced from its execve on
};

struct clab_pending {
    __u32 state;  // enum clab_trace_state
    __s32 nr;     // the syscall in flight, -1: none
    __u64 ts;     // its entry time
    __u64 args[6];
    __u32 flags;  // CLAB_CAP_AT_ENTRY | CLAB_F_ARGV_MORE when `s` was filled at entry; CLAB_F_X32
    __u16 abi;    // CLAB_F_COMPAT for a 32-bit call
    __u16 held;   // 1: returned ERESTART*, its record waits (see sys_exit_events)
    __s64 held_ret;
    __u64 held_dur;
    // A signal the kernel discarded as ignored (SIGCHLD at SIG_DFL), set by whoever sent it:
    // strace's ptrace makes the kernel queue such a signal and shows it at the thread's next
    // return to user space, so it is written there (after the call in flight, or before the
    // next one). Or (ign_fatal 1) a fatal signal without a handler, which the kernel turns into
    // a group exit at once (strace's ptrace sees it delivered): written before the thread ends.
    // 0: none.
    __s32 ign_sig;
    __u32 ign_fatal;
    __u8 ign_info[48];
    struct clab_strings s;
};

// The program's settings, its .bss section: written by the reader after load.
struct clab_config {
    __u32 emit_proc;   // 1: write fork/exec/exit records (events mode)
    __u32 pad;
    __u64 wake_bytes;  // wake the reader each time this much more is waiting (a power of two)
    // Written by the program: drops not yet reported by a CLAB_EV_LOST record (the reader
    // reports what is left at the end), and the times of the first and last of them.
    __u64 lost_pending;
    __u64 lost_first_ts;
    __u64 lost_last_ts;
};

// Per-CPU counters.
struct clab_counters {
    __u64 drops;     // records lost: the ring buffer was full
    __u64 captured;  // records written
};

#endif
