#!/usr/bin/env bash
# The OCI runtime-tools validation suite against clab-runtime, runc and crun, side by side.
#
#   sudo bench/oci-validation.sh RUNTIME_TOOLS_DIR [runtime...]     # default: clab-runtime runc crun
#   PROGRAMS="hostname mounts" sudo bench/oci-validation.sh /work/runtime-tools runc
#
# RUNTIME_TOOLS_DIR: a checkout of opencontainers/runtime-tools (commit 28f43fa is the last that
# builds with Debian 12's Go 1.19), built with
#   cd DIR && GOFLAGS=-mod=vendor GOPROXY=off make runtimetest validation-executables
# clab-runtime: $CLAB_RUNTIME, else .build/debug/clab-runtime, else PATH.
#
# A program passed: exit 0, no "not ok", no top-level "error" diagnostic, every planned test point
# ok (the *_fail programs print nothing when the runtime refuses their config: that passes).
# Each validation program (validation/*/*.t, TAP on stdout) creates, starts, kills and deletes
# containers through `$RUNTIME create|start|state|kill|delete`, and several put them in cgroups at
# an absolute cgroupsPath ("/cgrouptest"). Nothing may land among the machine's own cgroups, so:
#   1. this script makes a cgroup of its own, oci-validation-PID, beneath its current cgroup in
#      every v1 hierarchy (beneath /process_api/<x> for memory here);
#   2. each program runs in a child shell that moves itself into those cgroups' child named
#      after the runtime (so one runtime's leftovers are not in another's way), then
#      `unshare -m -C`: a cgroup namespace rooted there and a private mount namespace in which
#      /sys/fs/cgroup is a fresh tmpfs with every v1 hierarchy mounted again. Mounted from inside
#      the cgroup namespace, a hierarchy's root is the namespace's root, so "/cgrouptest" resolves
#      to .../oci-validation-PID/cgrouptest for the runtime and for the program that checks it.
#      The cgroup2 mount (/sys/fs/cgroup/unified) is not mounted again: crun 1.8 refuses this
#      hybrid layout, and runc and clab only use v1 controllers here;
#   3. afterwards every cgroup below ours is removed and the whole of /sys/fs/cgroup is searched
#      for anything named after the programs' containers or cgroups outside ours.
# State roots, bundles (TMPDIR, one directory per runtime: see bundle_mode) and logs live in one
# mktemp dir, removed on exit.
# crun never gets /dev/null as stdio (crun 1.8.1 fchowns its stdio to the container's root): Go's
# os/exec gives /dev/null for unset stdio, so crun's wrapper swaps such fds for a pipe or a log file.
# Results: a table on stdout and, with RESULTS=FILE, the same table in FILE.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
die() { echo "bench/oci-validation.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: bench/oci-validation.sh RUNTIME_TOOLS_DIR [clab-runtime|runc|crun ...]"
tools=$(cd "$1" && pwd) || die "no directory $1"
shift
runtimes=("$@")
[ ${#runtimes[@]} -gt 0 ] || runtimes=(clab-runtime runc crun)
[ "$(id -u)" -eq 0 ] || die "run as root (runtimes, namespaces and cgroups need it)"
[ -x "$tools/runtimetest" ] || die "$tools/runtimetest is missing: cd $tools && GOFLAGS=-mod=vendor GOPROXY=off make runtimetest validation-executables"
for tool in unshare timeout; do command -v "$tool" >/dev/null || die "$tool is missing"; done
timeout_s=${TIMEOUT:-120}

if [ -n "${PROGRAMS:-}" ]; then
    programs=()
    for p in $PROGRAMS; do programs+=("validation/$p/$p.t"); done
else
    mapfile -t programs < <(cd "$tools" && find validation -name '*.t' | sort)
fi
[ ${#programs[@]} -gt 0 ] || die "no validation/*/*.t in $tools: build them first"

runtime_binary() {
    case $1 in
    clab-runtime)
        if [ -n "${CLAB_RUNTIME:-}" ]; then echo "$CLAB_RUNTIME"
        elif [ -x "$repo/.build/debug/clab-runtime" ]; then echo "$repo/.build/debug/clab-runtime"
        else command -v clab-runtime || true; fi ;;
    *) command -v "$1" || true ;;
    esac
}

# --- scratch space, our cgroups, cleanup -------------------------------------------------------
tmp=$(mktemp -d /tmp/oci-validation.XXXXXX)
chmod 711 "$tmp"  # clab's containers run as uid 100000+, which must reach their state below here
mkdir -p "$tmp/logs" "$tmp/bin"
# The programs' bundles (TMPDIR): a directory per runtime, in the mode that runtime runs best in.
# clab-runtime: 0700, only root may enter (as root's own or podman's storage): there it runs a
# root-owned rootfs in place through an idmapped mount instead of on a shifted copy (README:
# Security model). runc and crun: 0755, as their user-namespaced programs (linux_uid_mappings,
# linux_ns_nopath) need the mapped ids to reach the bundle. BUNDLE_MODE=755 (or 700) sets one
# mode for all.
bundle_mode() {
    if [ -n "${BUNDLE_MODE:-}" ]; then echo "$BUNDLE_MODE"
    elif [ "$1" = clab-runtime ]; then echo 700
    else echo 755; fi
}
cgname="oci-validation-$$"
declare -a hierarchies=() mine=()
# v1 hierarchies from our mountinfo: "mountpoint controllers" (controllers as /proc/self/cgroup names them).
while read -r mnt opts; do
    ctl=$(tr ',' '\n' <<<"$opts" | grep -v -x -e rw -e ro -e relatime -e noexec -e nosuid -e nodev \
        -e clone_children -e xattr -e noprefix | paste -sd, -)
    own=$(awk -F: -v c="$ctl" '$2 == c { print $3 }' /proc/self/cgroup)
    [ -n "$own" ] || die "no line for $ctl in /proc/self/cgroup"
    hierarchies+=("$mnt $ctl")
    mine+=("$mnt${own%/}/$cgname")
done < <(sed -n -E 's/^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ ([^ ]+) .* - cgroup [^ ]+ ([^ ]+)$/\1 \2/p' /proc/self/mountinfo)
[ ${#hierarchies[@]} -gt 0 ] || die "no cgroup v1 hierarchy is mounted (this script is for v1/hybrid hosts)"

cleanup() {
    local cg
    for cg in "${mine[@]}"; do
        [ -d "$cg" ] || continue
        # Leftover container processes: they are in our cgroups, so ours (by pid, from cgroup.procs).
        while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < <(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
        sleep 0.2
        find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || echo "bench/oci-validation.sh: could not remove $cg" >&2
    done
    grep -q " $tmp" /proc/self/mountinfo && echo "bench/oci-validation.sh: mounts left below $tmp" >&2
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# One cgroup of ours, and in it one per runtime, which is the root of that runtime's cgroup
# namespace: a cgroup one runtime leaves behind ("/cgrouptest" after a failed program) is not
# in another's way.
make_cgroup() {
    mkdir "$1"
    # A new cpuset cgroup starts with no CPUs and no memory nodes: it takes its parent's.
    if [ -f "$1/cpuset.cpus" ]; then
        cat "$(dirname "$1")/cpuset.cpus" >"$1/cpuset.cpus"
        cat "$(dirname "$1")/cpuset.mems" >"$1/cpuset.mems"
    fi
}
for cg in "${mine[@]}"; do
    make_cgroup "$cg"
    for r in "${runtimes[@]}"; do make_cgroup "$cg/$r"; done
done

# What runs inside `unshare -m -C`: /sys/fs/cgroup again, seen from our cgroup namespace.
cat >"$tmp/bin/in-ns.sh" <<EOF
#!/usr/bin/env bash
set -e
mount -t tmpfs -o mode=755,nosuid,nodev,noexec cgroup-ns /sys/fs/cgroup
$(for h in "${hierarchies[@]}"; do
    set -- $h
    echo "mkdir -p $1 && mount -t cgroup -o $2 cgroup $1"
done)
cd "$tools"
exec "\$@"
EOF
# The runtimes, each with a state root and a bundles directory of its own.
for r in "${runtimes[@]}"; do
    mkdir -p "$tmp/bundles-$r"
    chmod "$(bundle_mode "$r")" "$tmp/bundles-$r"
    bin=$(runtime_binary "$r")
    [ -n "$bin" ] || die "$r is not installed (clab-runtime: build it, or set CLAB_RUNTIME)"
    mkdir -p "$tmp/state/$r"
    case $r in
    crun)
        cat >"$tmp/bin/$r" <<EOF
#!/usr/bin/env bash
# Never /dev/null as crun's stdio (it fchowns its stdio): a pipe for stdin, a log for the rest.
[ "\$(readlink /proc/self/fd/0)" = /dev/null ] && exec 0< <(:)
[ "\$(readlink /proc/self/fd/1)" = /dev/null ] && exec 1>>"$tmp/logs/crun-stdio"
[ "\$(readlink /proc/self/fd/2)" = /dev/null ] && exec 2>>"$tmp/logs/crun-stdio"
exec "$bin" --root "$tmp/state/$r" "\$@"
EOF
        ;;
    clab-runtime)
        cat >"$tmp/bin/$r" <<EOF
#!/usr/bin/env bash
CLAB_ROOT="$tmp/state/clab-data" exec "$bin" --root "$tmp/state/$r" "\$@"
EOF
        ;;
    *)
        cat >"$tmp/bin/$r" <<EOF
#!/usr/bin/env bash
exec "$bin" --root "$tmp/state/$r" "\$@"
EOF
        ;;
    esac
done
chmod 755 "$tmp"/bin/*

# --- one program under one runtime: "ok notok skip planned exit" ---------------------------------
run_one() {
    local r=$1 prog=$2 log=$3 status=0
    # The child moves itself (only itself) into our cgroups, then becomes the namespaced program.
    TMPDIR="$tmp/bundles-$r" RUNTIME="$tmp/bin/$r" bash -c '
        for cg in "${@:4}"; do echo $$ >"$cg/cgroup.procs"; done
        exec unshare -m -C --propagation private timeout -k 5 "$1" "$2" "./$3"' _ \
        "$timeout_s" "$tmp/bin/in-ns.sh" "$prog" "${mine[@]/%//$r}" >"$log" 2>"$log.err" <<<"" || status=$?
    local ok notok skip plan
    ok=$(grep -c -E '^ok [0-9]+' "$log" || true)
    notok=$(grep -c -E '^not ok [0-9]+' "$log" || true)
    skip=$(grep -c -i -E '^ok [0-9]+.*# skip' "$log" || true)
    plan=$(sed -n -E 's/^1\.\.([0-9]+).*/\1/p' "$log" | tail -1)
    # Some programs report a failure only as a top-level YAML diagnostic under a "1..0" plan.
    diag=$(grep -c -E '^    "error": ' "$log" || true)
    echo "$ok $notok $skip ${plan:-none} $status $diag"
}

declare -A verdict
for prog in "${programs[@]}"; do
    name=$(basename "$prog" .t)
    for r in "${runtimes[@]}"; do
        read -r ok notok skip plan status diag < <(run_one "$r" "$prog" "$tmp/logs/$r-$name.tap")
        # Passed: it exited 0, no test point failed, no failure was reported as a diagnostic, and
        # every planned point passed. Some programs check without test points: the *_fail ones
        # print nothing when the runtime refused the config as it must, the hook ones a "1..0"
        # plan and a diagnostic only on failure.
        [ "$ok" -gt 0 ] && diag=0  # with test points, diagnostics explain them (an expected error)
        if [ "$status" -eq 0 ] && [ "$notok" -eq 0 ] && [ "$diag" -eq 0 ] \
            && { { [ "$plan" = none ] && [ "$ok" -eq 0 ]; } || { [ "$plan" != none ] && [ "$ok" -eq "$plan" ]; }; }; then
            v="pass"
        else
            v="FAIL"
        fi
        v="$v $ok/$((ok + notok))"
        [ "$skip" -gt 0 ] && v="$v,${skip}skip"
        [ "$status" -ne 0 ] && v="$v,exit$status"
        [ "$plan" = 0 ] && v="$v,plan0"
        [ "$diag" -gt 0 ] && v="$v,diag"
        verdict[$r,$name]=$v
        if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS"; cp "$tmp/logs/$r-$name.tap" "$tmp/logs/$r-$name.tap.err" "$KEEP_LOGS/"; fi
    done
    line=$(printf '%-36s' "$name")
    for r in "${runtimes[@]}"; do line+=$(printf ' | %-22s' "${verdict[$r,$name]}"); done
    echo "$line"
done | tee "$tmp/table"

{
    header=$(printf '%-36s' "program")
    for r in "${runtimes[@]}"; do header+=$(printf ' | %-22s' "$r"); done
    echo "$header"
    cat "$tmp/table"
} >"$tmp/full"
# Totals from the table (the loop above ran in a pipeline's subshell).
echo
for r in "${runtimes[@]}"; do
    col=0
    for i in "${!runtimes[@]}"; do [ "${runtimes[$i]}" = "$r" ] && col=$((i + 2)); done
    awk -F'|' -v c="$col" -v r="$r" -v n="${#programs[@]}" '
        { split($c, a, " "); split(a[2], f, ","); split(f[1], b, "/"); ok += b[1]; all += b[2]
          if (a[1] == "pass") p++
          # the rule of prove(1) as well: exit 0 and no "not ok" (a "1..0" plan counts as skipped)
          if (b[1] == b[2] && a[2] !~ /exit/) q++ }
        END { printf "%-14s passed %d of %d programs (by prove: %d); test points ok %d, not ok %d\n", r, p, n, q, ok, all - ok }' \
        "$tmp/table"
done | tee "$tmp/totals"

# --- nothing outside our cgroups -----------------------------------------------------------------
sleep 0.3
# The suite's cgroups ("/cgrouptest", "testdir/cgrouptest/container") and runc's default
# (a cgroup named by the container id, the programs' ids being UUIDs) anywhere but below ours.
stray=$(find /sys/fs/cgroup -mindepth 2 -type d \( -name 'cgrouptest*' -o -name testdir \
    -o -regex '.*/[0-9a-f]\{8\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{12\}' \) 2>/dev/null |
    grep -v "/$cgname" || true)
if [ -n "$stray" ]; then
    echo "bench/oci-validation.sh: cgroups made outside $cgname during this run:" >&2
    echo "$stray" >&2
    exit 1
fi
echo "cgroups: everything the runtimes made is below $cgname (removed now); nothing elsewhere"
if [ -n "${RESULTS:-}" ]; then cat "$tmp/full" "$tmp/totals" >"$RESULTS"; fi
