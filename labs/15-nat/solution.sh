#!/usr/bin/env bash
# Lab 15, reference solution: NAT by hand. A container namespace on a bridge in a host
# namespace, which forwards and masquerades it out of an uplink to an outside namespace.
#
# Contract (CI runs this): run as root. `solution.sh` builds lab15-c, lab15-h and lab15-out and
# exits 0; run again, it starts from scratch (it deletes them first). `solution.sh cleanup`
# deletes the three namespaces and nothing else. Everything lives in them: every veth is made
# with its ends already inside, the sysctl is lab15-h's own (ip netns exec), and the nft table
# is in lab15-h's own ruleset. Addresses: 10.15.0.0/24 and TEST-NET-2 (198.51.100.0/24) only.
# The host's interfaces, sysctls and ruleset are never touched. Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi

cleanup() {
    # Deleting a namespace destroys its devices (a veth takes its peer along), its sysctls and
    # its nft tables.
    for ns in lab15-c lab15-h lab15-out; do
        if [ -e "/run/netns/$ns" ]; then ip netns delete "$ns"; fi
    done
}

case "${1:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh [cleanup]" >&2; exit 2 ;;
esac

cleanup

# Three machines: a container, its host, and the outside world.
for ns in lab15-c lab15-h lab15-out; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done

# The container's cable to the host, and the host's bridge with the gateway address on it.
ip -n lab15-h link add veth-c type veth peer name eth0 netns lab15-c
ip -n lab15-h link add br15 type bridge
ip -n lab15-h link set veth-c master br15
ip -n lab15-h addr add 10.15.0.1/24 dev br15
ip -n lab15-h link set br15 up
ip -n lab15-h link set veth-c up
ip -n lab15-c addr add 10.15.0.2/24 dev eth0
ip -n lab15-c link set eth0 up
# Everything that is not on its /24 goes to the host.
ip -n lab15-c route add default via 10.15.0.1

# The host's uplink to the outside. The outside knows 198.51.100.0/24 and nothing else: no
# route back to the container's private network.
ip -n lab15-h link add uplink type veth peer name eth0 netns lab15-out
ip -n lab15-h addr add 198.51.100.1/24 dev uplink
ip -n lab15-h link set uplink up
ip -n lab15-out addr add 198.51.100.2/24 dev eth0
ip -n lab15-out link set eth0 up

# The host routes between its two networks: its own ip_forward (a per-namespace sysctl).
ip netns exec lab15-h sysctl -q -w net.ipv4.ip_forward=1

# NAT: what leaves by the uplink from the container's network gets the uplink's address as its
# source; conntrack remembers the mapping and rewrites the replies back.
ip netns exec lab15-h nft add table ip lab15
ip netns exec lab15-h nft add chain ip lab15 post '{ type nat hook postrouting priority srcnat; }'
ip netns exec lab15-h nft add rule ip lab15 post ip saddr 10.15.0.0/24 oifname uplink masquerade

echo "solution: lab15-c 10.15.0.2 -> br15 10.15.0.1 in lab15-h, masqueraded out of uplink 198.51.100.1 -> lab15-out 198.51.100.2" >&2
