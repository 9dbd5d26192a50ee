#!/usr/bin/env python3
"""Compares `clab trace --host` with `strace -f -y -s 64`, call by call, on a corpus.

Each program of tests-trace/corpus/programs.txt runs twice, in the same directory with the same
environment: once under `strace -f -y -s 64 -o FILE`, once under `clab trace --host` (its text
view, the lines `COMM TID  call(...) = result`). Threads and processes are matched by their
place in the tree (the n-th child a thread's clone/fork/vfork returned), and each thread's
lines are aligned by syscall name. Every strace line counts: syscalls, `--- SIGx {...} ---`,
`+++ exited with N +++`. strace -o writes its `[ Process PID=N runs in 32 bit mode. ]` notes to
its stderr, not to the file: clab's are left out too.

Two figures:
- identical: the lines are the same once what differs between two runs of one program is
  replaced on both sides: pids and tids (by their place in the tree), addresses (hex of 5
  digits or more), inode numbers (`pipe:[N]`, `socket:[N]`), getrandom's bytes, sysinfo's
  figures, si_utime and si_stime, and the spaces strace pads results with (` = ` aligned to a column).
- up to cosmetics: the documented cosmetic differences are ignored as well:
  1. comments strace adds (`/* 39 vars */`, `/* 2 entries */`),
  2. the base a number is written in (`0x20` and `32`),
  3. `...` after a string or an array (a cut at a different length).

Usage: compare-strace.py [--clab PATH] [--show N] [--min-identical P] [--min-cosmetic P]
       [--only NAME,...] [--keep DIR]
Exit status 1 when a figure is under its minimum (the tests assert the figures do not drop).
"""

import argparse
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CORPUS = os.path.join(REPO, "tests-trace", "corpus")

FORKS = {"clone", "clone3", "fork", "vfork"}


def parse_strace(path):
    """strace -f -o: `PID  text`, calls split by other threads merged back."""
    events = []  # (tid, text)
    pending = {}
    for raw in open(path, encoding="utf-8", errors="surrogateescape"):
        raw = raw.rstrip("\n")
        m = re.match(r"^(\d+)\s+(.*)$", raw)
        if not m:
            continue
        tid, text = int(m.group(1)), m.group(2)
        if text.endswith(" <unfinished ...>"):
            pending[tid] = (len(events), text[: -len(" <unfinished ...>")])
            events.append((tid, None))
            continue
        r = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", text)
        if r and tid in pending:
            index, head = pending.pop(tid)
            rest = r.group(2)
            if rest.startswith(" <unfinished ...>"):
                # Killed inside the call: `<... read resumed> <unfinished ...>) = ?`.
                rest = "<unfinished ...>" + rest[len(" <unfinished ...>") :]
            events[index] = (tid, head + rest)
            continue
        events.append((tid, text))
    for tid, (index, head) in pending.items():
        events[index] = (tid, head + "<unfinished ...>")
    return [(tid, text) for tid, text in events if text is not None]


def parse_clab(path):
    """The text view: `COMM TID  text` or `COMM TID/NSTID  text`."""
    events = []
    for raw in open(path, encoding="utf-8", errors="surrogateescape"):
        raw = raw.rstrip("\n")
        m = re.match(r"^(.+?) (\d+)(?:/\d+)?  (.*)$", raw)
        if not m or m.group(3).startswith("[ Process PID="):
            continue
        events.append((int(m.group(2)), m.group(3)))
    return events


def name_of(text):
    if text.startswith("---"):
        m = re.match(r"^--- (\S+)", text)
        return "--- " + (m.group(1) if m else "?")
    if text.startswith("+++"):
        return "+++"
    if text.startswith("["):
        return "[abi]"
    m = re.match(r"^(\w+)\(", text)
    return m.group(1) if m else text[:20]


def returned_child(text):
    m = re.match(r"^(\w+)\(.*\)\s+=\s+(\d+)", text)
    if m and m.group(1) in FORKS and int(m.group(2)) > 0:
        return int(m.group(2))
    return None


def by_thread(events):
    threads = {}
    for tid, text in events:
        threads.setdefault(tid, []).append(text)
    return threads


