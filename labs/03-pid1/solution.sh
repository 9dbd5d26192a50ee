#!/usr/bin/env bash
# Lab 3, reference solution: a PID 1 that does its two jobs, by hand.
#
# Contract (CI runs this): run as root. Starts the namespace in the background, waits until its
# PID 1 runs with its SIGTERM handler set, prints exactly one line on stdout, the HOST pid of
# that PID 1, and exits 0. `solution.sh cleanup PID` ends it the way it is meant to end, with
# SIGTERM (SIGKILL only if that fails), and leaves nothing behind: when a namespace's PID 1
# exits, the kernel kills the rest of the namespace. Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi

if [ "${1:-}" = cleanup ]; then
    PID=${2:?usage: solution.sh cleanup PID}
    kill -TERM "$PID" 2>/dev/null || exit 0
    for _ in $(seq 1 40); do
        kill -0 "$PID" 2>/dev/null || exit 0
        sleep 0.05
    done
    echo "solution: PID 1 ($PID) did not end on SIGTERM: killing it" >&2
    kill -KILL "$PID" 2>/dev/null || true
    exit 0
fi

# --pid --fork     a new PID namespace; unshare forks, and its child is the namespace's PID 1
# --mount-proc     a /proc of the new namespace (in a mount namespace of its own), so that ps
#                  inside shows the namespace's processes, not the host's
# The program of PID 1, in sh:
#   trap 'exit 0' TERM   job 1: a handler, so SIGTERM ends it (the kernel drops a signal a
#                        namespace's init has no handler for)
#   sleep 1 & wait       job 2: wait(2) for children, which also collects the orphans the
#                        kernel hands to PID 1; the sleep wakes the loop up once a second
unshare --pid --fork --mount-proc \
    sh -c 'trap "exit 0" TERM; while :; do sleep 1 & wait; done' \
    </dev/null >/dev/null 2>&1 &
UNSHARE=$!

# PID 1 is unshare's child. Ready when it runs sh with its handler set: SIGTERM (15) is bit 0x4000 of SigCgt.
for _ in $(seq 1 200); do
    if ! kill -0 "$UNSHARE" 2>/dev/null; then
        echo "solution: unshare exited during setup" >&2
        exit 1
    fi
    PID=$(cat "/proc/$UNSHARE/task/$UNSHARE/children" 2>/dev/null | tr -d ' ')
    if [ -n "$PID" ] && [ $(( 0x$(awk '/^SigCgt:/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0) & 0x4000 )) -ne 0 ]; then
        echo "solution: PID 1 of the new namespace is host pid $PID (unshare is $UNSHARE)" >&2
        echo "$PID"
        exit 0
    fi
    sleep 0.05
done
echo "solution: PID 1 did not start" >&2
kill -9 "$UNSHARE" 2>/dev/null || true
exit 1
