/*
 * chmod-probe: lab 12's probe. Asks the kernel to change a file's mode through each of the four
 * system calls that can, and prints what it answered, one line each:
 *
 *   chmod: ok
 *   fchmod: EPERM (Operation not permitted)
 *   fchmodat: killed by signal 31 (Bad system call)
 *
 * Each call is made directly by its number, with syscall(2): libc would pick one for you
 * (busybox's chmod calls chmod(2), coreutils' calls fchmodat(2)), and a seccomp filter must stop
 * whichever a program picks. Each runs in a child of its own, so a filter that kills (SIGSYS)
 * stops one line, not the probe. The file is the probe's own, in /tmp, removed at the end.
 *
 * Usage: chmod-probe        Exit 0 when every line was printed (whatever the kernel answered).
 */
#define _GNU_SOURCE /* strerrorname_np */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6; older headers lack it */
#endif

static long call(const char *name, const char *path) {
    if (strcmp(name, "chmod") == 0) return syscall(SYS_chmod, path, 0600);
    if (strcmp(name, "fchmodat") == 0) return syscall(SYS_fchmodat, AT_FDCWD, path, 0600);
    if (strcmp(name, "fchmodat2") == 0) return syscall(SYS_fchmodat2, AT_FDCWD, path, 0600, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -2;
    return syscall(SYS_fchmod, fd, 0600);
}

int main(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/chmod-probe.%d", (int)getpid());
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        printf("chmod-probe: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    close(fd);
    const char *names[] = {"chmod", "fchmod", "fchmodat", "fchmodat2"};
    int status = 0;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            printf("%s: not tried: fork: %s\n", names[i], strerror(errno));
            status = 1;
            continue;
        }
        if (pid == 0) {
            long rc = call(names[i], path);
            if (rc == 0) printf("%s: ok\n", names[i]);
            else if (rc == -2) printf("%s: not tried: open %s: %s\n", names[i], path, strerror(errno));
            else printf("%s: %s (%s)\n", names[i], strerrorname_np(errno), strerror(errno));
            fflush(stdout);
            _exit(0);
        }
        int ws = 0;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
        if (WIFSIGNALED(ws)) {
            printf("%s: killed by signal %d (%s)\n", names[i], WTERMSIG(ws), strsignal(WTERMSIG(ws)));
        }
    }
    unlink(path);
    return status;
}
