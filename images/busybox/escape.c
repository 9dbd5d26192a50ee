/*
 * escape: known container escape techniques, each tried for real and reported (lesson 12's matrix).
 *
 * Usage: escape list | escape [--outside PID] all | escape [--outside PID] NAME...
 *   --outside PID: a process outside the container that the caller started (clab passes its own
 *   pid) and may be probed: ptrace, kill and the runtime's binary target it. Without it, the
 *   nearest ancestor with another root (at stages 1-2 the runtime, clab).
 * Output, one line per technique:  NAME open|blocked|error ERRNO|- DETAIL
 *   open: the call the attack needs succeeded. blocked: it failed, with the errno the kernel gave
 *   (or "-" and why, e.g. a masked file). error: the probe itself could not run.
 *   DETAIL starts with the call that failed (its first word up to a space or "("), so results
 *   can be compared step by step.
 * Each technique runs in a forked child with a timeout, so one cannot disturb the next.
 *
 * SAFE EVEN WHEN OPEN, even as the host's root at stages 1-4: nothing on the host changes and
 * nothing persists. A mount is undone at once; namespaces die with the child; the sysctl is
 * written with the value it already holds; /proc/sysrq-trigger and the runtime's binary are only
 * opened for writing, never written; devices are read one byte, O_RDONLY, and the node is removed;
 * ptrace only seizes (never stops) the outside process and the tracer exits at once (the kernel
 * detaches); signals are 0 (a probe, delivered to nobody); the kernel module is 64 zero bytes,
 * which no kernel loads; the key lives in a new session keyring of the child only; TIOCSTI types
 * into a pseudo-terminal this program opened itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

static pid_t outside;
static int out = 1; /* the result pipe, in the child */

/* The process that ptrace, kill and the runtime's binary aim at: --outside, else the nearest
 * ancestor whose root is not ours if it is clab (the runtime, at stages 1-2); never anybody else's
 * process. 0 and *why: none. With a pid namespace the walk ends at a parent of 0. */
static pid_t target(const char **why) {
    *why = "no process outside the container is visible (pid namespace)";
    if (outside) return outside;
    struct stat self, other;
    if (stat("/", &self) != 0) return 0;
    pid_t pid = getppid();
    for (int depth = 0; pid > 0 && depth < 64; depth++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/root/", pid);
        if (stat(path, &other) != 0 || other.st_dev != self.st_dev || other.st_ino != self.st_ino) {
            snprintf(path, sizeof path, "/proc/%d/comm", pid);
            FILE *f = fopen(path, "r");
            int clab = f && fgets(line, sizeof line, f) && !strcmp(line, "clab\n");
            if (f) fclose(f);
            if (clab) return pid;
            *why = "the nearest process outside is not clab's: not probed (pass --outside PID)";
            return 0;
        }
        snprintf(path, sizeof path, "/proc/%d/status", pid);
        FILE *f = fopen(path, "r");
        pid_t parent = 0;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "PPid: %d", &parent) == 1) break;
        if (f) fclose(f);
        pid = parent;
    }
    return 0;
}

/* No target: blocked by the pid namespace, or not probed at all. */
static int no_target(const char *why);

static void report(const char *status, int err, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    const char *code = err ? strerrorname_np(err) : NULL;
    dprintf(out, "%s %s %s\n", status, code ? code : "-", detail);
}
#define OPEN(...) report("open", 0, __VA_ARGS__)
#define BLOCKED(err, ...) report("blocked", err, __VA_ARGS__)

static int no_target(const char *why) {
    if (strstr(why, "not probed")) report("error", 0, "%s", why);
    else BLOCKED(ESRCH, "%s", why);
    return 1;
}

