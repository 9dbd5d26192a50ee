#!/usr/bin/env bash
# Lab 10, reference solution: two containers by hand that see a host directory read-only at
# /www and share a volume at /data.
#
# Usage (as root): solution.sh DIR          builds the lab in DIR, starts containers A and B,
#                                           prints one line on stdout, "PID_A PID_B", exits 0.
#                  solution.sh DIR cleanup  removes DIR (kill the two pids first: every bind
#                                           lives in their mount namespaces and goes with them).
# Only DIR is touched. Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi
DIR=${1:?usage: solution.sh DIR [cleanup]}
cleanup() {
    # Nothing should be mounted under DIR on the host; if something is (shared propagation),
    # unmount it before removing, so rm never reaches through a bind.
    findmnt -rn -o TARGET | awk -v d="$DIR/" 'index($0, d) == 1' | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$DIR"
}
case "${2:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh DIR [cleanup]" >&2; exit 2 ;;
esac
cleanup

# The host's side: a site to publish read-only, and a volume, both plain directories.
mkdir -p "$DIR/site" "$DIR/data"
echo "hello from the host" > "$DIR/site/index.html"

# Each container gets its own copy of the image as its root (the role of its writable layer):
# the mount points /www and /data are made there, never in clab's image.
ROOT=$(clab image path)
for c in a b; do
    cp -a "$ROOT" "$DIR/$c"
    mkdir "$DIR/$c/www" "$DIR/$c/data"
done

# One container: its own mount namespace (private: no bind travels to the host), the binds,
# then chroot into its root. A bind mount is read-write whatever `-o ro` says to mount(2):
# the remount with "bind,ro" makes this mount, and only this one, read-only.
start() {
    unshare --mount --propagation private sh -c '
        set -e
        mount --bind "$1/site" "$1/$2/www"
        mount -o remount,bind,ro "$1/$2/www"
        mount --bind "$1/data" "$1/$2/data"
        exec chroot "$1/$2" /bin/sleep 600
    ' sh "$DIR" "$1" </dev/null >/dev/null 2>&1 &
    echo $!
}

wait_for() {
    for _ in $(seq 1 200); do
        if [ "$(cat "/proc/$1/comm" 2>/dev/null)" = sleep ] && [ -e "/proc/$1/root/etc/clab-image" ]; then
            return 0
        fi
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    echo "solution: container $1 did not reach its sleep" >&2
    return 1
}

A=$(start a)
B=$(start b)
if ! wait_for "$A" || ! wait_for "$B"; then
    kill -9 "$A" "$B" 2>/dev/null || true
    exit 1
fi
echo "solution: containers A=$A and B=$B: /www is $DIR/site (read-only), /data is $DIR/data" >&2
echo "$A $B"
