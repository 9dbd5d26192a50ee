#!/usr/bin/env bash
# Lab 11, a plausible mistake: everything right except one number. lab11-host2's vxlan device
# was made with VNI 43 (a typo, or a copy from another overlay). Each host still sends into the
# tunnel, but the other side has no device for the VNI it receives and drops every frame, without
# an error or a log line. `clab lab check 11` must reject it and say which VNI is wrong.
#
# Same contract as solution.sh: run as root; builds the lab's namespaces from scratch and exits
# 0; `bad-attempt.sh cleanup` deletes every lab11-* namespace. Nothing outside them is touched.
# Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi

cleanup() {
    for ns in $(ip netns list | awk '$1 ~ /^lab11-/ {print $1}'); do
        ip netns delete "$ns"
    done
}

case "${1:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: bad-attempt.sh [cleanup]" >&2; exit 2 ;;
esac

cleanup
for ns in lab11-host1 lab11-host2 lab11-c1 lab11-c2; do
    ip netns add "$ns"
done
ip link add eth0 netns lab11-host1 type veth peer name eth0 netns lab11-host2
ip -n lab11-host1 addr add 203.0.113.1/24 dev eth0
ip -n lab11-host2 addr add 203.0.113.2/24 dev eth0

setup_host() {
    local host=$1 vni=$2 local_ip=$3 remote_ip=$4 container=$5 address=$6
    ip -n "$host" link add vxlan42 type vxlan id "$vni" dstport 4789 local "$local_ip" remote "$remote_ip" dev eth0
    ip -n "$host" link add br0 type bridge
    ip -n "$host" link set vxlan42 master br0
    ip -n "$host" link add veth-c type veth peer name eth0 netns "$container"
    ip -n "$host" link set veth-c master br0
    ip -n "$container" link set eth0 mtu 1450
    ip -n "$container" addr add "$address" dev eth0
    for dev in eth0 vxlan42 br0 veth-c; do ip -n "$host" link set "$dev" up; done
    ip -n "$container" link set lo up
    ip -n "$container" link set eth0 up
}
setup_host lab11-host1 42 203.0.113.1 203.0.113.2 lab11-c1 10.42.0.1/24
setup_host lab11-host2 43 203.0.113.2 203.0.113.1 lab11-c2 10.42.0.2/24   # the mistake: 43
echo "bad-attempt: built, with VNI 43 in lab11-host2" >&2
