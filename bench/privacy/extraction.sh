#!/usr/bin/env bash
# Model extraction (Knockoff / Copycat / Jacobian) and MI-Face inversion on real MNIST
# digits with `aisec attack extraction|inversion`, compared with ART's extraction attacks.
#   bench/privacy/extraction.sh [extraction.py args, e.g. --budgets 100,500,2000 --skip-art]
# Writes bench/privacy/EXTRACTION.md and bench/privacy/inversion.png; scratch in bench/privacy/work/.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"
PY="$(scripts/ml-venv.sh)"
TD="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release -q -p aisec
export AISEC_BIN="$TD/release/aisec"
exec "$PY" "$HERE/extraction.py" "$@"
