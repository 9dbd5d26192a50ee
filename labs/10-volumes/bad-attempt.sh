#!/usr/bin/env bash
# Lab 10, a plausible mistake: /www is bound read-write, and the site is made "read-only" with
# chmod -R a-w instead. Mode bits do not stop root (CAP_DAC_OVERRIDE): the container's root
# writes there anyway, into the host's directory. Only a read-only mount refuses it (EROFS).
# `clab lab check 10 --pid A --pid B --dir DIR` must reject it.
#
# Same usage as solution.sh: bad-attempt.sh DIR (prints "PID_A PID_B"), bad-attempt.sh DIR cleanup.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bad-attempt.sh: run me as root" >&2
    exit 2
fi
DIR=${1:?usage: bad-attempt.sh DIR [cleanup]}
if [ "${2:-}" = cleanup ]; then
    exec "$(dirname "$0")/solution.sh" "$DIR" cleanup
fi
"$(dirname "$0")/solution.sh" "$DIR" cleanup

mkdir -p "$DIR/site" "$DIR/data"
echo "hello from the host" > "$DIR/site/index.html"
chmod -R a-w "$DIR/site"    # the mistake: a mode, where a read-only mount was needed
ROOT=$(clab image path)
for c in a b; do
    cp -a "$ROOT" "$DIR/$c"
    mkdir "$DIR/$c/www" "$DIR/$c/data"
done

start() {
    unshare --mount --propagation private sh -c '
        set -e
        mount --bind "$1/site" "$1/$2/www"
        mount --bind "$1/data" "$1/$2/data"
        exec chroot "$1/$2" /bin/sleep 600
    ' sh "$DIR" "$1" </dev/null >/dev/null 2>&1 &
    echo $!
}
A=$(start a)
B=$(start b)
for pid in "$A" "$B"; do
    for _ in $(seq 1 200); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] && [ -e "/proc/$pid/root/etc/clab-image" ] && break
        sleep 0.05
    done
done
echo "bad-attempt: /www is $DIR/site, read-write (chmod a-w only)" >&2
echo "$A $B"
