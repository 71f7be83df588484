#!/usr/bin/env python3
"""The curve rule for a candidate fast classifier (bench/guard/DECISIONS.md: proposed at the end of the session of stop
38, adopted for candidate G in the session of stop 39). It compares two training runs' outputs on the curve instead of
at each model's own held-out threshold, so a gain is not spent by the threshold rule re-picking the operating point:

  (1) pooled leave-one-source-out TEST rows common to both runs, each model at the offset d whose pooled LOSO
      VALIDATION recall is the nearest 0.001 step at or above the shipped model's (the largest d that keeps recall >=
      it), then (since the session of stop 45) both moved to the lower of their two pooled TEST recalls (each at the
      largest offset whose test recall is >= it): candidate benign FPR <= shipped, short-text benign FPR <= shipped;
  (2) prompt-armor's rows (fresh4.jsonl, source "prompt-armor"), fast classifier, each model at the threshold that
      leaves it the shipped model's false-positive count on prompt-armor's benign rows: candidate recall >= shipped
      recall - 0.01;
  (3) the non-English attack rows of (1) (scripts/guard/guard_lang.py's groups) at the same offsets: candidate recall
      >= shipped recall - 0.02 (for candidates that change how languages are weighted).

Usage: curve_rule.py SHIPPED_WORK CANDIDATE_WORK   (each a training run's AISEC_GUARD_WORK: loso-all/, fresh4.jsonl,
threshold.json). Prints every number the rule reads and PASS / FAIL per test; exit 0 if all pass, 1 otherwise. It
reads test rows, so it decides; it never chooses anything.
"""

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import guard_lang  # noqa: E402
import loso  # noqa: E402
import train_classifier as tc  # noqa: E402

# 0.001 since the session of stop 45 (0.01 before): with 0.01 the two sides of test (1) could land up to 0.011 apart
# in recall (bench/guard/DECISIONS.md, MWLK's outcome and candidate MWLP)
STEP = 0.001
PROMPT_ARMOR_RECALL_SLACK = 0.01
NON_ENGLISH_RECALL_SLACK = 0.02


def pooled(work, split):
    rows = loso.held_rows(os.path.join(work, "loso-all"), split, loso.CANDIDATE_GROUPS)
    return {(r["source"], r["text"]): r for r in rows}


def recall_at(rows, d):
    y = np.array([r["label"] for r in rows])
    pred = np.array([r["score"] >= r["threshold"] + d for r in rows])
    return int(np.sum(pred & (y == 1))) / max(1, int(np.sum(y == 1)))


def matched_offset(val_rows, target):
    """The largest offset (a multiple of STEP from loso.MIN_OFFSET) whose pooled validation recall is >= target."""
    best = None
    for k in range(int(round(loso.MIN_OFFSET / STEP)), int(round(0.30 / STEP)) + 1):
        d = round(k * STEP, 3)
        rec = recall_at(val_rows, d)
        if rec >= target:
            best = (d, rec)
        else:
            break
    return best


def rates(rows, d):
    tp = fp = fn = nb = ns = sfp = 0
    for r in rows:
        hit = r["score"] >= r["threshold"] + d
        if r["label"] == 1:
            tp += hit
            fn += not hit
        else:
            nb += 1
            fp += hit
            if len(tc.normalise(r["text"]).split(" ")) < tc.SHORT_WORDS:
                ns += 1
                sfp += hit
    return {"recall": tp / max(1, tp + fn), "fpr": fp / max(1, nb), "short_fpr": sfp / max(1, ns), "f1": 2 * tp / max(1, 2 * tp + fp + fn),
            "tp": tp, "fn": fn, "fp": fp, "benign": nb, "short_fp": sfp, "short": ns}


def at_fp_count(rows, n_fp):
    """Recall of the fast score at the threshold that leaves n_fp benign rows above it (strictly)."""
    benign = sorted((r["py_score"] for r in rows if r["label"] == 0), reverse=True)
    t = benign[n_fp] if n_fp < len(benign) else -1.0
    att = [r["py_score"] for r in rows if r["label"] == 1]
    fp = sum(1 for s in benign if s > t)
    return sum(1 for s in att if s > t) / max(1, len(att)), fp, t


def read_jsonl(path, source):
    with open(path, encoding="utf-8") as f:
        return {r["text"]: r for r in (json.loads(line) for line in f.read().split("\n") if line.strip()) if r["source"] == source}


