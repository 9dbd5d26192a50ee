// SPDX-License-Identifier: GPL-2.0
// clab's syscall tracer, the kernel half. Sources/ClabTrace loads it with libbpf and reads what
// it writes; the record layouts are in Sources/CLibBPF/clab_trace_events.h.
//
// What it does:
// - follows a process tree. `tracked` holds the tgids being traced: the reader inserts the
//   roots before they run, a fork by a traced process adds the child, the exit of its last
//   thread removes it (and the reader knows the tree is done when it is empty). Filtering by
//   cgroup would miss the setup syscalls before a container joins one.
//   Each traced thread also carries the mark in its task-local storage (`inflight`), set by
//   the reader for the roots and here at every fork: the syscall hooks run for every syscall of
//   every process on the machine, and a task-storage lookup (a pointer in the task) costs far
//   less there than hashing the tgid.
// - pairs each syscall's entry and return per thread, in the kernel: the entry (number, args,
//   time) waits in that same task-local storage, the return completes it into one record.
//   A call seccomp refused never reaches sys_enter: its return alone makes its record.
// - events mode (sys_enter_events/sys_exit_events): one record per syscall in the `events` ring
//   buffer, with the strings the reader asked for (the `capture` map); records that do not fit
//   are counted per CPU in `counters` and reported in the stream by a CLAB_EV_LOST record before
//   the next one that fits, never silently lost.
// - netlink messages (events mode): sendto/recvfrom/sendmsg/recvmsg on an AF_NETLINK socket
//   carry the messages (the first CLAB_NL_MAX bytes of the buffer, or of the first iovec), so
//   the reader can decode RTM_NEWLINK{ifname="veth0", kind="veth"} and nftables batches. Whether
//   an fd is a netlink socket is read from the fd table at the call's return, not remembered
//   from socket(): an fd inherited, dup'ed, received over a unix socket or opened before the
//   trace started is classified as surely as one seen being made, and nothing goes stale when
//   fds are closed and reused. Only those four syscalls pay for the look-up; write() is left
//   out on purpose: it is every traced program's hot path (the overhead targets are measured
//   on it), and netlink users (iproute2, libmnl/libnftables, libnl) send with sendto/sendmsg.
// - kernel events that teach (events mode): the OOM killer choosing a traced process
//   (oom:mark_victim) and a traced task moving into a cgroup (cgroup:cgroup_attach_task).
// - stage markers (events mode): a uprobe on clab_mark, which the reader attaches to the
//   clab-init and clab executables for `clab trace --step`, writes the marker a traced task
//   passes (CLAB_EV_MARK), in the stream between its syscalls: the stage its next calls are.
// - count mode (sys_enter_count/sys_exit_count): per-syscall count, errors and time in the
//   per-CPU `stats` map, no records at all (`clab trace --summary`).
// The syscall hooks come in two sets with the same code (see enter_events below): fentry/fexit
// trampolines on the kernel's syscall dispatch (x64_sys_call, ia32_sys_call), loaded where the
// kernel has them, and the raw_syscalls tracepoints as the fallback. The other programs attach as
// tp_btf (BTF-typed raw tracepoints): far cheaper than classic tracepoints, and their arguments
// are typed kernel pointers, read directly (CO-RE relocated through vmlinux.h's
// preserve_access_index), without a helper call per field.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "clab_trace_events.h"

char LICENSE[] SEC("license") = "GPL";

#define NR_EXIT 60
#define NR_EXIT_GROUP 231
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_RT_SIGRETURN 15
// rt_sigreturn finds its struct rt_sigframe at the stack pointer (the handler's `ret` popped
// pretcode): the ucontext's uc_sigmask is 8 + 8 + 24 (uc_flags, uc_link, uc_stack) + 256
// (struct sigcontext) bytes in, where strace reads it too.
#define RT_SIGFRAME_MASK 296
#define TRACE_SIGNAL_DELIVERED 0
#define TRACE_SIGNAL_IGNORED 1
#define SIGNAL_GROUP_EXIT 0x00000004  // signal_struct.flags: a group exit is under way

#define NR_I386_EXIT 1
#define NR_I386_EXIT_GROUP 252
#define TS_COMPAT 0x0002  // thread_info.status: a 32-bit syscall is active (arch/x86)
#define X32_SYSCALL_BIT 0x40000000  // an x32 call's number (the syscall instruction, x32 ABI)
#define SIGKILL 9

#define AF_NETLINK 16
#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, CLAB_MAX_PROCS);
    __type(key, __u32);
    __type(value, __u32);
} tracked SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct clab_pending);
} inflight SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 8 << 20);  // the reader sets --buffer before load
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, CLAB_MAX_SYSCALLS);
    __type(key, __u32);
    __type(value, __u32);
} capture SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, CLAB_STATS_ENTRIES);
    __type(key, __u32);
    __type(value, struct clab_syscall_stat);
} stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct clab_counters);
} counters SEC(".maps");

// The only global: the .bss map the reader writes after load.
struct clab_config clab_cfg;

static __always_inline void count_drop(void) {
    __u32 zero = 0;
    struct clab_counters *c = bpf_map_lookup_elem(&counters, &zero);
    if (c) c->drops++;
    __u64 now = bpf_ktime_get_ns();
    if (__sync_fetch_and_add(&clab_cfg.lost_pending, 1) == 0) clab_cfg.lost_first_ts = now;
    clab_cfg.lost_last_ts = now;
}

// Before a record: if records were dropped since the last report, a CLAB_EV_LOST record says
// how many, in the stream where the gap is. One load of a global when nothing was lost. A global
// function, like emit_syscall: verified once, not at each place a record is written.
__noinline int report_lost(void) {
    if (!clab_cfg.lost_pending) return 0;
    __u64 n = __sync_lock_test_and_set(&clab_cfg.lost_pending, 0);
    if (!n) return 0;
    struct clab_lost_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        // Still full: the drops stay pending (the one about to be made adds to them).
        __sync_fetch_and_add(&clab_cfg.lost_pending, n);
        return 0;
    }
    e->kind = CLAB_EV_LOST;
    e->flags = 0;
    e->pad = 0;
    e->count = n;
    e->first_ts = clab_cfg.lost_first_ts;
    e->last_ts = clab_cfg.lost_last_ts;
    bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

