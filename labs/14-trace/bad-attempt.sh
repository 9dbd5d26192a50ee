#!/usr/bin/env bash
# Lab 14, two plausible mistakes on top of a right trace: the failed call named after the
# command ("mknod"), where the trace shows the system call glibc really made (mknodat), and
# CLONE_PIDFD counted among the namespace flags (it asks clone3 for a pidfd, it makes no
# namespace). `clab lab check 14 --dir DIR` must reject both.
#
# Same usage as solution.sh: bad-attempt.sh DIR, bad-attempt.sh DIR cleanup.
set -euo pipefail
DIR=${1:?usage: bad-attempt.sh DIR [cleanup]}
"$(dirname "$0")/solution.sh" "$@"
[ "${2:-}" = cleanup ] && exit 0
sed -i 's/^failed: [a-z0-9_]* /failed: mknod /; s/^flags: /flags: CLONE_PIDFD /' "$DIR/answers.txt"
echo "bad-attempt: $DIR/answers.txt names mknod and CLONE_PIDFD" >&2
