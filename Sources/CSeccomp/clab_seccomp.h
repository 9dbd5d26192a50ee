// libseccomp (Debian's libseccomp-dev 2.5) for Swift: the filter is built and exported on the
// host; clab-init installs the exported BPF bytes itself, so it never links libseccomp.
#ifndef CLAB_SECCOMP_H
#define CLAB_SECCOMP_H

#include <seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

/// A close-on-exec memfd for seccomp_export_bpf (libseccomp 2.5 exports to a file descriptor
/// only). memfd_create(3) is declared only under _GNU_SOURCE, which Swift's Glibc lacks.
static inline int clab_seccomp_memfd(void) {
    return (int)syscall(SYS_memfd_create, "clab-seccomp", 1U /* MFD_CLOEXEC */);
}

#endif
