#!/usr/bin/env bash
# Lab 9, a plausible mistake: everything right up to the commit, which is a tar of the merged
# view. That is a snapshot of the whole filesystem (busybox and all), not a layer: it holds no
# whiteout, so the deletion is lost. `clab lab check 9 --dir DIR` must reject it.
#
# Same usage as solution.sh: bad-attempt.sh DIR, bad-attempt.sh DIR cleanup.
set -euo pipefail
DIR=${1:?usage: bad-attempt.sh DIR [cleanup]}
"$(dirname "$0")/solution.sh" "$@"
[ "${2:-}" = cleanup ] && exit 0
tar -C "$DIR/merged" -cf "$DIR/commit.tar" .
echo "bad-attempt: $DIR/commit.tar is the merged view" >&2
