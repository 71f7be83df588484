#!/usr/bin/env python3
"""Candidate BX (bench/guard/DECISIONS.md, session of stop 49): the fast classifier's score stacked beside the second
stage's head inside the band.

The shipped second stage (candidate BI: the built-in encoder, FT4M's fine-tuned top layers and head) decides the texts
whose fast score is in its band by the head's probability alone. BX replaces that probability by

    p' = sigmoid(a * logit(p_head) + c * logit(fast) + d)        (logit as train_stage2.logit, clamped to +-10)

with (a, c, d) a logistic regression (C = 1.0) on FT4M's 2,000 validation loss rows (finetune_stage2.py's
`valloss.jsonl`: validation split, fast score >= 0.3, random.Random(19)), and chooses the operating points again with
train_stage2.choose_points on its 3,000-row validation sample. In the guard p' is exact algebra on the head file:
weights and bias times a, plus d, and `fast_weight` c (stage2.rs, `Head::fast_weight`).

Steps (WORK = bench/guard/work/bx):
  score   the built-in stage (assets/minilm_base.safetensors with minilm_top.safetensors over it; the same tensors the
          guard loads) scores valloss.jsonl, the validation sample and the test split (finetune_stage2 example `score`:
          NaN below fast score 0.3)
  fit     the stacking regression and the operating points on validation -> WORK/fit.json
  rule    BX against BI on the TEST split, as ft_rule.py --chat-rate reads it (rule [BASE_HEAD.json]: BI's head file,
          the shipped one before BX)
  head    writes the candidate head file WORK/minilm_head.json (and, with --ship, over assets/minilm_head.json);
          head [BASE_HEAD.json] [--ship]: the unstacked head to start from (the shipped one before BX)
Usage: stack_stage2.py score|fit|rule|head [BASE_HEAD.json] [--ship]   (after train_classifier.py; uses its venv)
  head with AISEC_GUARD_STACK_ROUTE=t also writes the script route (threshold t on the unstacked head's probability)

The head shipped since the session of stop 50 is FT6M's (all six layers fine-tuned), stacked the same way:
  AISEC_GUARD_STAGE2_TOP=bench/guard/work/ft6m/top.f16.safetensors AISEC_GUARD_STAGE2_TOP_NAME=minilm_top.safetensors \
    train_stage2.py    (the unstacked head and the indirect head; copy assets/minilm_head.json to WORK/minilm_head_unstacked.json)
  AISEC_GUARD_STACK_WORK=bench/guard/work/ft6m AISEC_GUARD_STACK_NAME=FT6M,FT6M stack_stage2.py head \
    bench/guard/work/ft6m/minilm_head_unstacked.json --ship     (after score and fit as below)
A candidate's fine-tuned weights stacked the same way and judged against BX (candidate FT6M, DECISIONS.md):
  AISEC_GUARD_STACK_WORK=bench/guard/work/ft6m AISEC_GUARD_STACK_TOP=bench/guard/work/ft6m/top.f16.safetensors \
    stack_stage2.py score; ... fit
  AISEC_GUARD_STACK_WORK=bench/guard/work/ft6m AISEC_GUARD_STACK_BASE_WORK=bench/guard/work/bx stack_stage2.py rule
(both sides decided the guard's way, band only; BX's side reads F1 0.9411, TP 3,897, FP 53, FN 435).
Restacking on a candidate fast model (candidate ATAS, session of stop 54): AISEC_GUARD_WORK=<its training run>
AISEC_GUARD_MODEL=<its injection_lr.bin> AISEC_GUARD_STACK_WORK=<new folder> AISEC_GUARD_STACK_NO_TEST=1, then score, fit
and head UNSTACKED.json, where UNSTACKED.json is the shipped head with weights and bias replaced by the difference of
the two rows of head.weight and head.bias in assets/minilm_top.safetensors and fast_weight 0 (FT6M's unstacked head).
The shipped head was chosen with the search's request-side documents clause, since turned off by default (candidate
BXS, DECISIONS.md: it chooses the same band and threshold without it); AISEC_GUARD_STAGE2_DOC_PATH=1 reproduces the
shipped file exactly (indirect_low 0.44).
"""
import json
import os
import random
import subprocess
import sys

