// SPDX-License-Identifier: GPL-2.0
// The devices cgroup on cgroup v2: v2 has no devices.allow file, the kernel asks a
// BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup instead, at every open(2) and
// mknod(2) of a device node by a process in it. Sources/ClabDevices loads this, fills `rules`
// with the allow list (the list itself lives in Swift) and attaches it to the container's cgroup.
// Anything no rule allows is denied: the process gets EPERM.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "clab_devices.h"

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, CLAB_DEVICE_RULES_MAX);
    __type(key, __u32);
    __type(value, struct clab_device_rule);
} rules SEC(".maps");

SEC("cgroup/dev")
int check_device(struct bpf_cgroup_dev_ctx *ctx) {
    __u32 type = ctx->access_type & 0xFFFF;
    __u32 access = ctx->access_type >> 16;
    for (__u32 i = 0; i < CLAB_DEVICE_RULES_MAX; i++) {
        __u32 key = i;
        struct clab_device_rule *rule = bpf_map_lookup_elem(&rules, &key);
        if (!rule || rule->type == 0) return 0;  // the end of the table: denied
        if (!(rule->type & type)) continue;
        if (rule->major != CLAB_DEVICE_ANY && rule->major != ctx->major) continue;
        if (rule->minor != CLAB_DEVICE_ANY && rule->minor != ctx->minor) continue;
        // As the v1 controller: a rule allows a request only if it grants all of it.
        if ((access & rule->access) == access) return 1;
    }
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