// Wake the reader when the waiting data crosses a multiple of wake_bytes: a wakeup per record
// would cost more than the record (and, with the reader behind, every record would ask for
// one). The reader also polls on a short timeout, so nothing waits long. `size`: the record
// just reserved (plus its 8-byte header), already counted in the waiting data. wake_bytes is a
// power of two (a sixteenth of the ring, itself one), so "crossed a multiple" is a mask, not two
// 64-bit divisions on every record; 0 wakes on every record.
static __always_inline __u64 wake_flags(__u64 size) {
    __u64 waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
    __u64 mask = ~(clab_cfg.wake_bytes ? clab_cfg.wake_bytes - 1 : 0);
    __u64 before = waiting > size + 8 ? waiting - size - 8 : 0;
    return (waiting & mask) != (before & mask) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

// The current thread's slot, if it has one. Every syscall of every process on the machine comes
// through here: a task no trace ever marked has no task-local storage at all, and one load of
// task->bpf_storage says so, before any helper call or map lookup (bench/trace.sh measures what
// is left for untraced processes).
static __always_inline struct clab_pending *slot_of_current(void) {
    struct task_struct *t = bpf_get_current_task_btf();
    if (!t->bpf_storage) return 0;
    return bpf_task_storage_get(&inflight, t, 0, 0);
}

// Task `t`'s slot if it is traced (t: the current task). An armed root becomes traced at its
// execve.
static __always_inline struct clab_pending *traced_task(struct task_struct *t, long id) {
    if (!t->bpf_storage) return 0;
    struct clab_pending *p = bpf_task_storage_get(&inflight, t, 0, 0);
    if (!p || p->state == CLAB_UNTRACED) return 0;
    if (p->state == CLAB_ARMED) {
        if (id != NR_EXECVE && id != NR_EXECVEAT) return 0;
        p->state = CLAB_TRACED;
    }
    return p;
}

static __always_inline struct clab_pending *traced_current(long id) {
    return traced_task(bpf_get_current_task_btf(), id);
}

static __always_inline __u32 capture_spec(__s32 nr) {
    __u32 key = (__u32)nr;
    __u32 *spec = bpf_map_lookup_elem(&capture, &key);
    return spec ? *spec : 0;
}

// A string that filled its slot, read again whole (up to PATH_MAX) into a record of its own that
// goes just before its syscall's. Only long strings pay for it. A global function: the verifier
// checks it once, not at every place a record is written (that made loading 4x slower).
__noinline int emit_longstr(int slot, __u64 addr) {
    const void *src = (const void *)addr;
    report_lost();
    struct clab_longstr_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    e->kind = CLAB_EV_LONGSTR;
    e->slot = slot;
    e->tid = (__u32)bpf_get_current_pid_tgid();
    e->pad = 0;
    long n = bpf_probe_read_user_str(e->data, CLAB_LONGSTR_MAX, src);
    if (n <= 0) {
        bpf_ringbuf_discard(e, 0);
        return 0;
    }
    e->len = n;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

// One slot: a user string or buffer into s->data[slot]. `spec` is the slot's byte (see
// clab_trace_events.h).
static __always_inline int read_slot(struct clab_strings *s, int slot, __u8 spec, const __u64 *args, long ret) {
    __u32 a = spec & 7;
    if (a == 0 || a > 6) return 0;
    const void *src = (const void *)args[a - 1];
    char *dst = &s->data[slot * CLAB_STR_MAX];
    __u32 l = (spec >> 3) & 7;
    if (l == 0) {
        long n = bpf_probe_read_user_str(dst, CLAB_STR_MAX, src);
        s->len[slot] = n > 0 ? n : 0;
        return n == CLAB_STR_MAX;  // filled the slot: the caller writes it whole (emit_longstrs)
    }
    __s64 n = spec & CLAB_CAP_ARGV ? l * 8 : l == 7 ? ret : (l <= 6 ? (__s64)args[l - 1] : 0);
    if (n < 0) n = 0;
    if (n > CLAB_STR_MAX) n = CLAB_STR_MAX;
    if (bpf_probe_read_user(dst, n, src) < 0) n = 0;
    s->len[slot] = n;
    return 0;
}

// The long-string records for the slots in `mask` (bit i: slot i filled up).
static __always_inline void emit_longstrs(__u32 mask, __u32 spec, const __u64 *args) {
    for (int slot = 0; slot < CLAB_STR_SLOTS; slot++) {
        __u32 a = (spec >> (slot * 8)) & 7;
        if ((mask & (1u << slot)) && a >= 1 && a <= 6) emit_longstr(slot, args[a - 1]);
    }
}

// execve's argv: up to CLAB_ARGV_MAX strings packed NUL-separated from slot 1 to the end.
static __always_inline __u32 read_argv(struct clab_strings *s, const char *const *argv) {
    __u32 off = 0, flags = 0;
    s->argc = 0;
    for (int i = 0; i < CLAB_ARGV_MAX; i++) {
        const char *p = 0;
        // Unreadable (not paged in yet, as after a vfork) is not the end of argv: say so.
        if (bpf_probe_read_user(&p, sizeof(p), &argv[i]) < 0) {
            flags = CLAB_F_ARGV_FAULT;
            goto done;
        }
        if (!p) goto done;
        if (off > CLAB_DATA_MAX - 2 * CLAB_STR_MAX) {
            flags = CLAB_F_ARGV_MORE;
            goto done;
        }
        long n = bpf_probe_read_user_str(&s->data[CLAB_STR_MAX + off], CLAB_STR_MAX, p);
        if (n <= 0) {
            flags = CLAB_F_ARGV_FAULT;
            goto done;
        }
        off += n;
        s->argc++;
    }
    flags = CLAB_F_ARGV_MORE;
done:
    s->argv_len = off;
    return flags;
}

// Fills the strings of one syscall; returns extra flags. s->pad: the string slots that filled up
// (kept in memory, not in a register: the verifier would explore each combination).
static __always_inline __u32 read_strings(struct clab_strings *s, __u32 spec, const __u64 *args, long ret) {
    __u32 flags = 0;
    s->len[0] = s->len[1] = s->len[2] = s->len[3] = 0;
    s->argc = 0;
    s->argv_len = 0;
    s->pad = 0;
    for (int slot = 0; slot < CLAB_STR_SLOTS; slot++) {
        __u8 b = spec >> (slot * 8);
        if ((b & CLAB_CAP_ARGV) && !(b & 0x38)) {
            __u32 a = b & 7;
            if (a >= 1 && a <= 6) flags |= read_argv(s, (const char *const *)args[a - 1]);
        } else if (read_slot(s, slot, b, args, ret)) {
            s->pad |= 1u << slot;
        }
    }
    return flags;
}

// Only slot 0, a buffer with a length (write's data): the small record suffices.
static __always_inline int small_spec(__u32 spec) {
    return (spec & ~0xFFu) == 0 && ((spec >> 3) & 7) != 0 && (spec & (CLAB_CAP_ARGV | CLAB_CAP_AT_ENTRY)) == 0;
}

static __always_inline void read_small(struct clab_small_data *d, __u32 spec, const __u64 *args, long ret) {
    __u32 a = spec & 7, l = (spec >> 3) & 7;
    d->len = 0;
    if (a == 0 || a > 6) return;
    __s64 n = l == 7 ? ret : (l <= 6 ? (__s64)args[l - 1] : 0);
    if (n < 0) n = 0;
    if (n > CLAB_SMALL_MAX) n = CLAB_SMALL_MAX;
    if (bpf_probe_read_user(d->data, n, (const void *)args[a - 1]) < 0) n = 0;
    d->len = n;
}

static __always_inline void fill_event(struct clab_syscall_event *e, struct clab_pending *p, __u64 pid_tgid,
                                       __u64 now, long ret, __u16 flags) {
    e->kind = CLAB_EV_SYSCALL;
    e->flags = flags;
    e->nr = p->nr;
    e->pid = pid_tgid >> 32;
    e->tid = (__u32)pid_tgid;
    e->ts = p->ts;
    e->dur = p->held ? p->held_dur : now - p->ts;
    e->ret = ret;
    __builtin_memcpy(e->args, p->args, sizeof(e->args));
}

// The record of one completed (or never-returning) syscall. A global function: verified once,
// not at each of the five places that write one.
__noinline int emit_syscall(struct clab_pending *p, __u64 pid_tgid, long ret, __u32 flags) {
    if (!p) return 0;
    __u64 now = bpf_ktime_get_ns();
    // The capture map is by x86_64 number: a 32-bit call's arguments are shown as numbers.
    __u32 spec = p->abi ? 0 : capture_spec(p->nr);
    flags |= p->abi | (p->flags & CLAB_F_X32);
    report_lost();
    if (!spec) {
        struct clab_syscall_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
        if (!e) {
            count_drop();
            return 0;
        }
        fill_event(e, p, pid_tgid, now, ret, flags);
        bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
        return 0;
    }
    if (small_spec(spec)) {
        struct clab_syscall_small_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
        if (!e) {
            count_drop();
            return 0;
        }
        read_small(&e->d, spec, p->args, ret);
        fill_event(&e->ev, p, pid_tgid, now, ret, flags | CLAB_F_SMALL);
        bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
        return 0;
    }
    struct clab_syscall_strings_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    flags |= CLAB_F_STRINGS;
    if (p->flags & CLAB_CAP_AT_ENTRY) {
        // Read at entry (execve): copy what was saved.
        bpf_probe_read_kernel(&e->s, sizeof(e->s), &p->s);
        flags |= p->flags & (CLAB_F_ARGV_MORE | CLAB_F_ARGV_FAULT | CLAB_F_ARGV_EXEC);
    } else {
        flags |= read_strings(&e->s, spec, p->args, ret);
        __u32 full = e->s.pad;
        if (full) {
            // A long string's record must come before its syscall's, and records are read in
            // the order they were reserved: write it, then move this one behind it.
            emit_longstrs(full, spec, p->args);
            struct clab_syscall_strings_event *moved = bpf_ringbuf_reserve(&events, sizeof(*moved), 0);
            if (!moved) {
                bpf_ringbuf_discard(e, 0);
                count_drop();
                return 0;
            }
            bpf_probe_read_kernel(&moved->s, sizeof(moved->s), &e->s);
            bpf_ringbuf_discard(e, 0);
            e = moved;
        }
    }
    fill_event(&e->ev, p, pid_tgid, now, ret, flags);
    bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
    return 0;
}

// Local views of the kernel types the netlink check reads, with only those fields: CO-RE
// matches them to the running kernel's by name (libbpf ignores the ___clab suffix) and field.
// Reading through vmlinux.h's own definitions would put struct sock's and struct file's whole
// type graphs into the object's BTF (35 KB more to load). Each kernel type CO-RE relocates
// costs libbpf a scan of the kernel's BTF at every trace start (about 1.5 ms each here), so
// the list is kept short: task_struct is relocated already, and the UAPI msghdr and iovec,
// whose layout is ABI, are read as plain structs.
struct inode___clab {
    umode_t i_mode;
    unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file___clab {
    struct inode___clab *f_inode;
    void *private_data;
} __attribute__((preserve_access_index));

struct fdtable___clab {
    unsigned int max_fds;
    struct file___clab **fd;
} __attribute__((preserve_access_index));

struct files_struct___clab {
    struct fdtable___clab *fdt;
} __attribute__((preserve_access_index));

struct sock_common___clab {
    unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock___clab {
    struct sock_common___clab __sk_common;
    u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket___clab {
    struct sock___clab *sk;
} __attribute__((preserve_access_index));

// The file behind the current task's fd `fd`, or NULL. Probe reads throughout: the fd table is
// read without its lock, and a racing close can at worst make one record undecoded, never a
// fault.
static __always_inline struct file___clab *file_of(__s64 fd) {
    struct task_struct *t = bpf_get_current_task_btf();
    struct files_struct___clab *files = (void *)BPF_CORE_READ(t, files);
    struct fdtable___clab *fdt = BPF_CORE_READ(files, fdt);
    if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds)) return 0;
    struct file___clab **fds = BPF_CORE_READ(fdt, fd);
    struct file___clab *f = 0;
    if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) < 0) return 0;
    return f;
}

// The socket behind the current task's fd `fd`, or NULL when the fd is not a socket.
static __always_inline struct sock___clab *socket_of(__s64 fd) {
    struct file___clab *f = file_of(fd);
    if (!f) return 0;
    // Only a socket's inode is S_IFSOCK, and only then is private_data a struct socket.
    umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
    if ((mode & S_IFMT) != S_IFSOCK) return 0;
    struct socket___clab *sock = BPF_CORE_READ(f, private_data);
    return sock ? BPF_CORE_READ(sock, sk) : 0;
}

// struct user_msghdr and struct iovec, the x86_64 ABI (no relocation needed).
struct clab_msghdr {
    __u64 name;
    __s32 namelen;
    __u32 pad;
    __u64 iov;
    __u64 iovlen;
    __u64 control;
    __u64 controllen;
    __u32 flags;
};

struct clab_iovec {
    __u64 base;
    __u64 len;
};

// sendto/recvfrom/sendmsg/recvmsg: when the fd is a netlink socket, writes the record with the
// messages and returns 1; otherwise 0 (the usual record follows).
static __always_inline int emit_netlink(struct clab_pending *p, __u64 pid_tgid, long ret) {
    struct sock___clab *sk = socket_of((__s32)p->args[0]);
    if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_NETLINK) return 0;
    __u64 now = bpf_ktime_get_ns();
    report_lost();
    struct clab_syscall_netlink_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 1;
    }
    struct clab_netlink_data *nl = &e->nl;
    nl->protocol = BPF_CORE_READ(sk, sk_protocol);
    nl->addr_len = 0;
    nl->iovlen = 0;
    nl->pad = 0;
    int receive = p->nr == NR_RECVFROM || p->nr == NR_RECVMSG;
    const void *buf = 0, *addr = 0;
    __u64 len = 0, addr_len = 0;
    if (p->nr == NR_SENDTO || p->nr == NR_RECVFROM) {
        buf = (const void *)p->args[1];
        len = p->args[2];
        if (!receive) {
            addr = (const void *)p->args[4];
            addr_len = p->args[5];
        }
    } else {
        struct clab_msghdr m = {};
        struct clab_iovec iov = {};
        if (bpf_probe_read_user(&m, sizeof(m), (const void *)p->args[1]) == 0) {
            nl->iovlen = m.iovlen;
            if (m.iovlen > 0 && bpf_probe_read_user(&iov, sizeof(iov), (const void *)m.iov) == 0) {
                buf = (const void *)iov.base;
                len = iov.len;
            }
            if (!receive && m.namelen > 0) {
                addr = (const void *)m.name;
                addr_len = (__u32)m.namelen;
            }
        }
    }
    nl->base = (__u64)buf;
    nl->buf_len = len > 0xFFFFFFFF ? 0xFFFFFFFF : len;
    if (addr && addr_len) {
        if (addr_len > sizeof(nl->addr)) addr_len = sizeof(nl->addr);
        if (bpf_probe_read_user(nl->addr, addr_len, addr) == 0) nl->addr_len = addr_len;
    }
    // A receive filled only `ret` bytes; a failed one, none.
    __s64 n = receive ? (ret < (__s64)len ? ret : (__s64)len) : (__s64)len;
    if (n < 0) n = 0;
    if (n > CLAB_NL_MAX) n = CLAB_NL_MAX;
    if (!buf || bpf_probe_read_user(nl->data, n, buf) < 0) n = 0;
    nl->len = n;
    fill_event(&e->ev, p, pid_tgid, now, ret, CLAB_F_NETLINK);
    bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
    return 1;
}

