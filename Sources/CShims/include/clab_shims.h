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
    int ctty;                 // -1, or which of fds 0..2 (a pty slave) becomes the controlling tty
    int join_netns;           // -1, or a network namespace fd the child starts in (--net container:)
    int no_pdeathsig;         // 1: no PR_SET_PDEATHSIG (clab-runtime: its caller, a subreaper, adopts the child)
    const char *path;         // clab's own binary (init)
    char *const *argv;
    char *const *envp;
};

/// clone3 + the child's raw-syscall prologue + execve. Returns the child's pid (host view) and
/// stores a pidfd in *pidfd, or returns -errno.
pid_t clab_spawn(const struct clab_spawn_request *req, int *pidfd);

/// The tracer's child (`clab trace -- CMD`): clone3, the same signal reset as clab_spawn's
/// child, then it waits until the parent writes one byte to `gate[1]` (the parent puts the
/// child's pid into the traced set first) and execve's at once, so its first traced syscall is
/// that execve. Both gate ends must be close-on-exec. Returns the pid and stores a pidfd in
/// *pidfd, or returns -errno.
pid_t clab_spawn_gated(const char *path, char *const *argv, char *const *envp, const int gate[2], int *pidfd);

/// `--console-socket` (runc's utils.SendFd): connects to the unix socket at `path` and sends `fd`
/// with SCM_RIGHTS, `name` (the pty's path) as the message. 0, or -1 with errno.
int clab_send_fd_to(const char *path, int fd, const char *name);
/// The receiving side (tests, and anyone playing conmon): one message on `socket`; returns the
/// fd received (or -1 with errno) and copies up to `size`-1 bytes of the message into `name`.
int clab_recv_fd(int socket, char *name, int size);

/// Marker for the tracer's stage view: an exported no-op `clab trace` attaches a uprobe to.
/// clab-init, clab's host side and the cloned child call it with a StageMark's value
/// (ClabSpec/StageMark.swift defines them). Found by its symbol: do not strip clab or clab-init.
void clab_mark(int mark);

// Variadic or ABI-awkward calls, wrapped.
int clab_pivot_root(const char *new_root, const char *put_old);
int clab_set_pdeathsig(int sig);

// Stage 12 (prctl and capset are variadic or raw syscalls, which Swift cannot call).
// Each returns 0 or -1 with errno set.
int clab_capbset_drop(int cap);
int clab_ambient_clear_all(void);
// prctl(PR_CAP_AMBIENT_RAISE): an OCI bundle's process.capabilities.ambient, one capability.
int clab_ambient_raise(int cap);
int clab_set_no_new_privs(void);
// prctl(PR_SET_KEEPCAPS): keep the permitted set across a change from uid 0 (an OCI process.user).
int clab_set_keepcaps(int keep);
// capset(2), version 3: the three 64-bit sets of the calling thread.
int clab_capset(uint64_t effective, uint64_t permitted, uint64_t inheritable);
// seccomp(SECCOMP_SET_MODE_FILTER, 0, {count, filter}): `filter` is `count` struct sock_filter.
int clab_seccomp_install(const void *filter, unsigned short count);
int clab_link_up(const char *ifname);
// SIOCGIFFLAGS: the device's IFF_* flags in the caller's network namespace, or -1 with errno.
int clab_link_flags(const char *ifname);
int clab_ioctl_int(int fd, unsigned long request, int *value);

// mount_setattr(2) on `path` and every mount below it: set these MOUNT_ATTR_* flags.
#define CLAB_MOUNT_ATTR_RDONLY 0x1
#define CLAB_MOUNT_ATTR_NOSUID 0x2
#define CLAB_MOUNT_ATTR_NODEV 0x4
int clab_mount_setattr_recursive(const char *path, uint64_t set);

// Runs an nft script through libnftables, loaded on first use (nftables.c says why). Returns
// nft's status (0: applied), -2 when the library is missing; *output and *error are malloc'd
// (free them), the error text as nft prints it.
int clab_nft_run(const char *script, int handles, char **output, char **error);