def tree_order(events):
    """Tids in tree order: the root, then each thread's children in the order it made them."""
    if not events:
        return []
    threads = by_thread(events)
    order, seen = [], set()

    def walk(tid, path):
        if tid in seen:
            return
        seen.add(tid)
        order.append((path, tid))
        n = 0
        for text in threads.get(tid, []):
            child = returned_child(text)
            if child is not None:
                walk(child, path + (n,))
                n += 1

    walk(events[0][0], ())
    return order


def normalize(text, pids):
    """What differs between two runs of one program, replaced."""

    def pid(m):
        n = int(m.group(0))
        return "P" + str(pids[n]) if n in pids else m.group(0)

    text = re.sub(r"(?<![\w.])\d{2,}(?![\w.])", pid, text)
    text = re.sub(r"0x[0-9a-f]{5,}", "0xADDR", text)
    text = re.sub(r":\[\d+\]", ":[INODE]", text)
    text = re.sub(r"(si_[us]time)=\d+", r"\1=T", text)
    if text.startswith("getrandom("):
        text = re.sub(r'^getrandom\("(?:[^"\\]|\\.)*"', 'getrandom("RANDOM"', text)
    text = re.sub(r"^(getppid\(\)\s+=\s+)\d+", r"\1PPID", text)  # strace or clab itself
    if text.startswith("sysinfo({"):  # the machine's uptime, free memory and process count
        text = re.sub(r"^sysinfo\(\{.*\}\)", "sysinfo({INFO})", text)
    if text.startswith("clock_gettime") or "cmsg_type=SO_TIMESTAMP" in text:  # the clock's time now
        text = re.sub(r"(tv_sec=)\d+(, tv_[nu]sec=)\d+", r"\1S\2N", text)
    text = re.sub(r"\)\s+=\s+", ") = ", text)
    return text


def cosmetic(text):
    text = re.sub(r"\s*/\*.*?\*/", "", text)
    text = re.sub(r"\b0x[0-9a-f]+\b", lambda m: str(int(m.group(0), 16)), text)
    text = re.sub(r'("(?:[^"\\]|\\.)*")\.\.\.', r"\1", text)
    text = re.sub(r", \.\.\.\]", "]", text)
    text = re.sub(r"\s+", " ", text)
    return text


def run(cmd, workdir, clab, keep):
    env = dict(os.environ, LC_ALL="C", LANG="C")
    out = os.path.join(workdir, "stdout")
    strace_out = os.path.join(keep, "strace.txt")
    clab_out = os.path.join(keep, "clab.txt")
    # The program's stdout and stderr are the same empty files in both runs (the same fd 1 and 2
    # annotations, the same sizes if it looks at them); each tracer writes to a file of its own.
    err = os.path.join(workdir, "stderr")
    with open(os.devnull) as null, open(out, "w") as o, open(err, "w") as e:
        subprocess.run(
            ["strace", "-f", "-y", "-s", "64", "-o", strace_out, "--"] + cmd,
            stdin=null, stdout=o, stderr=e, cwd=workdir, env=env, timeout=120)
    with open(os.devnull) as null, open(out, "w") as o, open(err, "w") as e:
        subprocess.run(
            [clab, "trace", "--host", "-o", clab_out, "--"] + cmd,
            stdin=null, stdout=o, stderr=e, cwd=workdir, env=env, timeout=120)
    return parse_strace(strace_out), parse_clab(clab_out)


