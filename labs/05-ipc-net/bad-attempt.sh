#!/usr/bin/env bash
# Lab 5, a plausible mistake: `unshare --net` alone, believing the network namespace isolates
# everything "networked". lo is up and the segment is made inside, but a System V segment
# belongs to the IPC namespace, which is still the host's: the host sees it.
# `clab lab check 5 --pid <pid>` must reject it.
#
# Contract: run as root; prints the host pid on stdout. The segment is in the HOST's IPC
# namespace and outlives the process: `bad-attempt.sh cleanup PID` kills the process and removes
# the segments it made (those whose creator was its child ipcmk, recorded below).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi
STATE=/run/clab-lab5-bad-attempt
if [ "${1:-}" = cleanup ]; then
    PID=${2:?usage: bad-attempt.sh cleanup PID}
    kill -9 "$PID" 2>/dev/null || true
    if [ -f "$STATE.$PID" ]; then
        ipcrm -m "$(cat "$STATE.$PID")" 2>/dev/null || true
        rm -f "$STATE.$PID"
    fi
    exit 0
fi

# The segment's id goes to a file named after the process's pid ($$ of the sh is the pid that
# becomes the sleep), so that cleanup can remove it from the host.
unshare --net \
    sh -c 'ip link set lo up && ipcmk -M 4096 | sed -n "s/^Shared memory id: //p" > '"$STATE"'.$$ && exec sleep 600' \
    </dev/null >/dev/null 2>&1 &
PID=$!
for _ in $(seq 1 200); do
    if [ "$(cat "/proc/$PID/comm" 2>/dev/null)" = sleep ]; then
        echo "bad-attempt: pid $PID made segment $(cat "$STATE.$PID") in the host's IPC namespace" >&2
        echo "$PID"
        exit 0
    fi
    sleep 0.05
done
echo "bad-attempt: the process did not reach its sleep" >&2
"$0" cleanup "$PID"
exit 1
