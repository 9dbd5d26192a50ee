/*
 * tiocsti: type into a terminal, the way an attacker in a container would try to (lesson 4).
 *
 * ioctl(fd, TIOCSTI, &c) pushes one byte into a terminal's input queue, as if it had been typed.
 * Whoever reads that terminal next (the shell you started clab from, once clab exits) reads the
 * bytes as your keystrokes. The kernel allows it on your own controlling terminal, or anywhere
 * with CAP_SYS_ADMIN. clab gives each container its own session and its own pseudo-terminal,
 * so the bytes land in the container's terminal, never in yours.
 *
 * Usage: tiocsti TEXT [DEVICE]   (default /dev/tty, the controlling terminal)
 * Exit 0: all bytes pushed (into which terminal: see the message). 1: refused, with the errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tiocsti TEXT [DEVICE]\n");
        return 2;
    }
    const char *device = argc > 2 ? argv[2] : "/dev/tty";
    int fd = open(device, O_RDWR | O_NOCTTY);
    if (fd < 0) {
        printf("tiocsti: open %s: %s (%s)\n", device, strerror(errno),
               errno == ENXIO ? "no controlling terminal: a session of its own, without one" : "cannot reach it");
        return 1;
    }
    const char *text = argv[1];
    size_t pushed = 0;
    for (; text[pushed]; pushed++) {
        if (ioctl(fd, TIOCSTI, &text[pushed]) != 0) {
            printf("tiocsti: ioctl(TIOCSTI) on %s: %s\n", device, strerror(errno));
            return 1;
        }
    }
    char *name = ttyname(fd);
    printf("tiocsti: typed %zu bytes into %s (%s)\n", pushed, device, name ? name : "?");
    return 0;
}
