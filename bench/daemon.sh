#!/usr/bin/env bash
# What the Engine API adds to a container start: `docker run --rm busybox true` through clabd
# (create → attach → wait → start over HTTP, a supervisor, removal by the daemon) against
# `clab run busybox -- true` (the foreground path, removed at exit, like docker run --rm) and,
# where it runs, `podman run --rm` with runc (set up as bench/podman.sh does: its own storage in
# the temp dir, cgroups beneath this shell's own, --uidmap), paired in one hyperfine run.
#
#   sudo bench/daemon.sh                 # the release build (built here if missing)
#   CLAB=/path/to/clab RUNS=30 PODMAN=0 sudo -E bench/daemon.sh
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

invocation="$0${*:+ $*}"
[ -z "${CLAB:-}" ] || invocation="CLAB=$CLAB $invocation"
[ -z "${CLABD:-}" ] || invocation="CLABD=$CLABD $invocation"
[ -z "${RUNS:-}" ] || invocation="RUNS=$RUNS $invocation"
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
cgroup_parent="clab-bench-daemon-$$"
podman_global=(--root "$tmp/podman/storage" --runroot "$tmp/podman/runroot" --tmpdir "$tmp/podman/tmp"
    --network-config-dir "$tmp/podman/networks" --storage-driver vfs --cgroup-manager cgroupfs
    --events-backend file --runtime "$tmp/runc")
null_owner=$(stat -c %u:%g /dev/null)
cleanup() {
    set +e
    [ -z "$daemon" ] || { kill "$daemon"; wait "$daemon"; } 2>/dev/null
    if [ -x "$tmp/runc" ]; then env -u DOCKER_CONFIG podman "${podman_global[@]}" rm -af >/dev/null 2>&1; fi
    # Only cgroups named after this run, deepest first (rmdir refuses one that holds processes).
    find /sys/fs/cgroup -depth -type d -path "*/$cgroup_parent*" 2>/dev/null | while read -r cg; do
        rmdir "$cg" 2>/dev/null || echo "bench/daemon.sh: could not remove cgroup $cg" >&2
    done
    [ "$(stat -c %u:%g /dev/null)" = "$null_owner" ] || echo "bench/daemon.sh: /dev/null's owner changed!" >&2
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

# podman with runc, as bench/podman.sh runs it (PODMAN=0 leaves it out): clab's busybox exported
# as OCI and copied into podman's own storage with skopeo (nothing pulled); -i gives the
# container a stdin pipe, never the host's /dev/null.
podman_cmd=""
podman_note="podman: left out (PODMAN=0)"
if [ "${PODMAN:-1}" != 0 ]; then
    podman_note="podman: not installed (left out)"
    if command -v podman >/dev/null && command -v runc >/dev/null && command -v skopeo >/dev/null; then
        mkdir -p "$tmp/podman"
        printf '#!/bin/sh\nexec %s --root %s "$@"\n' "$(command -v runc)" "$tmp/runc-state" >"$tmp/runc"
        chmod 755 "$tmp/runc"
        "$clab" image export --root "$tmp/podman/clab-images" busybox "$tmp/podman/busybox-oci" >/dev/null 2>&1 &&
            unshare -m sh -c 'mount -t tmpfs tmpfs /var/lib && exec "$0" "$@"' skopeo copy --quiet \
                "oci:$tmp/podman/busybox-oci:latest" \
                "containers-storage:[vfs@$tmp/podman/storage+$tmp/podman/runroot]localhost/busybox:latest" || true
        # DOCKER_CONFIG (the docker CLI's, set above) would be podman's auth file too.
        podman_cmd="env -u DOCKER_CONFIG -u DOCKER_HOST podman ${podman_global[*]} run -i --rm --network none --cgroups no-conmon"
        podman_cmd+=" --cgroup-parent $cgroup_parent --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
        podman_cmd+=" --uidmap 0:100000:65536 --gidmap 0:100000:65536 localhost/busybox:latest true"
        if err=$(eval "$podman_cmd" </dev/null 2>&1); then
            podman_note="podman $(podman --version | awk '{print $3}') with runc $(runc --version | awk 'NR==1{print $3}')"
        else
            podman_note="podman could not run here: $(echo "$err" | tail -1) (left out)"
            podman_cmd=""
        fi
    fi
fi
echo "bench/daemon.sh: $podman_note" >&2
podman_args=()
[ -z "$podman_cmd" ] || podman_args=(-n "podman run --rm busybox true (runc)" "$podman_cmd")

load=$(uptime | sed 's/.*load average: //')
hyperfine -N --warmup 3 --runs "$runs" --export-markdown "$tmp/table.md" \
    -n "clab run busybox -- true" "$clab run busybox -- true" \
    -n "docker run --rm busybox true (clabd)" "$docker run --rm busybox true" \
    "${podman_args[@]}" </dev/zero >&2
load_after=$(uptime | sed 's/.*load average: //')
left=$("$clab" ps -a -q | wc -l)

report=$(cat <<MD
# docker run --rm through clabd vs clab run (stage 12)

\`sudo $invocation\` on $(nproc) CPUs, kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M') UTC,
load average $load before and $load_after after the runs (other processes may share the CPUs:
see the load), $runs runs each, docker client $("$docker" version --format '{{.Client.Version}}'),
clab $clab, clabd $clabd; $podman_note.

$(cat "$tmp/table.md")

Containers left after the runs: $left. The difference between the first two rows is the API's
added cost: the docker CLI's own start, four HTTP requests (create, attach, wait, start) and a
ping, \`clab create\` spawned by the daemon and its supervisor (where \`clab run\` in the
foreground supervises the container itself), the attach socket, and the removal by the
daemon's reaper (woken by the supervisor's pidfd).
MD
)
echo "$report"
echo "$report" > "$results_md"
