#!/usr/bin/env bash
# Lab 8, reference solution: a cgroup by hand, limits set, both limits made to strike.
#
# Contract (CI runs this): run as root. `solution.sh` makes the lab8 cgroups beneath the caller's
# own, starts a process in them that hits both limits and then sleeps, prints exactly one line
# on stdout, the sleeping process's host pid, and exits 0. `solution.sh cleanup` kills what is
# left in the lab8 cgroups and removes them. Works on cgroup v1 and v2. Commentary on stderr.
set -euo pipefail
. "$(dirname "$0")/lab8-common.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi
case "${1:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh [cleanup]" >&2; exit 2 ;;
esac
cleanup

mkdir -p "$MEMDIR" "$PIDSDIR"
if [ "$VERSION" = v2 ]; then
    # v2: the parent must hand the controllers down. It cannot if it holds processes itself
    # ("no internal processes"): then move your shell to a leaf first.
    echo "+memory +pids" > "$(dirname "$MEMDIR")/cgroup.subtree_control"
fi
echo 32M > "$MEMDIR/$MEMLIMIT"
echo 20 > "$PIDSDIR/pids.max"
echo "solution: $VERSION, memory in $MEMDIR, pids in $PIDSDIR" >&2

# The process joins both cgroups (one write each; on v2 they are the same), then:
# tail /dev/zero keeps one endless "line" in memory: past 32 MiB the kernel's OOM killer ends it.
# 30 background sleeps against pids.max 20: the fork that would make the 21st task fails.
MEMDIR=$MEMDIR PIDSDIR=$PIDSDIR sh -c '
    echo $$ > "$MEMDIR/cgroup.procs"
    echo $$ > "$PIDSDIR/cgroup.procs"
    tail /dev/zero || true
    ( for i in $(seq 30); do sleep 1 & done; wait ) 2>/dev/null || true
    exec sleep 600
' </dev/null >/dev/null 2>&1 &
wait_for_sleep $!
