// libbpf (Debian's libbpf-dev 1.1) for Swift, plus the record layouts of clab's BPF program and
// the one piece of C the tracer needs: the child it spawns between fork and execve.
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

/// Starts `path` for tracing: clone3, and the child waits until the parent writes one byte to
/// `gate[1]` (the parent puts the child's pid into the traced set first), then execve's at once,
/// so its first traced syscall is that execve. The parent is multi-threaded Swift: the child
/// runs only raw syscalls here. Both gate ends must be close-on-exec. Returns the pid and
/// stores a pidfd in *pidfd, or returns -errno.
static inline pid_t clab_trace_spawn(const char *path, char *const *argv, char *const *envp, const int gate[2],
                                     int *pidfd) {
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    int fd = -1;
    args.flags = CLONE_PIDFD;
    args.pidfd = (uint64_t)(uintptr_t)&fd;
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid < 0) return -errno;
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++) {
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        }
        close(gate[1]);  // so a parent that dies means EOF here, not a wait forever
        char go = 0;
        ssize_t n;
        do { n = read(gate[0], &go, 1); } while (n < 0 && errno == EINTR);
        if (n != 1) _exit(125);
        execve(path, argv, envp);
        _exit(errno == ENOENT ? 127 : 126);
    }
    *pidfd = fd;
    return (pid_t)pid;
}

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

/// A close-on-exec, non-blocking signalfd for `mask` (Swift's Glibc does not import signalfd).
static inline int clab_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK); }

/// The calling thread's id (glibc's gettid() needs _GNU_SOURCE, which Swift's Glibc lacks).
static inline pid_t clab_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/// pidfd_open(2); `thread` asks for a thread's pidfd (PIDFD_THREAD, Linux 6.9+).
static inline int clab_pidfd_open(pid_t pid, int thread) {
    return (int)syscall(SYS_pidfd_open, pid, thread ? O_EXCL : 0);
}

#endif
