#!/usr/bin/env python3
"""Candidate EV (bench/guard/DECISIONS.md, session of stop 55): the operating point of the guard's second stage when
it reads every request text (policy `[input.second_stage] scope = "all"`), written into the head file's `all_texts`.

In the default scope the stacked head (candidate FT6M, stack_stage2.py) decides only the texts whose fast score is in
its band [band_low, band_high). With scope "all" it decides every request text at

    p = sigmoid(scale * z + fast_weight * logit(fast) + offset)

where z is the band's stacked logit (the head's weights over the embedding, its fast_weight times the fast logit, its
bias). Everything is chosen on the validation split, never on test data:
  variant T   scale 1, fast_weight 0, offset 0: the band's probability with a threshold of its own;
  variant R   (scale, fast_weight, offset) a logistic regression (C = 1.0) of the label on (z, logit(fast)) over 3,000
              validation rows drawn with random.Random(23) from the validation split less val3000, every fast score
              (the band's stack was fitted on rows with fast >= 0.3 only);
and for each the threshold on a 0.02 grid (0.02 .. 0.98) with the best F1 on val3000 (train_stage2.validation_sample)
under benign FPR <= the default guard's own on val3000 (its band and threshold, as train_stage2 models the guard)
and chat FPR <= 0.005; ties to the higher threshold. R is taken over T only if its val3000 F1 is higher by >= 0.002.

Steps (WORK = bench/guard/work/ev unless AISEC_GUARD_EV_WORK says):
  score   the built-in encoder embeds the guard's passage of every row of val3000 and the fit rows (examples/embed.rs,
          with the fast score of each row; about 100 s per 3,000 rows on 2 cores); the band's logit z is then the
          head file's own weights, bias and fast_weight over them, as stage2.rs computes it
  fit     the two variants and their thresholds -> WORK/fit.json (prints both)
  head    the shipped head file (assets/minilm_head.json, or AISEC_GUARD_EV_HEAD) with `all_texts` from WORK/fit.json,
          written to WORK/minilm_head.json and, with --ship, over the shipped one
Usage: every_text.py score|fit|head [--ship]   (after train_classifier.py; uses its venv)
"""
import json
import os
import random
import subprocess
import sys

from train_stage2 import ensure_venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
GUARD_WORK = os.environ.get("AISEC_GUARD_WORK") or os.path.join(ROOT, "bench", "guard", "work")
WORK = os.environ.get("AISEC_GUARD_EV_WORK") or os.path.join(GUARD_WORK, "ev")
HEAD = os.environ.get("AISEC_GUARD_EV_HEAD") or os.path.join(ROOT, "crates", "aisec-guard", "assets", "minilm_head.json")
R_MARGIN = 0.002


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def samples():
    from train_stage2 import validation_sample

    val = load(os.path.join(GUARD_WORK, "val.jsonl"))
    v3 = validation_sample(val)
    seen = {r["text"] for r in v3}
    rest = [r for r in val if r["text"] not in seen]
    return v3, random.Random(23).sample(rest, min(3000, len(rest)))


def score():
    # the stack's WORK holds the built-in model folder stack_stage2 writes
    os.environ.setdefault("AISEC_GUARD_STACK_WORK", WORK)
    import stack_stage2
    from finetune_stage2 import write_jsonl

    os.makedirs(WORK, exist_ok=True)
    v3, fit_rows = samples()
    d = stack_stage2.builtin_model_dir()
    subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "aisec-guard", "--example", "embed"], cwd=ROOT)
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "examples", "embed")
    h = head_file()
    for name, rows in (("val3000", v3), ("fit3000", fit_rows)):
        path = os.path.join(WORK, name + ".jsonl")
        write_jsonl(path, rows)
        subprocess.check_call([exe, d, path, os.path.join(WORK, name), str(h["context_words"]), str(h["max_tokens"])])


def head_file():
    with open(HEAD, encoding="utf-8") as f:
        return json.load(f)


