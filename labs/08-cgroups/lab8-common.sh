# Shared by solution.sh and bad-attempt.sh (sourced): where lab8's cgroups go, and cleanup.
# Each cgroup is made beneath the caller's own cgroup in its hierarchy, never anywhere else.

# The caller's cgroup for a v1 controller ("/process_api/x", "/"), or the v2 one ("0::").
own_v1() { awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup; }
own_v2() { awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup; }

if [ -n "$(own_v1 memory)" ]; then
    VERSION=v1
    MEMDIR=/sys/fs/cgroup/memory$(own_v1 memory | sed 's|^/$||')/lab8
    PIDSDIR=/sys/fs/cgroup/pids$(own_v1 pids | sed 's|^/$||')/lab8
    MEMLIMIT=memory.limit_in_bytes
else
    VERSION=v2
    MEMDIR=/sys/fs/cgroup$(own_v2 | sed 's|^/$||')/lab8
    PIDSDIR=$MEMDIR
    MEMLIMIT=memory.max
fi

cleanup() {
    # A cgroup goes with rmdir once no process is in it (the files inside do not count).
    for dir in "$MEMDIR" "$PIDSDIR"; do
        [ -d "$dir" ] || continue
        for pid in $(cat "$dir/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        for _ in $(seq 1 100); do rmdir "$dir" 2>/dev/null && break; sleep 0.05; done
    done
}

# Waits until $1 is the final `sleep 600`, prints it, exits 0; or says why not, exits 1.
wait_for_sleep() {
    for _ in $(seq 1 400); do
        if ! kill -0 "$1" 2>/dev/null; then
            echo "lab 8: the process ended during setup" >&2
            exit 1
        fi
        if [ "$(cat "/proc/$1/comm" 2>/dev/null)" = sleep ]; then
            echo "$1"
            exit 0
        fi
        sleep 0.05
    done
    echo "lab 8: the process did not reach its sleep within 20 s" >&2
    kill -9 "$1" 2>/dev/null || true
    exit 1
}
