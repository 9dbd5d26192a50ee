#!/usr/bin/env bash
# Lab 1, a plausible mistake: everything right (UTS, PID, a private mount namespace, a fresh
# /proc) except the last step. It uses chroot instead of pivot_root, so the host's root is still
# in the container's mount table, and /usr/bin/breakout climbs back to it.
# `clab lab check 1 --pid <pid>` must reject it.
#
# Same contract as solution.sh: run as root; prints exactly one line on stdout, the HOST pid of
# the container's PID 1, and exits 0 with the container running. No mount is made in the host's
# mount namespace, so `kill -9 <pid>` leaves nothing behind. Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi

ROOT=$(clab image path)
export ROOT
echo "bad-attempt: image at $ROOT" >&2

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

unshare --uts --pid --mount --propagation private --fork --kill-child \
    sh -c '
        set -e
        hostname lab1
        mount -t proc proc "$ROOT/proc"      # inside the new mount namespace: the host never sees it
        exec chroot "$ROOT" /bin/sleep 600   # the mistake: chroot moves a pointer, the host root stays mounted
    ' </dev/null >/dev/null 2>"$LOG" &
UNSHARE=$!

for _ in $(seq 1 200); do
    if ! kill -0 "$UNSHARE" 2>/dev/null; then
        echo "bad-attempt: the container exited during setup:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    PID=$(pgrep -P "$UNSHARE" || true)
    if [ -n "$PID" ] && [ "$(cat "/proc/$PID/comm" 2>/dev/null)" = sleep ] \
        && [ -e "/proc/$PID/root/usr/bin/breakout" ]; then
        echo "bad-attempt: container PID 1 is host pid $PID (chroot, no pivot_root)" >&2
        echo "$PID"
        exit 0
    fi
    sleep 0.05
done

echo "bad-attempt: the container did not reach its sleep within 10 s:" >&2
cat "$LOG" >&2
kill -9 "$UNSHARE" 2>/dev/null || true
exit 1
