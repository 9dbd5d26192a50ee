#!/usr/bin/env bash
# `podman run --rm busybox true` with --runtime clab-runtime, runc and crun, paired in one
# hyperfine run: the whole podman → conmon → runtime path (create, start, the exit, delete).
#
#   sudo bench/podman.sh
#   CLAB_RUNTIME=/path/to/clab-runtime RUNS=30 WARMUP=3 sudo -E bench/podman.sh
#
# podman keeps everything in one mktemp dir (vfs storage, run root, tmpdir); the image is clab's
# busybox (`clab image export`, copied in with skopeo: nothing is pulled); containers have no
# network; their cgroups go beneath this shell's own cgroup (a relative --cgroup-parent, conmon
# not moved) and are checked for and removed at exit. Container root is uid 100000 on the host
# for all three (`--uidmap`), since clab-runtime always maps it so. podman is run with -i: conmon
# then gives the container a stdin pipe, never the host's /dev/null (crun 1.8 fchowns the
# container's stdio to its root).
# Results: hyperfine's table on stdout and bench/results-podman.md (overwritten each run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
runs=${RUNS:-30}
warmup=${WARMUP:-3}
results_md="$here/results-podman.md"

die() { echo "bench/podman.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (podman as root, namespaces, cgroups)"
for tool in hyperfine podman conmon skopeo runc crun python3 unshare; do
    command -v "$tool" >/dev/null || die "$tool is missing (\`make bench\` installs them from Debian)"
done

# --- clab-runtime: $CLAB_RUNTIME, or the release build (built here if missing) -----------------
if [ -n "${CLAB_RUNTIME:-}" ]; then
    clab_runtime=$CLAB_RUNTIME
else
    clab_runtime="$repo/.build/release/clab-runtime"
    if [ ! -x "$clab_runtime" ] || [ ! -x "$repo/.build/release/clab" ] || [ ! -x "$repo/.build/release/clab-init" ]; then
        echo "building clab, clab-init and clab-runtime (release, static)…" >&2
        (cd "$repo" && PATH="/opt/swift/usr/bin:$PATH" swift build -c release >&2)
    fi
fi
bin=$(dirname "$clab_runtime")
[ -x "$clab_runtime" ] && [ -x "$bin/clab-init" ] && [ -x "$bin/clab" ] ||
    die "need clab-runtime, clab-init and clab side by side in $bin"

# --- scratch space and cleanup -----------------------------------------------------------------
tmp=$(mktemp -d /tmp/clab-bench-podman.XXXXXX)
chmod 711 "$tmp"  # container root (uid 100000) must traverse to the state and the rootfs
cgroup_parent="clab-bench-podman-$$"
podman_global=(--root "$tmp/storage" --runroot "$tmp/runroot" --tmpdir "$tmp/podman-tmp"
    --network-config-dir "$tmp/networks" --storage-driver vfs --cgroup-manager cgroupfs --events-backend file)
run_opts=(--network none --cgroups no-conmon --cgroup-parent "$cgroup_parent"
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
    --uidmap 0:100000:65536 --gidmap 0:100000:65536)
null_owner=$(stat -c %u:%g /dev/null)

cleanup() {
    local rc=$?
    set +e
    for runtime in clab-runtime runc crun; do
        podman "${podman_global[@]}" --runtime "$tmp/$runtime" rm -af >/dev/null 2>&1
    done
    # Only cgroups named after this run: deepest first; rmdir refuses one that holds processes.
    while IFS= read -r cg; do
        rmdir "$cg" 2>/dev/null || echo "bench/podman.sh: could not remove cgroup $cg" >&2
    done < <(find /sys/fs/cgroup -depth -type d -path "*/$cgroup_parent*" 2>/dev/null)
    awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while IFS= read -r m; do umount -l "$m"; done
    rm -rf "$tmp"
    [ "$(stat -c %u:%g /dev/null)" = "$null_owner" ] || echo "bench/podman.sh: /dev/null's owner changed!" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each runtime with its own state directory, in the command (podman drops --runtime-flag in the
# cleanup process that calls delete, and clears the environment).
printf '#!/bin/sh\nexec %s --root %s "$@"\n' "$clab_runtime" "$tmp/clab-runtime-state" >"$tmp/clab-runtime"
printf '#!/bin/sh\nexec %s --root %s "$@"\n' "$(command -v runc)" "$tmp/runc-state" >"$tmp/runc"
printf '#!/bin/sh\nexec %s --root %s "$@"\n' "$(command -v crun)" "$tmp/crun-state" >"$tmp/crun"
chmod 755 "$tmp/clab-runtime" "$tmp/runc" "$tmp/crun"

# --- the image -----------------------------------------------------------------------------------
"$bin/clab" image export --root "$tmp/clab-images" busybox "$tmp/busybox-oci" >"$tmp/export.log" 2>&1 ||
    die "clab image export failed: $(tail -1 "$tmp/export.log")"
# skopeo keeps a blob cache in /var/lib/containers: an empty /var/lib of its own keeps it off the
# host. localhost/busybox is a full name: no short-name lookup (a lock in /var/cache/containers).
unshare -m sh -c 'mount -t tmpfs tmpfs /var/lib && exec "$0" "$@"' skopeo copy --quiet \
    "oci:$tmp/busybox-oci:latest" "containers-storage:[vfs@$tmp/storage+$tmp/runroot]localhost/busybox:latest"

cmd() { echo "podman ${podman_global[*]} --runtime $tmp/$1 run -i --rm ${run_opts[*]} localhost/busybox:latest true"; }

# --- which runtimes run here -----------------------------------------------------------------------
names=()
cmds=()
notes=()
for runtime in clab-runtime runc crun; do
    if err=$(eval "$(cmd "$runtime")" </dev/null 2>&1); then
        names+=("$runtime")
        cmds+=("$(cmd "$runtime")")
    else
        notes+=("$runtime could not run here: $(echo "$err" | tail -1)")
        echo "bench/podman.sh: ${notes[-1]} (left out)" >&2
    fi
done
[ "${#names[@]}" -gt 0 ] || die "no runtime ran"
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done

hyperfine --style basic --warmup "$warmup" --runs "$runs" --export-json "$tmp/podman.json" "${args[@]}" </dev/null

# --- the runtimes' own calls, interleaved ----------------------------------------------------------
# The runs above are dominated by podman and the storage copy, and on a loaded machine by noise
# that drifts between the first command's runs and the second's. So the calls themselves are
# timed too: each runtime behind a wrapper that notes how long each call took, runtimes
# alternating run by run.
calls_runs=${CALLS_RUNS:-15}
for runtime in "${names[@]}"; do
    cat >"$tmp/timed-$runtime" <<EOS
#!/bin/bash
s=\$(date +%s%N); "$tmp/$runtime" "\$@"; rc=\$?; e=\$(date +%s%N)
sub=; for a in "\$@"; do case \$a in create|start|delete|kill|state) sub=\$a; break;; esac; done
echo "$runtime \$sub \$(( (e - s) / 1000 ))" >>"$tmp/calls.log"
exit \$rc
EOS
    chmod 755 "$tmp/timed-$runtime"
done
for ((i = 0; i < calls_runs; i++)); do
    for runtime in "${names[@]}"; do
        podman "${podman_global[@]}" --runtime "$tmp/timed-$runtime" run -i --rm "${run_opts[@]}" \
            localhost/busybox:latest true </dev/null
    done
done

leftover=$(find /sys/fs/cgroup -type d -path "*/$cgroup_parent/*" 2>/dev/null | head -3 || true)
[ -z "$leftover" ] || echo "bench/podman.sh: cgroups left after the runs (removed at exit): $leftover" >&2

# --- report --------------------------------------------------------------------------------------
first_line() { "$@" 2>&1 | sed -n 1p || true; }
python3 - "$tmp/podman.json" "$tmp/calls.log" "$calls_runs" "$results_md" "$runs" "$warmup" "$(uname -r)" \
    "$(uptime | sed 's/.*load average: //')" "$(printf '%s\n' "${notes[@]+"${notes[@]}"}")" \
    "$(first_line podman --version)" "$(first_line conmon --version)" "$(first_line runc --version)" \
    "$(first_line crun --version)" "$(first_line hyperfine --version)" <<'EOF'
import datetime, json, math, statistics, sys

path, calls_path, calls_runs, out, runs, warmup, kernel, load, notes, *versions = sys.argv[1:]
results = {r["command"]: r for r in json.load(open(path))["results"]}

def stats(name):
    r = results[name]
    return r["mean"], r["stddev"] or 0.0, r["median"], r["min"]

rows = ["| runtime | mean ± σ (ms) | median (ms) | min (ms) | this / runc |", "|---|---:|---:|---:|---:|"]
for name in results:
    mean, sd, med, mn = stats(name)
    rel = "—"
    if "runc" in results and name != "runc":
        mr, sr, *_ = stats("runc")
        q = mean / mr
        rel = "%.2f ± %.2f" % (q, q * math.hypot(sd / mean, sr / mr))
    rows.append(f"| {name} | {mean*1000:.0f} ± {sd*1000:.0f} | {med*1000:.0f} | {mn*1000:.0f} | {rel} |")

verdict = ""
if "clab-runtime" in results and "runc" in results:
    c, r = stats("clab-runtime")[0], stats("runc")[0]
    verdict = (f"Target (clab-runtime at least as fast as runc): clab-runtime/runc = {c/r:.2f} → "
               + ("**met**" if c <= r else "**missed**"))

calls = {}
for line in open(calls_path):
    runtime, call, micros = line.split()
    calls.setdefault(runtime, {}).setdefault(call, []).append(int(micros) / 1000)
call_names = ["create", "start", "delete"]
call_rows = ["| runtime | " + " | ".join(f"{c} (ms)" for c in call_names) + " | the three (ms) |",
             "|---|" + "---:|" * (len(call_names) + 1)]
for runtime, by in calls.items():
    means = [statistics.mean(by[c]) if c in by else float("nan") for c in call_names]
    cells = [f"{statistics.mean(by[c]):.1f} ± {statistics.pstdev(by[c]):.1f}" if c in by else "—" for c in call_names]
    call_rows.append(f"| {runtime} | " + " | ".join(cells) + f" | {sum(means):.1f} |")
sums = {r: sum(statistics.mean(by[c]) for c in call_names if c in by) for r, by in calls.items()}
call_verdict = ""
if "clab-runtime" in sums and "runc" in sums:
    call_verdict = (f"In its own calls, clab-runtime/runc = {sums['clab-runtime'] / sums['runc']:.2f} "
                    f"({sums['clab-runtime']:.1f} ms vs {sums['runc']:.1f} ms per container).")

text = f"""# `podman run --rm busybox true`: clab-runtime, runc, crun

Written by `bench/podman.sh` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC ({runs} runs, {warmup} warm-up,
one paired hyperfine run). Kernel {kernel}, load average {load} at the end.
{"; ".join(versions)}.

What one run is: podman (vfs storage in a temp dir, `--network none`, cgroupfs beneath the
caller's cgroup, `--uidmap 0:100000:65536`) creates the container (a vfs copy of the image),
starts conmon, which calls the runtime's `create`, then podman calls `start`, the container runs
`true`, conmon records the exit, podman calls `delete` and removes the container. Most of the
time is podman's and the storage copy's; the runtimes differ only in their own calls.

{chr(10).join(rows)}

{verdict}

How to read it: hyperfine runs all of one command's runs, then all of the next one's, so load
that changes meanwhile (other jobs on this 2-CPU machine) lands on one runtime more than on
the other; when σ is a large part of the mean, the ratio above is within noise. The table below
alternates the runtimes run by run and times only their own calls: it is the steadier comparison.

The runtimes' own calls ({calls_runs} more runs of each, alternating, each call timed by a
wrapper; mean ± σ; `kill` and `state` are not called on this path):

{chr(10).join(call_rows)}

{call_verdict}

{chr(10).join("- " + n for n in notes.splitlines() if n)}
"""
open(out, "w").write(text)
print(text)
EOF
