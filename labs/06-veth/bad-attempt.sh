#!/usr/bin/env bash
# Lab 6, a plausible mistake: everything is made, both addresses are on, lo is up on both sides
# and veth-a is up, but veth-b, the peer, was never brought up. A new link starts down, and a
# veth pair carries nothing until both ends are up: veth-a says NO-CARRIER, and no datagram
# reaches lab6-b. `clab lab check 6` must reject it.
#
# Contract: run as root; builds lab6-a and lab6-b from scratch. `bad-attempt.sh cleanup` (or
# the solution's cleanup) deletes them.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi
for ns in lab6-a lab6-b; do
    if [ -e "/run/netns/$ns" ]; then ip netns delete "$ns"; fi
done
if [ "${1:-}" = cleanup ]; then exit 0; fi

ip netns add lab6-a
ip netns add lab6-b
ip link add veth-a netns lab6-a type veth peer name veth-b netns lab6-b
ip -n lab6-a addr add 198.51.100.1/24 dev veth-a
ip -n lab6-b addr add 198.51.100.2/24 dev veth-b
ip -n lab6-a link set lo up
ip -n lab6-b link set lo up
ip -n lab6-a link set veth-a up
echo "bad-attempt: lab6-a and lab6-b, cabled and addressed; veth-b left down" >&2
