#!/usr/bin/env bash
# Lab 7, reference solution: a user namespace mapped by hand, root inside = uid 300000 outside.
#
# Contract (CI runs this): run as root. Starts the process in the background, writes its maps,
# waits until it runs as root of its namespace, prints exactly one line on stdout, its HOST pid,
# and exits 0. The process keeps running; `kill -9 <pid>` ends it and leaves nothing behind.
# Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi

# The namespace is created by host uid 300000: the process keeps that uid, which the map
# below makes root inside. It waits for both maps, then execs: execve keeps capabilities only
# for the namespace's root. (/proc files have size 0: test the content.)
setpriv --reuid=300000 --regid=300000 --clear-groups unshare --user \
    sh -c 'until grep -q . /proc/self/uid_map && grep -q . /proc/self/gid_map; do sleep 0.05; done; exec sleep 600' \
    </dev/null >/dev/null 2>&1 &
PID=$!

# Written once, from outside, by root of the parent namespace.
# Wait until unshare has made the namespace (the pid's user namespace is no longer ours).
for _ in $(seq 1 200); do
    [ "$(readlink "/proc/$PID/ns/user")" != "$(readlink /proc/self/ns/user)" ] && break
    sleep 0.02
done
echo '0 300000 65536' > "/proc/$PID/uid_map"
echo '0 300000 65536' > "/proc/$PID/gid_map"

for _ in $(seq 1 200); do
    if [ "$(cat "/proc/$PID/comm" 2>/dev/null)" = sleep ]; then
        echo "solution: pid $PID is root in its user namespace, uid 300000 on the host" >&2
        echo "$PID"
        exit 0
    fi
    sleep 0.05
done
echo "solution: the process did not reach its sleep" >&2
kill -9 "$PID" 2>/dev/null || true
exit 1
