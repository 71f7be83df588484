#!/usr/bin/env bash
# Makes bench/explain/.venv (torch CPU, Captum, shap, scikit-learn, onnx),
# builds aisec and runs the cross-check. THREADS=N sets both sides' threads.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, captum, shap, sklearn, onnx" 2>/dev/null; then
  "$VENV/bin/pip" install -q --upgrade pip
  # The CPU wheel index when it is reachable; PyPI's wheel otherwise.
  "$VENV/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu torch \
    || "$VENV/bin/pip" install -q torch
  "$VENV/bin/pip" install -q captum shap scikit-learn onnx onnxruntime numpy
fi
(cd "$ROOT" && cargo build -q --release -p aisec)
export AISEC="${AISEC:-$ROOT/target/release/aisec}"
THREADS="${THREADS:-1}" "$VENV/bin/python" "$HERE/crosscheck.py"