// The calls that make fds strace -y names by inode (pipe:[N], socket:[N]): pipe (22), socket
// (41), accept (43), socketpair (53), accept4 (288), pipe2 (293). A shift and a test for the
// calls below 64, two compares for the rest.
#define MAKES_FDS_LOW ((1ULL << 22) | (1ULL << 41) | (1ULL << 43) | (1ULL << 53))
static __always_inline int makes_fds(__s32 nr) {
    return nr < 64 ? (MAKES_FDS_LOW >> nr) & 1 : nr == 288 || nr == 293;
}

// The record naming the fds a call just made (struct clab_fds_event), before the call's own. A
// global function: verified once.
__noinline int emit_fds(struct clab_pending *p, long ret) {
    if (!p) return 0;
    __s32 fds[2] = {(__s32)ret, -1};
    int count = 1;
    if (p->nr == 22 || p->nr == 293 || p->nr == 53) {
        // The pair the kernel wrote: pipe(2)'s first argument, socketpair's fourth.
        const void *pair = (const void *)(p->nr == 53 ? p->args[3] : p->args[0]);
        if (bpf_probe_read_user(fds, sizeof(fds), pair) < 0) return 0;
        count = 2;
    }
    report_lost();
    struct clab_fds_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    e->kind = CLAB_EV_FDS;
    e->count = count;
    e->tid = (__u32)bpf_get_current_pid_tgid();
    for (int i = 0; i < 2; i++) {
        e->fd[i] = fds[i];
        e->mode[i] = 0;
        e->ino[i] = 0;
        if (i >= count) continue;
        struct file___clab *f = file_of(fds[i]);
        struct inode___clab *inode = f ? BPF_CORE_READ(f, f_inode) : 0;
        if (!inode) continue;
        e->mode[i] = BPF_CORE_READ(inode, i_mode);
        e->ino[i] = BPF_CORE_READ(inode, i_ino);
    }
    bpf_ringbuf_submit(e, 0);
    return 0;
}

