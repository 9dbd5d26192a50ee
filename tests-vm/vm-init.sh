#!/bin/sh
# PID 1 of the clab test VM: run-vm.sh packs this file as /init in the initramfs.
#
# Phase 1 runs on the initramfs itself (the kernel's "rootfs"). pivot_root(2) refuses to move
# that root away (EINVAL), and clab's stages 4+ pivot_root, so everything is copied to a real
# tmpfs and switch_root makes it the root. Phase 2 ("switched") mounts the usual filesystems,
# a cgroup v2 hierarchy with controllers enabled for children, runs the payload with its output
# on the serial console, prints an end marker with its exit status and powers the VM off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if [ "$1" != switched ]; then
    mkdir -p /newroot
    # A name of its own, so nothing mistakes this root for another tmpfs (clab check 4 looks
    # for the host's root mount in the container's mount table).
    mount -t tmpfs -o mode=0755 clab-vm-root /newroot
    for f in /* /.[!.]*; do
        case "$f" in /newroot | "/.[!.]*") continue ;; esac
        cp -a "$f" /newroot/
    done
    exec switch_root -c /dev/console /newroot /init switched
    echo "clab-vm: switch_root failed" >&2
    exit 1
fi

# Phase 2: / is the tmpfs now.
. /payload/config # NONCE, CONTROLLERS, KERNEL_LOG (written per run by run-vm.sh)

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 run /run
# The options systemd uses on a cgroup v2 host.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
for c in $CONTROLLERS; do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control ||
        echo "clab-vm: cannot enable the $c controller (available: $(cat /sys/fs/cgroup/cgroup.controllers))" >&2
done
hostname clab-vm
ip link set lo up
# Modules run-vm.sh was asked for (--modules), dependencies first.
if [ -s /lib/modules/clab-vm.list ]; then
    while read -r ko; do
        insmod "$ko" || echo "clab-vm: insmod $ko failed" >&2
    done </lib/modules/clab-vm.list
fi
# Only emergencies (a panic) on the console while the payload runs, unless --kernel-log.
[ "$KERNEL_LOG" = 1 ] || dmesg -n 1
# The serial line would turn every \n into \r\n.
stty -onlcr 2>/dev/null

echo "@@CLAB-VM-START:$NONCE@@"
(
    cd /root || exit 125
    export HOME=/root CLAB_ROOT=/var/lib/clab CLAB_SHARE=/usr/local/share/clab
    exec /bin/sh /payload/run.sh
) </dev/null
status=$?
echo "@@CLAB-VM-EXIT:$NONCE:$status@@"
[ "$KERNEL_LOG" = 1 ] && dmesg -n 7
poweroff -f
