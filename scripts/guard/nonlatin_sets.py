#!/usr/bin/env python3
"""The decision sets for a script route (the head file's `script_route`, stage2::ScriptRoute; bench/guard/DECISIONS.md,
"A measurement, not a candidate: the head alone on non-Latin-script texts", session of stop 51): rows whose letters are
at least half outside the Latin script (the same test as stage2::non_latin_share), per split.

  validation  bench/guard/work/nonlatin_val.jsonl: the validation split's such rows (val.jsonl), guard_multiling.py's
              validation rows (requests, injections and security questions in ten languages, written for aisec) and
              Django's translated interface strings of the validation split (guard_uistrings.py, BSD-3-Clause; benign)
  test        bench/guard/work/nonlatin_test.jsonl: the same three from the test split

Neither set has been used to choose anything. The validation file is where a route's threshold would be chosen (under
a benign FPR bound: it holds about 900 benign rows, where the validation split alone has 103); the test file is read
once by the rule that decides it. Evaluation sets (fresh*.jsonl, eval.jsonl) are not read here.

Usage: scripts/guard/nonlatin_sets.py   (after train_classifier.py, which writes val.jsonl and test.jsonl; uses its
venv and its pinned Django wheel)
"""
import json
import os
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

WORK = os.path.join(HERE, "..", "..", "bench", "guard", "work")
MIN_SHARE = 0.5


def non_latin_share(text):
    """stage2::non_latin_share in Python: the share of alphabetic characters outside the Latin letter ranges."""
    latin = ((0x41, 0x5A), (0x61, 0x7A), (0xAA, 0xAA), (0xBA, 0xBA), (0xC0, 0x24F), (0x250, 0x2AF), (0x1D00, 0x1DBF),
             (0x1E00, 0x1EFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF), (0xAB30, 0xAB6F), (0xFB00, 0xFB06), (0xFF21, 0xFF3A),
             (0xFF41, 0xFF5A))
    letters = other = 0
    for c in text:
        if c.isalpha():
            letters += 1
            o = ord(c)
            if not any(a <= o <= b for a, b in latin):
                other += 1
    return other / letters if letters else 0.0


def main():
    import guard_data
    import guard_multiling
    import guard_uistrings
    import train_classifier as tc

    ui = guard_uistrings.rows(guard_data, tc.wheel("django"))  # the pinned wheel, open (train_classifier.wheel)
    ml = guard_multiling.rows(guard_data) + guard_multiling.question_rows(guard_data)
    for split, name in (("val", "val.jsonl"), ("test", "test.jsonl")):
        with open(os.path.join(WORK, name), encoding="utf-8") as f:
            rows = [json.loads(l) for l in f if l.strip()]
        rows += [r for r in ml + ui if r["split"] == split]
        seen, out = set(), []
        for r in rows:
            if non_latin_share(r["text"]) >= MIN_SHARE and r["text"] not in seen:
                seen.add(r["text"])
                out.append({k: r[k] for k in ("text", "label", "source", "kind")})
        path = os.path.join(WORK, f"nonlatin_{split}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for r in out:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        c = Counter(r["label"] for r in out)
        print(f"{path}: {len(out)} rows, {c[1]} attacks, {c[0]} benign; by source {dict(Counter(r['source'] for r in out))}")


if __name__ == "__main__":
    main()
