#!/usr/bin/env bash
# Lab 14, reference solution: trace stage 7 running mknod, and answer the questions from the
# trace with grep and sed alone.
#
# Usage (as root): solution.sh DIR          writes DIR/trace.jsonl and DIR/answers.txt, exits 0.
#                  solution.sh DIR cleanup  removes DIR.
# Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi
DIR=${1:?usage: solution.sh DIR [cleanup]}
case "${2:-}" in
    cleanup) rm -rf "$DIR"; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh DIR [cleanup]" >&2; exit 2 ;;
esac
mkdir -p "$DIR"
T=$DIR/trace.jsonl

# mknod fails inside (that is the point), so clab exits 1: the trace is written all the same.
clab trace --step 7 --json "$T" -- mknod /tmp/null c 1 3 >/dev/null 2>&1 || true

# clab's clone3 carries the CLONE_NEW* flags; its return value is the child's host pid.
clone=$(grep '"syscall":"clone3"' "$T" | grep CLONE_NEW | head -1)
flags=$(echo "$clone" | grep -o 'CLONE_NEW[A-Z]*' | sort -u | tr '\n' ' ')
pid=$(echo "$clone" | sed 's/.*"ret":\([0-9]*\).*/\1/')
# The write whose fd is /proc/<pid>/uid_map: the tracer names the fd's file after its number.
uid_map=$(grep '"syscall":"write"' "$T" | grep -o 'uid_map>","\\"[0-9 ]*' | head -1 | sed 's/.*"//')
# pivot_root's two arguments, their quotes removed.
pivot=$(grep '"syscall":"pivot_root"' "$T" | grep -o '"args":\[[^]]*\]' | sed 's/"args":\[//; s/\]$//; s/\\"//g; s/"//g; s/,/ /')
# The last call of mknod's own process that returned an errno.
failed=$(grep '"type":"syscall"' "$T" | grep '"comm":"mknod"' | grep -v '"errno":null' | tail -1 |
    sed 's/.*"syscall":"\([a-z0-9_]*\)".*"errno":"\([A-Z0-9]*\)".*/\1 \2/')
execs=$(grep -c '"syscall":"execve"' "$T")

cat > "$DIR/answers.txt" <<ANSWERS
# Lab 14: answers read from $T
namespaces: clone3
flags: $flags
container-pid: $pid
uid_map: $uid_map
pivot_root: $pivot
failed: $failed
execve: $execs
ANSWERS
echo "solution: $DIR/answers.txt written from $T" >&2
