#!/usr/bin/env python3
"""Row-by-row comparison of two `pattern_hits --rows` outputs of the same files (a "before" build and an "after"
build), as the tables of bench/guard/MULTILINGUAL.md (session of stop 45) and JAILBREAK.md were made.

Per file: benign and attack rows (with the non-English ones counted by scripts/guard/guard_lang.py), how many rows the
patterns whose label matches the regular expression LABEL fire on in the "after" build, rows newly blocked, rows no longer blocked, and
non-English attack rows blocked before and after. Texts are read from the JSONL files named in FILES (NAME=PATH, the
same arguments pattern_hits was given) only to count languages; nothing is printed from them.

Usage: bench/guard/rows_diff.py BEFORE.tsv AFTER.tsv LABEL NAME=PATH...
  e.g. bench/guard/rows_diff.py main.tsv round.tsv '^(?!override).*\(other languages\)' corpus=corpus.jsonl \
         val=bench/guard/work/val.jsonl   (the families the round added, not the older "override ... (other languages)")
Runs with the guard venv's python (scripts/guard/.venv, made by scripts/guard/train_classifier.py) or any python 3.
"""
import collections
import json
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "guard"))

import guard_lang  # noqa: E402


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def main(before, after, label, files):
    paths = dict(a.split("=", 1) for a in files)
    a, b = read_tsv(before), read_tsv(after)
    if len(a) != len(b):
        raise SystemExit(f"{before} has {len(a)} rows and {after} {len(b)}: not the same files")
    pat = re.compile(label)
    texts, stats = {}, collections.OrderedDict()
    for ra, rb in zip(a, b):
        # columns: file, line, label, source/kind, blocked, pattern labels ("|"-separated), invisible count
        if ra[:4] != rb[:4]:
            raise SystemExit(f"row mismatch: {ra[:4]} vs {rb[:4]}")
        name, line, lab = ra[0], int(ra[1]), ra[2]
        if name not in texts:
            with open(paths[name], encoding="utf-8") as f:
                texts[name] = f.read().split("\n")
        non_en = guard_lang.language(json.loads(texts[name][line - 1])["text"]) != "en"
        c = stats.setdefault(name, collections.Counter())
        was, now = ra[4] == "1", rb[4] == "1"
        c["rows_" + lab] += 1
        c["non_en_" + lab] += non_en
        c["fire_" + lab] += any(pat.search(p) for p in rb[5].split("|") if p)
        c["new_" + lab] += now and not was
        c["lost_" + lab] += was and not now
        if lab == "1" and non_en:
            c["non_en_blocked_before"] += was
            c["non_en_blocked_after"] += now
    print("| file | benign rows (non-English) | the patterns fire on benign | benign newly blocked | attack rows (non-English) "
          "| the patterns fire on attacks | attacks newly blocked | rows no longer blocked | non-English attacks blocked, before -> after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, c in stats.items():
        print(f"| {name} | {c['rows_0']:,} ({c['non_en_0']:,}) | {c['fire_0']} | {c['new_0']} | {c['rows_1']:,} ({c['non_en_1']:,}) "
              f"| {c['fire_1']} | {c['new_1']} | {c['lost_0'] + c['lost_1']} | {c['non_en_blocked_before']} -> {c['non_en_blocked_after']} |")


if __name__ == "__main__":
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
