// The rule table of clab's device program (bpf/clab_devices.bpf.c), shared with the Swift side
// that fills it (Sources/ClabDevices). Fixed-width types only: one layout for both sides.
#ifndef CLAB_DEVICES_H
#define CLAB_DEVICES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define CLAB_DEVICE_RULES_MAX 64  // allow rules per container (Docker's default list has 11)
#define CLAB_DEVICE_ANY 0xFFFFFFFFu  // a major or minor of "*"

// The kernel's encoding in struct bpf_cgroup_dev_ctx (enum bpf_devcg_* in linux/bpf.h, which
// vmlinux.h does not carry): access_type = access << 16 | type.
#define CLAB_DEVICE_BLOCK 1  // BPF_DEVCG_DEV_BLOCK
#define CLAB_DEVICE_CHAR 2   // BPF_DEVCG_DEV_CHAR
#define CLAB_DEVICE_MKNOD 1  // BPF_DEVCG_ACC_MKNOD
#define CLAB_DEVICE_READ 2   // BPF_DEVCG_ACC_READ
#define CLAB_DEVICE_WRITE 4  // BPF_DEVCG_ACC_WRITE

// One allow rule. `type` 0 ends the table; CLAB_DEVICE_BLOCK | CLAB_DEVICE_CHAR is "a".
struct clab_device_rule {
    __u32 type;    // bit set of CLAB_DEVICE_BLOCK, CLAB_DEVICE_CHAR
    __u32 major;   // or CLAB_DEVICE_ANY
    __u32 minor;   // or CLAB_DEVICE_ANY
    __u32 access;  // bit set of CLAB_DEVICE_MKNOD, _READ, _WRITE
};

#endif
