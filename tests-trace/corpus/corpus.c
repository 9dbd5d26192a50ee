// The comparison corpus's C program (bench/compare-strace.py builds it with gcc and traces each
// mode under strace -f -y and under clab trace --host). One mode per run: each exercises a family
// of calls strace decodes, in an order that does not depend on timing (threads join before the
// next step; a child is waited for before the parent goes on).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <termios.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void files(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/file.txt", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    write(fd, "hello\n", 6);
    struct iovec iov[2] = {{"ab", 2}, {"cd\n", 3}};
    writev(fd, iov, 2);
    fsync(fd);
    close(fd);
    fd = open(path, O_RDONLY);
    char buf[64];
    read(fd, buf, sizeof buf);
    lseek(fd, 0, SEEK_SET);
    pread(fd, buf, 4, 2);
    struct stat st;
    fstat(fd, &st);
    fcntl(fd, F_GETFD);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_GETFL);
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    ioctl(fd, TCGETS, buf);
    close(d);
    close(fd);
    stat(path, &st);
    lstat("/nonexistent", &st);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    fd = openat(dfd, "file.txt", O_RDONLY);
    fstatat(dfd, "file.txt", &st, AT_SYMLINK_NOFOLLOW);
    close(fd);
    char link[512];
    snprintf(link, sizeof link, "%s/link", dir);
    symlink("file.txt", link);
    readlink(link, buf, sizeof buf);
    readlinkat(dfd, "link", buf, sizeof buf);
    getxattr(path, "user.nothing", buf, sizeof buf);
    lgetxattr(link, "user.nothing", buf, sizeof buf);
    listxattr(path, buf, sizeof buf);
    access(path, R_OK | W_OK);
    faccessat(dfd, "missing", F_OK, 0);
    chmod(path, 0600);
    truncate(path, 3);
    unlink(link);
    unlinkat(dfd, "file.txt", 0);
    mkdirat(dfd, "sub", 0755);
    unlinkat(dfd, "sub", AT_REMOVEDIR);
    close(dfd);
    getrandom(buf, 8, GRND_NONBLOCK);
    getcwd(buf, sizeof buf);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    setrlimit(RLIMIT_NOFILE, &rl);
    struct timespec ts = {0, 1000};
    nanosleep(&ts, NULL);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(m, 8192, MADV_DONTNEED);
    munmap(m, 8192);
    prctl(PR_SET_NAME, "corpus-files");
    prctl(PR_GET_DUMPABLE);
    umask(022);
}

static void *worker(void *arg) {
    int *fds = arg;
    char c;
    read(fds[0], &c, 1);
    write(fds[1], "y", 1);
    return NULL;
}

static void threads(void) {
    int a[2], b[2];
    pipe2(a, O_CLOEXEC);
    pipe2(b, O_CLOEXEC);
    int fds[2] = {a[0], b[1]};
    pthread_t t;
    pthread_create(&t, NULL, worker, fds);
    write(a[1], "x", 1);
    char c;
    read(b[0], &c, 1);
    pthread_join(t, NULL);
}

static void pipes(void) {
    int p[2];
    pipe(p);
    int e = eventfd(0, EFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    write(p[1], "data\n", 5);
    epoll_wait(ep, &ev, 1, 0);
    struct pollfd pf[2] = {{p[0], POLLIN, 0}, {e, POLLIN, 0}};
    poll(pf, 2, 0);
    char buf[16];
    read(p[0], buf, sizeof buf);
    dup2(p[1], 20);
    dup3(p[0], 21, O_CLOEXEC);
    close(20);
    close(21);
    close(ep);
    close(e);
    close(p[0]);
    close(p[1]);
}

static void sockets(const char *dir) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    send(sv[0], "ping", 4, 0);
    char buf[16];
    recv(sv[1], buf, sizeof buf, 0);
    struct iovec iov = {"msg", 3};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    sendmsg(sv[1], &mh, 0);
    struct iovec riov = {buf, sizeof buf};
    struct msghdr rh = {.msg_iov = &riov, .msg_iovlen = 1};
    recvmsg(sv[0], &rh, 0);
    int one = 1;
    setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    shutdown(sv[0], SHUT_WR);
    close(sv[0]);
    close(sv[1]);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s/sock", dir);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&addr, sizeof addr);
    listen(l, 1);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    connect(c, (struct sockaddr *)&addr, sizeof addr);
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    write(c, "hi", 2);
    read(s, buf, sizeof buf);
    close(s);
    close(c);
    close(l);
    unlink(addr.sun_path);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(0x7f000001)};
    sendto(u, "x", 1, 0, (struct sockaddr *)&in, sizeof in);
    close(u);
}

static volatile sig_atomic_t got;
static void handler(int sig) { got = sig; }

static void signals(void) {
    struct sigaction sa = {.sa_handler = handler};
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, &old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    kill(getpid(), SIGUSR1);
    pid_t pid = fork();
    if (pid == 0) _exit(3);
    int status;
    waitpid(pid, &status, 0);
    pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
}

static void exec_calls(void) {
    char *bad[] = {"nope", "arg", NULL};
    execve("/nonexistent/nope", bad, environ);
    pid_t pid;
    char *argv[] = {"true", "one", "two", NULL};
    posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);  // clone(CLONE_VM|CLONE_VFORK) + execve
    int status;
    waitpid(pid, &status, 0);
    pid = vfork();
    if (pid == 0) {
        char *v[] = {"busybox", "true", "after", "vfork", NULL};
        execve("/bin/busybox", v, environ);
        _exit(127);
    }
    waitpid(pid, &status, 0);
}