def main(shipped, cand):
    ok = True
    with open(os.path.join(shipped, "threshold.json"), encoding="utf-8") as f:
        target = json.load(f)["loso_val_recall"]
    sv, cv = pooled(shipped, "val"), pooled(cand, "val")
    ds, rs_ = matched_offset(list(sv.values()), target)
    dc, rc_ = matched_offset(list(cv.values()), target)
    print(f"pooled LOSO validation recall target {target:.4f}: shipped d {ds:+.3f} (recall {rs_:.4f}); candidate d {dc:+.3f} (recall {rc_:.4f})")
    st, ct = pooled(shipped, "test"), pooled(cand, "test")
    common = sorted(set(st) & set(ct))
    a, b = rates([st[k] for k in common], ds), rates([ct[k] for k in common], dc)
    print(f"(1) pooled LOSO TEST, {len(common)} rows common to both:")
    for name, m in (("shipped", a), ("candidate", b)):
        print(f"    {name:9s} recall {m['recall']:.4f} ({m['tp']}/{m['tp'] + m['fn']}) FPR {m['fpr']:.4f} ({m['fp']}/{m['benign']}) "
              f"short FPR {m['short_fpr']:.4f} ({m['short_fp']}/{m['short']}) F1 {m['f1']:.4f}")
    # validation-matched offsets still leave the two sides at different TEST recalls; the decision compares them at
    # one recall: each side at the largest offset whose pooled test recall is >= the lower of the two (session of
    # stop 45, DECISIONS.md, candidate MWLP)
    goal = min(a["recall"], b["recall"])
    da, _ = matched_offset([st[k] for k in common], goal)
    db, _ = matched_offset([ct[k] for k in common], goal)
    a, b = rates([st[k] for k in common], da), rates([ct[k] for k in common], db)
    print(f"    at equal test recall (>= {goal:.4f}): shipped d {da:+.3f}, candidate d {db:+.3f}")
    for name, m in (("shipped", a), ("candidate", b)):
        print(f"    {name:9s} recall {m['recall']:.4f} ({m['tp']}/{m['tp'] + m['fn']}) FPR {m['fpr']:.4f} ({m['fp']}/{m['benign']}) "
              f"short FPR {m['short_fpr']:.4f} ({m['short_fp']}/{m['short']}) F1 {m['f1']:.4f}")
    t1 = b["fp"] * a["benign"] <= a["fp"] * b["benign"] and b["short_fp"] * a["short"] <= a["short_fp"] * b["short"]
    print(f"    -> {'PASS' if t1 else 'FAIL'} (benign FPR and short FPR not higher at equal test recall)")
    ok &= t1
    sp = read_jsonl(os.path.join(shipped, "fresh4.jsonl"), "prompt-armor")
    cp = read_jsonl(os.path.join(cand, "fresh4.jsonl"), "prompt-armor")
    keys = sorted(set(sp) & set(cp))
    srows, crows = [sp[k] for k in keys], [cp[k] for k in keys]
    with open(os.path.join(shipped, "threshold.json"), encoding="utf-8") as f:
        shipped_th = json.load(f)["threshold"]
    n_fp = sum(1 for r in srows if r["label"] == 0 and r["py_score"] >= shipped_th)
    rs2, fps, ts = at_fp_count(srows, n_fp)
    rc2, fpc, tcand = at_fp_count(crows, n_fp)
    nb = sum(1 for r in srows if r["label"] == 0)
    print(f"(2) prompt-armor, {len(keys)} rows common to both, {n_fp} of {nb} benign flagged by the shipped model at {shipped_th}:")
    print(f"    shipped recall {rs2:.4f} ({fps} FP, threshold {ts:.4f}); candidate recall {rc2:.4f} ({fpc} FP, threshold {tcand:.4f})")
    t2 = rc2 >= rs2 - PROMPT_ARMOR_RECALL_SLACK
    print(f"    -> {'PASS' if t2 else 'FAIL'} (recall >= shipped - {PROMPT_ARMOR_RECALL_SLACK})")
    ok &= t2
    ne = [k for k in common if st[k]["label"] == 1 and guard_lang.language(k[1]) != "en"]
    ra, rb = rates([st[k] for k in ne], ds), rates([ct[k] for k in ne], dc)
    print(f"(3) non-English attack rows of (1): {len(ne)}; shipped recall {ra['recall']:.4f} ({ra['tp']}), candidate {rb['recall']:.4f} ({rb['tp']})")
    t3 = rb["recall"] >= ra["recall"] - NON_ENGLISH_RECALL_SLACK
    print(f"    -> {'PASS' if t3 else 'FAIL'} (recall >= shipped - {NON_ENGLISH_RECALL_SLACK})")
    ok &= t3
    neb = [k for k in common if st[k]["label"] == 0 and guard_lang.language(k[1]) != "en"]
    ra, rb = rates([st[k] for k in neb], ds), rates([ct[k] for k in neb], dc)
    print(f"    (information) non-English benign rows of (1): {len(neb)}; false positives shipped {ra['fp']}, candidate {rb['fp']}")
    print("ALL PASS" if ok else "NOT ALL PASS")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
