#!/usr/bin/env bash
# Regenerates bench/poison/RESULTS data: the BackdoorBench-style table on
# MNIST (mnist_mlp.json) and the ART cross-check (work/crosscheck.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-/work/venvs/poison}
[ -x "$VENV/bin/python" ] || bench/poison/setup_venv.sh "$VENV"
"$VENV/bin/python" bench/poison/prep_mnist.py
cat /proc/loadavg
cargo run -q -p aisec-defend --example poison_table -- \
  bench/poison/work/mnist_train.npz bench/poison/work/mnist_test.npz \
  bench/poison/mlp.json bench/poison/mnist_mlp.json 8
cargo build -q -p aisec
"$VENV/bin/python" bench/poison/art_crosscheck.py target/debug/aisec
cp bench/poison/work/crosscheck.json bench/poison/crosscheck.json
