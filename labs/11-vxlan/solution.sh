#!/usr/bin/env bash
# Lab 11, reference solution: two containers on two simulated hosts, joined by a VXLAN overlay.
#
# Contract (CI runs this): run as root. `solution.sh` builds the lab's network namespaces and
# exits 0; run again, it starts from scratch (it deletes the lab's namespaces first).
# `solution.sh cleanup` deletes every lab11-* namespace and nothing else. Everything lives in
# namespaces of the lab's own: the host's interfaces, routes and firewall are never touched, and
# the only addresses are TEST-NET-3 (underlay) and 10.42.0.0/24 (overlay), inside them.
# Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi

cleanup() {
    # Deleting a namespace destroys every device in it, and a veth takes its peer along.
    for ns in $(ip netns list | awk '$1 ~ /^lab11-/ {print $1}'); do
        ip netns delete "$ns"
    done
}

case "${1:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh [cleanup]" >&2; exit 2 ;;
esac

cleanup
say() { echo "solution: $*" >&2; }

# Two "hosts" and one "container" on each: four network namespaces.
for ns in lab11-host1 lab11-host2 lab11-c1 lab11-c2; do
    ip netns add "$ns"
done

# The underlay: one veth pair is the cable between the hosts' network cards, eth0 on both ends.
ip link add eth0 netns lab11-host1 type veth peer name eth0 netns lab11-host2
ip -n lab11-host1 addr add 203.0.113.1/24 dev eth0
ip -n lab11-host2 addr add 203.0.113.2/24 dev eth0
say "underlay: lab11-host1 eth0 203.0.113.1/24 <-> lab11-host2 eth0 203.0.113.2/24"

# Each host: a VXLAN device (VNI 42, IANA's UDP port 4789, the other host as its one remote),
# a bridge that joins it to the local container's veth, and the container's end of that veth.
# Without `dstport 4789` Linux uses 8472, its default from before IANA assigned a port.
setup_host() {
    local host=$1 local_ip=$2 remote_ip=$3 container=$4 address=$5
    ip -n "$host" link add vxlan42 type vxlan id 42 dstport 4789 local "$local_ip" remote "$remote_ip" dev eth0
    ip -n "$host" link add br0 type bridge
    ip -n "$host" link set vxlan42 master br0
    ip -n "$host" link add veth-c type veth peer name eth0 netns "$container"
    ip -n "$host" link set veth-c master br0
    # The tunnel wraps each frame in 50 bytes of headers (outer IP, UDP, VXLAN, Ethernet), so the
    # vxlan device's MTU is 1450. The bridge drops a bigger frame without a word: the container
    # must send at most 1450 bytes too.
    ip -n "$container" link set eth0 mtu 1450
    ip -n "$container" addr add "$address" dev eth0
    for dev in eth0 vxlan42 br0 veth-c; do ip -n "$host" link set "$dev" up; done
    ip -n "$container" link set lo up
    ip -n "$container" link set eth0 up
    say "$host: vxlan42 (VNI 42, port 4789, remote $remote_ip) and veth-c on br0; $container eth0 $address"
}
setup_host lab11-host1 203.0.113.1 203.0.113.2 lab11-c1 10.42.0.1/24
setup_host lab11-host2 203.0.113.2 203.0.113.1 lab11-c2 10.42.0.2/24
say "done: ip netns exec lab11-c1 busybox ping -c 1 10.42.0.2"
