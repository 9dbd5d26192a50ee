#!/usr/bin/env bash
# Lab 13, reference solution: a bundle from clab bundle, its config.json edited, run detached.
#
# Contract (CI runs this): run as root, with clab on PATH. `solution.sh DIR` makes DIR/data (the
# host directory to share) and DIR/bundle (config.json + rootfs), edits config.json (a read-only
# bind of DIR/data at /data, a 64 MiB memory limit, CAP_NET_RAW dropped), starts it with
# `clab run -d --name lab13 --bundle DIR/bundle`, prints exactly one line on stdout, the
# container's id, and exits 0. `solution.sh DIR cleanup` removes the container and DIR.
# config.json is edited with python3's json module: any editor does the same.
# Commentary goes to stderr.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "solution.sh: run me as root" >&2
    exit 2
fi
DIR=${1:?usage: solution.sh DIR [cleanup]}
cleanup() {
    clab rm -f lab13 >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
case "${2:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: solution.sh DIR [cleanup]" >&2; exit 2 ;;
esac
cleanup

# The host directory the container will see at /data (the bundle must be below a directory
# uid 100000 can search: /tmp is, /root is not).
mkdir -p "$DIR/data"
echo "hello from the host" > "$DIR/data/hello.txt"

# The bundle: config.json and rootfs, for a command that keeps running.
clab bundle busybox "$DIR/bundle" -- sleep 1000 >&2

# The three edits. Each is a field of the runtime spec:
#   mounts[]                          a bind mount: type "bind", options "rbind" and "ro"
#   linux.resources.memory.limit      bytes; the runtime writes it into the container's cgroup
#   process.capabilities.*            all four lists: bounding is what makes a drop final
python3 - "$DIR/bundle/config.json" "$DIR/data" <<'PY'
import json, sys
path, data = sys.argv[1], sys.argv[2]
with open(path) as f:
    config = json.load(f)
config["mounts"].append(
    {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]})
config["linux"]["resources"]["memory"]["limit"] = 64 * 1024 * 1024
caps = config["process"]["capabilities"]
for kind in ("bounding", "effective", "permitted", "inheritable"):
    caps[kind] = [c for c in caps[kind] if c != "CAP_NET_RAW"]
with open(path, "w") as f:
    json.dump(config, f, indent=4)
PY
echo "solution: config.json edited: /data, 64 MiB, no CAP_NET_RAW" >&2

clab run -d --name lab13 --bundle "$DIR/bundle"