// The calls whose iovecs are read (struct clab_iov_event): readv (19), writev (20), sendmsg
// (46), recvmsg (47), preadv (295), pwritev (296), preadv2 (327), pwritev2 (328).
#define IOV_LOW ((1ULL << 19) | (1ULL << 20) | (1ULL << 46) | (1ULL << 47))
static __always_inline int has_iov(__s32 nr) {
    return nr < 64 ? (IOV_LOW >> nr) & 1 : nr == 295 || nr == 296 || nr == 327 || nr == 328;
}

// The calls with a record of their own before theirs (fds, iovecs, a large struct): the low
// ones by a mask, the others (sysinfo 99, accept4 288 ... pwritev2 328, statx 332) by a range.
#define BLOB_LOW (1ULL << 63)  // uname
static __always_inline int has_extra(__s32 nr) {
    return nr < 64 ? ((MAKES_FDS_LOW | IOV_LOW | BLOB_LOW) >> nr) & 1 : nr == 99 || (nr >= 288 && nr <= 332);
}

// uname's struct new_utsname (its sysname and nodename, 2 x 65 bytes), sysinfo's struct sysinfo
// (112 bytes), statx's struct statx (256 bytes), read at a successful return. A global function.
__noinline int emit_blob(struct clab_pending *p) {
    if (!p) return 0;
    __s32 nr = p->nr;
    const void *src = (const void *)(nr == 332 ? p->args[4] : p->args[0]);
    __u32 n = nr == 63 ? 130 : nr == 99 ? 112 : CLAB_BLOB_MAX;
    if (nr != 63 && nr != 99 && nr != 332) return 0;
    report_lost();
    struct clab_blob_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    e->kind = CLAB_EV_BLOB;
    e->tid = (__u32)bpf_get_current_pid_tgid();
    e->nr = nr;
    e->pad = 0;
    if (n > CLAB_BLOB_MAX) n = CLAB_BLOB_MAX;
    if (bpf_probe_read_user(e->data, n, src) < 0) {
        bpf_ringbuf_discard(e, 0);
        return 0;
    }
    e->len = n;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

// The iovec record before the call's own. A global function: verified once.
__noinline int emit_iov(struct clab_pending *p, long ret) {
    if (!p) return 0;
    __s32 nr = p->nr;
    int msg = nr == NR_SENDMSG || nr == NR_RECVMSG;
    int receive = nr == 19 || nr == NR_RECVMSG || nr == 295 || nr == 327;
    // A failed receive filled nothing: its record would show nothing the call has.
    if (receive && ret < 0) return 0;
    report_lost();
    struct clab_iov_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    e->kind = CLAB_EV_IOV;
    e->count = 0;
    e->tid = (__u32)bpf_get_current_pid_tgid();
    e->nr = nr;
    e->flags = 0;
    e->name_len = 0;
    e->pad = 0;
    __u64 iov = p->args[1], iovlen = p->args[2];
    if (msg) {
        struct clab_msghdr *m = (struct clab_msghdr *)e->msghdr;
        if (bpf_probe_read_user(e->msghdr, sizeof(e->msghdr), (const void *)p->args[1]) < 0) goto done;
        e->flags = 1;
        iov = m->iov;
        iovlen = m->iovlen;
        __u32 nl = m->namelen > 0 ? (__u32)m->namelen : 0;
        if (nl > CLAB_IOV_NAME) nl = CLAB_IOV_NAME;
        if (m->name && nl && bpf_probe_read_user(e->name, nl, (const void *)m->name) == 0) e->name_len = nl;
    }
    e->iovlen = iovlen;
    __s64 left = receive ? ret : 0x7fffffff;
    for (int i = 0; i < CLAB_IOV_MAX; i++) {
        if (i >= iovlen) break;
        struct clab_iovec v = {};
        if (bpf_probe_read_user(&v, sizeof(v), (const void *)(iov + i * sizeof(v))) < 0) break;
        e->base[i] = v.base;
        e->len[i] = v.len;
        __u64 n = v.len < (__u64)left ? v.len : (__u64)left;
        left -= n;
        if (n > CLAB_IOV_DATA) n = CLAB_IOV_DATA;
        e->got[i] = 0;
        if (n && bpf_probe_read_user(e->data[i], n, (const void *)v.base) == 0) e->got[i] = n;
        e->count = i + 1;
    }
done:
    bpf_ringbuf_submit(e, 0);
    return 0;
}

// sendmsg/recvmsg's control messages (struct clab_cmsg_event), after its iovec record. Only
// these two calls come here, and only with a control buffer. A global function: verified once.
__noinline int emit_cmsg(struct clab_pending *p) {
    if (!p) return 0;
    struct clab_msghdr m = {};
    if (bpf_probe_read_user(&m, sizeof(m), (const void *)p->args[1]) < 0 || !m.control || !m.controllen) return 0;
    report_lost();
    struct clab_cmsg_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    e->kind = CLAB_EV_CMSG;
    e->tid = (__u32)bpf_get_current_pid_tgid();
    e->nr = p->nr;
    e->nfds = 0;
    e->controllen = m.controllen;
    __u32 n = m.controllen < CLAB_CMSG_MAX ? m.controllen : CLAB_CMSG_MAX;
    if (bpf_probe_read_user(e->data, n, (const void *)m.control) < 0) n = 0;
    e->len = n;
    // struct cmsghdr (x86_64): cmsg_len (8 bytes), cmsg_level, cmsg_type, then the data.
    __u64 first_len = 0;
    __s32 level = -1, type = -1;
    if (n >= 16) {
        __builtin_memcpy(&first_len, &e->data[0], 8);
        __builtin_memcpy(&level, &e->data[8], 4);
        __builtin_memcpy(&type, &e->data[12], 4);
    }
    __u64 fds_len = first_len < n ? first_len : n;
    __u32 count = level == 1 && type == 1 && fds_len > 16 ? (fds_len - 16) / 4 : 0;  // SOL_SOCKET, SCM_RIGHTS
    for (int i = 0; i < CLAB_CMSG_FDS; i++) {
        e->mode[i] = 0;
        e->ino[i] = 0;
        if (i >= count) continue;
        __s32 fd = -1;
        __builtin_memcpy(&fd, &e->data[16 + i * 4], 4);
        struct file___clab *f = file_of(fd);
        struct inode___clab *inode = f ? BPF_CORE_READ(f, f_inode) : 0;
        e->nfds = i + 1;
        if (!inode) continue;
        e->mode[i] = BPF_CORE_READ(inode, i_mode);
        e->ino[i] = BPF_CORE_READ(inode, i_ino);
    }
    bpf_ringbuf_submit(e, 0);
    return 0;
}

static __always_inline void save_entry(struct clab_pending *p, struct pt_regs *regs, long id) {
    p->nr = id;
    p->flags = 0;
    p->held = 0;
    // int $0x80 from a 64-bit process: the i386 table, its registers (the low halves).
    struct task_struct *t = bpf_get_current_task_btf();
    p->abi = t->thread_info.status & TS_COMPAT ? CLAB_F_COMPAT : 0;
    if (p->abi) {
        p->args[0] = (__u32)regs->bx;
        p->args[1] = (__u32)regs->cx;
        p->args[2] = (__u32)regs->dx;
        p->args[3] = (__u32)regs->si;
        p->args[4] = (__u32)regs->di;
        p->args[5] = (__u32)regs->bp;
        p->ts = bpf_ktime_get_ns();
        return;
    }
    // x32 (the x86_64 entry, the number with X32_SYSCALL_BIT): kept without the bit, which
    // CLAB_F_X32 stands for. Below 512 it is x86_64's call, same handler and layouts, so the
    // captures and the extra records by number apply as they are; x32's own calls (512-547)
    // have no capture spec and no extra record: nothing of theirs is read with a 64-bit layout.
    if (id & X32_SYSCALL_BIT) {
        p->nr = id & ~X32_SYSCALL_BIT;
        p->flags = CLAB_F_X32;
    }
    // The x86_64 syscall ABI: rdi, rsi, rdx, r10, r8, r9.
    p->args[0] = regs->di;
    p->args[1] = regs->si;
    p->args[2] = regs->dx;
    p->args[3] = regs->r10;
    p->args[4] = regs->r8;
    p->args[5] = regs->r9;
    p->ts = bpf_ktime_get_ns();
}

// A return with no entry seen: the kernel runs seccomp before the sys_enter tracepoint and the
// dispatch, so a call the filter refuses (EPERM from a container's profile) reaches only
// sys_exit (or, with fentry, the return of __secure_computing). Its number
// and arguments are still in the registers. A fork's child also first shows up here, returning
// 0 from the fork, and a root not yet executed is not traced: neither is a refused call.
static __always_inline int refused_before_entry(struct clab_pending *p, struct pt_regs *regs, long ret) {
    long nr = (long)regs->orig_ax & ~X32_SYSCALL_BIT;
    return p->state == CLAB_TRACED && ret < 0 && ret >= -4095 && nr >= 0 && nr < CLAB_MAX_SYSCALLS;
}

// A call that returned ERESTART* waits in the thread's slot (see sys_exit_events): written now,
// before what follows it (the next call, a signal's delivery).
static __always_inline void flush_held(struct clab_pending *p) {
    if (!p->held) return;
    emit_syscall(p, bpf_get_current_pid_tgid(), p->held_ret, 0);
    p->held = 0;
    p->nr = -1;
}

// The ignored signal waiting in the thread's slot, written (see clab_pending.ign_sig). A
// global function: verified once.
__noinline int emit_ignored(struct clab_pending *p) {
    if (!p) return 0;
    __s32 sig = p->ign_sig;
    p->ign_sig = 0;
    if (!sig) return 0;
    report_lost();
    struct clab_signal_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    e->kind = CLAB_EV_SIGNAL;
    e->flags = p->ign_fatal ? CLAB_SIG_FATAL : CLAB_SIG_IGNORED;
    e->pid = pid_tgid >> 32;
    e->tid = (__u32)pid_tgid;
    e->sig = sig;
    e->ts = bpf_ktime_get_ns();
    __builtin_memcpy(e->info, p->ign_info, sizeof(e->info));
    bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
    return 0;
}

static __always_inline int enter_events(struct pt_regs *regs, long id) {
    struct clab_pending *p = traced_current(id);
    if (!p) return 0;
    flush_held(p);
    if (p->ign_sig) emit_ignored(p);
    save_entry(p, regs, id);
    // p->nr: id, without the x32 bit.
    __s32 nr = p->nr;
    if (p->abi ? nr == NR_I386_EXIT || nr == NR_I386_EXIT_GROUP : nr == NR_EXIT || nr == NR_EXIT_GROUP) {
        emit_syscall(p, bpf_get_current_pid_tgid(), 0, CLAB_F_NORETURN);
        p->nr = -1;
        return 0;
    }
    __u32 spec = p->abi ? 0 : capture_spec(nr);
    // Bit 7 of the first slot: read every slot now (execve).
    if (spec & CLAB_CAP_AT_ENTRY) {
        // rt_sigreturn has no arguments: its first is shown as the address of the signal mask
        // it restores, read now (the frame is gone at the return).
        if (nr == NR_RT_SIGRETURN) p->args[0] = regs->sp + RT_SIGFRAME_MASK;
        // Read at entry, written at the return: a long string's record goes now, before it.
        p->flags |= CLAB_CAP_AT_ENTRY | read_strings(&p->s, spec, p->args, 0);
        if (p->s.pad) emit_longstrs(p->s.pad, spec, p->args);
    }
    return 0;
}

static __always_inline int exit_events(struct clab_pending *p, struct pt_regs *regs, long ret) {
    if (p->nr < 0) {
        if (!refused_before_entry(p, regs, ret)) return 0;
        save_entry(p, regs, (long)regs->orig_ax);
    }
    if (p->held) return 0;
    // ERESTARTSYS..ERESTART_RESTARTBLOCK: a signal interrupts the call. If it is SIGKILL, the
    // thread dies without returning to user space and strace shows the call <unfinished ...>;
    // otherwise `= ? ERESTARTSYS`. Which one is known only later: the record waits.
    if (ret <= -512 && ret >= -516) {
        p->held = 1;
        p->held_ret = ret;
        p->held_dur = bpf_ktime_get_ns() - p->ts;
        return 0;
    }
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    // One compare for every other syscall: sendto, recvfrom, sendmsg and recvmsg are 44-47.
    if (!p->abi && (__u32)(p->nr - NR_SENDTO) <= NR_RECVMSG - NR_SENDTO && emit_netlink(p, pid_tgid, ret)) {
        p->nr = -1;
        return 0;
    }
    // One test for the calls with no extra record (all but a dozen; dd's read and write).
    if (!p->abi && has_extra(p->nr)) {
        if (ret >= 0 && makes_fds(p->nr)) emit_fds(p, ret);
        if (has_iov(p->nr)) emit_iov(p, ret);
        // A failed receive filled nothing; a send's control is shown whatever it returned.
        if (p->nr == NR_SENDMSG || (p->nr == NR_RECVMSG && ret >= 0)) emit_cmsg(p);
        if (ret == 0 && (p->nr == 63 || p->nr == 99 || p->nr == 332)) emit_blob(p);
    }
    emit_syscall(p, pid_tgid, ret, 0);
    p->nr = -1;
    if (p->ign_sig) emit_ignored(p);
    return 0;
}

// The two ways in. Both run the same code; the loader picks one pair (Program.swift).
// - fentry/fexit on x64_sys_call and ia32_sys_call (Linux 6.9+ dispatches every 64-bit and
//   32-bit syscall through them): BPF trampolines patched into those two functions. A task that
//   is not traced pays a direct call and one load (task->bpf_storage), nothing more.
// - the raw_syscalls tracepoints (tp_btf/sys_enter, sys_exit), the fallback for older kernels:
//   while they are attached at all, EVERY syscall of every task on the machine takes the
//   kernel's syscall slow path (SYSCALL_WORK_SYSCALL_TRACEPOINT), +150 ns a call here, traced
//   or not (bench/trace.sh).
// A cost of fexit on the dispatch: exit and exit_group never return through x64_sys_call, so the
// trampoline image a task died in keeps a reference the kernel never drops (why recent kernels
// refuse fexit on __noreturn functions such as do_exit): each trace during which a process
// exits leaves that image (a few KB of kernel memory) behind until reboot. Unmeasured: no
// kernel here loads fentry (see README).
// What the tracepoints see and the trampolines do not: a call seccomp refused (the kernel
// skips the dispatch; see seccomp_events), a number past the end of the table (ENOSYS
// without a dispatch; no program can do anything with it, and it is not shown), and x32 calls
// (dispatched by x32_sys_call, which only kernels with CONFIG_X86_X32_ABI have; not hooked).
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_events, struct pt_regs *regs, long id) {
    return enter_events(regs, id);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_events, struct pt_regs *regs, long ret) {
    struct clab_pending *p = slot_of_current();
    return p ? exit_events(p, regs, ret) : 0;
}

