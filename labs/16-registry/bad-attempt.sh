#!/usr/bin/env bash
# Lab 16, a plausible mistake the verifier must reject: "stable" is pushed from a rebuild after
# a small change (a tag is thought of as a label on a *version*, not a name for one manifest),
# so v1 and stable are two images; and the pull is by tag, not by digest.
#
# Same contract as solution.sh: `bad-attempt.sh DIR REGISTRY` prints the digest of v1;
# `bad-attempt.sh DIR REGISTRY cleanup` removes the local names and DIR.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi
DIR=${1:?usage: bad-attempt.sh DIR REGISTRY [cleanup]}
REGISTRY=${2:?usage: bad-attempt.sh DIR REGISTRY [cleanup]}
cleanup() {
    for ref in $(clab image ls 2>/dev/null | awk '{print $1}' | grep -E "^(lab16:|$REGISTRY/lab16)" || true); do
        clab image rm "$ref" >/dev/null 2>&1 || true
    done
    rm -rf "$DIR"
}
case "${3:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: bad-attempt.sh DIR REGISTRY [cleanup]" >&2; exit 2 ;;
esac
cleanup

mkdir -p "$DIR"
echo "built for lab 16" > "$DIR/motd"
printf 'FROM busybox\nCOPY motd /etc/motd\nCMD ["cat", "/etc/motd"]\n' > "$DIR/Clabfile"
clab image build -t lab16:v1 "$DIR" >&2
clab image tag lab16:v1 "$REGISTRY/lab16:v1"
digest=$(clab push -q "$REGISTRY/lab16:v1")

# "stable is the same thing, just fixed up a little": a rebuild, so another image.
echo "built for lab 16 (stable)" > "$DIR/motd"
clab image build -t lab16:stable "$DIR" >&2
clab image tag lab16:stable "$REGISTRY/lab16:stable"
clab push -q "$REGISTRY/lab16:stable" >&2

# Pulled back by tag: it works, but the tag could point elsewhere tomorrow.
clab pull -q "$REGISTRY/lab16:v1" >&2
echo "$digest"