/* mount: a tmpfs on a fresh directory, unmounted at once. */
static void t_mount(void) {
    char dir[] = "/tmp/.escape-mnt-XXXXXX";
    if (!mkdtemp(dir)) { report("error", errno, "mkdtemp %s", dir); return; }
    if (mount("escape", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k") != 0) {
        int e = errno;
        rmdir(dir);
        BLOCKED(e, "mount -t tmpfs on %s", dir);
        return;
    }
    umount2(dir, MNT_DETACH);
    rmdir(dir);
    OPEN("mounted a tmpfs on %s (and unmounted it)", dir);
}

/* unshare: new namespaces need CAP_SYS_ADMIN (mount) or nothing at all (user). */
static void t_unshare_mnt(void) {
    if (unshare(CLONE_NEWNS) != 0) { BLOCKED(errno, "unshare(CLONE_NEWNS)"); return; }
    OPEN("unshare(CLONE_NEWNS): a mount namespace of its own");
}

static void t_unshare_user(void) {
    if (unshare(CLONE_NEWUSER) != 0) { BLOCKED(errno, "unshare(CLONE_NEWUSER)"); return; }
    OPEN("unshare(CLONE_NEWUSER): every capability in a new user namespace");
}

/* shocker: open_by_handle_at with a forged handle. ext2/3/4 encode a directory as
 * FILEID_INO32_GEN {inode, generation}; inode 2 generation 0 is the filesystem's root, the host's
 * "/" when the mount is a bind from the host's disk. The kernel checks the caller's right to
 * decode handles (CAP_DAC_READ_SEARCH) before it looks at the handle. */
static void t_shocker(void) {
    struct { struct file_handle h; unsigned char bytes[128]; } fh;
    char target[256] = "/"; /* the mount whose filesystem the handle is decoded in */
    char fstype[64] = "?";
    FILE *mounts = fopen("/proc/self/mounts", "r");
    char line[1024];
    while (mounts && fgets(line, sizeof line, mounts)) {
        char dev[256], dir[256], type[64];
        if (sscanf(line, "%255s %255s %63s", dev, dir, type) != 3) continue;
        if (!strcmp(dir, "/") && !strcmp(target, "/")) snprintf(fstype, sizeof fstype, "%s", type);
        if (strncmp(type, "ext", 3) != 0) continue;
        int mid;
        fh.h.handle_bytes = sizeof fh.bytes;
        if (name_to_handle_at(AT_FDCWD, dir, &fh.h, &mid, 0) == 0 && fh.h.handle_type == 1) {
            snprintf(target, sizeof target, "%s", dir);
            snprintf(fstype, sizeof fstype, "%s", type);
            break;
        }
    }
    if (mounts) fclose(mounts);
    int anchor = open(target, O_RDONLY | O_NOCTTY); /* a directory or a bind-mounted file */
    if (anchor < 0) { report("error", errno, "open %s", target); return; }
    unsigned int forged[2] = {2, 0};
    fh.h.handle_bytes = sizeof forged;
    fh.h.handle_type = 1;
    memcpy(fh.h.f_handle, forged, sizeof forged);
    int fd = open_by_handle_at(anchor, &fh.h, O_RDONLY | O_DIRECTORY);
    int e = errno;
    close(anchor);
    if (fd < 0) { BLOCKED(e, "open_by_handle_at(%s on %s, {inode 2})", target, fstype); return; }
    struct stat st;
    fstat(fd, &st);
    close(fd);
    OPEN("open_by_handle_at(%s on %s, {inode 2}): opened inode %lu, the root of the filesystem under %s",
         target, fstype, (unsigned long)st.st_ino, target);
}

/* CVE-2019-5736: open the runtime's binary for writing through /proc/PID/exe. Opened, never
 * written (a running binary also refuses writers: ETXTBSY; the exploit reopens it after exit). */
static void t_runtime_exe(void) {
    const char *why;
    pid_t pid = target(&why);
    char path[64], exe[256] = "?";
    if (pid == 0 && no_target(why)) return;
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n >= 0) exe[n] = 0;
    int fd = open(path, O_WRONLY | O_NOCTTY);
    if (fd < 0) { BLOCKED(errno, "open %s (%s) for writing", path, exe); return; }
    close(fd);
    OPEN("opened %s (%s) for writing (wrote nothing)", path, exe);
}

/* /proc/sys: core_pattern is read by the host's kernel for every crash (a "|program" there runs
 * as the host's root). procfs checks write permission at open (owner, mode, a read-only mount), so
 * opening for writing proves it; nothing is ever written. */
static void t_proc_sys(void) {
    const char *path = "/proc/sys/kernel/core_pattern";
    int fd = open(path, O_WRONLY);
    if (fd < 0) { BLOCKED(errno, "open %s for writing", path); return; }
    close(fd);
    OPEN("opened %s for writing (wrote nothing)", path);
}

static void t_sysrq(void) {
    int fd = open("/proc/sysrq-trigger", O_WRONLY);
    if (fd < 0) { BLOCKED(errno, "open /proc/sysrq-trigger for writing"); return; }
    close(fd); /* never a command byte */
    OPEN("opened /proc/sysrq-trigger for writing (wrote nothing)");
}

