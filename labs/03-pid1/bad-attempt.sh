#!/usr/bin/env bash
# Lab 3, a plausible mistake: any program will do as PID 1, so `sleep`. It is PID 1 of its own
# namespace, but it has no SIGTERM handler (so `kill PID` does nothing: the kernel drops the
# signal) and it never calls wait(2) (so every orphan the kernel hands it stays a zombie).
# `clab lab check 3 --pid <pid>` must reject it.
#
# Contract: run as root; prints the host pid of PID 1 on stdout. `bad-attempt.sh cleanup PID`
# kills it with SIGKILL (the one signal that reaches a namespace's init from the host whatever
# it handles); the kernel then kills the namespace's other processes and reaps its zombies.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi
if [ "${1:-}" = cleanup ]; then
    PID=${2:?usage: bad-attempt.sh cleanup PID}
    kill -KILL "$PID" 2>/dev/null || true
    exit 0
fi

unshare --pid --fork --mount-proc sleep 1000 </dev/null >/dev/null 2>&1 &
UNSHARE=$!
for _ in $(seq 1 200); do
    PID=$(cat "/proc/$UNSHARE/task/$UNSHARE/children" 2>/dev/null | tr -d ' ')
    if [ -n "$PID" ] && [ "$(cat "/proc/$PID/comm" 2>/dev/null)" = sleep ]; then
        echo "bad-attempt: PID 1 of the new namespace is host pid $PID, a sleep" >&2
        echo "$PID"
        exit 0
    fi
    sleep 0.05
done
echo "bad-attempt: PID 1 did not start" >&2
kill -9 "$UNSHARE" 2>/dev/null || true
exit 1
