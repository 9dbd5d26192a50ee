#!/usr/bin/env bash
# 50 detached containers up (`clab run -d`), then all removed (`clab rm -f`), with the time of
# each half, the supervisors' memory (RSS) and a check that nothing is left behind.
#
#   sudo bench/lifecycle.sh              # the release build (built here if missing)
#   CLAB=/path/to/clab N=50 STAGE=12 sudo -E bench/lifecycle.sh
#
# Target (issue 13): 50 up and down within 3 s on a 2-core machine; a supervisor ≤ 2 MiB RSS.
# Everything lives under one mktemp state root, removed on exit. Results: stdout and
# bench/results-lifecycle.md (overwritten each run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
n=${N:-50}
stage=${STAGE:-12}
results_md="$here/results-lifecycle.md"

die() { echo "bench/lifecycle.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"

clab=${CLAB:-$repo/.build/release/clab}
if [ -z "${CLAB:-}" ] && [ ! -x "$clab" ]; then
    echo "building clab (release)…" >&2
    (cd "$repo" && PATH="/opt/swift/usr/bin:$PATH" swift build -c release >&2)
fi
[ -x "$clab" ] || die "no clab binary at $clab"

tmp=$(mktemp -d /tmp/clab-bench-lifecycle.XXXXXX)
chmod 755 "$tmp"
export CLAB_ROOT=$tmp
cleanup() {
    # Not under set -e: a grep that finds no mount would end the trap before the rm -rf.
    set +e
    ids=$("$clab" ps -a -q 2>/dev/null)
    [ -z "$ids" ] || "$clab" rm -f $ids >/dev/null 2>&1 || true
    "$clab" gc >/dev/null 2>&1 || true
    grep -o " $tmp[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Warm up: the image, its uid-shifted copy, the compiled seccomp profile, the bridge.
"$clab" run -d --stage "$stage" --name warmup -- true >/dev/null
"$clab" rm -f warmup >/dev/null

t0=$(ms)
for i in $(seq 1 "$n"); do "$clab" run -d --stage "$stage" -- sleep 1000 >/dev/null; done
t1=$(ms)
running=$("$clab" ps -q | wc -l)
# Memory of every supervisor (the clabPid of each state.json), in KiB: RSS split as the kernel
# counts it (/proc/PID/status), and what is its own (smaps_rollup: Pss shares the clab-init text
# among all the supervisors mapping it; Private_Dirty is what no other process shares).
mem=$(for f in "$tmp"/run/containers/*/state.json; do
    pid=$(sed -n 's/.*"clabPid":\([0-9]*\).*/\1/p' "$f")
    awk '/^(VmRSS|RssAnon|RssFile|RssShmem):/ {printf "%s ", $2}' "/proc/$pid/status"
    awk '/^(Pss|Private_Dirty):/ {printf "%s ", $2}' "/proc/$pid/smaps_rollup"
    echo
done)
range() { echo "$mem" | awk -v c="$1" 'NF { v = $c; if (min == "" || v < min) min = v; if (v > max) max = v; s += v; n++ }
    END { printf "%d–%d (mean %.0f)", min, max, s / n }'; }
rss=$(range 1); rss_anon=$(range 2); rss_file=$(range 3); rss_shmem=$(range 4); pss=$(range 5); private=$(range 6)
load=$(uptime | sed 's/.*load average: //')
t2=$(ms)
"$clab" rm -f $("$clab" ps -q) >/dev/null
t3=$(ms)

left_dirs=$(ls "$tmp/run/containers" 2>/dev/null | wc -l)
left_mounts=$(grep -c " $tmp" /proc/self/mountinfo || true)
left_cgroups=$(find /sys/fs/cgroup -path '*/clab/*' -maxdepth 8 -type d 2>/dev/null | wc -l)
up=$((t1 - t0))
down=$((t3 - t2))

report=$(cat <<MD
# clab run -d ×$n, then clab rm -f of all (stage $stage)

\`bench/lifecycle.sh\` on $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%d), load average $load
(other builds may share the CPUs: see the load).

| | ms |
|---|---|
| $n × \`clab run -d -- sleep 1000\` (sequential) | $up |
| \`clab rm -f\` of all $n (one command) | $down |
| **total** (target ≤ 3000) | **$((up + down))** |

Running after the starts: $running of $n. Left behind after \`rm -f\`: $left_dirs container
directories, $left_mounts mounts under the state root, $left_cgroups cgroup directories below a \`clab\`
parent (other runs' included).

Each supervisor's memory, KiB, over the $n (conmon: ~1–2 MiB RSS):

| | KiB |
|---|---|
| VmRSS | $rss |
| RssAnon (its heap, stack, data) | $rss_anon |
| RssFile (clab-init's pages, shared by all supervisors) | $rss_file |
| RssShmem | $rss_shmem |
| Pss (the file pages divided among those mapping them) | $pss |
| Private_Dirty (its own: the per-container cost) | $private |
MD
)
echo "$report"
echo "$report" > "$results_md"
