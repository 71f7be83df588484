#!/usr/bin/env python3
"""Candidate RH (bench/guard/DECISIONS.md, session of stop 53): the script route with a head of its own.

The guard's script route (stage2::ScriptRoute) sends a text whose letters are at least `min_share` outside the Latin
script to the encoder whatever its fast score, and blocks it beside the shipped verdict when
sigmoid(scale * (weights . embedding + bias) + offset) >= threshold. Here `weights` and `bias` are a logistic head of
the route's own, fitted on non-Latin-script rows of the TRAINING split only, over the embeddings of the encoder the
guard ships (stack_stage2.builtin_model_dir: the same f16 tensors the guard loads; the passage the guard reads, of the
text as the guard's models read it, by the `embed` example with AISEC_GUARD_EMBED_SERVED=1). The band's head, its
threshold, the indirect head and the encoder stay exactly as shipped.

Training rows (every training-split row with nonlatin_sets.non_latin_share >= 0.5, duplicates by text dropped):
  the pinned corpus (scripts/guard/data/corpus.jsonl.xz), guard_multiling.py (requests, chat turns, questions and
  injections in ten languages), guard_uistrings.py (Django's translated interface strings, benign; BSD-3-Clause) and
  guard_prose.py's benign documents (synthetic expository prose, dataset-build wheel, BSD-2-Clause); guard_prose.py's
  injected documents are left out (the route only adds blocks; pasted English injections are the fast path's job).
Head: LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000), the C of train_stage2.py's frozen-encoder head.

Steps (WORK = bench/guard/work/rh, AISEC_GUARD_ROUTE_WORK):
  fit            collects and embeds the rows, fits the head -> WORK/route.json (and WORK/train.jsonl)
  probs FILE     the route's probability of every row of FILE (a JSONL of the quality format), for the parity check
                 against the guard's own -> WORK/<name>.route.prob (f32) and a summary on stdout
  head T [--ship]  the shipped head file with script_route {min_share 0.5, scale 1, offset 0, weights, bias,
                 threshold T} -> WORK/minilm_head.json (beside a link to the shipped minilm_top.safetensors, so
                 `AISEC_GUARD_HEAD=WORK/minilm_head.json examples/quality` reads it), and with --ship over
                 crates/aisec-guard/assets/minilm_head.json
Usage: route_head.py fit | probs FILE | head T [--ship]   (after train_classifier.py; uses its venv)
"""
import json
import lzma
import os
import subprocess
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.environ.get("AISEC_GUARD_ROUTE_WORK") or os.path.join(ROOT, "bench", "guard", "work", "rh")
ASSETS = os.path.join(ROOT, "crates", "aisec-guard", "assets")
C = 4.0
MIN_SHARE = 0.5
# the passage the guard reads (the shipped head's context_words and max_tokens)
CONTEXT, MAX_TOKENS = 24, 128

sys.path.insert(0, HERE)
from train_stage2 import ensure_venv  # noqa: E402


def training_rows():
    """Every training-split row at least MIN_SHARE non-Latin from the four sources, first occurrence of a text kept,
    tagged with its origin."""
    import guard_data
    import guard_multiling
    import guard_prose
    import guard_uistrings
    import train_classifier as tc
    from nonlatin_sets import non_latin_share

    out, seen = [], set()

    def add(r, origin):
        if r["split"] == "train" and non_latin_share(r["text"]) >= MIN_SHARE and r["text"] not in seen:
            seen.add(r["text"])
            out.append({"text": r["text"], "label": r["label"], "source": r["source"], "kind": r["kind"], "origin": origin})

    with lzma.open(os.path.join(HERE, "data", "corpus.jsonl.xz"), "rt", encoding="utf-8") as f:
        next(f)  # the corpus header
        for line in f:
            add(json.loads(line), "corpus")
    for r in guard_multiling.rows(guard_data) + guard_multiling.question_rows(guard_data):
        add(r, "multiling")
    for r in guard_uistrings.rows(guard_data, tc.wheel("django")):
        add(r, "uistrings")
    for r in guard_prose.rows(guard_data, tc.wheel("dataset_build")):
        if r["label"] == 0:
            add(r, "prose")
    return out


