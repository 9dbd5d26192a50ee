#!/usr/bin/env bash
# Lab 16, reference solution: an image of your own, pushed under two tags, pulled by digest.
#
# Contract (CI runs this): run as root, with clab on PATH and a registry listening on REGISTRY
# (HOST:PORT; the test starts docker-registry on 127.0.0.1 with a free port).
# `solution.sh DIR REGISTRY` builds lab16:v1 from DIR/Clabfile, pushes it as REGISTRY/lab16:v1
# and REGISTRY/lab16:stable, pulls REGISTRY/lab16@<digest>, prints exactly one line on stdout,
# the digest, and exits 0. `solution.sh DIR REGISTRY cleanup` removes the local names and DIR
# (the registry is the caller's). Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi
DIR=${1:?usage: solution.sh DIR REGISTRY [cleanup]}
REGISTRY=${2:?usage: solution.sh DIR REGISTRY [cleanup]}
cleanup() {
    for ref in $(clab image ls 2>/dev/null | awk '{print $1}' | grep -E "^(lab16:|$REGISTRY/lab16)" || true); do
        clab image rm "$ref" >/dev/null 2>&1 || true
    done
    rm -rf "$DIR"
}
case "${3:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh DIR REGISTRY [cleanup]" >&2; exit 2 ;;
esac
cleanup

# 1. An image of your own: busybox and one layer more.
mkdir -p "$DIR"
echo "built for lab 16" > "$DIR/motd"
printf 'FROM busybox\nCOPY motd /etc/motd\nCMD ["cat", "/etc/motd"]\n' > "$DIR/Clabfile"
clab image build -t lab16:v1 "$DIR" >&2

# 2. Two names in the registry for the one image: tag twice, push twice.
clab image tag lab16:v1 "$REGISTRY/lab16:v1"
clab image tag lab16:v1 "$REGISTRY/lab16:stable"
digest=$(clab push -q "$REGISTRY/lab16:v1")
clab push -q "$REGISTRY/lab16:stable" >&2

# 3. Back by digest: the one name that can never move.
clab pull -q "$REGISTRY/lab16@$digest" >&2
echo "$digest"
