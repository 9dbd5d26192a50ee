// Tiny C layer for what Swift cannot do safely: the code that runs between clone3 and execve
// (no Swift may run there: the parent is multi-threaded), variadic syscalls, and wait macros.
#ifndef CLAB_SHIMS_H
#define CLAB_SHIMS_H

#include <stdint.h>
#include <sys/types.h>
#include <linux/sched.h>  // CLONE_NEW* for Swift

/// What the child does between clone3 and execve. Every field is read before clone3 or by
/// raw syscalls in the child, so no allocation happens after the fork.
struct clab_spawn_request {
    uint64_t clone_flags;     // CLONE_NEW* flags of the stage
    int sync_fd;              // child's end of the sync socket; becomes fd 3
    int stdio[3];             // fds that become 0, 1, 2
    int become_root;          // user ns: after "go", setgroups(0) + setresgid/setresuid(0)
    const char *path;         // clab's own binary (init)
    char *const *argv;
    char *const *envp;
};

/// clone3 + the child's raw-syscall prologue + execve. Returns the child's pid (host view) and
/// stores a pidfd in *pidfd, or returns -errno.
pid_t clab_spawn(const struct clab_spawn_request *req, int *pidfd);

/// Marker for the tracer's stage view: an exported no-op a uprobe can attach to.
void clab_mark(int phase);

// Variadic or ABI-awkward calls, wrapped.
int clab_pivot_root(const char *new_root, const char *put_old);
int clab_set_pdeathsig(int sig);
int clab_link_up(const char *ifname);
int clab_ioctl_int(int fd, unsigned long request, int *value);
int clab_tcsetpgrp_quiet(int fd, pid_t pgrp);
int clab_pipe_cloexec(int fds[2]);

// openat2(2) with only the resolve flags clab uses (the syscall takes a struct open_how).
#define CLAB_RESOLVE_NO_MAGICLINKS 0x02
#define CLAB_RESOLVE_NO_SYMLINKS 0x04
#define CLAB_RESOLVE_BENEATH 0x08
#define CLAB_RESOLVE_IN_ROOT 0x10
#define CLAB_O_PATH 010000000  // O_PATH, hidden from Swift behind _GNU_SOURCE
int clab_openat2(int dirfd, const char *path, int flags, uint64_t resolve);

// setns(2) and setresuid/setresgid(2) (GNU, hidden from Swift): for `clab-init --probe`, a
// single-threaded process that enters another process's namespaces to look at them.
int clab_setns(int fd, int nstype);
int clab_setresuid(uid_t uid);
int clab_setresgid(gid_t gid);

// lgetxattr(2) (<sys/xattr.h> is not in Swift's Glibc module): returns the value's length or -1.
long clab_lgetxattr(const char *path, const char *name, void *value, unsigned long size);
// lsetxattr(2), likewise: returns 0 or -1 with errno.
int clab_lsetxattr(const char *path, const char *name, const void *value, unsigned long size, int flags);

// Signal forwarding while the parent waits: the handler only calls kill(2) and records.
void clab_forward_signals_to(pid_t pid);
int clab_pending_signal(void);
void clab_forward_signals_reset(void);

// <sys/wait.h> macros, which Swift does not import.
int clab_wifexited(int status);
int clab_wexitstatus(int status);
int clab_wifsignaled(int status);
int clab_wtermsig(int status);

#endif