def fast_logit(f):
    """stage2.rs's fast_logit: the score clamped to [1e-6, 1 - 1e-6], its logit clamped to +-10."""
    import numpy as np

    f = np.clip(f.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.clip(np.log(f / (1 - f)), -10, 10)


def band_logit(name, n, h):
    """The band's logit z of each row as the guard computes it: the head's weights over the embedding, plus its bias
    and fast_weight times the fast logit (stage2.rs, `SecondStage::score_routed`); and the fast scores."""
    import numpy as np

    e = np.fromfile(os.path.join(WORK, name + ".emb"), dtype="<f4").astype(np.float64).reshape(n, -1)
    f = np.fromfile(os.path.join(WORK, name + ".fast"), dtype="<f4")
    assert len(f) == n and e.shape[1] == len(h["weights"]), (name, e.shape, len(f))
    return e @ np.array(h["weights"]) + h["bias"] + h["fast_weight"] * fast_logit(f), f


def search(y, chat, p, max_fpr):
    import numpy as np

    neg = max(1, int(np.sum(y == 0))); nchat = max(1, int(np.sum(chat & (y == 0))))
    best = None
    for t in np.arange(0.02, 0.99, 0.02):
        pred = p >= t
        tp = int(np.sum(pred & (y == 1))); fp = int(np.sum(pred & (y == 0))); fn = int(np.sum(~pred & (y == 1)))
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        ok = fp / neg <= max_fpr + 1e-12 and int(np.sum(pred & chat & (y == 0))) / nchat <= 0.005
        key = (ok, round(f1, 4), t)
        if best is None or key > best[0]:
            best = (key, {"t": round(float(t), 2), "f1": f1, "tp": tp, "fp": fp, "fn": fn, "fpr": fp / neg, "ok": ok})
    return best[1]


def fit():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from train_stage2 import fast_decisions, stage_decisions

    h = head_file()
    v3, fit_rows = samples()
    y, fs, chat, doc, fast_pred, _ = fast_decisions(v3)
    z, fz = band_logit("val3000", len(v3), h)
    assert np.abs(fz - fs).max() < 1e-4, "the embed example's fast scores differ from the validation split's"
    p_band = 1 / (1 + np.exp(-z))
    # the default guard on val3000: its band and threshold, documents from indirect_low (train_stage2's model of it)
    pred, _ = stage_decisions(fs, doc, fast_pred, p_band, h["band_low"], h["band_high"], h["threshold"], h["indirect_low"])
    neg = int(np.sum(y == 0))
    tp = int(np.sum(pred & (y == 1))); fp = int(np.sum(pred & (y == 0))); fn = int(np.sum(~pred & (y == 1)))
    default = {"f1": 2 * tp / (2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn, "fpr": fp / neg}
    max_fpr = default["fpr"]
    print(f"default guard on val3000: F1 {default['f1']:.4f} TP {tp} FP {fp} FN {fn} FPR {max_fpr:.4f}")
    t_var = search(y, chat, p_band, max_fpr)
    print(f"T: threshold {t_var['t']}: F1 {t_var['f1']:.4f} TP {t_var['tp']} FP {t_var['fp']} FN {t_var['fn']} "
          f"FPR {t_var['fpr']:.4f} constraints met {t_var['ok']}")
    yf = np.array([r["label"] for r in fit_rows])
    zf, ff = band_logit("fit3000", len(fit_rows), h)
    m = LogisticRegression(C=1.0, max_iter=1000).fit(np.stack([zf, fast_logit(ff)], 1), yf)
    r = {"scale": float(m.coef_[0][0]), "fast_weight": float(m.coef_[0][1]), "offset": float(m.intercept_[0])}
    p_r = 1 / (1 + np.exp(-(r["scale"] * z + r["fast_weight"] * fast_logit(fs) + r["offset"])))
    r_var = search(y, chat, p_r, max_fpr)
    print(f"R: scale {r['scale']:.4f} fast_weight {r['fast_weight']:.4f} offset {r['offset']:.4f} (fitted on "
          f"{len(fit_rows)} rows, {int(yf.sum())} attacks); threshold {r_var['t']}: F1 {r_var['f1']:.4f} "
          f"TP {r_var['tp']} FP {r_var['fp']} FN {r_var['fn']} FPR {r_var['fpr']:.4f} constraints met {r_var['ok']}")
    take_r = r_var["ok"] and r_var["f1"] >= t_var["f1"] + R_MARGIN
    chosen = dict(r, threshold=r_var["t"], variant="R", val=r_var) if take_r else \
        dict(scale=1.0, fast_weight=0.0, offset=0.0, threshold=t_var["t"], variant="T", val=t_var)
    print(f"chosen: variant {chosen['variant']}")
    out = {"default": default, "T": t_var, "R": dict(r, **r_var), "chosen": chosen}
    with open(os.path.join(WORK, "fit.json"), "w") as f:
        json.dump(out, f, indent=1)


def head():
    with open(os.path.join(WORK, "fit.json")) as f:
        c = json.load(f)["chosen"]
    h = head_file()
    v = c["val"]
    h["all_texts"] = {
        "scale": round(c["scale"], 6), "fast_weight": round(c["fast_weight"], 6), "offset": round(c["offset"], 6),
        "threshold": c["threshold"],
        "note": f"candidate EV (scripts/guard/every_text.py), variant {c['variant']}: every request text decided by the "
                f"head; on the validation sample val3000 F1 {v['f1']:.4f} FPR {v['fpr']:.4f} (the default guard's FPR "
                f"there is the bound)",
    }
    for path in [os.path.join(WORK, "minilm_head.json")] + ([HEAD] if "--ship" in sys.argv else []):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(h, f, indent=0)
            f.write("\n")
        print("wrote", path)


def main():
    ensure_venv()
    steps = {"score": score, "fit": fit, "head": head}
    if len(sys.argv) < 2 or sys.argv[1] not in steps:
        sys.exit(__doc__)
    steps[sys.argv[1]]()


if __name__ == "__main__":
    main()
