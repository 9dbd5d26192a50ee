// libbpf (Debian's libbpf-dev 1.1) for Swift, plus the record layouts of clab's BPF program and
// the ring thread's record copy. The child the tracer spawns is CShims' clab_spawn_gated.
#ifndef CLAB_LIBBPF_H
#define CLAB_LIBBPF_H

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clab_devices.h"
#include "clab_trace_events.h"

/// Where the ring thread copies records: the current chunk of the reader's queue. Each record is
/// its size (8 bytes) and its bytes, padded to 8. In C so the ring thread costs a memcpy per
/// record whatever the build (a debug Swift build is several times slower per call); `full`
/// (Swift) hands the chunk on and points `base` at a fresh one.
struct clab_sink {
    uint8_t *base;
    size_t used;
    size_t cap;
    void *owner;
    void (*full)(void *owner);
};

static inline int clab_sink_record(void *ctx, void *data, size_t size) {
    struct clab_sink *s = (struct clab_sink *)ctx;
    size_t room = 8 + ((size + 7) & ~(size_t)7);
    if (room > s->cap) return 0;
    if (s->used + room > s->cap) s->full(s->owner);
    uint64_t n = size;
    memcpy(s->base + s->used, &n, 8);
    memcpy(s->base + s->used + 8, data, size);
    s->used += room;
    return 0;
}

/// A uprobe at the entry of `func` in `binary`, in every process (libbpf resolves the symbol).
/// NULL with errno set on failure. In C: bpf_uprobe_opts ends in a zero-width bitfield.
static inline struct bpf_link *clab_attach_uprobe(const struct bpf_program *prog, const char *binary,
                                                  const char *func) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func, .retprobe = false);
    return bpf_program__attach_uprobe_opts(prog, -1, binary, 0, &opts);
}

/// A close-on-exec, non-blocking signalfd for `mask` (Swift's Glibc does not import signalfd).
static inline int clab_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK); }

/// The calling thread's id (glibc's gettid() needs _GNU_SOURCE, which Swift's Glibc lacks).
static inline pid_t clab_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/// pidfd_open(2); `thread` asks for a thread's pidfd (PIDFD_THREAD, Linux 6.9+).
static inline int clab_pidfd_open(pid_t pid, int thread) {
    return (int)syscall(SYS_pidfd_open, pid, thread ? O_EXCL : 0);
}

#endif
