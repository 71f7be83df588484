#!/usr/bin/env python3
"""Candidate FT's rule (bench/guard/DECISIONS.md): the fast classifier plus a second stage, each side at its own
validation-chosen operating points (a head file written by train_stage2.py), read on the held-out TEST split.

Usage: ft_rule.py [--chat-rate] SHIPPED_HEAD.json SHIPPED_TEST.prob FT_HEAD.json FT_TEST.prob
       ft_rule.py --points VAL3000.prob [MAX_SHARE]
  --points: the operating points train_stage2.py's search chooses (choose_points, share bound MAX_SHARE, default
  its AISEC_GUARD_STAGE2_MAX_SHARE) from saved head probabilities of its 3,000-row validation sample
  (`finetune_stage2.py score` writes them as WORK/val3000.prob), without re-embedding anything
  --chat-rate: test (2)'s chat clause as FT2M's rule has it (chat FPR <= 0.005) instead of "not more chat false
  positives than the base" (FT's and FT2's rules)
  *.prob: f32 per row of bench/guard/work/test.jsonl, the second stage's request-side probability (NaN where the
  fast score is below 0.3: such rows never reach it). For the shipped side they come from the frozen encoder and its
  logistic head (`embed` example, then the head's weights); for FT from `finetune_stage2 score`.
The decision is train_stage2.py's `stage_decisions` (what its search chooses on): fast decision (the model's thresholds, short texts at the short
threshold), replaced by the head's where the fast score is in [band_low, band_high), and for documents from
indirect_low up.
"""
import json
import os
import sys

import numpy as np

from train_stage2 import MAX_SHARE, choose_points, fast_decisions, split_metrics, validation_sample

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(ROOT, "bench", "guard", "work")


def points(prob_path, max_share):
    val = validation_sample([json.loads(l) for l in open(os.path.join(WORK, "val.jsonl"), encoding="utf-8") if l.strip()])
    p = np.fromfile(prob_path, dtype="<f4").astype(np.float64)
    assert len(p) == len(val), (prob_path, len(p), len(val))
    y, fs, chat, doc, fast_pred, fast_th = fast_decisions(val)
    s = choose_points(y, fs, chat, doc, fast_pred, fast_th, p, max_share)
    m = s["metrics"]
    print(f"share bound {max_share}: band [{s['lo']:.2f}, {s['hi']:.2f}) threshold {s['t2']:.2f} documents from "
          f"{s['ind_lo']:.2f}; validation F1 {m[0]:.4f} FPR {m[1]:.4f} chat FPR {m[2]:.4f}; benign share to the encoder "
          f"{s['benign_share'](s['lo'], s['hi'], s['ind_lo']):.3f}")


def main():
    if "--points" in sys.argv:
        args = sys.argv[sys.argv.index("--points") + 1:]
        return points(args[0], float(args[1]) if len(args) > 1 else MAX_SHARE)
    chat_rate = "--chat-rate" in sys.argv
    if chat_rate:
        sys.argv.remove("--chat-rate")
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    rows = [json.loads(l) for l in open(os.path.join(WORK, "test.jsonl"), encoding="utf-8") if l.strip()]
    y, fs, chat, doc, fast_pred, _ = fast_decisions(rows)

    def side(head_path, prob_path):
        h = json.load(open(head_path))
        p = np.fromfile(prob_path, dtype="<f4").astype(np.float64)
        assert len(p) == len(rows), (prob_path, len(p), len(rows))
        return split_metrics(y, fs, chat, doc, fast_pred, p, h["band_low"], h["band_high"], h["threshold"], h["indirect_low"])

    a = side(sys.argv[1], sys.argv[2])
    b = side(sys.argv[3], sys.argv[4])
    fast = (2 * int(np.sum(fast_pred & (y == 1)))) / max(1, 2 * int(np.sum(fast_pred & (y == 1))) + int(np.sum(fast_pred & (y == 0))) + int(np.sum(~fast_pred & (y == 1))))
    print(f"test split: {len(rows)} rows; fast classifier alone F1 {fast:.4f}, FP {int(np.sum(fast_pred & (y == 0)))}")
    for name, m in (("base", a), ("candidate", b)):
        print(f"{name:8s} {m['band']}: F1 {m['f1']:.4f} (TP {m['tp']} FP {m['fp']} FN {m['fn']}), FPR {m['fpr']:.4f}, "
              f"chat {m['chat_fp']} of {m['chat']}, benign texts to the encoder {m['benign_to_encoder']} of {m['benign']} "
              f"({m['benign_to_encoder'] / m['benign']:.3f})")
    t1 = b["f1"] >= a["f1"] + 0.002
    chat_ok = b["chat_fp"] / b["chat"] <= 0.005 if chat_rate else b["chat_fp"] <= a["chat_fp"]
    t2 = b["fpr"] <= a["fpr"] + 0.001 and chat_ok
    t3 = b["benign_to_encoder"] / b["benign"] <= 0.10
    print(f"(1) F1 +0.002: {'PASS' if t1 else 'FAIL'}; (2) FPR and chat: {'PASS' if t2 else 'FAIL'}; "
          f"(3) benign share to the encoder <= 10 %: {'PASS' if t3 else 'FAIL'}")
    print("the candidate " + ("PASSES" if t1 and t2 and t3 else "FAILS") + " the rule")


if __name__ == "__main__":
    main()