// A new pseudo-terminal: returns the master fd and stores the slave's in *slave (both
// O_CLOEXEC, neither a controlling terminal of ours), or -1 with errno. TIOCGPTPEER opens the
// slave from the master, with no path lookup in /dev/pts; the _IO macros are not imported.
int clab_open_pty(int *slave);
// The slave of an opened ptmx (`master`), unlocked and opened with TIOCGPTPEER (O_CLOEXEC,
// O_NOCTTY), or -1 with errno. `clab exec -t` opens the container's own /dev/pts/ptmx with it.
int clab_pty_peer(int master);
// The pty's number (N of /dev/pts/N) when `fd` is a pty master (TIOCGPTN) on a devpts
// filesystem (fstatfs), else -1.
int clab_devpts_master_number(int fd);
// Sends `fd` with SCM_RIGHTS and `length` bytes of `message` on the connected socket `sock`.
// 0, or -1 with errno.
int clab_send_fd(int sock, int fd, const void *message, int length);

// The user's terminal in raw mode while clab relays it to the container's pseudo-terminal.
// C, because the saved settings must be restorable from atexit and from a signal's path.
int clab_tty_raw(int fd);
void clab_tty_restore(void);
// SIGWINCH: a flag the relay loop reads (and clears).
void clab_watch_winch(void);
int clab_winch_pending(void);
int clab_pipe_cloexec(int fds[2]);
// posix_spawn_file_actions_addclosefrom_np (glibc 2.34, declared only under _GNU_SOURCE):
// the spawned process gets no fd of ours from `from` on. `actions` is a posix_spawn_file_actions_t.
int clab_spawn_closefrom(void *actions, int from);
// pidfd_open(2) and pidfd_send_signal(2) (no glibc wrappers on Debian 12): -1 and errno on failure.
int clab_pidfd_open(pid_t pid);
int clab_pidfd_send_signal(int pidfd, int sig);

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
int clab_unshare(int flags);
int clab_setresuid(uid_t uid);
int clab_setresgid(gid_t gid);

// `clab exec` (clab-init --exec, single-threaded): prctl(PR_SET_DUMPABLE), pidfd_open(2),
// close_range(3, ~0, CLOSE_RANGE_CLOEXEC), execveat(fd, "", ..., AT_EMPTY_PATH), fork(2).
// Each returns what the syscall returns, or -1 with errno.
int clab_set_dumpable(int dumpable);
int clab_get_dumpable(void);
int clab_cloexec_from(int first);
int clab_execveat_fd(int fd, char *const argv[], char *const envp[]);
pid_t clab_fork(void);
// `clab-init --exec` runs from a sealed copy of itself (memfd_create, F_SEAL_*), as runc does
// since CVE-2019-5736: a script in the container whose interpreter is /proc/self/exe makes the
// kernel execute our binary *inside* the container, where container root can open it through
// /proc/<pid>/exe; that must never be the host's file. Returns 0 when already running from the
// copy, else execveat's the copy with `argv` (no return) or returns -1 with errno.
int clab_reexec_sealed(char *const argv[]);

// lgetxattr(2) (<sys/xattr.h> is not in Swift's Glibc module): returns the value's length or -1.
long clab_lgetxattr(const char *path, const char *name, void *value, unsigned long size);
// lsetxattr(2), likewise: returns 0 or -1 with errno.
int clab_lsetxattr(const char *path, const char *name, const void *value, unsigned long size, int flags);
// fgetxattr(2) and fsetxattr(2): the same on an open fd, for copies that look nothing up by name.
long clab_fgetxattr(int fd, const char *name, void *value, unsigned long size);
int clab_fsetxattr(int fd, const char *name, const void *value, unsigned long size, int flags);
// lseek(2) whences for sparse files (GNU, hidden from Swift).
#define CLAB_SEEK_DATA 3
#define CLAB_SEEK_HOLE 4

// Signal forwarding while the parent waits: the handler only calls kill(2) and records.
void clab_forward_signals_to(pid_t pid);
int clab_pending_signal(void);
void clab_forward_signals_reset(void);

// <sys/wait.h> macros, which Swift does not import.
int clab_wifexited(int status);
int clab_wexitstatus(int status);
int clab_wifsignaled(int status);
int clab_wtermsig(int status);

// renameat2(..., RENAME_NOREPLACE): -1 with EEXIST when newpath exists.
int clab_renameat_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

#endif
