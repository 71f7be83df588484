#!/usr/bin/env bash
# Cross-check aisec's evasion numbers against torchattacks (and ART when it installs)
# on the ONNX fixtures of crates/aisec-model/tests/fixtures.
#   bench/attack/run.sh [crosscheck.py args, e.g. --eps 0.1 --steps 40]
# Creates bench/attack/.venv (gitignored) on first use. Writes bench/attack/RESULTS.md.
# Uses `aisec attack evasion` when the CLI has it, else the aisec-attack example
# driver `evasion_json` (same library call, same JSON report).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, torchattacks, onnx2torch" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q torch numpy onnx onnx2torch torchattacks
  # Optional second reference; the script skips it when missing.
  "$VENV/bin/pip" install -q adversarial-robustness-toolbox || echo "ART did not install; skipping it"
fi
cd "$ROOT"
TD="${CARGO_TARGET_DIR:-$ROOT/target}"
if cargo build --release -q -p aisec 2>/dev/null && "$TD/release/aisec" attack evasion --help >/dev/null 2>&1; then
  export AISEC_BIN="$TD/release/aisec"
else
  cargo build --release -q -p aisec-attack --example evasion_json
  export AISEC_EVASION_CMD="${AISEC_EVASION_CMD:-$TD/release/examples/evasion_json {model} {x} {y} --attacks {attacks} --norm linf --eps {eps} --steps {steps} --seed 0}"
fi
exec "$VENV/bin/python" "$HERE/crosscheck.py" "$@"
