#!/usr/bin/env bash
# Runs shell commands as root inside a Linux VM with a real cgroup v2 hierarchy, for testing
# clab where the host cannot give cgroup v2 controllers (a hybrid v1 host). See README.md here.
#
#   tests-vm/run-vm.sh [options] -- 'shell commands'
#
# Boots Debian's cloud kernel under qemu-system-x86_64 with software emulation (TCG), from an
# initramfs holding busybox, release (static) clab and clab-init, clab's lessons/labs/image
# sources and a prebuilt clab state directory; streams the commands' output (stdout and stderr
# together, from the serial console) and exits with their status. Its own messages go to stderr,
# prefixed "run-vm:". Exit 124: timed out; 125: the VM stopped without reporting a status (a
# kernel panic, or init died); 2: bad usage; 3: the host could not prepare the VM.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

TIMEOUT=120
MEMORY=512
SMP=1
BIN_DIR=${CLAB_VM_BIN:-}
CACHE=${CLAB_VM_CACHE:-/var/cache/clab-vm}
KERNEL_PIN=${CLAB_VM_KERNEL:-}
CONTROLLERS="cpu memory pids"
MODULES=""
KERNEL_LOG=0
APPEND_EXTRA=""
ADDS=()

usage() {
    cat <<'EOF'
usage: tests-vm/run-vm.sh [options] -- 'shell commands'

Boots a cgroup v2 Linux VM (qemu, TCG), runs the commands as root with /bin/sh (busybox) in
/root, streams their output and exits with their status. Inside: clab and clab-init on PATH,
CLAB_ROOT=/var/lib/clab (busybox image and its stage-7 copy prebuilt), CLAB_SHARE set,
cgroup2 on /sys/fs/cgroup with the controllers enabled in the root's subtree_control.

options:
  --timeout S         kill the VM after S seconds (default 120); exit 124
  --memory MB         guest memory (default 512)
  --smp N             guest CPUs (default 1)
  --bin DIR           use DIR/clab and DIR/clab-init (release, static) instead of building
                      them with `swift build -c release --scratch-path .build-vm` (env CLAB_VM_BIN)
  --controllers LIST  controllers to enable for children of the root cgroup
                      (default "cpu memory pids"; "" for none)
  --modules LIST      kernel modules to load, e.g. "overlay veth bridge" (dependencies too)
  --add SRC:DEST      put host file SRC at DEST in the guest (repeatable; not under
                      /tmp, /run, /dev: mounted over)
  --kernel-log        show the kernel's boot log and messages (stderr before the payload,
                      interleaved with its output after)
  --append ARGS       extra kernel command line arguments
  --cache DIR         kernel and initramfs cache (default /var/cache/clab-vm, env CLAB_VM_CACHE)
env CLAB_VM_KERNEL=VERSION pins the kernel (e.g. 6.1.0-57-cloud-amd64); by default it is the
one Debian's linux-image-cloud-amd64 depends on.
EOF
}

say() { echo "run-vm: $*" >&2; }
die() {
    say "$*"
    exit 3
}
usage_error() {
    say "$*"
    usage >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --memory) MEMORY=${2:?}; shift 2 ;;
    --smp) SMP=${2:?}; shift 2 ;;
    --bin) BIN_DIR=${2:?}; shift 2 ;;
    --controllers) CONTROLLERS=${2?}; shift 2 ;;
    --modules) MODULES=${2?}; shift 2 ;;
    --add) ADDS+=("${2:?}"); shift 2 ;;
    --kernel-log) KERNEL_LOG=1; shift ;;
    --append) APPEND_EXTRA=${2?}; shift 2 ;;
    --cache) CACHE=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage_error "unknown option: $1" ;;
    esac
