#!/bin/sh
# cgroup v2 smoke test, by hand, for inside the VM:
#   tests-vm/run-vm.sh --add tests-vm/smoke-cgroup-v2.sh:/root/smoke.sh -- 'sh smoke.sh'
# A memory hog in a 32M cgroup is OOM-killed and counted in memory.events; a fork loop in a
# cgroup with pids.max 5 is refused and counted in pids.events; cpu.max is accepted.
set -u
fail() { echo "SMOKE FAILED: $*"; exit 1; }
echo "cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "root subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

m=/sys/fs/cgroup/smoke-mem
mkdir $m && echo 32M >$m/memory.max || fail "cannot make $m"
echo "memory.max=$(cat $m/memory.max)"
sh -c "echo \$\$ >$m/cgroup.procs; exec sh -c 'x=0123456789; while :; do x=\$x\$x; done'"
echo "hog exited with $? (137 = SIGKILL)"
sed 's/^/  memory.events: /' $m/memory.events
echo "memory.peak=$(cat $m/memory.peak)"
kills=$(sed -n 's/^oom_kill //p' $m/memory.events)
[ "${kills:-0}" -ge 1 ] || fail "no oom_kill counted"

p=/sys/fs/cgroup/smoke-pids
mkdir $p && echo 5 >$p/pids.max || fail "cannot make $p"
sh -c "echo \$\$ >$p/cgroup.procs; for i in 1 2 3 4 5 6 7 8; do sleep 1 & done 2>/dev/null; wait"
echo "pids.events: $(cat $p/pids.events)"
grep -q '^max [1-9]' $p/pids.events || fail "no fork refused"

c=/sys/fs/cgroup/smoke-cpu
mkdir $c && echo "50000 100000" >$c/cpu.max || fail "cannot set cpu.max"
echo "cpu.max: $(cat $c/cpu.max)"
while grep -q 'populated 1' $p/cgroup.events; do sleep 0.2; done # the forked sleeps
rmdir $m $p $c || fail "cannot remove the cgroups"
echo "SMOKE OK: oom_kill $kills"
