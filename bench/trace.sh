#!/usr/bin/env bash
# clab trace's cost on the worst case for a tracer, a stream of trivial syscalls:
# `dd if=/dev/zero of=/dev/null bs=1 count=300000` (600,000 read/write calls), run
#   plain, under `clab trace --host --json /dev/null` (a record per syscall, decoded to JSON),
#   under `clab trace --host --summary` (counted in the kernel, no records), and under
#   `strace -f -o /dev/null`,
# all in one run, as ratios to plain; plus `clab trace --host -- /bin/true` end to end (the
# fixed cost: load, verify and attach the BPF programs, run, detach).
#
#   sudo bench/trace.sh
#   CLAB=/path/to/clab RUNS=20 STRACE_RUNS=3 sudo -E bench/trace.sh
#
# Results: a table on stdout and bench/results-trace.md (overwritten each run).
# Targets (design.md): JSON events ≤ 4× plain, summary ≤ 1.6× plain, zero lost events at the
# default buffer, /bin/true under 150 ms.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
runs=${RUNS:-10}
strace_runs=${STRACE_RUNS:-3}
warmup=${WARMUP:-2}
results_md="$here/results-trace.md"
work="dd if=/dev/zero of=/dev/null bs=1 count=300000"

die() { echo "bench/trace.sh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (loading BPF programs needs it)"
for tool in hyperfine strace dd python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install hyperfine strace)"
done

if [ -n "${CLAB:-}" ]; then
    clab=$CLAB
else
    clab="$repo/.build/release/clab"
    if [ ! -x "$clab" ]; then
        echo "building clab (release)…" >&2
        (cd "$repo" && PATH="/opt/swift/usr/bin:$PATH" swift build -c release >&2)
    fi
fi
[ -x "$clab" ] || die "no clab binary at $clab"

tmp=$(mktemp -d /tmp/clab-bench-trace.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Zero lost events at the default buffer: one traced run, its last JSON line.
"$clab" trace --host --json "$tmp/dd.jsonl" -- $work 2>/dev/null
lost=$(tail -n 1 "$tmp/dd.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lost"])')
events=$(grep -c '"type":"syscall"' "$tmp/dd.jsonl")

hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$tmp/main.json" \
    -n plain "$work" \
    -n json "$clab trace --host --json /dev/null -- $work" \
    -n summary "$clab trace --host --summary -- $work" \
    -n true "$clab trace --host -- /bin/true" >&2
# strace is ~100x slower on this work: fewer runs, same session.
hyperfine -N --warmup 0 --runs "$strace_runs" --export-json "$tmp/strace.json" \
    -n strace "strace -f -o /dev/null $work" >&2

python3 - "$tmp/main.json" "$tmp/strace.json" "$results_md" "$lost" "$events" "$(uname -r)" <<'EOF'
import json, math, sys
main, strace, out, lost, events, kernel = sys.argv[1:7]
rows = {r["command"]: r for r in json.load(open(main))["results"] + json.load(open(strace))["results"]}
plain = rows["plain"]
def ratio(r):
    m = r["mean"] / plain["mean"]
    s = m * math.sqrt((r["stddev"] / r["mean"]) ** 2 + (plain["stddev"] / plain["mean"]) ** 2)
    return m, s
labels = {
    "plain": "`dd bs=1 count=300000` (600k syscalls)",
    "json": "`clab trace --host --json /dev/null -- dd …`",
    "summary": "`clab trace --host --summary -- dd …`",
    "strace": "`strace -f -o /dev/null dd …`",
}
targets = {"json": 4.0, "summary": 1.6}
lines = ["| command | mean ± σ (ms) | × plain | target |", "|---|---:|---:|---|"]
for key in ["plain", "json", "summary", "strace"]:
    r = rows[key]
    m, s = ratio(r)
    t = targets.get(key)
    verdict = "" if t is None else (f"≤ {t}× " + ("✓" if m <= t else "✗"))
    lines.append(f"| {labels[key]} | {r['mean']*1e3:.1f} ± {r['stddev']*1e3:.1f} | "
                 + ("—" if key == "plain" else f"{m:.2f} ± {s:.2f}") + f" | {verdict} |")
t = rows["true"]
lines.append(f"| `clab trace --host -- /bin/true` (end to end) | {t['mean']*1e3:.1f} ± {t['stddev']*1e3:.1f} | — | "
             + ("< 150 ms ✓" if t["mean"] < 0.150 else "< 150 ms ✗") + " |")
jm, sm = ratio(rows["json"])[0], ratio(rows["strace"])[0]
notes = [
    "",
    f"Lost events at the default 8 MiB buffer: {lost} (of {events} syscalls in one `--json` run).",
    f"strace -f costs {sm / jm:.0f}× more than the JSON trace and {sm / ratio(rows['summary'])[0]:.0f}× more than the summary.",
    f"Kernel {kernel}; {len(open('/proc/cpuinfo').read().split('processor')) - 1} CPUs.",
]
text = "\n".join(lines + notes) + "\n"
open(out, "w").write(text)
print(text, end="")
EOF