from train_stage2 import ensure_venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
# AISEC_GUARD_WORK: the training run whose val.jsonl and test.jsonl (and fast scores) are read, as in train_classifier.py
GUARD_WORK = os.environ.get("AISEC_GUARD_WORK") or os.path.join(ROOT, "bench", "guard", "work")
# AISEC_GUARD_STACK_WORK: the work folder (bench/guard/work/bx, BX's); AISEC_GUARD_STACK_TOP: a candidate's fine-tuned
# weights (finetune_stage2.py's top.f16.safetensors) scored over the built-in base in place of the shipped
# minilm_top.safetensors (candidate FT6M); AISEC_GUARD_STACK_BASE_WORK: for `rule`, a stacked base (a work folder
# with its own fit.json and probabilities, e.g. bx) in place of an unstacked head file
WORK = os.environ.get("AISEC_GUARD_STACK_WORK") or os.path.join(GUARD_WORK, "bx")
ASSETS = os.path.join(ROOT, "crates", "aisec-guard", "assets")
TOP = os.environ.get("AISEC_GUARD_STACK_TOP") or os.path.join(ASSETS, "minilm_top.safetensors")
MIN_FAST = 0.3


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def valloss_rows():
    # finetune_stage2.py data()'s loss rows, drawn the same way
    val = [r for r in load(os.path.join(GUARD_WORK, "val.jsonl")) if r["py_score"] >= MIN_FAST]
    return random.Random(19).sample(val, min(2000, len(val)))


def builtin_model_dir():
    """A model folder holding exactly the built-in encoder: the f16 base and the f16 fine-tuned layers in one file."""
    import shutil

    from finetune_stage2 import read_st, write_st_f16

    d = os.path.join(WORK, "builtin_model")
    os.makedirs(d, exist_ok=True)
    ws = read_st(os.path.join(ASSETS, "minilm_base.safetensors"))

    def top_of(path):
        return {k[5:] if k.startswith("bert.") else k: v for k, v in read_st(path).items() if not k.startswith("head.")}

    top = top_of(os.path.join(ASSETS, "minilm_top.safetensors"))
    assert not set(ws) & set(top), "base and top share a tensor"
    ws.update(top)
    if TOP != os.path.join(ASSETS, "minilm_top.safetensors"):
        # a candidate's fine-tuned weights over the built-in encoder: they may replace base tensors too (FT6M: every
        # layer and the embeddings' LayerNorm), never add one
        cand = top_of(TOP)
        assert set(cand) <= set(ws), sorted(set(cand) - set(ws))[:3]
        ws.update(cand)
    write_st_f16(os.path.join(d, "model.safetensors"), ws, {"about": "built-in encoder (stack_stage2.py)"})
    shutil.copyfile(os.path.join(ASSETS, "minilm_vocab.txt"), os.path.join(d, "vocab.txt"))
    shutil.copyfile(os.path.join(ASSETS, "minilm_config.json"), os.path.join(d, "config.json"))
    return d


def score():
    from finetune_stage2 import exe, write_jsonl
    from train_stage2 import validation_sample

    os.makedirs(WORK, exist_ok=True)
    write_jsonl(os.path.join(WORK, "valloss.jsonl"), valloss_rows())
    write_jsonl(os.path.join(WORK, "val3000.jsonl"), validation_sample(load(os.path.join(GUARD_WORK, "val.jsonl"))))
    d, e = builtin_model_dir(), exe()
    top = TOP
    sets = [("valloss", os.path.join(WORK, "valloss.jsonl")), ("val3000", os.path.join(WORK, "val3000.jsonl")),
            ("test", os.path.join(GUARD_WORK, "test.jsonl"))]
    # AISEC_GUARD_STACK_NO_TEST=1: the validation rows only (fit and head need nothing else; rule reads the test's)
    if os.environ.get("AISEC_GUARD_STACK_NO_TEST") == "1":
        sets = sets[:2]
    for name, path in sets:
        subprocess.check_call([e, "score", d, top, path, os.path.join(WORK, name + ".prob"), str(MIN_FAST)])


def probs(name, n, work=None):
    import numpy as np

    p = np.fromfile(os.path.join(work or WORK, name + ".prob"), dtype="<f4").astype(np.float64)
    assert len(p) == n, (name, len(p), n)
    return p


def stacked(p, fs, fit):
    """p' from head probabilities p (NaN kept) and fast scores fs."""
    import numpy as np

    from train_stage2 import logit

    z = fit["a"] * logit(p) + fit["c"] * logit(fs) + fit["d"]
    out = 1 / (1 + np.exp(-z))
    out[np.isnan(p)] = np.nan
    return out


