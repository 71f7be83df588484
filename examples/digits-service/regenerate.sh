#!/bin/sh
# Regenerates the example system's files from the repository's own assets.
# Usage: examples/digits-service/regenerate.sh [path/to/aisec]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
aisec=${1:-$here/../../target/debug/aisec}
cd "$here"
python3 make_example.py
# The bundled CNN (trained on all 1,797 digits; see crates/aisec/assets/README.md).
cp ../../crates/aisec/assets/digits_cnn.onnx models/digits_cnn.onnx
# An MLP trained on 200 known digits (data/members.npy marks them), long
# enough to memorise them, so membership inference has something to find.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$aisec" -q train data/train_x.npy --labels data/train_y.npy --scale 0.0625 \
  --arch mlp.json --epochs 150 --batch-size 25 --lr 0.01 --seed 1 \
  --out "$work/digits_mlp.safetensors" --onnx models/digits_mlp.onnx > /dev/null
# Pickle-bearing artifacts, written byte by byte by `aisec demo` (nothing is
# pickled from live objects): a benign state dict, a safetensors file and a
# PyTorch checkpoint whose pickle calls exec.
"$aisec" -q demo --only scan --keep "$work/samples" --no-fail > /dev/null
cp "$work/samples/safe/state_dict.pkl" models/state_dict.pkl
cp "$work/samples/safe/model.safetensors" models/encoder.safetensors
cp "$work/samples/malicious/checkpoint.pt" models/legacy_checkpoint.pt
ls -l models data
