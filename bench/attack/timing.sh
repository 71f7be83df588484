#!/usr/bin/env bash
# Time per 1,000 examples of PGD-40 and AutoAttack standard, aisec vs torchattacks, on the
# same CPU threads; writes bench/attack/TIMING.md (and timing.json).
#   bench/attack/timing.sh [--threads 1,2] [--n-pgd 1000] [--n-aa 100] [--models mnist_cnn,mnist_madry]
# Run it on a quiet machine: the numbers are wall-clock.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
PY="$(scripts/ml-venv.sh)"
TD="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release -q -p aisec
export AISEC_BIN="${AISEC_BIN:-$TD/release/aisec}"
exec "$PY" "$HERE/timing.py" "$@"
