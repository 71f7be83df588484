#!/usr/bin/env bash
# Makes the Python venv the harden cross-check scripts use (never a runtime
# dependency of aisec; the test suite does not need it).
# Usage: bench/harden/setup_venv.sh [VENV_DIR]   (default /work/venvs/harden)
set -euo pipefail
VENV="${1:-/work/venvs/harden}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# CPU wheels of torch first (no CUDA libraries); plain PyPI if that index is refused.
"$VENV/bin/pip" install -q torch torchvision --index-url https://download.pytorch.org/whl/cpu \
  || "$VENV/bin/pip" install -q torch torchvision
"$VENV/bin/pip" install -q opacus dp-accounting mlxtend numpy scipy safetensors adversarial-robustness-toolbox
"$VENV/bin/pip" cache purge >/dev/null 2>&1 || true
echo "venv ready: $VENV"
