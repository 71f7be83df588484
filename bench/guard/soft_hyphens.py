#!/usr/bin/env python3
"""Soft hyphens: does text with hyphenation points (U+00AD) get the verdict the same text has without them?

Web pages that hyphenate (HTML's `&shy;`, CSS hyphenation libraries), word processors and PDF extraction leave soft
hyphens inside long words. Until the session of stop 40 the guard's unicode scanner counted every one of them as a
hidden character, so such a text was blocked whatever it said. This script takes every row of the evaluation files
in the work folder (held-out test split, never-used sources, raginject and fresh2-fresh10; benign and attack rows)
and writes it twice:
  bare   the text as it is
  shy    the same text with a soft hyphen at each hyphenation point of every word of 7 or more letters, as a
         hyphenating web page would have it. Points come from pyphen (the LibreOffice hyphenation dictionaries):
         en_US for ASCII words, de_DE for other Latin-script words, ru_RU for Cyrillic; other scripts unchanged.
Rows that get no soft hyphen are left out. Then both are scored with the guard's `pattern_hits` example (default
policy, blocked or not per row), and a table per file compares how many are blocked: bare vs shy, benign and attack.
A row's shy copy should be blocked exactly when its bare copy is (normalising removes the soft hyphens, so the
patterns and the classifier read the same words; only the unicode scanner sees them).

Diagnostic only: nothing is trained or tuned on it. Needs pyphen in scripts/guard/.venv (installed here if missing,
pinned below) and the release build of the example (`cargo build --release -p aisec-guard --example pattern_hits`).
AISEC_GUARD_PATTERN_HITS points at another build of the example (to compare two builds).

Usage: scripts/guard/.venv/bin/python bench/guard/soft_hyphens.py
"""
import collections
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.environ.get("AISEC_GUARD_WORK", os.path.join(ROOT, "bench", "guard", "work"))
EXE = os.environ.get("AISEC_GUARD_PATTERN_HITS", os.path.join(ROOT, "target", "release", "examples", "pattern_hits"))
PYPHEN = "pyphen==0.18.1"
# AISEC_GUARD_MARK=2062 inserts U+2062 INVISIBLE TIMES instead (the other in-word marks the scanners let pass)
SHY = chr(int(os.environ.get("AISEC_GUARD_MARK", "00ad"), 16))
MIN_LETTERS = 7
FILES = ["test", "eval", "fresh"] + [f"fresh{i}" for i in range(2, 11)]


def pyphen_module():
    try:
        import pyphen  # noqa: PLC0415
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", PYPHEN])
        import pyphen  # noqa: PLC0415
    return pyphen


def hyphenator():
    pyphen = pyphen_module()
    dicts = {lang: pyphen.Pyphen(lang=lang) for lang in ("en_US", "de_DE", "ru_RU")}

    def word(m):
        w = m.group(0)
        if len(w) < MIN_LETTERS:
            return w
        if w.isascii():
            d = dicts["en_US"]
        elif all("\u0400" <= c <= "\u04ff" for c in w):
            d = dicts["ru_RU"]
        elif all(c.isascii() or "\u00c0" <= c <= "\u024f" for c in w):
            d = dicts["de_DE"]
        else:
            return w
        return d.inserted(w, hyphen=SHY)

    letters = re.compile(r"[^\W\d_]+")
    return lambda text: letters.sub(word, text)


def main():
    hyph = hyphenator()
    out_path = os.path.join(WORK, "soft_hyphens.jsonl")
    n = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for name in FILES:
            path = os.path.join(WORK, name + ".jsonl")
            if not os.path.exists(path):
                continue
            for line in open(path, encoding="utf-8"):
                r = json.loads(line)
                if SHY in r["text"]:
                    continue
                shy = hyph(r["text"])
                if SHY not in shy:
                    continue
                for variant, text in (("bare", r["text"]), ("shy", shy)):
                    out.write(json.dumps({"text": text, "label": r["label"], "source": f"{name}/{variant}", "kind": r.get("kind", "")}, ensure_ascii=False) + "\n")
                    n += 1
    if not os.path.exists(EXE):
        raise SystemExit(f"{EXE} is missing: cargo build --release -p aisec-guard --example pattern_hits")
    tsv = os.path.join(WORK, "soft_hyphens.tsv")
    subprocess.run([EXE, "--rows", tsv, f"soft_hyphens={out_path}"], check=True, stdout=subprocess.DEVNULL)
    # TSV: name, line, label, source/kind, blocked (1/0), pattern labels, invisible count
    counts = collections.defaultdict(lambda: [0, 0])  # (file, variant, label) -> [blocked, rows]
    verdicts = {}
    for line in open(tsv, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        label, source, blocked = int(f[2]), f[3].split("/")[:2], f[4] == "1"
        file, variant = source
        c = counts[(file, variant, label)]
        c[0] += blocked
        c[1] += 1
        verdicts[(int(f[1]), variant)] = blocked
    # rows are written bare then shy: line 2k+1 and 2k+2 are one row's two copies
    differ = sum(1 for (ln, v), b in verdicts.items() if v == "bare" and verdicts.get((ln + 1, "shy")) != b)
    print(f"{n // 2} rows with U+{ord(SHY):04X} added ({n} texts), {EXE}")
    print()
    print("| file | benign rows | benign blocked bare | benign blocked shy | attack rows | attack blocked bare | attack blocked shy |")
    print("|---|---|---|---|---|---|---|")
    tot = collections.defaultdict(int)
    for name in FILES:
        b0, b1, a0, a1 = (counts.get((name, v, l)) for v, l in (("bare", 0), ("shy", 0), ("bare", 1), ("shy", 1)))
        if not (b0 or a0):
            continue
        b0, b1, a0, a1 = (c or [0, 0] for c in (b0, b1, a0, a1))
        print(f"| {name} | {b0[1]} | {b0[0]} | {b1[0]} | {a0[1]} | {a0[0]} | {a1[0]} |")
        for k, v in (("bn", b0[1]), ("b0", b0[0]), ("b1", b1[0]), ("an", a0[1]), ("a0", a0[0]), ("a1", a1[0])):
            tot[k] += v
    print(f"| **all** | {tot['bn']} | {tot['b0']} | {tot['b1']} | {tot['an']} | {tot['a0']} | {tot['a1']} |")
    print()
    print(f"rows whose two copies get different verdicts: {differ}")


if __name__ == "__main__":
    main()
