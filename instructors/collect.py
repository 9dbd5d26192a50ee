#!/usr/bin/env python3
"""Collect students' `clab lab check --all --json` files into one class report.

Usage: collect.py [--csv] REPORT.json...
Each file is one student's report (its name, without .json, names the student). Prints a table
(✓ passed, · not yet, h = hints seen, s = solution shown) or, with --csv, one row per student and lab.
"""
import csv
import json
import os
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    student = os.path.splitext(os.path.basename(path))[0]
    return student, report


def main(argv):
    as_csv = "--csv" in argv
    paths = [a for a in argv if a != "--csv"]
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    reports = []
    for path in paths:
        try:
            reports.append(load(path))
        except (OSError, ValueError) as e:
            print(f"collect.py: {path}: {e}", file=sys.stderr)
            return 1
    labs = sorted({lab["lab"] for _, r in reports for lab in r.get("labs", [])})
    if as_csv:
        out = csv.writer(sys.stdout)
        out.writerow(["student", "host", "lab", "title", "passed", "passed_at", "attempts", "hints_shown", "solution_shown"])
        for student, r in reports:
            for lab in r.get("labs", []):
                out.writerow([student, r.get("host", ""), lab["lab"], lab["title"], lab["passed"],
                              lab.get("passed_at") or "", lab.get("attempts", 0), lab.get("hints_shown", 0),
                              lab.get("solution_shown", False)])
        return 0
    print("student".ljust(16) + "".join(f"lab{n}".ljust(8) for n in labs) + "done")
    for student, r in reports:
        by_number = {lab["lab"]: lab for lab in r.get("labs", [])}
        cells = []
        for n in labs:
            lab = by_number.get(n)
            if lab is None:
                cells.append("-".ljust(8))
                continue
            mark = "✓" if lab["passed"] else "·"
            if lab.get("hints_shown"):
                mark += f"h{lab['hints_shown']}"
            if lab.get("solution_shown"):
                mark += "s"
            cells.append(mark.ljust(8))
        done = sum(1 for lab in by_number.values() if lab["passed"])
        print(student.ljust(16) + "".join(cells) + f"{done}/{len(by_number)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
