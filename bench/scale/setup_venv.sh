#!/usr/bin/env bash
# The Python side of the scale bench: a venv with the registry's `ray`
# package (the engine the launcher in deploy/ray/ drives). CPU only.
set -euo pipefail
VENV=${VENV:-/work/venvs/ray}
if [ ! -x "$VENV/bin/ray" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "ray==2.60.0"
fi
"$VENV/bin/python" -c 'import ray; print("ray", ray.__version__)'