SEC("fentry/x64_sys_call")
int BPF_PROG(fentry_events, struct pt_regs *regs, unsigned int nr) {
    return enter_events(regs, nr);
}

SEC("fexit/x64_sys_call")
int BPF_PROG(fexit_events, struct pt_regs *regs, unsigned int nr, long ret) {
    struct clab_pending *p = slot_of_current();
    return p ? exit_events(p, regs, ret) : 0;
}

// int $0x80 and 32-bit processes: the same, save_entry tells the ABI from TS_COMPAT.
SEC("fentry/ia32_sys_call")
int BPF_PROG(fentry32_events, struct pt_regs *regs, unsigned int nr) {
    return enter_events(regs, nr);
}

SEC("fexit/ia32_sys_call")
int BPF_PROG(fexit32_events, struct pt_regs *regs, unsigned int nr, long ret) {
    struct clab_pending *p = slot_of_current();
    return p ? exit_events(p, regs, ret) : 0;
}

// A call seccomp refused (a container's profile: EPERM, ENOSYS) never reaches x64_sys_call;
// __secure_computing returns -1 for it, with the return value already in the registers. The
// tracepoints saw it at sys_exit with no entry; here it is the same record, at the same place.
// Only tasks with a seccomp filter call __secure_computing at all. A call held with ERESTART*
// goes first (it would otherwise swallow this one).
static __always_inline struct pt_regs *current_regs(void) {
    return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

static __always_inline int seccomp_refused(void *ctx) {
    __u64 rc = 0;
    bpf_get_func_ret(ctx, &rc);
    return (int)rc == -1;
}

SEC("fexit/__secure_computing")
int BPF_PROG(seccomp_events) {
    struct clab_pending *p = slot_of_current();
    if (!p || !seccomp_refused(ctx)) return 0;
    flush_held(p);
    struct pt_regs *regs = current_regs();
    return exit_events(p, regs, (long)regs->ax);
}

static __always_inline void count(__s32 nr, __u64 ns, long ret) {
    __u32 key = (__u32)nr;
    struct clab_syscall_stat *st = bpf_map_lookup_elem(&stats, &key);
    if (!st) return;
    st->count++;
    st->ns += ns;
    if (ret < 0 && ret >= -4095) st->errors++;
}

// The stats key of call `id` of task `t`: a 32-bit call's after the x86_64 ones, an x32 call's
// after those (a number past the map's end is not counted: its lookup fails).
static __always_inline __s32 count_key(struct task_struct *t, long id) {
    if (id & X32_SYSCALL_BIT) return 2 * CLAB_MAX_SYSCALLS + (id & ~X32_SYSCALL_BIT);
    return t->thread_info.status & TS_COMPAT ? CLAB_MAX_SYSCALLS + id : id;
}

static __always_inline int enter_count(long id) {
    struct task_struct *t = bpf_get_current_task_btf();
    struct clab_pending *p = traced_task(t, id);
    if (!p) return 0;
    __s32 key = count_key(t, id);
    if (key == NR_EXIT || key == NR_EXIT_GROUP || key == CLAB_MAX_SYSCALLS + NR_I386_EXIT ||
        key == CLAB_MAX_SYSCALLS + NR_I386_EXIT_GROUP || key == 2 * CLAB_MAX_SYSCALLS + NR_EXIT ||
        key == 2 * CLAB_MAX_SYSCALLS + NR_EXIT_GROUP) {
        count(key, 0, 0);
        return 0;
    }
    p->nr = key;
    p->ts = bpf_ktime_get_ns();
    return 0;
}

static __always_inline int exit_count(struct clab_pending *p, struct pt_regs *regs, long ret) {
    if (p->nr < 0) {
        if (refused_before_entry(p, regs, ret)) count(count_key(bpf_get_current_task_btf(), (long)regs->orig_ax), 0, ret);
        return 0;
    }
    count(p->nr, bpf_ktime_get_ns() - p->ts, ret);
    p->nr = -1;
    return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_count, struct pt_regs *regs, long id) {
    return enter_count(id);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_count, struct pt_regs *regs, long ret) {
    struct clab_pending *p = slot_of_current();
    return p ? exit_count(p, regs, ret) : 0;
}

SEC("fentry/x64_sys_call")
int BPF_PROG(fentry_count, struct pt_regs *regs, unsigned int nr) {
    return enter_count(nr);
}

SEC("fexit/x64_sys_call")
int BPF_PROG(fexit_count, struct pt_regs *regs, unsigned int nr, long ret) {
    struct clab_pending *p = slot_of_current();
    return p ? exit_count(p, regs, ret) : 0;
}

SEC("fentry/ia32_sys_call")
int BPF_PROG(fentry32_count, struct pt_regs *regs, unsigned int nr) {
    return enter_count(nr);
}

SEC("fexit/ia32_sys_call")
int BPF_PROG(fexit32_count, struct pt_regs *regs, unsigned int nr, long ret) {
    struct clab_pending *p = slot_of_current();
    return p ? exit_count(p, regs, ret) : 0;
}

SEC("fexit/__secure_computing")
int BPF_PROG(seccomp_count) {
    struct clab_pending *p = slot_of_current();
    if (!p || !seccomp_refused(ctx)) return 0;
    struct pt_regs *regs = current_regs();
    return exit_count(p, regs, (long)regs->ax);
}

static __always_inline __u32 ns_pid_of(struct task_struct *t, __u32 *level) {
    struct pid *pid = t->thread_pid;
    unsigned int l = pid->level;
    struct upid up = {};
    bpf_core_read(&up, sizeof(up), &pid->numbers[l & 31]);
    *level = l;
    return up.nr;
}

static __always_inline struct clab_proc_event *reserve_proc(__u16 kind) {
    report_lost();
    struct clab_proc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    e->kind = kind;
    e->flags = 0;
    e->ts = bpf_ktime_get_ns();
    e->exit_code = 0;
    e->ns_level = 0;
    return e;
}

static __always_inline int task_traced(struct task_struct *t) {
    struct clab_pending *p = bpf_task_storage_get(&inflight, t, 0, 0);
    return p && p->state == CLAB_TRACED;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child) {
    if (!task_traced(parent)) return 0;
    struct clab_pending *c = bpf_task_storage_get(&inflight, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (c) {
        c->state = CLAB_TRACED;
        c->nr = -1;
    }
    __u32 ptgid = parent->tgid, ctgid = child->tgid, ctid = child->pid;
    int thread = ctgid == ptgid;
    if (!thread) {
        __u32 state = CLAB_TRACED;
        bpf_map_update_elem(&tracked, &ctgid, &state, BPF_ANY);
    }
    if (!clab_cfg.emit_proc) return 0;
    struct clab_proc_event *e = reserve_proc(CLAB_EV_FORK);
    if (!e) return 0;
    e->flags = thread ? CLAB_F_THREAD : 0;
    e->pid = ptgid;
    e->tid = parent->pid;
    e->child_pid = ctgid;
    e->child_tid = ctid;
    e->ns_pid = ns_pid_of(child, &e->ns_level);
    BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
    bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
    return 0;
}

// The execve in flight, at sched_process_exec: its argv is read again from the new program's
// stack, where the kernel has just copied it (so it is there, paged in): the entry's read fails
// for strings not yet paged in (after a vfork), and the whole of a long argv fits only here.
static __always_inline void exec_argv(struct task_struct *t, struct linux_binprm *bprm) {
    struct clab_pending *p = bpf_task_storage_get(&inflight, t, 0, 0);
    if (!p || p->abi || (p->nr != NR_EXECVE && p->nr != NR_EXECVEAT) || !(p->flags & CLAB_CAP_AT_ENTRY)) return;
    __u64 start = BPF_CORE_READ(t, mm, arg_start), end = BPF_CORE_READ(t, mm, arg_end);
    __u32 len = end > start && end - start < CLAB_LONGSTR_MAX ? end - start : CLAB_LONGSTR_MAX;
    const __u32 room = CLAB_DATA_MAX - CLAB_STR_MAX;
    __u32 n = len < room ? len : room;
    if (n > room) return;  // for the verifier
    if (bpf_probe_read_user(&p->s.data[CLAB_STR_MAX], n, (const void *)start) < 0) return;
    p->s.argc = BPF_CORE_READ(bprm, argc);
    p->s.argv_len = n;
    p->flags = (p->flags & ~(CLAB_F_ARGV_FAULT | CLAB_F_ARGV_MORE)) | CLAB_F_ARGV_EXEC;
    if (len > room) {
        // Longer than the record holds: the whole of it in a record of its own (slot 1: argv).
        report_lost();
        struct clab_longstr_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
        if (!e) {
            count_drop();
            p->flags |= CLAB_F_ARGV_MORE;
            return;
        }
        e->kind = CLAB_EV_LONGSTR;
        e->slot = 1;
        e->tid = t->pid;
        e->pad = 0;
        e->len = len;
        if (len > CLAB_LONGSTR_MAX || bpf_probe_read_user(e->data, len, (const void *)start) < 0) {
            bpf_ringbuf_discard(e, 0);
            p->flags |= CLAB_F_ARGV_MORE;
            return;
        }
        bpf_ringbuf_submit(e, 0);
    }
    // The path, when it could not be read at entry: the kernel's copy.
    if (p->s.len[0] == 0) {
        long m = bpf_probe_read_kernel_str(p->s.data, CLAB_STR_MAX, BPF_CORE_READ(bprm, filename));
        p->s.len[0] = m > 0 ? m : 0;
    }
}

// signal:signal_deliver: strace's `--- SIGCHLD {si_signo=SIGCHLD, ...} ---`. SIGKILL is not
// shown (strace cannot see it either: the thread just dies, `+++ killed by SIGKILL +++`); a call
// it interrupted stays held and is written <unfinished ...> at the exit.
SEC("tp_btf/signal_deliver")
int BPF_PROG(on_signal, int sig, struct kernel_siginfo *info, struct k_sigaction *ka) {
    struct clab_pending *p = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
    if (!p || p->state != CLAB_TRACED || !clab_cfg.emit_proc || sig == SIGKILL) return 0;
    flush_held(p);
    report_lost();
    struct clab_signal_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    e->kind = CLAB_EV_SIGNAL;
    e->flags = 0;
    e->pid = pid_tgid >> 32;
    e->tid = (__u32)pid_tgid;
    e->sig = sig;
    e->ts = bpf_ktime_get_ns();
    if (!info || bpf_probe_read_kernel(e->info, sizeof(e->info), info) < 0) __builtin_memset(e->info, 0, sizeof(e->info));
    bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
    return 0;
}

// signal:signal_generate, for the signals the kernel discards at once because the target
// ignores them (SIGCHLD at SIG_DFL): with strace's ptrace attached they are queued and shown,
// so the target's slot keeps the last one until its next return to user space.
SEC("tp_btf/signal_generate")
int BPF_PROG(on_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
             int result) {
    if (!clab_cfg.emit_proc || sig == SIGKILL) return 0;
    // Delivered, but turned into a group exit on the spot (a fatal signal at SIG_DFL, no ptrace):
    // the kernel has just set the exit code to it. No signal_deliver will show it.
    int fatal = result == TRACE_SIGNAL_DELIVERED && (task->signal->flags & SIGNAL_GROUP_EXIT) &&
                task->signal->group_exit_code == sig;
    if (result != TRACE_SIGNAL_IGNORED && !fatal) return 0;
    struct clab_pending *p = bpf_task_storage_get(&inflight, task, 0, 0);
    if (!p || p->state != CLAB_TRACED) return 0;
    if (!info || bpf_probe_read_kernel(p->ign_info, sizeof(p->ign_info), info) < 0)
        __builtin_memset(p->ign_info, 0, sizeof(p->ign_info));
    p->ign_fatal = fatal;
    p->ign_sig = sig;
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
    if (!task_traced(p)) return 0;
    exec_argv(p, bprm);
    if (!clab_cfg.emit_proc) return 0;
    struct clab_proc_event *e = reserve_proc(CLAB_EV_EXEC);
    if (!e) return 0;
    e->pid = p->tgid;
    e->tid = p->pid;
    e->child_pid = old_pid;
    e->child_tid = 0;
    e->ns_pid = ns_pid_of(p, &e->ns_level);
    BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
    bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p, bool group_dead) {
    struct clab_pending *pend = bpf_task_storage_get(&inflight, p, 0, 0);
    if (!pend || pend->state == CLAB_UNTRACED) return 0;
    __u32 tgid = p->tgid;
    // A thread killed inside a syscall never returns from it: report it as unfinished. Ended
    // by a fatal signal other than SIGKILL, strace sees the call return ERESTART* first.
    int fatal = pend->ign_sig && pend->ign_fatal;
    if (pend->nr >= 0) {
        __u64 id = ((__u64)tgid << 32) | (__u32)p->pid;
        if (clab_cfg.emit_proc && fatal && pend->held) {
            emit_syscall(pend, id, pend->held_ret, 0);
        } else if (clab_cfg.emit_proc) {
            emit_syscall(pend, id, 0, CLAB_F_UNFINISHED);
        }
        pend->nr = -1;
        pend->held = 0;
    }
    if (fatal && clab_cfg.emit_proc) emit_ignored(pend);
    pend->ign_sig = 0;
    if (!group_dead) {
        // A thread ends: strace's `+++ exited with 0 +++` on that thread.
        if (!clab_cfg.emit_proc) return 0;
        struct clab_proc_event *t = reserve_proc(CLAB_EV_EXIT);
        if (!t) return 0;
        t->flags = CLAB_F_THREAD;
        t->pid = tgid;
        t->tid = p->pid;
        t->child_pid = 0;
        t->child_tid = 0;
        t->ns_pid = 0;
        t->exit_code = p->exit_code;
        BPF_CORE_READ_STR_INTO(&t->comm, p, comm);
        bpf_ringbuf_submit(t, wake_flags(sizeof(*t)));
        return 0;
    }
    bpf_map_delete_elem(&tracked, &tgid);
    if (!clab_cfg.emit_proc) return 0;
    struct clab_proc_event *e = reserve_proc(CLAB_EV_EXIT);
    if (!e) return 0;
    e->pid = tgid;
    e->tid = p->pid;
    e->child_pid = 0;
    e->child_tid = 0;
    e->ns_pid = 0;
    e->exit_code = p->exit_code;
    BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
    // The end of a process is worth waking the reader for: it may be the last one.
    bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
    return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom_victim, struct task_struct *task, uid_t uid) {
    if (!clab_cfg.emit_proc || !task_traced(task)) return 0;
    struct clab_proc_event *e = reserve_proc(CLAB_EV_OOM);
    if (!e) return 0;
    e->pid = task->tgid;
    e->tid = task->pid;
    e->child_pid = 0;
    e->child_tid = 0;
    e->ns_pid = ns_pid_of(task, &e->ns_level);
    BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
    bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
    return 0;
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(on_cgroup_attach, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup) {
    if (!clab_cfg.emit_proc || !task_traced(task)) return 0;
    report_lost();
    struct clab_cgroup_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    e->kind = CLAB_EV_CGROUP;
    e->flags = 0;
    e->pid = task->tgid;
    e->tid = task->pid;
    e->hierarchy = dst->root->hierarchy_id;
    e->ts = bpf_ktime_get_ns();
    if (bpf_probe_read_kernel_str(e->path, sizeof(e->path), path) < 0) e->path[0] = 0;
    bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
    return 0;
}

// clab_mark(mark) in clab-init, clab or its cloned child (ClabSpec's StageMark): which stage
// the task's next calls are the work of. The uprobe fires in every process that runs the binary; only a traced task writes a
// record. A call of its held (ERESTART*) goes out first, so the marker lands between the calls
// it separates.
SEC("uprobe")
int on_mark(struct pt_regs *ctx) {
    struct clab_pending *p = slot_of_current();
    if (!p || p->state != CLAB_TRACED || !clab_cfg.emit_proc) return 0;
    flush_held(p);
    report_lost();
    struct clab_mark_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_drop();
        return 0;
    }
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    e->kind = CLAB_EV_MARK;
    e->flags = 0;
    e->pid = pid_tgid >> 32;
    e->tid = (__u32)pid_tgid;
    e->mark = (__s32)PT_REGS_PARM1(ctx);
    e->ts = bpf_ktime_get_ns();
    bpf_ringbuf_submit(e, wake_flags(sizeof(*e)));
    return 0;
}
