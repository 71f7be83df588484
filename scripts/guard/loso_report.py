"""Compares classifier runs on the same rows, per source group and issue-17 error class.

  loso_report.py loso [--split val|test] [--pool] NAME=DIR[@D] [...]
                                                  leave-one-source-out runs (DIR/loso/*.jsonl or DIR/*.jsonl,
                                                  scripts/guard/loso.py); rows common to all runs;
                                                  @D scores each row at its fold's threshold + D
                                                  (the trainer's held-out threshold offset);
                                                  --split: that split only (default both);
                                                  --pool: the threshold rule's pool only (a
                                                  candidate's added groups, loso.CANDIDATE_GROUPS, left out)
  loso_report.py val NAME=DIR:MODEL [...]         validation split (DIR/val.jsonl, py_score) at the
                                                  thresholds stored in MODEL (injection_lr.bin)
Rows are matched by (text, label); rows only one run has (a candidate's added rows) are counted
separately. Fast classifier only (no rules), as the trainer scores it.
"""
import glob
import json
import os
import struct
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loso import CANDIDATE_GROUPS, error_class  # noqa: E402

SHORT_WORDS = 8


def load(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out[(r["text"], r["label"])] = r
    return out


def thresholds(model):
    with open(model, "rb") as f:
        h = f.read(8 + 32)
    dim, bias, th, mc, win, stride, sth, sw = struct.unpack("<IffIIIfI", h[8:])
    return th, sth


def is_short(t):
    return len(" ".join(t.lower().split()).split(" ")) < SHORT_WORDS


def table(title, runs, groups):
    """runs: list of (name, {key: (row, predicted)}); groups: key -> group name."""
    names = [n for n, _ in runs]
    common = set.intersection(*[set(d) for _, d in runs])
    print(f"\n### {title}\n")
    print(f"Rows common to all runs: {len(common)}; per run, rows only it has: " + ", ".join(f"{n} {len(set(d) - common)}" for n, d in runs))
    print()
    print("| group | error class | rows | " + " | ".join(f"{n} caught / flagged" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    cells = defaultdict(lambda: [0] + [0] * len(names))
    for k in common:
        r = runs[0][1][k][0]
        for g in (groups(r), "**all**"):
            c = cells[(g, error_class(r))]
            c[0] += 1
            for i, (_, d) in enumerate(runs):
                c[1 + i] += int(d[k][1])
    for (g, ec) in sorted(cells, key=lambda x: (x[0] == "**all**", x[0], x[1])):
        c = cells[(g, ec)]
        n = c[0]
        print(f"| {g} | {ec} | {n} | " + " | ".join(f"{v} ({v / n:.3f})" for v in c[1:]) + " |")
    # summary: recall, FPR, F1 on the common rows
    print()
    for i, (name, d) in enumerate(runs):
        tp = sum(1 for k in common if k[1] == 1 and d[k][1]); fn = sum(1 for k in common if k[1] == 1 and not d[k][1])
        fp = sum(1 for k in common if k[1] == 0 and d[k][1]); nb = sum(1 for k in common if k[1] == 0)
        sc = sum(1 for k in common if k[1] == 0 and is_short(k[0])); sfp = sum(1 for k in common if k[1] == 0 and is_short(k[0]) and d[k][1])
        print(f"- {name}: recall {tp / max(1, tp + fn):.4f} ({tp}/{tp + fn}), benign FPR {fp / max(1, nb):.4f} ({fp}/{nb}), "
              f"short benign FPR {sfp / max(1, sc):.4f} ({sfp}/{sc}), F1 {2 * tp / max(1, 2 * tp + fp + fn):.4f}")
        extra = set(d) - common
        if extra:
            etp = sum(1 for k in extra if k[1] == 1 and d[k][1]); ea = sum(1 for k in extra if k[1] == 1)
            efp = sum(1 for k in extra if k[1] == 0 and d[k][1]); eb = sum(1 for k in extra if k[1] == 0)
            print(f"  - its own added rows: attacks caught {etp}/{ea}, benign flagged {efp}/{eb}")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mode, specs = sys.argv[1], sys.argv[2:]
    split, pool = None, False
    while specs and specs[0].startswith("--"):
        flag = specs.pop(0)
        if flag == "--split" and specs and specs[0] in ("val", "test"):
            split = specs.pop(0)
        elif flag == "--pool":
            pool = True
        else:
            sys.exit(f"unknown or incomplete option {flag}\n{__doc__}")
    runs = []
    if mode == "loso":
        for s in specs:
            name, d = s.split("=", 1)
            off = 0.0
            if "@" in d:
                d, o = d.rsplit("@", 1)
                off = float(o)
            rows = {}
            # DIR is a run's work folder (DIR/loso/*.jsonl) or a folder of folds itself (the trainer's loso-all)
            folds = os.path.join(d, "loso") if os.path.isdir(os.path.join(d, "loso")) else d
            for p in sorted(glob.glob(os.path.join(folds, "*.jsonl"))):
                g = os.path.basename(p)[:-6]
                if pool and g in CANDIDATE_GROUPS:
                    continue
                for k, r in load(p).items():
                    if split and r["split"] != split:
                        continue
                    r["_group"] = g
                    rows[k] = (r, r["score"] >= r["threshold"] + off)
            runs.append((name, rows))
        which = {None: "validation + test rows", "val": "validation rows", "test": "test rows"}[split]
        table(f"Leave-one-source-out: each group scored by a model trained without it ({which}" + (", the threshold pool" if pool else "") + ")",
              runs, lambda r: r["_group"])
    elif mode == "val":
        for s in specs:
            name, rest = s.split("=", 1)
            d, model = rest.split(":", 1)
            th, sth = thresholds(model)
            rows = {k: (r, r["py_score"] >= (sth if is_short(r["text"]) else th)) for k, r in load(os.path.join(d, "val.jsonl")).items()}
            runs.append((f"{name} (th {th:.2f}/{sth:.2f})", rows))
        table("Validation split (thresholds chosen on it)", runs, lambda r: r["source"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
