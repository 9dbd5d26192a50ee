#!/usr/bin/env bash
# Lab 8, a plausible mistake: the memory cgroup is right (limit, process, OOM kill), but on
# cgroup v1 every controller is a hierarchy of its own, and the process was never put in a
# pids cgroup: pids.max applies to nothing. (On v2, where one cgroup holds both, the same
# learner forgets pids.max.) `clab lab check 8 --pid <pid>` must reject it.
#
# Same contract as solution.sh: prints the pid; `bad-attempt.sh cleanup` removes everything.
set -euo pipefail
. "$(dirname "$0")/lab8-common.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi
case "${1:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: bad-attempt.sh [cleanup]" >&2; exit 2 ;;
esac
cleanup

mkdir -p "$MEMDIR"
[ "$VERSION" = v2 ] && echo "+memory" > "$(dirname "$MEMDIR")/cgroup.subtree_control"
echo 32M > "$MEMDIR/$MEMLIMIT"
MEMDIR=$MEMDIR sh -c '
    echo $$ > "$MEMDIR/cgroup.procs"
    tail /dev/zero || true
    ( for i in $(seq 30); do sleep 1 & done; wait ) 2>/dev/null || true
    exec sleep 600
' </dev/null >/dev/null 2>&1 &
wait_for_sleep $!