def do_fit():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from train_stage2 import MAX_SHARE, choose_points, fast_decisions, logit, validation_sample

    rows = valloss_rows()
    p = probs("valloss", len(rows))
    y = np.array([r["label"] for r in rows])
    fs = np.array([r["py_score"] for r in rows])
    ok = ~np.isnan(p)
    X = np.stack([logit(p[ok]), logit(fs[ok])], axis=1)
    m = LogisticRegression(C=1.0, max_iter=1000).fit(X, y[ok])
    fit = {"a": float(m.coef_[0][0]), "c": float(m.coef_[0][1]), "d": float(m.intercept_[0])}
    from sklearn.metrics import roc_auc_score

    auc = {"head": roc_auc_score(y[ok], p[ok]), "fast": roc_auc_score(y[ok], fs[ok]),
           "stacked": roc_auc_score(y[ok], m.decision_function(X))}
    print(f"stacking fit on {int(ok.sum())} loss rows: a {fit['a']:.4f} c {fit['c']:.4f} d {fit['d']:.4f}; AUC there "
          f"(in-sample for the stack): head {auc['head']:.4f} fast {auc['fast']:.4f} stacked {auc['stacked']:.4f}")
    val = validation_sample(load(os.path.join(GUARD_WORK, "val.jsonl")))
    y, fs, chat, doc, fast_pred, fast_th = fast_decisions(val)
    pv = probs("val3000", len(val))
    base = choose_points(y, fs, chat, doc, fast_pred, fast_th, pv, MAX_SHARE)
    s = choose_points(y, fs, chat, doc, fast_pred, fast_th, stacked(pv, fs, fit), MAX_SHARE)
    for name, x in (("BI (head alone)", base), ("BX (stacked)", s)):
        m_ = x["metrics"]
        print(f"{name}: band [{x['lo']:.2f}, {x['hi']:.2f}) threshold {x['t2']:.2f} documents from {x['ind_lo']:.2f}; "
              f"validation F1 {m_[0]:.4f} FPR {m_[1]:.4f} chat FPR {m_[2]:.4f}; benign share to the encoder "
              f"{x['benign_share'](x['lo'], x['hi'], x['ind_lo']):.3f}")
    fit.update({"lo": round(s["lo"], 2), "hi": round(s["hi"], 2), "t2": round(s["t2"], 2), "ind_lo": round(s["ind_lo"], 2),
                "val": list(s["metrics"]), "auc_loss_rows": auc,
                "val_share": s["benign_share"](s["lo"], s["hi"], s["ind_lo"])})
    json.dump(fit, open(os.path.join(WORK, "fit.json"), "w"), indent=1)


def rule():
    from train_stage2 import fast_decisions, split_metrics

    rows = load(os.path.join(GUARD_WORK, "test.jsonl"))
    y, fs, chat, doc, fast_pred, _ = fast_decisions(rows)
    p = probs("test", len(rows))
    fit = json.load(open(os.path.join(WORK, "fit.json")))
    base_work = os.environ.get("AISEC_GUARD_STACK_BASE_WORK")
    if base_work:
        # a stacked base against a stacked candidate, both decided the guard's way: band only (a head with an indirect
        # part sends request-side documents to the head only inside the band; BXS)
        bfit = json.load(open(os.path.join(base_work, "fit.json")))
        pb = probs("test", len(rows), base_work)
        a = split_metrics(y, fs, chat, doc, fast_pred, stacked(pb, fs, bfit), bfit["lo"], bfit["hi"], bfit["t2"], bfit["lo"])
        b = split_metrics(y, fs, chat, doc, fast_pred, stacked(p, fs, fit), fit["lo"], fit["hi"], fit["t2"], fit["lo"])
        return judge(len(rows), ("base " + os.path.basename(base_work.rstrip("/")), a),
                     ("candidate " + os.path.basename(WORK.rstrip("/")), b))
    # the base is the unstacked head BX was judged against (BI's, the shipped file before BX); after BX shipped, pass
    # it: git show b33d1f9~1:crates/aisec-guard/assets/minilm_head.json > /tmp/bi_head.json; stack_stage2.py rule /tmp/bi_head.json
    base = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ASSETS, "minilm_head.json")
    head = json.load(open(base))
    if head.get("fast_weight", 0.0) != 0.0:
        sys.exit(f"{base} is a stacked head already; name the unstacked base head file (see the comment in rule())")

    a = split_metrics(y, fs, chat, doc, fast_pred, p, head["band_low"], head["band_high"], head["threshold"],
                      head["indirect_low"])
    b = split_metrics(y, fs, chat, doc, fast_pred, stacked(p, fs, fit), fit["lo"], fit["hi"], fit["t2"], fit["ind_lo"])
    judge(len(rows), ("BI", a), ("BX", b))


