#!/usr/bin/env bash
# Lab 12, a plausible mistake: the learner ran `strace busybox chmod 600 f`, saw chmod(2), and
# refused just that. busybox's chmod now fails, but coreutils' chmod calls fchmodat(2), a program
# holding the file open calls fchmod(2), and Linux 6.6 added fchmodat2(2): all still change the
# mode. `clab lab check 12` must reject it and name the syscalls left open.
#
# Usage: bad-attempt.sh [FILE]   writes the profile to FILE (default no-chmod.json) and prints FILE.
set -euo pipefail
file=${1:-no-chmod.json}
cat > "$file" <<'JSON'
{
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {
            "names": ["chmod"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1
        }
    ]
}
JSON
echo "$file"