static void paths(const char *dir) {
    // Names of 255 bytes (the longest one component may be) and a 300-byte path.
    char name[256], path[1024];
    memset(name, 'a', 255);
    name[255] = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    unlink(path);
    char sub[200];
    memset(sub, 'b', 150);
    sub[150] = 0;
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/%s/%.*s", dir, sub, 140, name);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    rmdir(path);
    open("/tmp/new\nline\377", O_RDONLY);
}

static void abi32(void) {
    // getpid and a failing open through the 32-bit entry (int $0x80): numbers from the i386 table.
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");  // i386 getpid
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(5), "b"(0), "c"(0) : "memory");  // i386 open(NULL, 0)
    syscall(SYS_getpid);
}

// One fd (or one struct ucred) in a control message over a unix socketpair.
static void send_control(int sock, int level, int type, const void *data, size_t len) {
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = CMSG_SPACE(len)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(c), data, len);
    sendmsg(sock, &mh, 0);
}

static int receive_control(int sock, int flags) {
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    recvmsg(sock, &mh, flags);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    int fd = -1;
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

// Control messages over a unix socketpair: a file's fd and a pipe's (SCM_RIGHTS), then the
// sender's credentials (SCM_CREDENTIALS, which the receiver asks for with SO_PASSCRED).
static void cmsg(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    send_control(sv[0], SOL_SOCKET, SCM_RIGHTS, &fd, sizeof fd);
    int got = receive_control(sv[1], MSG_CMSG_CLOEXEC);
    char buf[4];
    read(got, buf, 1);
    close(got);
    close(fd);
    int p[2];
    pipe2(p, O_CLOEXEC);
    send_control(sv[0], SOL_SOCKET, SCM_RIGHTS, &p[1], sizeof p[1]);
    got = receive_control(sv[1], 0);
    write(got, "x", 1);
    close(got);
    close(p[0]);
    close(p[1]);
    int one = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    struct ucred uc = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
    send_control(sv[0], SOL_SOCKET, SCM_CREDENTIALS, &uc, sizeof uc);
    receive_control(sv[1], 0);
    close(sv[0]);
    close(sv[1]);
    // The kernel's receive timestamps, one kind at a time on a datagram pair: struct timeval
    // (SO_TIMESTAMP_OLD), struct timespec (SO_TIMESTAMPNS_OLD), the 64-bit timeval of
    // SO_TIMESTAMP_NEW (63, which y2038-safe 32-bit programs ask for).
    static const int stamps[] = {SO_TIMESTAMP, SO_TIMESTAMPNS, 63};
    for (unsigned i = 0; i < sizeof stamps / sizeof stamps[0]; i++) {
        socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
        setsockopt(sv[1], SOL_SOCKET, stamps[i], &one, sizeof one);
        send(sv[0], "t", 1, 0);
        receive_control(sv[1], 0);
        close(sv[0]);
        close(sv[1]);
    }
}

// The x32 ABI: the syscall instruction with __X32_SYSCALL_BIT (0x40000000) in the number. A
// kernel without CONFIG_X86_X32_ABI (this project's machines) fails each with ENOSYS, but the
// calls are made, traced and named all the same. Strings in memory below 4 GiB (MAP_32BIT), as
// an x32 program's are.
static long x32call(long nr, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(0x40000000L | nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void x32(void) {
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    strcpy(low, "/etc/hostname");
    strcpy(low + 64, "x32\n");
    x32call(39, 0, 0, 0, 0, 0, 0);                         // getpid: shared with x86_64
    x32call(2, (long)low, O_RDONLY, 0, 0, 0, 0);           // open: shared, its path read
    x32call(1, 1, (long)(low + 64), 4, 0, 0, 0);           // write: shared, its buffer read
    x32call(3, -1, 0, 0, 0, 0, 0);                         // close
    x32call(13, SIGCHLD, 0, 0, 8, 0, 0);                   // rt_sigaction#64: x86_64's only
    x32call(512, SIGCHLD, 0, 0, 8, 0, 0);                  // x32's own rt_sigaction
    x32call(547, 1, 0, 0, 0, RWF_HIPRI, 0);                // x32's pwritev2: flags fifth
    x32call(600, 1, 2, 3, 0, 0, 0);                        // no such call
    munmap(low, 4096);
    syscall(SYS_getpid);
}

static void killed(void) {
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        read(p[0], &c, 1);  // blocks until the parent's SIGKILL
        _exit(0);
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    if (!strcmp(mode, "files")) files(dir);
    else if (!strcmp(mode, "threads")) threads();
    else if (!strcmp(mode, "pipes")) pipes();
    else if (!strcmp(mode, "sockets")) sockets(dir);
    else if (!strcmp(mode, "signals")) signals();
    else if (!strcmp(mode, "exec")) exec_calls();
    else if (!strcmp(mode, "paths")) paths(dir);
    else if (!strcmp(mode, "abi32")) abi32();
    else if (!strcmp(mode, "x32")) x32();
    else if (!strcmp(mode, "cmsg")) cmsg();
    else if (!strcmp(mode, "killed")) killed();
    else return 2;
    return 0;
}