def compare(strace_events, clab_events):
    """Per strace line: 'same', 'cosmetic' or 'differs', with the pairs that differ."""
    s_order, c_order = tree_order(strace_events), tree_order(clab_events)
    c_by_path = {path: tid for path, tid in c_order}
    s_threads, c_threads = by_thread(strace_events), by_thread(clab_events)
    s_pids, c_pids = {}, {}
    for k, (path, tid) in enumerate(s_order):
        s_pids[tid] = k
        if path in c_by_path:
            c_pids[c_by_path[path]] = k
    results = []  # (verdict, name, strace line, clab line)
    for path, s_tid in s_order:
        s_lines = s_threads.get(s_tid, [])
        c_lines = c_threads.get(c_by_path.get(path, -1), [])
        s_keys = [name_of(t) for t in s_lines]
        c_keys = [name_of(t) for t in c_lines]
        matcher = difflib.SequenceMatcher(None, s_keys, c_keys, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
                for i, j in zip(range(i1, i2), range(j1, j2)):
                    a, b = normalize(s_lines[i], s_pids), normalize(c_lines[j], c_pids)
                    if a == b:
                        results.append(("same", s_keys[i], a, b))
                    elif cosmetic(a) == cosmetic(b):
                        results.append(("cosmetic", s_keys[i], a, b))
                    else:
                        results.append(("differs", s_keys[i], a, b))
            else:
                for i in range(i1, i2):
                    results.append(("differs", "(missing) " + s_keys[i], normalize(s_lines[i], s_pids), ""))
                for j in range(j1, j2):
                    results.append(("extra", "(extra) " + c_keys[j], "", normalize(c_lines[j], c_pids)))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clab", default=os.path.join(REPO, ".build", "debug", "clab"))
    ap.add_argument("--show", type=int, default=30, help="categories shown (first difference each)")
    ap.add_argument("--min-identical", type=float, default=0)
    ap.add_argument("--min-cosmetic", type=float, default=0)
    ap.add_argument("--only", default="", help="comma-separated program names")
    ap.add_argument("--keep", default="", help="keep the raw traces in this directory")
    args = ap.parse_args()
    args.clab = os.path.abspath(args.clab)  # the programs run in a scratch directory
    for tool in ("strace", "gcc"):
        if not shutil.which(tool):
            print(f"compare-strace: {tool} is not installed (make test-deps)", file=sys.stderr)
            return 2
    base = tempfile.mkdtemp(prefix="clab-compare-")
    try:
        binary = os.path.join(base, "corpus")
        subprocess.run(
            ["gcc", "-O1", "-pthread", "-o", binary, os.path.join(CORPUS, "corpus.c")], check=True)
        only = set(filter(None, args.only.split(",")))
        total = {"same": 0, "cosmetic": 0, "differs": 0, "extra": 0}
        categories = {}
        rows = []
        for line in open(os.path.join(CORPUS, "programs.txt")):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, command = line.partition(" ")
            if only and name not in only:
                continue
            workdir = os.path.join(base, "w")
            shutil.rmtree(workdir, ignore_errors=True)
            os.makedirs(workdir)
            keep = os.path.join(args.keep, name) if args.keep else os.path.join(base, "k")
            os.makedirs(keep, exist_ok=True)
            cmd = [w.replace("@CORPUS@", binary).replace("@DIR@", workdir) for w in shlex.split(command)]
            s_events, c_events = run(cmd, workdir, args.clab, keep)
            counts = {"same": 0, "cosmetic": 0, "differs": 0, "extra": 0}
            for verdict, cat, a, b in compare(s_events, c_events):
                counts[verdict] += 1
                if verdict in ("differs", "extra"):
                    entry = categories.setdefault(cat, [0, a, b, name])
                    entry[0] += 1
            for k in total:
                total[k] += counts[k]
            n = counts["same"] + counts["cosmetic"] + counts["differs"]
            rows.append((name, n, counts))
        n = total["same"] + total["cosmetic"] + total["differs"]
        print(f"{'program':<16} {'lines':>6} {'identical':>10} {'cosmetic':>9} {'extra':>6}")
        for name, count, c in rows:
            same = 100.0 * c["same"] / count if count else 0
            cos = 100.0 * (c["same"] + c["cosmetic"]) / count if count else 0
            print(f"{name:<16} {count:>6} {same:>9.1f}% {cos:>8.1f}% {c['extra']:>6}")
        identical = 100.0 * total["same"] / n if n else 0
        up_to = 100.0 * (total["same"] + total["cosmetic"]) / n if n else 0
        print(f"{'total':<16} {n:>6} {identical:>9.1f}% {up_to:>8.1f}% {total['extra']:>6}")
        print(f"identical: {identical:.1f}%  up to cosmetics: {up_to:.1f}%  ({n} strace lines, "
              f"{total['extra']} extra clab lines)")
        shown = sorted(categories.items(), key=lambda kv: -kv[1][0])[: args.show]
        if shown:
            print("\nfirst differences, by category (count, program):")
        for cat, (count, a, b, prog) in shown:
            print(f"  {cat}  x{count}  ({prog})")
            print(f"    strace: {a[:300]}")
            print(f"    clab:   {b[:300]}")
        ok = identical >= args.min_identical and up_to >= args.min_cosmetic
        if not ok:
            print(f"compare-strace: below the minimum ({args.min_identical}% identical, "
                  f"{args.min_cosmetic}% up to cosmetics)", file=sys.stderr)
        return 0 if ok else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
