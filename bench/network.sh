#!/usr/bin/env bash
# What stage 11's networking adds to a container start, and whether it stays flat as a bridge
# fills up: `clab step 11 -- true` against `clab step 10 -- true` and `--net none`, and the same
# plumbing done by hand with `ip` and `nft` (in a throwaway network namespace, so the host's own
# network is never touched), in one hyperfine run. Then stage 11 again with 10 and 50 other
# containers on the bridge.
#
#   sudo bench/network.sh          # or: sudo make bench
#   CLAB=/path/to/clab RUNS=40 sudo -E bench/network.sh
#
# Everything lives under one mktemp dir (clab --root); background containers are ended by pid.
# Results: a table on stdout and bench/results-network.md (overwritten each run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
runs=${RUNS:-30}
warmup=${WARMUP:-3}
results_md="$here/results-network.md"

die() { echo "bench/network.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"
for tool in hyperfine ip nft unshare python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (\`make bench\` installs what it needs)"
done
if [ -n "${CLAB:-}" ]; then clab=$CLAB; else
    clab="$repo/.build/release/clab"
    [ -x "$clab" ] || (cd "$repo" && PATH="/opt/swift/usr/bin:$PATH" swift build -c release >&2)
fi

tmp=$(mktemp -d /tmp/clab-bench-net.XXXXXX)
chmod 711 "$tmp"
state="$tmp/state"
pids=()
cleanup() {
    local rc=$?
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    "$clab" gc --root "$state" >/dev/null 2>&1
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$clab" step 11 --quiet --root "$state" -- true || die "clab step 11 -- true failed"

# The by-hand plumbing: bridge with the gateway, a veth pair with one end in a "container"
# namespace as eth0, its address, route and link state, ip_forward, the NAT table; then
# teardown. All inside `unshare -n` (a scratch network namespace) plus one `ip netns` inside it.
cat >"$tmp/by-hand.sh" <<'EOF'
set -e
ip link add br0 type bridge
ip addr add 172.31.250.1/24 dev br0
ip link set br0 up
ip link add vc0 type veth peer name eth0
ip link set vc0 master br0
ip link set vc0 up
unshare -n sh -c 'true' # a new netns costs about what clab's clone3(CLONE_NEWNET) does
ip addr add 172.31.250.2/24 dev eth0
ip link set eth0 up
ip route add default via 172.31.250.1 dev eth0 table 100
echo 1 > /proc/sys/net/ipv4/ip_forward
nft -f - <<'NFT'
add table ip clab
add chain ip clab postrouting { type nat hook postrouting priority srcnat; policy accept; }
add rule ip clab postrouting ip saddr 172.31.250.0/24 oifname != "br0" masquerade
NFT
nft delete table ip clab
ip link del vc0
ip link del br0
EOF
by_hand="unshare -n bash $tmp/by-hand.sh"
$by_hand || die "the by-hand plumbing failed"

c10="$clab step 10 --quiet --root $state -- true"
c11="$clab step 11 --quiet --root $state -- true"
c11none="$clab step 11 --quiet --root $state --net none -- true"
hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --export-json "$tmp/base.json" \
    -n "stage 10" "$c10" -n "stage 11" "$c11" -n "stage 11 --net none" "$c11none" -n "by hand (ip + nft)" "$by_hand" \
    </dev/null

# Flat from 1 to 50: the same start with N other containers on the bridge.
for n in 10 50; do
    while [ "${#pids[@]}" -lt "$n" ]; do
        "$clab" step 11 --quiet --root "$state" -- sleep 600 </dev/null >/dev/null 2>&1 &
        pids+=($!)
    done
    sleep 2
    hyperfine -N --style basic --warmup 2 --runs "$runs" --export-json "$tmp/with$n.json" \
        -n "stage 11, $n others on the bridge" "$c11" </dev/null
done

python3 - "$tmp" "$results_md" "$runs" "$(uname -r)" <<'EOF'
import datetime, json, sys
tmp, out, runs, kernel = sys.argv[1:]
res = {}
for f in ["base", "with10", "with50"]:
    for r in json.load(open(f"{tmp}/{f}.json"))["results"]:
        res[r["command"]] = r
ms = lambda x: x * 1000
rows = ["| command | mean ± σ (ms) | median (ms) |", "|---|---:|---:|"]
for name, r in res.items():
    rows.append(f"| {name} | {ms(r['mean']):.2f} ± {ms(r['stddev'] or 0):.2f} | {ms(r['median']):.2f} |")
added_alone = ms(res["stage 11"]["median"] - res["stage 10"]["median"])
added_up = ms(res["stage 11, 10 others on the bridge"]["median"] - res["stage 10"]["median"])
flat = ms(res["stage 11, 50 others on the bridge"]["median"] - res["stage 11, 10 others on the bridge"]["median"])
targets = [
    f"- networking adds under 10 ms (median − stage 10's), the bridge already up: {added_up:.2f} ms → "
    + ("**met**" if added_up < 10 else "**missed**"),
    f"- alone, the bridge and the NAT table made and removed with the container: {added_alone:.2f} ms "
    f"(deleting a bridge waits for the kernel, ~50 ms)",
    f"- flat from 10 to 50 containers on the bridge (median difference): {flat:+.2f} ms",
    f"- by hand with ip + nft (bridge, veth, netns, addresses, route, NAT, teardown): {ms(res['by hand (ip + nft)']['median']):.2f} ms",
]
md = "\n".join(["# Stage 11 start cost (bench/network.sh)", "",
    f"{datetime.datetime.now():%Y-%m-%d %H:%M}, kernel {kernel}, {runs} runs each.", "", *rows, "",
    "Targets (issue 10):", *targets, ""])
open(out, "w").write(md)
print("\n".join(rows)); print(); print("\n".join(targets)); print(f"\n(written to {out})")
EOF