def judge(n, base, cand):
    """The rule of BX (and FT6M) on two sides' test metrics: F1 +0.002, FPR +0.001 and chat <= 0.005, share <= 10 %."""
    (_, a), (_, b) = base, cand
    print(f"test split: {n} rows")
    for name, m in (base, cand):
        print(f"{name} {m['band']}: F1 {m['f1']:.4f} (TP {m['tp']} FP {m['fp']} FN {m['fn']}), FPR {m['fpr']:.4f}, chat "
              f"{m['chat_fp']} of {m['chat']}, benign texts to the encoder {m['benign_to_encoder']} of {m['benign']} "
              f"({m['benign_to_encoder'] / m['benign']:.3f})")
    t1 = b["f1"] >= a["f1"] + 0.002
    t2 = b["fpr"] <= a["fpr"] + 0.001 and b["chat_fp"] / b["chat"] <= 0.005
    t3 = b["benign_to_encoder"] / b["benign"] <= 0.10
    print(f"(1) F1 +0.002: {'PASS' if t1 else 'FAIL'}; (2) FPR and chat: {'PASS' if t2 else 'FAIL'}; "
          f"(3) benign share to the encoder <= 10 %: {'PASS' if t3 else 'FAIL'}")
    print(cand[0] + (" PASSES" if t1 and t2 and t3 else " FAILS") + " the rule")


def head():
    # the unstacked head to stack: the shipped one before BX (as for rule: head BASE_HEAD.json [--ship])
    args = [a for a in sys.argv[2:] if a != "--ship"]
    base = args[0] if args else os.path.join(ASSETS, "minilm_head.json")
    h = json.load(open(base))
    if h.get("fast_weight", 0.0) != 0.0:
        sys.exit(f"{base} is a stacked head already; name the unstacked base head file (see the comment in rule())")
    fit = json.load(open(os.path.join(WORK, "fit.json")))
    h["weights"] = [fit["a"] * w for w in h["weights"]]
    h["bias"] = fit["a"] * h["bias"] + fit["d"]
    h["fast_weight"] = fit["c"]
    h["threshold"], h["band_low"], h["band_high"], h["indirect_low"] = fit["t2"], fit["lo"], fit["hi"], fit["ind_lo"]
    v = fit["val"]
    # AISEC_GUARD_STACK_NAME: the fine-tuned head's candidate and the stacked one's (default "FT4M,BX", the shipped BX)
    ft, cand = (os.environ.get("AISEC_GUARD_STACK_NAME") or "FT4M,BX").split(",")
    h["note"] = (f"{ft}'s head stacked with the fast score (candidate {cand}, scripts/guard/stack_stage2.py: "
                 f"a {fit['a']:.4f}, c {fit['c']:.4f}, d {fit['d']:.4f} fitted on 2,000 validation loss rows); validation "
                 f"split: with the second stage F1 {v[0]:.4f} FPR {v[1]:.4f} chat FPR {v[2]:.4f}; benign share to the "
                 f"encoder {fit['val_share']:.3f} (bound 0.05); head fine-tuned with the encoder's top layer(s)")
    # AISEC_GUARD_STACK_ROUTE=t: the script route (stage2::ScriptRoute; candidate FT7U, DECISIONS.md) with the unstacked
    # head's probability: scale 1 / a and offset -d / a undo the stacking's a and d on the stacked weights and bias;
    # texts at least min_share 0.5 non-Latin letters are scored whatever their fast score and blocked at >= t
    route_t = os.environ.get("AISEC_GUARD_STACK_ROUTE")
    if route_t:
        h["script_route"] = {"min_share": 0.5, "scale": 1.0 / fit["a"], "offset": -fit["d"] / fit["a"],
                             "threshold": float(route_t)}
    # key order as train_stage2.py writes it, fast_weight after bias
    order = ["format", "encoder", "weights", "bias", "fast_weight", "threshold", "band_low", "band_high", "indirect_low",
             "context_words", "max_tokens", "note", "indirect", "encoder_top", "encoder_sha256"]
    out = {k: h[k] for k in order if k in h}
    out.update({k: v for k, v in h.items() if k not in out})
    write_head(out, WORK)


def write_head(h, work):
    """Writes head file `h` to WORK/minilm_head.json and, with --ship on the command line, over the shipped
    assets/minilm_head.json (also route_head.py's)."""
    paths = [os.path.join(work, "minilm_head.json")] + ([os.path.join(ASSETS, "minilm_head.json")] if "--ship" in sys.argv else [])
    for path in paths:
        with open(path, "w") as f:
            json.dump(h, f, indent=0)
            f.write("\n")
        print("wrote", path)


def main():
    ensure_venv()
    step = sys.argv[1] if len(sys.argv) > 1 else ""
    {"score": score, "fit": do_fit, "rule": rule, "head": head}.get(step, lambda: sys.exit(__doc__))()


if __name__ == "__main__":
    main()
