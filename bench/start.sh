#!/usr/bin/env bash
# Start-to-exit of /bin/true at the full namespace stage: clab vs unshare+chroot vs runc.
#
#   sudo bench/start.sh            # or: sudo make bench
#   CLAB=/path/to/clab RUNS=100 WARMUP=10 sudo -E bench/start.sh
#
# All three run the same busybox rootfs (built by `clab image path` in a private state dir).
# Everything created here (temp dir, clab state, runc bundle and state, runc's per-run cgroups)
# lives under one mktemp dir or one unique cgroup name and is removed on exit.
# Results: a table on stdout and bench/results-start.md (overwritten each run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
runs=${RUNS:-50}
warmup=${WARMUP:-5}
results_md="$here/results-start.md"

die() { echo "bench/start.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, chroot, runc and cgroups need it)"
for tool in hyperfine runc crun unshare chroot python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (\`make bench\` installs hyperfine and runc from Debian)"
done

# --- clab: $CLAB, or the release build (built here if missing) ---------------------------------
if [ -n "${CLAB:-}" ]; then
    clab=$CLAB
else
    clab="$repo/.build/release/clab"
    if [ ! -x "$clab" ]; then
        echo "building clab (release, static Swift stdlib)…" >&2
        (cd "$repo" && PATH="/opt/swift/usr/bin:$PATH" swift build -c release >&2)
    fi
fi
[ -x "$clab" ] || die "no clab binary at $clab"

# --- scratch space and cleanup -----------------------------------------------------------------
# The name contains "clab" on purpose: a leaked mount would show up in `grep clab /proc/self/mountinfo`.
tmp=$(mktemp -d /tmp/clab-bench.XXXXXX)
# Stage 7 maps container root to uid 100000, which must be able to traverse down to its rootfs.
chmod 711 "$tmp"
state="$tmp/state"           # clab --root: images and per-container state, never /var/lib/clab
# Per-run state (clab's <root>/run, runc's and crun's --root) on a tmpfs, as /run is on a usual
# host: this VM's ext4 root has no journal, and without one ext4 skips every inode freed in the
# last 30 s when it allocates one (fs/ext4/ialloc.c, recently_deleted), so a file made and
# removed per run costs more the faster the runs come, and more again while others build on
# the same disk. RUN_ON_DISK=1 keeps it on the disk.
run_state="$state/run"
bundle="$tmp/runc-bundle"
runc_root="$run_state/runc-state"  # runc --root: its container state
runc_id="clab-bench-$$"
# A relative cgroupsPath makes runc (v1 fs driver) create this name beneath the caller's own
# cgroup in every hierarchy: /process_api/<x>/<name> for memory here, /<name> where we sit at /.
runc_cgroup="clab-bench-runc-$$"
# crun: its own bundle copy and state root. crun 1.8 refuses this hybrid cgroup host and places
# a relative cgroupsPath from each hierarchy's root, so (as Tests/ClabSystemTests/OCIConformanceTests
# does) it runs in a private mount namespace (`unshare -m`) without the cgroup2 mount and with our
# own memory cgroup bound over the memory hierarchy: its cgroups land beneath ours, never beside
# the machine's. That wrapper (unshare, sh, umount, mount) is timed on its own as "crun wrapper".
crun_bundle="$tmp/crun-bundle"
crun_root="$run_state/crun-state"
crun_id="clab-bench-crun-$$"
crun_cgroup="clab-bench-crun-$$"
own_memory=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)

cleanup() {
    local rc=$?
    set +e
    if [ -d "$runc_root/$runc_id" ]; then
        runc --root "$runc_root" delete --force "$runc_id" >/dev/null 2>&1
    fi
    if [ -d "$crun_root/$crun_id" ]; then
        crun --root "$crun_root" delete --force "$crun_id" >/dev/null 2>&1
    fi
    # Only the cgroups named after this run (runc removes them itself after each run; this
    # catches an interrupted one). rmdir refuses a cgroup that still holds processes.
    while IFS= read -r cg; do
        rmdir "$cg" 2>/dev/null || echo "bench/start.sh: could not remove cgroup $cg" >&2
    done < <(find /sys/fs/cgroup -depth -type d \( -name "$runc_cgroup" -o -name "$crun_cgroup" \) 2>/dev/null)
    if [ -n "${run_tmpfs:-}" ]; then
        umount "$run_state" || echo "bench/start.sh: could not unmount the tmpfs on $run_state" >&2
    fi
    # Nothing should be mounted below $tmp (unshare/runc mounts die with their namespaces,
    # clab removes its own); if something is, let clab's gc handle it, then detach the rest.
    if grep -qF " $tmp/" /proc/self/mountinfo; then
        "$clab" gc --root "$state" >/dev/null 2>&1
        awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
            while IFS= read -r m; do umount -l "$m"; done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$run_state"
run_tmpfs=""
if [ "${RUN_ON_DISK:-0}" != 1 ]; then
    mount -t tmpfs -o mode=0755 clab-bench-run "$run_state" || die "cannot mount a tmpfs on $run_state"
    run_tmpfs=1
fi

# --- the rootfs ----------------------------------------------------------------------------------
rootfs=$("$clab" image path --root "$state")
[ -x "$rootfs/bin/true" ] || die "clab image path gave $rootfs, which has no /bin/true"
# First stage-7 run makes the uid-shifted copy of the image (once): keep that out of the timings.
"$clab" step 7 --quiet --root "$state" -- /bin/true || die "clab step 7 -- /bin/true failed"

# --- unshare: the same namespaces as clab's stages 2-6, fresh /proc, chroot --------------------
# --mount-proc mounts proc at <rootfs>/proc inside the new (private) mount namespace before exec,
# so the chrooted /bin/true sees a fresh /proc and the host never sees the mount.
unshare_cmd="unshare -fpmiun --mount-proc=$rootfs/proc chroot $rootfs /bin/true"
# clab's stage 7 adds a user namespace; this row shows what that costs unshare (root maps to 0).
unshare_user_cmd="unshare -fpmiunU --map-root-user --mount-proc=$rootfs/proc chroot $rootfs /bin/true"
$unshare_cmd || die "unshare+chroot failed: $unshare_cmd"
$unshare_user_cmd || die "unshare+chroot with a user namespace failed: $unshare_user_cmd"

# --- runc: default `runc spec`, pointed at the same rootfs --------------------------------------
mkdir -p "$bundle" "$runc_root"
(cd "$bundle" && runc spec)
python3 - "$bundle/config.json" "$rootfs" "$runc_cgroup" <<'EOF'
import json, sys
path, rootfs, cgroup = sys.argv[1:]
with open(path) as f:
    c = json.load(f)
c["root"] = {"path": rootfs, "readonly": False}  # clab and the chroot also get a writable root
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["linux"]["cgroupsPath"] = cgroup
with open(path, "w") as f:
    json.dump(c, f, indent=1)
EOF
runc_cmd="runc --root $runc_root run --bundle $bundle $runc_id"
runc_note=""
if ! runc_err=$($runc_cmd </dev/null 2>&1); then
    runc_note="runc could not run here: $(echo "$runc_err" | tail -1)"
    echo "bench/start.sh: $runc_note (left out of the benchmark)" >&2
elif [ -n "$(find /sys/fs/cgroup -name "$runc_cgroup" 2>/dev/null)" ] || [ -n "$(ls -A "$runc_root")" ]; then
    die "runc left its cgroup or state behind after a run; not benchmarking it"
fi

# --- crun: the same config.json, its own cgroupsPath, in the wrapper described above -----------
mkdir -p "$crun_bundle" "$crun_root"
python3 - "$bundle/config.json" "$crun_bundle/config.json" "$crun_cgroup" <<'EOF2'
import json, sys
src, dst, cgroup = sys.argv[1:]
c = json.load(open(src))
c["linux"]["cgroupsPath"] = cgroup
json.dump(c, open(dst, "w"), indent=1)
EOF2
crun_wrap="umount /sys/fs/cgroup/unified 2>/dev/null; mount --bind $own_memory /sys/fs/cgroup/memory && exec"
crun_cmd="unshare -m sh -c '$crun_wrap crun --root $crun_root run -b $crun_bundle $crun_id'"
crun_wrapper_cmd="unshare -m sh -c '$crun_wrap /bin/true'"
crun_note=""
if ! crun_err=$(eval "$crun_cmd" </dev/null 2>&1); then
    crun_note="crun could not run here: $(echo "$crun_err" | tail -1)"
    echo "bench/start.sh: $crun_note (left out of the benchmark)" >&2
elif [ -n "$(ls -A "$crun_root")" ]; then
    die "crun left its state behind after a run; not benchmarking it"
fi

# --- measure -------------------------------------------------------------------------------------
clab_cmd="$clab step 7 --quiet --root $state -- /bin/true"
# Stages 1 and 4 show what the namespaces cost clab. The floor of any static Swift program
# (exec, page faults, the Swift runtime's start), clab's or not: print("hi") built the way
# clab is (-static-executable), when the toolchain is there.
swiftc=$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)
hello_note=""
echo 'print("hi")' >"$tmp/hello.swift"
if ! hello_err=$("$swiftc" -O -static-executable "$tmp/hello.swift" -o "$tmp/hello" 2>&1); then
    hello_note="no static Swift hello-world: $(echo "$hello_err" | tail -1)"
fi
names=(clab unshare "unshare -U" runc crun "crun wrapper" "clab step 1" "clab step 4" "static Swift hello")
cmds=("$clab_cmd" "$unshare_cmd" "$unshare_user_cmd" "$runc_cmd" "$crun_cmd" "$crun_wrapper_cmd"
    "$clab step 1 --quiet --root $state -- /bin/true" "$clab step 4 --quiet --root $state -- /bin/true"
    "$tmp/hello")
[ -z "$runc_note" ] || { unset 'names[3]' 'cmds[3]'; }
[ -z "$crun_note" ] || { unset 'names[4]' 'cmds[4]' 'names[5]' 'cmds[5]'; }
[ -z "$hello_note" ] || { unset 'names[8]' 'cmds[8]'; }
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done

hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --export-json "$tmp/start.json" "${args[@]}" </dev/null

# The target's ratio once more, interleaved: ROUNDS short hyperfine runs of clab and unshare
# alternating, so a change in the machine's load (other builds on a shared VM) hits both alike.
# Reported as the median over rounds of clab's median / unshare's median.
rounds=${ROUNDS:-20}
for r in $(seq "$rounds"); do
    hyperfine -N --style none --warmup 1 --runs 5 --export-json "$tmp/pair-$r.json" \
        -n clab "$clab_cmd" -n unshare "$unshare_cmd" </dev/null >/dev/null
done

# After the measured runs runc must have cleaned up after itself.
if [ -z "$runc_note" ]; then
    leftover=$(find /sys/fs/cgroup -name "$runc_cgroup" 2>/dev/null; ls -A "$runc_root")
    [ -z "$leftover" ] || echo "bench/start.sh: runc left behind: $leftover (removed at exit)" >&2
fi

# --- report --------------------------------------------------------------------------------------
kernel=$(uname -r)
python3 - "$tmp/start.json" "$results_md" "$runs" "$warmup" "$kernel" "$runc_note" "$crun_note" "$tmp" "$rounds" \
    "$(uptime | sed 's/.*load average: //')" \
    "$(hyperfine --version)" "$(runc --version | head -1)" "$(crun --version | head -1)" "$(unshare --version)" <<'EOF'
import datetime, json, math, os, statistics, sys

path, out, runs, warmup, kernel, runc_note, crun_note, tmp, rounds, load, *versions = sys.argv[1:]
results = {r["command"]: r for r in json.load(open(path))["results"]}
pairs = []
for r in range(1, int(rounds) + 1):
    res = {x["command"]: x for x in json.load(open(f"{tmp}/pair-{r}.json"))["results"]}
    pairs.append((res["clab"]["median"], res["unshare"]["median"]))

def ms(x):
    return x * 1000

def stats(name):
    r = results[name]
    return r["mean"], r["stddev"] or 0.0, r["median"], r["min"]

def ratio(a, b):
    """a/b with first-order error propagation of the two standard deviations."""
    ma, sa, *_ = stats(a)
    mb, sb, *_ = stats(b)
    q = ma / mb
    return q, q * math.hypot(sa / ma, sb / mb)

rows = ["| command | mean ± σ (ms) | median (ms) | min (ms) | CPU user+sys (ms) | clab / this |",
        "|---|---:|---:|---:|---:|---:|"]
for name, r in results.items():
    mean, sd, med, mn = stats(name)
    rel = "—" if name.startswith("clab") else "%.2f ± %.2f" % ratio("clab", name)
    cpu = ms(r["user"] + r["system"])
    rows.append(f"| {name} | {ms(mean):.2f} ± {ms(sd):.2f} | {ms(med):.2f} | {ms(mn):.2f} | {cpu:.2f} | {rel} |")

targets = []
if "unshare" in results:
    q, _ = ratio("clab", "unshare")
    paired = statistics.median(c / u for c, u in pairs)
    cpu = (results["clab"]["user"] + results["clab"]["system"]) / (results["unshare"]["user"] + results["unshare"]["system"])
    mins = stats("clab")[3] / stats("unshare")[3]
    targets.append(f"- within 2× of `unshare -fpmiun chroot`: clab/unshare = {q:.2f} by means → "
                   + ("**met**" if q <= 2 else "**missed**")
                   + f"; interleaved ({rounds} rounds of 5 runs each, median of the rounds' median ratios) "
                   f"{paired:.2f} → " + ("**met**" if paired <= 2 else "**missed**")
                   + f"; by minimums {mins:.2f}, by CPU time (user+sys) {cpu:.2f}")
if "runc" in results:
    q, _ = ratio("clab", "runc")
    targets.append(f"- faster than runc: clab/runc = {q:.2f} → " + ("**met**" if q < 1 else "**missed**"))
else:
    targets.append(f"- faster than runc: **not measured** — {runc_note}")
if "crun" in results and "crun wrapper" in results:
    q, _ = ratio("clab", "crun")
    own = stats("crun")[0] - stats("crun wrapper")[0]
    targets.append(f"- faster than crun: clab/crun = {q:.2f} (crun's row includes its `unshare -m` wrapper; "
                   f"crun alone ≈ {ms(own):.2f} ms, clab/that = {stats('clab')[0] / own:.2f}) → "
                   + ("**met**" if stats("clab")[0] < own else "**missed**"))
else:
    targets.append(f"- faster than crun: **not measured** — {crun_note}")

md = "\n".join([
    "# Start-to-exit of `/bin/true` (bench/start.sh)",
    "",
    f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, kernel {kernel}, load average {load} at the end, "
    f"{runs} runs after {warmup} warm-up runs each ({', '.join(versions)}).",
    "",
    *rows,
    "",
    "Targets (design.md):",
    *targets,
    "",
    "Ratios carry first-order propagated σ. CPU user+sys: hyperfine's mean user and system time of",
    "the command and its children (less sensitive than wall time to waiting for a CPU on a loaded",
    "machine). Rows: `clab step 7` (chroot + UTS, PID, mount +",
    "pivot_root, IPC, network and user namespaces); `unshare -fpmiun --mount-proc chroot` (the",
    "target's reference, no user namespace); the same with `-U --map-root-user` (for comparison);",
    "`runc run` with its default `runc spec` (no user namespace, but cgroups, /sys, /dev/pts,",
    "masked paths, capabilities); `crun run` with the same config.json inside `unshare -m sh -c` (crun",
    "1.8 refuses this hybrid cgroup host otherwise), and that wrapper alone running /bin/true. All on",
    "the same busybox rootfs. `clab step 1` (chroot only) and `clab step 4` (+ UTS, PID, mount",
    "namespaces and pivot_root) show what the namespaces cost clab; `static Swift hello` is",
    "`print(\"hi\")` built with `-static-executable` as clab is: the floor of any static Swift process.",
    "Per-run state (clab's `<root>/run`, runc's and crun's `--root`) "
    + ("on the disk (RUN_ON_DISK=1)." if os.environ.get("RUN_ON_DISK") == "1" else
       "on a tmpfs, as /run usually is (this VM's ext4 has no journal: see the script's comment)."),
    "",
])
open(out, "w").write(md)
print()
print("\n".join(rows))
print()
print("\n".join(targets))
print(f"\n(written to {out})")
EOF
