#!/usr/bin/env bash
# Lab 6, reference solution: two network namespaces joined by a veth pair, by hand.
#
# Contract (CI runs this): run as root. `solution.sh` builds lab6-a and lab6-b and exits 0; run
# again, it starts from scratch (it deletes them first). `solution.sh cleanup` deletes lab6-a
# and lab6-b and nothing else. Everything lives in the two namespaces: the pair is created with
# its ends already in them, so no device ever appears in the host's namespace, and the only
# addresses are TEST-NET-2 (198.51.100.0/24), inside them. Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi

cleanup() {
    # Deleting a namespace destroys every device in it, and a veth takes its peer along.
    for ns in lab6-a lab6-b; do
        if [ -e "/run/netns/$ns" ]; then ip netns delete "$ns"; fi
    done
}

case "${1:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh [cleanup]" >&2; exit 2 ;;
esac

cleanup

# Two named network namespaces: ip pins each with a bind mount of its nsfs file on
# /run/netns/NAME, so it lives on with no process in it.
ip netns add lab6-a
ip netns add lab6-b

# One veth pair, the cable: a frame sent into one end comes out of the other. Both ends are
# made straight inside their namespaces (`netns` before `type`, and again after `peer name`).
ip link add veth-a netns lab6-a type veth peer name veth-b netns lab6-b

# An address on each end, in one /24: the kernel adds the route 198.51.100.0/24 dev veth-X.
ip -n lab6-a addr add 198.51.100.1/24 dev veth-a
ip -n lab6-b addr add 198.51.100.2/24 dev veth-b

# Every link starts down: lo and the veth end, in both namespaces. A veth carries frames only
# when BOTH ends are up (until then each side says NO-CARRIER).
for ns in lab6-a lab6-b; do
    ip -n "$ns" link set lo up
done
ip -n lab6-a link set veth-a up
ip -n lab6-b link set veth-b up

echo "solution: lab6-a veth-a 198.51.100.1/24 <-> lab6-b veth-b 198.51.100.2/24, all up" >&2
