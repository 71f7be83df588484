#!/usr/bin/env bash
# Cross-check aisec's evasion attacks against torchattacks and ART on the MNIST fixtures
# (crates/aisec-attack/tests/fixtures, made by scripts/models/train_mnist.py).
#   bench/attack/run.sh [crosscheck.py args, e.g. --blocks pgd-exact,aa --n 1000]
# Builds the aisec CLI and the evasion_json example in release mode, gets the shared
# Python environment from scripts/ml-venv.sh, merges the results into
# bench/attack/crosscheck.json and re-renders bench/attack/RESULTS.md.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
PY="$(scripts/ml-venv.sh)"
TD="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release -q -p aisec -p aisec-attack --bin aisec --example evasion_json
export AISEC_BIN="${AISEC_BIN:-$TD/release/aisec}"
export AISEC_EVASION_JSON="${AISEC_EVASION_JSON:-$TD/release/examples/evasion_json}"
exec "$PY" "$HERE/crosscheck.py" "$@"
