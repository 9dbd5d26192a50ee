#!/usr/bin/env bash
# What the Engine API adds to a container start: `docker run --rm busybox true` through clabd
# (create → attach → wait → start over HTTP, a supervisor, removal by the daemon) against
# `clab run busybox -- true` (the foreground path, removed at exit, like docker run --rm),
# paired in one hyperfine run.
#
#   sudo bench/daemon.sh                 # the release build (built here if missing)
#   CLAB=/path/to/clab RUNS=30 sudo -E bench/daemon.sh
#
# Everything lives under one mktemp state root with its own socket, removed on exit. Results:
# stdout and bench/results-daemon.md (overwritten each run). Measure at a quiet moment: the
# load average goes into the report.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
runs=${RUNS:-30}
results_md="$here/results-daemon.md"

die() { echo "bench/daemon.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"
command -v hyperfine >/dev/null || die "needs hyperfine (apt-get install hyperfine)"
docker=$(command -v docker) || die "needs a docker client (apt-get install docker.io)"

clab=${CLAB:-$repo/.build/release/clab}
if [ -z "${CLAB:-}" ] && [ ! -x "$repo/.build/release/clabd" ]; then
    echo "building clab, clab-init and clabd (release)…" >&2
    (cd "$repo" && PATH="/opt/swift/usr/bin:$PATH" swift build -c release >&2)
fi
# CLABD: another clabd (a debug build when the release one is not built).
clabd=${CLABD:-$(dirname "$clab")/clabd}
[ -x "$clab" ] && [ -x "$clabd" ] || die "no clab and clabd at $(dirname "$clab")"

tmp=$(mktemp -d /tmp/clab-bench-daemon.XXXXXX)
chmod 755 "$tmp"
export CLAB_ROOT=$tmp
export DOCKER_HOST=unix://$tmp/d.sock DOCKER_CONFIG=$tmp/docker-config
daemon=""
cleanup() {
    set +e
    [ -z "$daemon" ] || { kill "$daemon"; wait "$daemon"; } 2>/dev/null
    ids=$("$clab" ps -a -q 2>/dev/null)
    [ -z "$ids" ] || "$clab" rm -f $ids >/dev/null 2>&1
    "$clab" gc >/dev/null 2>&1
    grep -o " $tmp[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

"$clabd" --socket "$tmp/d.sock" </dev/zero >"$tmp/clabd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -S "$tmp/d.sock" ] && break; sleep 0.05; done
[ -S "$tmp/d.sock" ] || die "clabd did not start: $(cat "$tmp/clabd.log")"

# Warm up: the image, its uid-shifted copy, the seccomp profile, the bridge.
"$clab" run busybox -- true
"$docker" run --rm busybox true

load=$(uptime | sed 's/.*load average: //')
hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$tmp/table.md" \
    -n "clab run busybox -- true" "$clab run busybox -- true" \
    -n "docker run --rm busybox true (clabd)" "$docker run --rm busybox true" >&2
left=$("$clab" ps -a -q | wc -l)

report=$(cat <<MD
# docker run --rm through clabd vs clab run (stage 12)

\`bench/daemon.sh\` on $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%d), load average $load
(other builds may share the CPUs: see the load), $runs runs each, docker client $("$docker" version --format '{{.Client.Version}}'),
clab $clab, clabd $clabd.

$(cat "$tmp/table.md")

Containers left after the runs: $left. The difference is the API's added cost: the docker CLI's
own start, four HTTP requests (create, attach, wait, start) and a ping, \`clab create\` spawned by
the daemon and its supervisor (where \`clab run\` in the foreground supervises the container
itself), the attach socket, and the removal by the daemon's reaper (it polls every 50 ms).
MD
)
echo "$report"
echo "$report" > "$results_md"
