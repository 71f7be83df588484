#!/usr/bin/env python3
"""Candidate C of bench/guard/DECISIONS.md (session of stop 41): the shipped linear classifier everywhere, and the
hidden-layer model M inside a band of linear scores around the linear threshold (C2: the band's objective is the
fewest false positives at the shipped model's validation recall). This script chooses the band on the
pooled leave-one-source-out VALIDATION rows of the two training runs and then reads what decides: the pooled LOSO TEST
rows and prompt-armor's rows (fresh4). It writes nothing but its printout; the band it prints is what the guard ships
(`crates/aisec-guard/assets/injection_mlp.json`) if every test passes.

Usage: cascade_rule.py LINEAR_WORK M_WORK   (each a training run's AISEC_GUARD_WORK: loso-all/, fresh4.jsonl,
threshold.json). Exit 0 if tests (1) and (2) pass; (3) latency and (4) parity are measured on the Rust side.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import loso  # noqa: E402
import train_classifier as tc  # noqa: E402

MAX_FPR = 0.02
MAX_SHORT_FPR = 0.01
MAX_BAND_SHARE = 0.10
# C: the best F1 under the held-out bounds (rejected); C2 (AISEC_GUARD_CASCADE_OBJECTIVE=matched, the default since):
# the fewest false positives at the shipped model's pooled validation recall
OBJECTIVE = os.environ.get("AISEC_GUARD_CASCADE_OBJECTIVE", "matched")
A_GRID = [round(-0.50 + 0.05 * i, 2) for i in range(11)]
B_GRID = [round(0.05 * i, 2) for i in range(6)]


def pooled(work, split):
    rows = loso.held_rows(os.path.join(work, "loso-all"), split, loso.CANDIDATE_GROUPS)
    return {(r["source"], r["text"]): r for r in rows}


def is_short(text):
    return len(tc.normalise(text).split(" ")) < tc.SHORT_WORDS


def cascade(lin_score, lin_th, m_score, m_th, a, b):
    """(decision, in band)."""
    if lin_th + a <= lin_score < min(0.99, lin_th + b):
        return m_score >= m_th, True
    return lin_score >= lin_th, False


def rates(decisions):
    """decisions: (label, short, fires) triples."""
    tp = sum(1 for y, _, f in decisions if y == 1 and f)
    fn = sum(1 for y, _, f in decisions if y == 1 and not f)
    fp = sum(1 for y, _, f in decisions if y == 0 and f)
    nb = sum(1 for y, _, _ in decisions if y == 0)
    sfp = sum(1 for y, s, f in decisions if y == 0 and s and f)
    ns = sum(1 for y, s, _ in decisions if y == 0 and s)
    return {"recall": tp / max(1, tp + fn), "fpr": fp / max(1, nb), "short_fpr": sfp / max(1, ns),
            "f1": 2 * tp / max(1, 2 * tp + fp + fn), "tp": tp, "fn": fn, "fp": fp, "benign": nb, "short_fp": sfp, "short": ns}


def offsets(lin_work, m_work):
    out = []
    for w in (lin_work, m_work):
        with open(os.path.join(w, "threshold.json"), encoding="utf-8") as f:
            out.append(json.load(f)["loso_offset"])
    return out


def run_rows(lw, mw, split, dl, dm, a, b):
    L, M = pooled(lw, split), pooled(mw, split)
    keys = sorted(set(L) & set(M))
    dec, band = [], 0
    for k in keys:
        l, m = L[k], M[k]
        fires, inb = cascade(l["score"], l["threshold"] + dl, m["score"], m["threshold"] + dm, a, b)
        band += inb
        dec.append((l["label"], is_short(k[1]), fires))
    return dec, band, len(keys)


def main(lw, mw):
    dl, dm = offsets(lw, mw)
    print(f"held-out offsets: linear {dl:+.2f}, M {dm:+.2f}")
    with open(os.path.join(lw, "threshold.json"), encoding="utf-8") as f:
        target = json.load(f)["loso_val_recall"]
    print(f"band objective: {OBJECTIVE}" + (f" (validation recall >= {target:.4f})" if OBJECTIVE != "f1" else ""))
    best = None
    for a in A_GRID:
        for b in B_GRID:
            dec, band, n = run_rows(lw, mw, "val", dl, dm, a, b)
            r = rates(dec)
            if OBJECTIVE == "f1":
                ok = r["fpr"] <= MAX_FPR and r["short_fpr"] <= MAX_SHORT_FPR and band <= MAX_BAND_SHARE * n
                key = (r["f1"], -(b - a), a)
            else:
                # C2: at matched recall, the fewest false positives
                ok = r["recall"] >= target and band <= MAX_BAND_SHARE * n
                key = (-r["fp"], -r["short_fp"], -(b - a), a)
            if not ok:
                continue
            if best is None or key > best[0]:
                best = (key, a, b, r, band, n)
    if best is None:
        print("no band meets the validation constraints")
        return 1
    _, a, b, r, band, n = best
    print(f"band [T{a:+.2f}, T{b:+.2f}) on pooled LOSO validation: F1 {r['f1']:.4f} recall {r['recall']:.4f} FPR {r['fpr']:.4f} "
          f"short FPR {r['short_fpr']:.4f}; {band} of {n} texts in the band")
    ok = True
    dec, band, n = run_rows(lw, mw, "test", dl, dm, a, b)
    c = rates(dec)
    base, _, _ = run_rows(lw, mw, "test", dl, dm, 0.0, 0.0)
    s = rates(base)
    print(f"(1) pooled LOSO TEST, {n} rows common to both ({band} in the band):")
    for name, m in (("shipped", s), ("cascade", c)):
        print(f"    {name:8s} recall {m['recall']:.4f} ({m['tp']}/{m['tp'] + m['fn']}) FPR {m['fpr']:.4f} ({m['fp']}/{m['benign']}) "
              f"short FPR {m['short_fpr']:.4f} ({m['short_fp']}/{m['short']}) F1 {m['f1']:.4f}")
    t1 = c["fp"] <= s["fp"] and c["short_fp"] <= s["short_fp"] and c["recall"] >= s["recall"] - 0.005
    print(f"    -> {'PASS' if t1 else 'FAIL'} (FPR and short FPR not higher, recall >= shipped - 0.005)")
    ok &= t1
    with open(os.path.join(lw, "threshold.json"), encoding="utf-8") as f:
        lt = json.load(f)
    with open(os.path.join(mw, "threshold.json"), encoding="utf-8") as f:
        mt = json.load(f)

    def read(path):
        with open(path, encoding="utf-8") as f:
            return {r["text"]: r for r in (json.loads(x) for x in f if x.strip()) if r["source"] == "prompt-armor"}

    L, M = read(os.path.join(lw, "fresh4.jsonl")), read(os.path.join(mw, "fresh4.jsonl"))
    keys = sorted(set(L) & set(M))
    sd, cd, band = [], [], 0
    for k in keys:
        short = is_short(k)
        lth = lt["short_threshold"] if short else lt["threshold"]
        mth = mt["short_threshold"] if short else mt["threshold"]
        ls, ms = L[k]["py_score"], M[k]["py_score"]
        sd.append((L[k]["label"], short, ls >= lth))
        f, inb = cascade(ls, lth, ms, mth, a, b)
        band += inb
        cd.append((L[k]["label"], short, f))
    s2, c2 = rates(sd), rates(cd)
    print(f"(2) prompt-armor, {len(keys)} rows ({band} in the band): shipped recall {s2['recall']:.4f} FP {s2['fp']}; cascade recall "
          f"{c2['recall']:.4f} FP {c2['fp']}")
    t2 = c2["fp"] <= s2["fp"] and c2["recall"] >= s2["recall"] - 0.01
    print(f"    -> {'PASS' if t2 else 'FAIL'} (false positives not more, recall >= shipped - 0.01)")
    ok &= t2
    print(f"band to ship: linear score in [threshold {a:+.2f}, threshold {b:+.2f})")
    print("(1)-(2) PASS" if ok else "NOT ALL PASS")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
