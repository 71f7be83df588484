#!/usr/bin/env bash
# Cross-checks aisec-model against onnxruntime/PyTorch and benchmarks
# forward + input-gradient throughput; writes bench/model/RESULTS.md.
# Usage: bench/model/bench.sh   (BENCH_THREADS="1 2" by default: one RESULTS.md with both)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${AISEC_MODEL_BENCH:-}" ]; then
  cargo build --release -p aisec-model --example model_bench
fi
export AISEC_MODEL_BENCH="${AISEC_MODEL_BENCH:-$CARGO_TARGET_DIR/release/examples/model_bench}"
python3 scripts/models/train_fixtures.py --help >/dev/null   # creates the venv if needed
exec scripts/models/.venv/bin/python bench/model/crosscheck.py
