#!/usr/bin/env bash
# Lab 12, the reference solution: a profile that allows every syscall except the four that
# change a file's mode, which get EPERM. `clab lab check 12 --profile FILE` must pass it.
#
# Usage: solution.sh [FILE]   writes the profile to FILE (default no-chmod.json) and prints FILE.
# Nothing else is touched; no root needed to write it (`clab lab check` needs root).
set -euo pipefail
file=${1:-no-chmod.json}
cat > "$file" <<'JSON'
{
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {
            "names": ["chmod", "fchmod", "fchmodat", "fchmodat2"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1,
            "comment": "no mode changes: every syscall that can make one, EPERM"
        }
    ]
}
JSON
echo "$file"