/* A masked file is /dev/null (or an empty read-only tmpfs) bound over the real one. */
static int masked(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

static void t_kcore(void) {
    int fd = open("/proc/kcore", O_RDONLY);
    if (fd < 0) { BLOCKED(errno, "open /proc/kcore"); return; }
    if (masked(fd)) { close(fd); BLOCKED(0, "/proc/kcore is masked (/dev/null)"); return; }
    char c;
    ssize_t n = read(fd, &c, 1);
    int e = errno;
    close(fd);
    if (n < 0) { BLOCKED(e, "read /proc/kcore"); return; }
    if (n == 0) { BLOCKED(0, "/proc/kcore reads nothing (masked)"); return; }
    OPEN("read /proc/kcore: the kernel's memory");
}

/* The host's first disk from /proc/partitions (global, not namespaced), else loop0. */
static void t_mknod(void) {
    unsigned maj = 7, min = 0;
    char name[64] = "loop0";
    FILE *f = fopen("/proc/partitions", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        unsigned a, b;
        unsigned long long blocks;
        char n[64];
        if (sscanf(line, "%u %u %llu %63s", &a, &b, &blocks, n) != 4) continue;
        if (!strncmp(n, "loop", 4) || !strncmp(n, "ram", 3) || !strncmp(n, "zram", 4) || !strncmp(n, "sr", 2))
            continue;
        maj = a, min = b;
        snprintf(name, sizeof name, "%s", n);
        break;
    }
    if (f) fclose(f);
    char path[256];
    /* In the container's own /dev (a tmpfs of its own): if this child is killed between mknod and
     * unlink, the node goes with the container, never into a shared image. The host column
     * passes a temporary directory of its own. */
    const char *dir = getenv("ESCAPE_NODE_DIR") ? getenv("ESCAPE_NODE_DIR") : "/dev";
    snprintf(path, sizeof path, "%s/.escape-blk-%d", dir, getpid());
    if (mknod(path, S_IFBLK | 0600, makedev(maj, min)) != 0) {
        BLOCKED(errno, "mknod %s b %u %u (%s)", path, maj, min, name);
        return;
    }
    int fd = open(path, O_RDONLY);
    int e = errno;
    unlink(path);
    if (fd < 0) { BLOCKED(e, "open %s after mknod worked (%s, %u:%u)", path, name, maj, min); return; }
    char c;
    ssize_t n = read(fd, &c, 1);
    e = errno;
    close(fd);
    if (n < 0) { BLOCKED(e, "read %s (%s, %u:%u)", path, name, maj, min); return; }
    OPEN("mknod + read of block device %s (%u:%u)", name, maj, min);
}

/* ptrace: seize (which does not stop it) a process outside; this child then exits and the kernel
 * detaches. Only the caller's own process (--outside) or the parent is ever the target. */
static void t_ptrace(void) {
    const char *why;
    pid_t pid = target(&why);
    if (pid == 0 && no_target(why)) return;
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) { BLOCKED(errno, "ptrace(PTRACE_SEIZE, %d)", pid); return; }
    OPEN("ptrace(PTRACE_SEIZE, %d): attached (detached at exit)", pid);
}

/* A kernel module: 64 zero bytes are no ELF image. EPERM: refused before reading it (capability or
 * seccomp); ENOEXEC and friends: the kernel read it, a real module would have loaded. */
static void t_module(void) {
    static char image[64];
    if (syscall(SYS_init_module, image, sizeof image, "") == 0) {
        report("error", 0, "init_module accepted 64 zero bytes?");
        return;
    }
    int e = errno;
    if (e == EPERM || e == EACCES || e == ENOSYS) { BLOCKED(e, "init_module"); return; }
    OPEN("init_module read the image (%s: not a module)", strerrorname_np(e));
}

/* keyctl: the kernel's keyrings are not namespaced. The key goes into a fresh session keyring of
 * this child alone, and is revoked. */
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_REVOKE 3
#define KEY_SPEC_SESSION_KEYRING -3
static void t_keyctl(void) {
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0) {
        BLOCKED(errno, "keyctl(KEYCTL_JOIN_SESSION_KEYRING)");
        return;
    }
    long key = syscall(SYS_add_key, "user", "clab-escape-probe", "x", 1, KEY_SPEC_SESSION_KEYRING);
    if (key < 0) { BLOCKED(errno, "add_key"); return; }
    syscall(SYS_keyctl, KEYCTL_REVOKE, key);
    OPEN("add_key to a new session keyring (revoked)");
}

static void t_raw_socket(void) {
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0) { BLOCKED(errno, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)"); return; }
    close(fd); /* nothing sent */
    OPEN("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)");
}

/* kill: signal 0 delivers nothing; it only says whether the process could be signalled. */
static void t_kill(void) {
    const char *why;
    pid_t pid = target(&why);
    if (pid == 0 && no_target(why)) return;
    if (kill(pid, 0) != 0) { BLOCKED(errno, "kill(%d, 0)", pid); return; }
    OPEN("kill(%d, 0): a process outside can be signalled", pid);
}

