#!/usr/bin/env bash
# Lab 5, reference solution: a process with its own IPC and network namespaces, by hand.
#
# Contract (CI runs this): run as root. Starts the process in the background, waits until it
# runs with lo up and its own System V segment, prints exactly one line on stdout, its HOST pid,
# and exits 0. The process keeps running; `kill -9 <pid>` ends it and leaves nothing behind:
# the segment lives in the process's IPC namespace, which the kernel frees with its last
# process, and so does the network namespace. Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi

# --ipc   stage 5: System V IPC (shared memory, semaphores, message queues) of its own
# --net   stage 6: network devices, addresses, routes and ports of its own: only lo, down
# Without --fork unshare execs the command itself, so $! is the process that ends as the sleep.
# Inside: lo up, then a 4 KiB shared memory segment, then the long-running program.
unshare --ipc --net \
    sh -c 'ip link set lo up && ipcmk -M 4096 >/dev/null && exec sleep 600' \
    </dev/null >/dev/null 2>&1 &
PID=$!

# Ready when the sleep runs: the link and the segment were made before its exec.
for _ in $(seq 1 200); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "solution: the process exited during setup" >&2
        exit 1
    fi
    if [ "$(cat "/proc/$PID/comm" 2>/dev/null)" = sleep ]; then
        echo "solution: pid $PID has its own IPC and network namespaces, lo up, one segment" >&2
        echo "$PID"
        exit 0
    fi
    sleep 0.05
done
echo "solution: the process did not reach its sleep" >&2
kill -9 "$PID" 2>/dev/null || true
exit 1
