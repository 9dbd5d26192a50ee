/* ids: the ids and effective capabilities this process runs with. Lesson 12 copies it, sets
 * its setuid bit and runs it as nobody: with no_new_privs the bit gains nothing. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    uid_t r, e, s;
    getresuid(&r, &e, &s);
    char line[256], caps[64] = "?";
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:", 7)) sscanf(line + 7, "%63s", caps);
    if (f) fclose(f);
    printf("uid=%u euid=%u CapEff=%s\n", r, e, caps);
    return 0;
}
