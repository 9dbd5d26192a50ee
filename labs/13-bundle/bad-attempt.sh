#!/usr/bin/env bash
# Lab 13, a plausible mistake the verifier must reject: the bind mount is right, but the memory
# limit went into process.rlimits (RLIMIT_AS: one process's address space, not the container's
# cgroup) and CAP_NET_RAW was removed from "inheritable" only (it is still held, and bounding
# still allows it).
#
# Same contract as solution.sh: `bad-attempt.sh DIR` prints the container's id;
# `bad-attempt.sh DIR cleanup` removes the container and DIR.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi
DIR=${1:?usage: bad-attempt.sh DIR [cleanup]}
cleanup() {
    clab rm -f lab13 >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
case "${2:-}" in
    cleanup) cleanup; exit 0 ;;
    "") ;;
    *) echo "usage: bad-attempt.sh DIR [cleanup]" >&2; exit 2 ;;
esac
cleanup

mkdir -p "$DIR/data"
echo "hello from the host" > "$DIR/data/hello.txt"
clab bundle busybox "$DIR/bundle" -- sleep 1000 >&2

python3 - "$DIR/bundle/config.json" "$DIR/data" <<'PY'
import json, sys
path, data = sys.argv[1], sys.argv[2]
with open(path) as f:
    config = json.load(f)
config["mounts"].append(
    {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]})
# "A memory limit": the first limits list in sight is process.rlimits.
config["process"]["rlimits"].append(
    {"type": "RLIMIT_AS", "soft": 64 * 1024 * 1024, "hard": 64 * 1024 * 1024})
# "Drop a capability": from the list whose name sounds like what the process gets.
caps = config["process"]["capabilities"]
caps["inheritable"] = [c for c in caps["inheritable"] if c != "CAP_NET_RAW"]
with open(path, "w") as f:
    json.dump(config, f, indent=4)
PY

clab run -d --name lab13 --bundle "$DIR/bundle"
