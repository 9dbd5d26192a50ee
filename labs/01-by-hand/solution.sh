#!/usr/bin/env bash
# Lab 1, reference solution: a container by hand (stages 1-4), with util-linux only.
#
# Contract (CI runs this): run as root. Starts the container in the background, with a long
# sleep as its PID 1, waits until that sleep really runs inside the image, prints exactly one
# line on stdout, the HOST pid of the container's PID 1, and exits 0. The container keeps
# running. `kill -9 <pid>` ends it, and leaves nothing behind: every mount below is made inside
# the container's own mount namespace, never in the host's.
# Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi

# The busybox image's root filesystem (built on first use; clab honours CLAB_ROOT).
ROOT=$(clab image path)
export ROOT
echo "solution: image at $ROOT" >&2

# Errors of the container's setup land here until the container is up.
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# --uts                   stage 2: a hostname of its own
# --pid --fork            stage 3: the forked child is PID 1 of a new PID namespace
# --mount                 stage 4: a mount table of its own...
# --propagation private   ...in which no mount travels to or from the host
# --kill-child            if unshare dies, its child (our PID 1) dies with it
# Inside, before pivot_root the host's tools are still visible; after it, only the image's.
# stdout and stderr must not stay attached to ours: a caller reading our output
# (pid=$(./solution.sh)) would otherwise wait for the container to end.
unshare --uts --pid --mount --propagation private --fork --kill-child \
    sh -c '
        set -e
        hostname lab1                        # stage 2: only this UTS namespace sees it
        mount --bind "$ROOT" "$ROOT"         # pivot_root needs the new root to be a mount point
        mount -t proc proc "$ROOT/proc"      # stage 3: a /proc for this PID namespace
        cd "$ROOT"
        pivot_root . .                       # stage 4: the image becomes the root mount...
        umount -l .                          # ...and the old root (stacked on top) is detached
        cd /
        exec /bin/sleep 600                  # PID 1 of the container, from the image
    ' </dev/null >/dev/null 2>"$LOG" &
UNSHARE=$!

# The container's PID 1 is unshare's child. Wait until it has become the image's sleep:
# its comm is "sleep" only after the final exec, so pivot_root and umount are done.
for _ in $(seq 1 200); do
    if ! kill -0 "$UNSHARE" 2>/dev/null; then
        echo "solution: the container exited during setup:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    PID=$(pgrep -P "$UNSHARE" || true)
    if [ -n "$PID" ] && [ "$(cat "/proc/$PID/comm" 2>/dev/null)" = sleep ] \
        && [ -e "/proc/$PID/root/usr/bin/breakout" ]; then
        echo "solution: container PID 1 is host pid $PID (hostname lab1)" >&2
        echo "$PID"
        exit 0
    fi
    sleep 0.05
done

echo "solution: the container did not reach its sleep within 10 s:" >&2
cat "$LOG" >&2
kill -9 "$UNSHARE" 2>/dev/null || true
exit 1
