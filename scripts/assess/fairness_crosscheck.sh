#!/bin/sh
# Runs fairness_crosscheck.py in a venv with Fairlearn from PyPI (default
# scripts/assess/.venv, or $AISEC_ASSESS_VENV).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${AISEC_ASSESS_VENV:-$here/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import fairlearn' 2>/dev/null || "$venv/bin/pip" install -q 'fairlearn>=0.10'
exec "$venv/bin/python" "$here/fairness_crosscheck.py" "$@"