done
[ $# -gt 0 ] || usage_error "no commands: give them after --"
PAYLOAD="$*"
[[ $TIMEOUT =~ ^[0-9]+$ && $TIMEOUT -gt 0 ]] || usage_error "--timeout wants whole seconds > 0"
[[ $MEMORY =~ ^[0-9]+$ && $MEMORY -ge 128 ]] || usage_error "--memory wants MB >= 128"
[[ $SMP =~ ^[0-9]+$ && $SMP -ge 1 ]] || usage_error "--smp wants a count >= 1"
for a in "${ADDS[@]}"; do
    [[ $a == *:/* ]] || usage_error "--add wants SRC:/absolute/dest, not $a"
    [[ ${a#*:} =~ ^/(tmp|run|dev|proc|sys)(/|$) ]] && usage_error "--add: ${a#*:} would be hidden by a mount; use /root or /opt"
    [ -f "${a%%:*}" ] || usage_error "--add: no file ${a%%:*}"
done
[ "$(id -u)" = 0 ] || die "needs root (it installs packages and builds clab's image on the host)"

START=$EPOCHREALTIME
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

WORK=$(mktemp -d /tmp/clab-vm.XXXXXX)
chmod 755 "$WORK" # stage 7 on the host: container root (uid 100000) must walk through it
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one preparation at a time (parallel test runs share the cache); released before boot

# --- Debian packages ---------------------------------------------------------------------------
APT_UPDATED=0
apt_update() {
    if [ $APT_UPDATED = 0 ]; then
        say "apt-get update"
        apt-get update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
}
need_packages() { # package...: installs those not installed
    local missing=() p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} = 0 ] && return 0
    apt_update
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
}
# qemu-system-x86 is the smallest package with qemu-system-x86_64; gcc + libc6-dev build the
# image's breakout program (clab does it on the host); binutils strips the binaries.
need_packages qemu-system-x86 busybox-static gcc libc6-dev binutils

# --- the kernel: Debian's cloud kernel, downloaded and extracted, never installed -------------
kernel_version() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: linux-image-\(.*-cloud-amd64\)$/\1/p' | head -n 1 || true
}
# apt-cache takes ~0.6 s here: its answer is kept until the package lists change.
lists_stamp() { stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0; }
resolve_kernel() {
    local cached="$CACHE/kernel-version" stamp
    stamp=$(lists_stamp)
    if [ -f "$cached" ] && [ "$(cut -d' ' -f1 "$cached")" = "$stamp" ]; then
        KVER=$(cut -d' ' -f2 "$cached")
        return
    fi
    KVER=$(kernel_version)
    if [ -z "$KVER" ]; then
        apt_update
        KVER=$(kernel_version)
        stamp=$(lists_stamp)
    fi
    [ -n "$KVER" ] || die "cannot find the cloud kernel's version (apt-cache depends linux-image-cloud-amd64)"
    echo "$stamp $KVER" >"$cached"
}
KVER=$KERNEL_PIN
[ -n "$KVER" ] || resolve_kernel
KDIR=$CACHE/kernel-$KVER
if [ ! -f "$KDIR/vmlinuz" ]; then
    say "downloading linux-image-$KVER"
    rm -rf "$CACHE/.dl" && mkdir -p "$CACHE/.dl"
    download() { (cd "$CACHE/.dl" && apt-get download "linux-image-$KVER" 2>&1 | { grep -v '^W: Download is performed unsandboxed' || true; } >&2); }
    if ! download; then # stale package lists: update, ask again
        apt_update
        if [ -z "$KERNEL_PIN" ]; then
            rm -f "$CACHE/kernel-version"
            resolve_kernel
            KDIR=$CACHE/kernel-$KVER
        fi
        download || die "apt-get download linux-image-$KVER failed"
    fi
    deb=$(ls "$CACHE"/.dl/*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || die "apt-get download linux-image-$KVER gave no .deb"
    mkdir -p "$CACHE/.dl/x"
    dpkg-deb -x "$deb" "$CACHE/.dl/x"
    rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
    mv "$CACHE/.dl/x/boot/vmlinuz-$KVER" "$KDIR.tmp/vmlinuz"
    mv "$CACHE/.dl/x/boot/config-$KVER" "$KDIR.tmp/config"
    mv "$CACHE/.dl/x/lib/modules/$KVER" "$KDIR.tmp/modules"
    dpkg-deb -f "$deb" Version >"$KDIR.tmp/package-version"
    rm -rf "$KDIR" "$CACHE/.dl"
    mv "$KDIR.tmp" "$KDIR"
    for old in "$CACHE"/kernel-*/; do # one kernel is enough
        [ "${old%/}" = "$KDIR" ] || rm -rf "$old"
    done
fi
# Features clab needs must be built in (=y) or loaded with --modules (=m).
for opt in CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED CFS_BANDWIDTH UTS_NS IPC_NS PID_NS NET_NS USER_NS \
    DEVTMPFS TMPFS SERIAL_8250_CONSOLE BLK_DEV_INITRD RD_GZIP; do
    grep -q "^CONFIG_$opt=y" "$KDIR/config" || say "warning: $KVER has CONFIG_$opt $(grep -E "CONFIG_${opt}[= ]" "$KDIR/config" || echo unset)"
done

# --- modules asked for, with their dependencies, dependencies first ---------------------------
MODLIST=()
module_file() { # name -> path under $KDIR/modules ('-' and '_' are the same in module names)
    local n=$1
    find "$KDIR/modules/kernel" \( -name "$n.ko" -o -name "${n//_/-}.ko" -o -name "${n//-/_}.ko" \) -print -quit
}
add_module() {
    local name=$1 file dep rel m
    file=$(module_file "$name")
    if [ -z "$file" ]; then
        grep -qE "/${name//[-_]/[-_]}\.ko$" "$KDIR/modules/modules.builtin" 2>/dev/null && return 0 # built in
        die "module $name: not in $KVER (neither a module nor built in)"
    fi
    rel=${file#"$KDIR/modules/"}
    for m in "${MODLIST[@]}"; do [ "$m" = "$rel" ] && return 0; done
    for dep in $(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$dep"; done
    MODLIST+=("$rel")
}
for m in $MODULES; do add_module "$m"; done

# --- clab, release and static ------------------------------------------------------------------
if [ -z "$BIN_DIR" ]; then
    SWIFT=$(command -v swift || true)
    [ -n "$SWIFT" ] || SWIFT=/opt/swift/usr/bin/swift
    [ -x "$SWIFT" ] || die "no swift toolchain to build clab (or pass --bin DIR)"
    say "building clab (swift build -c release --scratch-path .build-vm --product clab, clab-init)"
    # Only the two products the guest runs: the whole package would also build clabd's NIO and
    # BoringSSL in release, minutes more.
    build() {
        (cd "$REPO" && for p in clab clab-init; do
            "$SWIFT" build -c release --scratch-path .build-vm --product "$p" || exit 1
        done >"$WORK/build.log" 2>&1)
    }
    # A source saved mid-build (someone editing): once more.
    build || { grep -q 'was modified during the build' "$WORK/build.log" && sleep 2 && build; } || {
        tail -n 30 "$WORK/build.log" >&2
        die "swift build failed"
    }
    BIN_DIR=$REPO/.build-vm/release
fi
for b in clab clab-init; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing"
    file -L "$BIN_DIR/$b" 2>/dev/null | grep -q 'statically linked' ||
        ldd "$BIN_DIR/$b" 2>&1 | grep -q 'not a dynamic executable' ||
        die "$BIN_DIR/$b is not statically linked: build with -c release"
done

# --- the initramfs: a cached base (keyed by everything in it) + a small per-run payload ------
BUSYBOX=/bin/busybox
SHARE_FILES=$(cd "$REPO" && find lessons labs images -type f | LC_ALL=C sort)
KEY=$({
    cat "$HERE/run-vm.sh" "$HERE/vm-init.sh" "$BUSYBOX" "$BIN_DIR/clab" "$BIN_DIR/clab-init"
    echo "$KVER ${MODLIST[*]-}"
    (cd "$REPO" && echo "$SHARE_FILES" | while read -r f; do echo "$f"; cat "$f"; done)
} | sha256sum | cut -c1-16)
BASE=$CACHE/initramfs-$KEY.cpio.gz

build_base() {
    local s=$WORK/base
    mkdir -p "$s"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/share/clab/images,etc,root,proc,sys,dev,tmp,run,mnt,payload,var/lib/clab,lib/modules}
    chmod 700 "$s/root"
    chmod 1777 "$s/tmp"
    mknod -m 600 "$s/dev/console" c 5 1
    mknod -m 666 "$s/dev/null" c 1 3
    cp "$BUSYBOX" "$s/bin/busybox"
    "$BUSYBOX" --list-full | while read -r applet; do
        [ "$applet" = bin/busybox ] || [ -e "$s/$applet" ] || ln -s /bin/busybox "$s/$applet"
    done
    install -m 755 "$HERE/vm-init.sh" "$s/init"
    strip -o "$s/usr/local/bin/clab" "$BIN_DIR/clab"
    strip -o "$s/usr/local/bin/clab-init" "$BIN_DIR/clab-init"
    (cd "$REPO" && cp -r lessons labs "$s/usr/local/share/clab/" && cp -r images/busybox "$s/usr/local/share/clab/images/")
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$s/etc/passwd"
    printf 'root:x:0:\n' >"$s/etc/group"
    : >"$s/lib/modules/clab-vm.list"
    for m in "${MODLIST[@]}"; do
        mkdir -p "$s/lib/modules/$KVER/$(dirname "$m")"
        cp "$KDIR/modules/$m" "$s/lib/modules/$KVER/$m"
        echo "/lib/modules/$KVER/$m" >>"$s/lib/modules/clab-vm.list"
    done

    # clab's state, made on the host: the VM has no C compiler for the image's breakout.
    # Made at the path it packs to (var/lib/clab under a scratch tree).
    local tree=$WORK/state state=$WORK/state/var/lib/clab
    mkdir -p "$state"
    say "building the busybox image and its stage-7 copy on the host"
    CLAB_SHARE=$REPO "$BIN_DIR/clab" image path --root "$state" >/dev/null ||
        die "clab image path --root $state failed"
    CLAB_SHARE=$REPO "$BIN_DIR/clab" step 7 --root "$state" --quiet -- true ||
        die "clab step 7 --root $state failed"
    if grep -qF "$state" /proc/self/mountinfo; then
        CLAB_SHARE=$REPO "$BIN_DIR/clab" gc --root "$state" >&2 || true
        die "clab left mounts under $state"
    fi

    # Two archives, concatenated (the kernel unpacks them in turn): everything else as root,
    # then the images with their owners as they are (the stage-7 copy belongs to uid 100000+).
    (cd "$s" && find . -mindepth 1 | sed "s|^\./||" | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc -R 0:0 | gzip -6) \
        >"$WORK/base.cpio.gz" 2>"$WORK/cpio.log" || die "cpio failed: $(tail -n 1 "$WORK/cpio.log")"
    (cd "$tree" && find var/lib/clab/images | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc | gzip -6) \
        >>"$WORK/base.cpio.gz" 2>"$WORK/cpio.log" || die "cpio failed: $(tail -n 1 "$WORK/cpio.log")"
    mv "$WORK/base.cpio.gz" "$BASE.tmp"
    mv "$BASE.tmp" "$BASE"
    # Keep the two newest bases.
    ls -t "$CACHE"/initramfs-*.cpio.gz 2>/dev/null | tail -n +3 | xargs -r rm -f
}

if [ ! -f "$BASE" ]; then
    T0=$EPOCHREALTIME
    build_base
    say "initramfs $(basename "$BASE") ($(du -k "$BASE" | cut -f1) KiB) built in $(elapsed "$T0" "$EPOCHREALTIME") s"
fi
touch "$BASE" # most recently used

# The per-run part: the commands, their config and --add files, as a third archive.
NONCE=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
P=$WORK/payload
mkdir -p "$P/payload"
printf '%s\n' "$PAYLOAD" >"$P/payload/run.sh"
{
    printf 'NONCE=%s\n' "$NONCE"
    printf 'CONTROLLERS=%q\n' "$CONTROLLERS"
    printf 'KERNEL_LOG=%s\n' "$KERNEL_LOG"
} >"$P/payload/config"
for a in "${ADDS[@]}"; do
    dest=${a#*:}
    mkdir -p "$P$(dirname "$dest")"
    cp "${a%%:*}" "$P$dest"
done
(cd "$P" && find . -mindepth 1 | sed "s|^\./||" | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) >"$WORK/payload.cpio.gz"
cat "$BASE" "$WORK/payload.cpio.gz" >"$WORK/initrd.img"
exec 9>&- # release the cache lock: the VM runs on copies

APPEND="console=ttyS0 panic=-1"
[ $KERNEL_LOG = 1 ] || APPEND="$APPEND quiet"
[ -z "$APPEND_EXTRA" ] || APPEND="$APPEND $APPEND_EXTRA"

PREP=$(elapsed "$START" "$EPOCHREALTIME")
say "kernel $KVER ($(cat "$KDIR/package-version")), prepared in $PREP s; booting (timeout ${TIMEOUT}s)"

# The serial console on stdout: boot messages before the start marker go to a log (shown on
# failure or with --kernel-log), the payload's lines are streamed, the end marker has the status.
BOOT_LOG=$WORK/boot.log
: >"$BOOT_LOG"
T_BOOT=$EPOCHREALTIME
T_START=""
STATUS=""
PANIC=0
START_MARK="@@CLAB-VM-START:$NONCE@@"
EXIT_MARK="@@CLAB-VM-EXIT:$NONCE:"
mkfifo "$WORK/console"
# timeout puts qemu in a process group of its own, so a Ctrl-C here would not reach it: the
# trap passes INT/TERM on (timeout forwards them to qemu).
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg -m "$MEMORY" -smp "$SMP" -nographic -no-reboot \
    -nodefaults -serial stdio -kernel "$KDIR/vmlinuz" -initrd "$WORK/initrd.img" -append "$APPEND" \
    </dev/null >"$WORK/console" 2>"$WORK/qemu.err" &
QPID=$!
trap 'kill -TERM $QPID 2>/dev/null; wait $QPID; say "interrupted"; exit 130' INT TERM
set +e
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    [[ $line == *"Kernel panic"* ]] && PANIC=1
    if [ -z "$T_START" ]; then
        if [[ $line == *"$START_MARK"* ]]; then
            T_START=$EPOCHREALTIME
        else
            echo "$line" >>"$BOOT_LOG"
            if [ $KERNEL_LOG = 1 ] || [[ $line == clab-vm:* ]]; then echo "$line" >&2; fi
        fi
    elif [ -z "$STATUS" ]; then
        if [[ $line == *"$EXIT_MARK"* ]]; then
            STATUS=${line##*"$EXIT_MARK"}
            STATUS=${STATUS%%@@*}
            before=${line%%"$EXIT_MARK"*}
            [ -z "$before" ] || printf '%s' "$before"
            T_END=$EPOCHREALTIME
        else
            printf '%s\n' "$line"
        fi
    else
        echo "$line" >>"$BOOT_LOG"
        [ $KERNEL_LOG = 0 ] || echo "$line" >&2
    fi
done <"$WORK/console"
wait $QPID
QEMU_RC=$?
set -e
trap - INT TERM
T_DONE=$EPOCHREALTIME

if [ -n "$STATUS" ] && [[ $STATUS =~ ^[0-9]+$ ]]; then
    say "exit $STATUS; boot $(elapsed "$T_BOOT" "$T_START") s + payload $(elapsed "$T_START" "$T_END") s + poweroff $(elapsed "$T_END" "$T_DONE") s; wall $(elapsed "$START" "$T_DONE") s"
    exit "$STATUS"
fi
show_log() {
    if [ $KERNEL_LOG = 0 ] && [ -z "$T_START" ] && [ -s "$BOOT_LOG" ]; then
        say "boot log (last 40 lines):"
        tail -n 40 "$BOOT_LOG" >&2
    fi
    [ ! -s "$WORK/qemu.err" ] || { say "qemu said:"; tail -n 20 "$WORK/qemu.err" >&2; }
}
if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    show_log
    say "timed out after ${TIMEOUT}s ($([ -n "$T_START" ] && echo "the payload was running" || echo "still booting"))"
    exit 124
fi
show_log
if [ $PANIC = 1 ]; then
    say "kernel panic (qemu exit $QEMU_RC)"
else
    say "the VM stopped without reporting an exit status (qemu exit $QEMU_RC$([ -n "$T_START" ] && echo ", after the payload started"))"
fi
exit 125
