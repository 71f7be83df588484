#!/usr/bin/env python3
"""How each file's severity moved between two aisec builds (issue 20's note).

Runs `BEFORE scan SET --format json` and `AFTER scan SET --format json` over
every named set (a directory), takes each file's highest finding severity
(`none` without findings) and the rules at that severity, and writes the
before -> after counts and every file that moved, with the rules that
appeared or went away (the "why"), into the generated part of
bench/scan/SEVERITY_MOVES.md: only the text between
`<!-- generated:start -->` and `<!-- generated:end -->` is replaced, so the
hand-written sections around it stay.

Usage: severity_moves.py --before BIN --after BIN --out FILE NAME=DIR [NAME=DIR ...]
Stdlib only.
"""
import argparse
import collections
import json
import os
import subprocess

ORDER = ["none", "info", "low", "medium", "high", "critical"]
START, END = "<!-- generated:start -->", "<!-- generated:end -->"


def scan(binary: str, d: str) -> dict:
    res = subprocess.run([binary, "scan", d, "--format", "json", "--no-progress", "--no-fail"],
                         capture_output=True, text=True)
    if res.returncode not in (0, 1):
        raise SystemExit(f"{binary} scan {d}: exit {res.returncode}: {res.stderr[-500:]}")
    doc = json.loads(res.stdout)
    per = collections.defaultdict(lambda: ("none", set(), set()))
    for f in doc["findings"]:
        p = os.path.relpath(f["location"]["path"], d)
        sev, top_rules, all_rules = per[p]
        s = f["severity"]
        all_rules = all_rules | {f"{f['rule_id']}:{s}"}
        if ORDER.index(s) > ORDER.index(sev):
            per[p] = (s, {f["rule_id"]}, all_rules)
        elif s == sev:
            per[p] = (sev, top_rules | {f["rule_id"]}, all_rules)
        else:
            per[p] = (sev, top_rules, all_rules)
    return dict(per)


def files_under(d: str) -> list[str]:
    out = []
    for root, _dirs, files in os.walk(d):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), d))
    return sorted(out)


def section(name: str, d: str, before: dict, after: dict) -> list[str]:
    files = sorted(set(files_under(d)) | set(before) | set(after))
    matrix = collections.Counter()
    moved = []
    for f in files:
        b = before.get(f, ("none", set(), set()))
        a = after.get(f, ("none", set(), set()))
        matrix[(b[0], a[0])] += 1
        if b[0] != a[0]:
            added = sorted(a[2] - b[2])
            gone = sorted(b[2] - a[2])
            moved.append((f, b[0], a[0], added, gone))
    lines = [f"### {name}: {len(files)} files (`{d}`)", ""]
    used_b = [s for s in ORDER if any(k[0] == s for k in matrix)]
    used_a = [s for s in ORDER if any(k[1] == s for k in matrix)]
    lines.append("| before \\ after | " + " | ".join(used_a) + " |")
    lines.append("|---|" + "---:|" * len(used_a))
    for s in used_b:
        lines.append(f"| {s} | " + " | ".join(str(matrix.get((s, t), 0) or "") for t in used_a) + " |")
    lines.append("")
    up = sum(1 for m in moved if ORDER.index(m[2]) > ORDER.index(m[1]))
    lines.append(f"{len(moved)} files moved ({up} up, {len(moved) - up} down); "
                 f"{len(files) - len(moved)} kept their severity.")
    lines.append("")
    if moved:
        # Group files that moved the same way for the same reason.
        groups = collections.defaultdict(list)
        for f, b, a, added, gone in moved:
            groups[(b, a, tuple(added), tuple(gone))].append(f)
        lines.append("| before -> after | files | rules that appeared (rule:severity) | rules that went away | examples |")
        lines.append("|---|---:|---|---|---|")
        for (b, a, added, gone), fs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            ex = ", ".join(f"`{x}`" for x in fs[:3]) + (" ..." if len(fs) > 3 else "")
            lines.append(f"| {b} -> {a} | {len(fs)} | {', '.join(added) or '-'} | {', '.join(gone) or '-'} | {ex} |")
        lines.append("")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("sets", nargs="+")
    a = ap.parse_args()
    lines = [START, ""]
    for s in a.sets:
        name, d = s.split("=", 1)
        lines += section(name, d, scan(a.before, d), scan(a.after, d))
    lines.append(END)
    text = open(a.out).read() if os.path.exists(a.out) else f"{START}\n{END}\n"
    if START not in text or END not in text:
        raise SystemExit(f"{a.out} has no generated markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(a.out, "w") as f:
        f.write(head + "\n".join(lines) + tail)


if __name__ == "__main__":
    main()
