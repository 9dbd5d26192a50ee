#!/bin/sh
# A detached container's exec, pause and unpause on cgroup v2, inside the VM:
#   tests-vm/run-vm.sh --add tests-vm/lifecycle-cgroup-v2.sh:/root/lifecycle.sh -- 'sh lifecycle.sh'
# (Tests/ClabSystemTests/TimingCgroupV2VMTests.swift runs it too). On v2 there is no freezer
# controller: clab pause writes 1 to the container cgroup's cgroup.freeze and waits for
# `frozen 1` in cgroup.events. Each check prints "ok: ..." or stops with "LIFECYCLE FAILED: ..."
# and exit status 1; the last line is "LIFECYCLE OK".
set -u
fail() {
    echo "LIFECYCLE FAILED: $*"
    [ -z "${id:-}" ] || clab rm -f "$id" >/dev/null 2>&1
    exit 1
}
# CPU time of the container's cgroup, in microseconds (cpu.stat exists on every v2 cgroup).
usage() { sed -n 's/^usage_usec //p' "$cg/cpu.stat"; }

# Stage 8: the first stage with cgroups, and no overlay or bridge (the VM loads neither); no
# --name either (that needs stage 9's layers): the id names it. The command wakes 20 times a
# second (a fork and exec each), so its progress shows in cpu.stat.
id=""
out=$(clab run -d --stage 8 --hostname vmweb -- sh -c 'while :; do usleep 50000; done') ||
    fail "clab run -d: $out"
id=$out
pid=$(clab state "$id" | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
[ -n "$pid" ] || fail "clab state "$id" has no pid: $(clab state "$id")"
cgpath=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
cg=/sys/fs/cgroup$cgpath
case "$cgpath" in /clab/*) ;; *) fail "the container's init is in $cgpath, not beneath /clab" ;; esac
[ -f "$cg/cgroup.freeze" ] || fail "no $cg/cgroup.freeze"
echo "ok: run -d $id, init pid $pid in $cgpath"

# exec joins the container: its UTS namespace (hostname) and its cgroup (the same line in
# /proc/self/cgroup as the init's; stage 8 has no cgroup namespace, so the full path shows).
h=$(clab exec "$id" -- hostname) || fail "clab exec "$id" -- hostname: $h"
[ "$h" = vmweb ] || fail "exec saw hostname '$h', not vmweb"
echo "ok: exec sees hostname $h"
c=$(clab exec "$id" -- cat /proc/self/cgroup) || fail "clab exec "$id" -- cat /proc/self/cgroup: $c"
[ "$c" = "0::$cgpath" ] || fail "exec's cgroup is '$c', not 0::$cgpath"
echo "ok: exec runs in cgroup $c"
s=$(clab exec "$id" -- sh -c 'exit 3')
[ $? = 3 ] || fail "exec's exit status did not pass through"

# pause: cgroup.freeze 1, the kernel reports frozen 1, clab says paused, no CPU time is used.
clab pause "$id" >/dev/null || fail "clab pause "$id""
[ "$(cat "$cg/cgroup.freeze")" = 1 ] || fail "cgroup.freeze is $(cat "$cg/cgroup.freeze") after pause"
grep -qx 'frozen 1' "$cg/cgroup.events" || fail "cgroup.events after pause: $(cat "$cg/cgroup.events")"
# OCI's states have no "paused": clab state says running, with an annotation.
clab state "$id" | grep -q '"org.clab.paused": "true"' || fail "clab state after pause: $(clab state "$id")"
echo "ok: paused: cgroup.freeze 1, frozen 1, $(sed -n 's/^State:\t*//p' "/proc/$pid/status")"
a=$(usage)
sleep 1
b=$(usage)
[ "$a" = "$b" ] || fail "CPU time went on while paused: $a -> $b usec"
echo "ok: no CPU time while paused ($a usec)"
e=$(clab exec "$id" -- true 2>&1) && fail "exec into a paused container succeeded"
case "$e" in *"is paused"*) ;; *) fail "exec into a paused container said: $e" ;; esac
echo "ok: exec refused: $e"

# unpause: thawed (frozen 0), running, CPU time moves again.
clab unpause "$id" >/dev/null || fail "clab unpause "$id""
[ "$(cat "$cg/cgroup.freeze")" = 0 ] || fail "cgroup.freeze is $(cat "$cg/cgroup.freeze") after unpause"
grep -qx 'frozen 0' "$cg/cgroup.events" || fail "cgroup.events after unpause: $(cat "$cg/cgroup.events")"
clab state "$id" | grep -q '"status": "running"' || fail "clab state after unpause: $(clab state "$id")"
clab state "$id" | grep -q 'org.clab.paused' && fail "clab state after unpause: $(clab state "$id")"
sleep 1
c2=$(usage)
[ "$c2" -gt "$b" ] || fail "no CPU time after unpause: $b -> $c2 usec"
echo "ok: unpaused: frozen 0, CPU time $b -> $c2 usec"

# Removed while paused: thawed and killed, its cgroup gone.
clab pause "$id" >/dev/null || fail "second clab pause "$id""
clab rm -f "$id" >/dev/null || fail "clab rm -f "$id" (paused)"
[ ! -d "$cg" ] || fail "$cg is left after rm -f"
[ ! -d "/proc/$pid" ] || fail "the init ($pid) outlived rm -f"
[ -z "$(ls /sys/fs/cgroup/clab 2>/dev/null)" ] || fail "left in /sys/fs/cgroup/clab: $(ls /sys/fs/cgroup/clab)"
echo "ok: rm -f of a paused container leaves nothing"
echo "LIFECYCLE OK"
