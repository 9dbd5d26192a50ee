#!/usr/bin/env bash
# Lab 7, a plausible mistake: root runs `unshare --user`, and writes the right maps. But a map
# does not change who a running process is: it is still uid 0 on the host, the host's root, and
# `nobody` inside (uid 0 is not in the map). `clab lab check 7 --pid <pid>` must reject it.
#
# Same contract as solution.sh: run as root; prints the host pid; `kill -9 <pid>` cleans up.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi

unshare --user \
    sh -c 'until grep -q . /proc/self/uid_map && grep -q . /proc/self/gid_map; do sleep 0.05; done; exec sleep 600' \
    </dev/null >/dev/null 2>&1 &
PID=$!
# Wait until unshare has made the namespace (the pid's user namespace is no longer ours).
for _ in $(seq 1 200); do
    [ "$(readlink "/proc/$PID/ns/user")" != "$(readlink /proc/self/ns/user)" ] && break
    sleep 0.02
done
echo '0 300000 65536' > "/proc/$PID/uid_map"
echo '0 300000 65536' > "/proc/$PID/gid_map"

for _ in $(seq 1 200); do
    if [ "$(cat "/proc/$PID/comm" 2>/dev/null)" = sleep ]; then
        echo "bad-attempt: pid $PID is mapped, but still host root" >&2
        echo "$PID"
        exit 0
    fi
    sleep 0.05
done
echo "bad-attempt: the process did not reach its sleep" >&2
kill -9 "$PID" 2>/dev/null || true
exit 1
