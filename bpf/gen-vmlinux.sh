#!/bin/sh
# Regenerates bpf/vmlinux.h: every kernel type, from the running kernel's BTF, as C.
# The BPF program includes it instead of kernel headers; CO-RE relocations (libbpf, at load)
# fix up field offsets for the kernel it actually runs on, so this file need not match it exactly.
#   bpf/gen-vmlinux.sh [BTF-FILE]      (default /sys/kernel/btf/vmlinux; needs bpftool)
set -eu
btf=${1:-/sys/kernel/btf/vmlinux}
out=$(dirname "$0")/vmlinux.h
command -v bpftool >/dev/null || { echo "gen-vmlinux.sh: needs bpftool (apt-get install bpftool)" >&2; exit 1; }
tmp=$out.tmp
bpftool btf dump file "$btf" format c > "$tmp"
mv "$tmp" "$out"
echo "wrote $out from $btf ($(uname -r))"