def embed(path, tag):
    """Embeddings (n, width) of FILE's texts by the built-in encoder, the passage the guard reads."""
    import numpy as np

    os.environ.setdefault("AISEC_GUARD_STACK_WORK", WORK)
    import stack_stage2

    subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "aisec-guard", "--example", "embed"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    exe = os.path.join(target, "release", "examples", "embed")
    d = stack_stage2.builtin_model_dir()
    prefix = os.path.join(WORK, tag)
    # the text as the guard's models read it (text::normalise, Normalised::model_text), so the route's probabilities
    # are the guard's own (the parity check of DECISIONS.md, candidate RH)
    env = {k: v for k, v in os.environ.items() if k != "AISEC_GUARD_STAGE2_TOP"}
    env["AISEC_GUARD_EMBED_SERVED"] = "1"
    subprocess.check_call([exe, d, path, prefix, str(CONTEXT), str(MAX_TOKENS)], env=env)
    with open(path, encoding="utf-8") as f:
        n = sum(1 for l in f if l.strip())
    return np.fromfile(prefix + ".emb", dtype="<f4").reshape(n, -1)


def fit():
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    os.makedirs(WORK, exist_ok=True)
    rows = training_rows()
    path = os.path.join(WORK, "train.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = Counter((r["origin"], r["label"]) for r in rows)
    print(f"{len(rows)} training rows: " + ", ".join(f"{o} label {l}: {n}" for (o, l), n in sorted(counts.items())))
    e = embed(path, "train").astype(np.float64)
    y = np.array([r["label"] for r in rows])
    m = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(e, y)
    p = m.predict_proba(e)[:, 1]
    auc = float(roc_auc_score(y, p))
    out = {"weights": [float(w) for w in m.coef_[0]], "bias": float(m.intercept_[0]), "C": C, "rows": len(rows),
           "counts": {f"{o} {l}": n for (o, l), n in sorted(counts.items())}, "train_auc": auc}
    with open(os.path.join(WORK, "route.json"), "w") as f:
        json.dump(out, f)
    print(f"fitted: bias {out['bias']:.4f}, in-sample AUC {auc:.4f}; wrote {os.path.join(WORK, 'route.json')}")


def route_probs(e):
    import numpy as np

    r = json.load(open(os.path.join(WORK, "route.json")))
    # the guard's arithmetic in f32 (stage2::dot, sigmoid)
    z = e.astype(np.float32) @ np.array(r["weights"], dtype=np.float32) + np.float32(r["bias"])
    return 1 / (1 + np.exp(-z.astype(np.float64)))


def probs():
    import numpy as np

    from nonlatin_sets import non_latin_share

    path = sys.argv[2]
    tag = os.path.splitext(os.path.basename(path))[0]
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(l) for l in f if l.strip()]
    p = route_probs(embed(path, tag))
    p.astype("<f4").tofile(os.path.join(WORK, tag + ".route.prob"))
    routed = np.array([non_latin_share(r["text"]) >= MIN_SHARE for r in rows])
    y = np.array([r["label"] for r in rows])
    for t in (0.5, 0.6, 0.7, 0.8, 0.9):
        hit = routed & (p >= t)
        print(f"t {t}: routed rows at or above t: attacks {int(np.sum(hit & (y == 1)))} of {int(np.sum(routed & (y == 1)))}, "
              f"benign {int(np.sum(hit & (y == 0)))} of {int(np.sum(routed & (y == 0)))}")
    print(f"wrote {os.path.join(WORK, tag + '.route.prob')}")


def head():
    args = [a for a in sys.argv[2:] if a != "--ship"]
    if len(args) != 1:
        sys.exit(__doc__)
    t = float(args[0])
    h = json.load(open(os.path.join(ASSETS, "minilm_head.json")))
    if h.get("script_route"):
        sys.exit("the shipped head has a script route already")
    r = json.load(open(os.path.join(WORK, "route.json")))
    h["script_route"] = {"min_share": MIN_SHARE, "scale": 1.0, "offset": 0.0, "threshold": t,
                         "weights": r["weights"], "bias": r["bias"]}
    h["note"] += (f"; script route (candidate RH, scripts/guard/route_head.py): texts at least {MIN_SHARE} non-Latin "
                  f"letters scored by a head of their own (C={r['C']}, {r['rows']} non-Latin training-split rows) and "
                  f"blocked from {t}")
    from stack_stage2 import write_head

    write_head(h, WORK)
    link = os.path.join(WORK, h["encoder_top"])
    if not os.path.exists(link):
        os.symlink(os.path.join(ASSETS, h["encoder_top"]), link)


def main():
    ensure_venv()
    step = sys.argv[1] if len(sys.argv) > 1 else ""
    {"fit": fit, "probs": probs, "head": head}.get(step, lambda: sys.exit(__doc__))()


if __name__ == "__main__":
    main()
