#!/usr/bin/env bash
# Lab 9, reference solution: an overlay root by hand, three changes, and a commit.
#
# Usage (as root): solution.sh DIR      builds the lab in DIR (made if missing) and exits 0, with
#                                       DIR/merged mounted in the host's mount namespace.
#                  solution.sh DIR cleanup   unmounts DIR/merged and removes DIR.
# Only DIR is touched; the image (clab image path) is a lower layer and stays unchanged.
# Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi
DIR=${1:?usage: solution.sh DIR [cleanup]}
cleanup() {
    umount "$DIR/merged" 2>/dev/null || true
    rm -rf "$DIR"
}
case "${2:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh DIR [cleanup]" >&2; exit 2 ;;
esac
cleanup

ROOT=$(clab image path)
mkdir -p "$DIR"/layer2/etc "$DIR"/upper "$DIR"/work "$DIR"/merged
echo "hello from layer 2" > "$DIR/layer2/etc/motd"

# lowerdir: the top layer first. upperdir takes every write; workdir is overlay's scratch space
# (an empty directory on the same filesystem as upperdir).
mount -t overlay overlay \
    -o "lowerdir=$DIR/layer2:$ROOT,upperdir=$DIR/upper,workdir=$DIR/work" "$DIR/merged"

echo "changed in the container" >> "$DIR/merged/etc/motd"   # copy-up: layer2's file, then the append
rm "$DIR/merged/etc/hosts"                                  # a whiteout hides the image's file
echo hello > "$DIR/merged/hello.txt"                        # a new file, in upper only

# The commit is the writable layer alone. Run as root, tar keeps the whiteout a 0/0 device.
tar -C "$DIR/upper" -cf "$DIR/commit.tar" .
echo "solution: $DIR/merged is the overlay; $DIR/commit.tar the commit" >&2
