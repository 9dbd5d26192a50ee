#!/usr/bin/env bash
# Lab 15, a plausible mistake: everything but NAT. The container, the bridge, the default route,
# the uplink, ip_forward in lab15-h: all there, and the container's datagram is routed out. But
# nothing rewrites its source, so it reaches lab15-out from 10.15.0.2, a private address the
# outside has no route back to (or it is dropped there). `clab lab check 15` must reject it.
#
# Contract: run as root; builds lab15-c, lab15-h and lab15-out from scratch. `bad-attempt.sh
# cleanup` (or the solution's cleanup) deletes them.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi
for ns in lab15-c lab15-h lab15-out; do
    if [ -e "/run/netns/$ns" ]; then ip netns delete "$ns"; fi
done
if [ "${1:-}" = cleanup ]; then exit 0; fi

for ns in lab15-c lab15-h lab15-out; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip -n lab15-h link add veth-c type veth peer name eth0 netns lab15-c
ip -n lab15-h link add br15 type bridge
ip -n lab15-h link set veth-c master br15
ip -n lab15-h addr add 10.15.0.1/24 dev br15
ip -n lab15-h link set br15 up
ip -n lab15-h link set veth-c up
ip -n lab15-c addr add 10.15.0.2/24 dev eth0
ip -n lab15-c link set eth0 up
ip -n lab15-c route add default via 10.15.0.1
ip -n lab15-h link add uplink type veth peer name eth0 netns lab15-out
ip -n lab15-h addr add 198.51.100.1/24 dev uplink
ip -n lab15-h link set uplink up
ip -n lab15-out addr add 198.51.100.2/24 dev eth0
ip -n lab15-out link set eth0 up
ip netns exec lab15-h sysctl -q -w net.ipv4.ip_forward=1
echo "bad-attempt: lab15-c, lab15-h (bridge, forwarding) and lab15-out; no masquerade" >&2