/* TIOCSTI on a terminal that is not ours: a pseudo-terminal opened here, not made controlling. */
static void t_tiocsti(void) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY);
    if (master < 0 && errno == ENOENT) {
        /* No pseudo-terminals here: the only terminal left is the controlling one. It is never
         * typed into (at stages 1-3 it could be the caller's); whether there is one is the answer. */
        int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
        if (tty < 0) { BLOCKED(errno, "open /dev/tty: no /dev/ptmx and no controlling terminal"); return; }
        close(tty);
        report("error", 0, "no /dev/ptmx; a controlling terminal exists, not typed into");
        return;
    }
    if (master < 0) { report("error", errno, "open /dev/ptmx"); return; }
    char *name = NULL;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || !(name = ptsname(master))) {
        report("error", errno, "unlockpt");
        close(master);
        return;
    }
    int slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0) { report("error", errno, "open %s", name); close(master); return; }
    char c = '#';
    int rc = ioctl(slave, TIOCSTI, &c);
    int e = errno;
    close(slave);
    close(master);
    if (rc != 0) { BLOCKED(e, "ioctl(TIOCSTI) on %s, not the controlling terminal", name); return; }
    OPEN("ioctl(TIOCSTI) typed into %s, a terminal it does not control", name);
}

static const struct {
    const char *name;
    void (*run)(void);
    const char *what;
} techniques[] = {
    {"mount", t_mount, "mount a filesystem (tmpfs)"},
    {"unshare-mnt", t_unshare_mnt, "unshare a new mount namespace"},
    {"unshare-user", t_unshare_user, "unshare a new user namespace"},
    {"shocker", t_shocker, "open_by_handle_at with a forged handle (shocker)"},
    {"runtime-exe", t_runtime_exe, "open the runtime's binary for writing (CVE-2019-5736)"},
    {"proc-sys", t_proc_sys, "write /proc/sys/kernel/core_pattern"},
    {"sysrq", t_sysrq, "open /proc/sysrq-trigger for writing"},
    {"kcore", t_kcore, "read /proc/kcore"},
    {"mknod", t_mknod, "mknod + read the host's disk"},
    {"ptrace", t_ptrace, "ptrace a process outside"},
    {"module", t_module, "load a kernel module"},
    {"keyctl", t_keyctl, "add a key (keyrings are not namespaced)"},
    {"raw-socket", t_raw_socket, "open a raw socket"},
    {"kill", t_kill, "signal a process outside (signal 0)"},
    {"tiocsti", t_tiocsti, "type into a terminal (TIOCSTI)"},
};
#define COUNT (sizeof techniques / sizeof techniques[0])

static void run(size_t i) {
    int fds[2];
    if (pipe(fds) != 0) { printf("%s error %s pipe\n", techniques[i].name, strerrorname_np(errno)); return; }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        printf("%s error %s fork\n", techniques[i].name, strerrorname_np(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (child == 0) {
        close(fds[0]);
        out = fds[1];
        techniques[i].run();
        _exit(0);
    }
    close(fds[1]);
    char result[600];
    size_t len = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int timedOut = 0;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, 200);
        if (r > 0) {
            ssize_t n = read(fds[0], result + len, sizeof result - 1 - len);
            if (n <= 0) break;
            len += (size_t)n;
            if (len >= sizeof result - 1) break;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 5) { timedOut = 1; break; }
    }
    close(fds[0]);
    if (timedOut) kill(child, SIGKILL);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    result[len] = 0;
    char *nl = strchr(result, '\n');
    if (nl) *nl = 0;
    if (timedOut)
        printf("%s error ETIMEDOUT no answer in 5 s\n", techniques[i].name);
    else if (WIFSIGNALED(status) && len == 0)
        printf("%s blocked - killed by signal %d (%s)\n", techniques[i].name, WTERMSIG(status),
               sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
    else if (len == 0)
        printf("%s error - no result (exit status %d)\n", techniques[i].name, WEXITSTATUS(status));
    else
        printf("%s %s\n", techniques[i].name, result);
}

int main(int argc, char **argv) {
    int a = 1;
    if (a + 1 < argc && !strcmp(argv[a], "--outside")) {
        outside = (pid_t)atoi(argv[a + 1]);
        a += 2;
    }
    if (a >= argc) {
        fprintf(stderr, "usage: escape list | escape [--outside PID] all | escape [--outside PID] NAME...\n");
        return 2;
    }
    if (!strcmp(argv[a], "list")) {
        for (size_t i = 0; i < COUNT; i++) printf("%s\t%s\n", techniques[i].name, techniques[i].what);
        return 0;
    }
    if (!strcmp(argv[a], "all")) {
        for (size_t i = 0; i < COUNT; i++) run(i);
        return 0;
    }
    for (; a < argc; a++) {
        size_t i = 0;
        while (i < COUNT && strcmp(techniques[i].name, argv[a])) i++;
        if (i == COUNT) {
            fprintf(stderr, "escape: no technique '%s': run `escape list`\n", argv[a]);
            return 2;
        }
        run(i);
    }
    return 0;
}
