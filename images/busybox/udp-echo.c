/*
 * udp-echo: answer each UDP datagram with where it came from (lesson 11).
 *
 * Busybox's nc speaks TCP only. This is the UDP side of a published port: `udp-echo 81` in a
 * container with `-p 8081:81/udp`, and a datagram sent to the host's port 8081 comes back as
 *   udp-echo: <text> from <source address>:<port>
 * The source address shows what NAT did on the way in.
 *
 * Usage: udp-echo PORT [COUNT]   (COUNT: exit after that many datagrams; default: never)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: udp-echo PORT [COUNT]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    long count = argc > 2 ? atol(argv[2]) : -1;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        perror("udp-echo: bind");
        return 1;
    }
    printf("udp-echo: listening on UDP port %d\n", port);
    fflush(stdout);
    for (long n = 0; count < 0 || n < count; n++) {
        char buf[512], reply[700];
        struct sockaddr_in from;
        socklen_t len = sizeof(from);
        ssize_t got = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &len);
        if (got < 0) continue;
        while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r')) got--;
        buf[got] = 0;
        int k = snprintf(reply, sizeof(reply), "udp-echo: %s from %s:%d\n", buf, inet_ntoa(from.sin_addr),
                         ntohs(from.sin_port));
        sendto(fd, reply, (size_t)k, 0, (struct sockaddr *)&from, len);
        fputs(reply, stdout);
        fflush(stdout);
    }
    return 0;
}
