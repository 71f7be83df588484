#!/bin/sh
# Runs mlflow_check.py in a venv with mlflow from PyPI (default
# scripts/assess/.venv, or $AISEC_ASSESS_VENV). Needs the registry once;
# it is not part of the offline test suite.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${AISEC_ASSESS_VENV:-$here/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import mlflow' 2>/dev/null || "$venv/bin/pip" install -q 'mlflow>=2.9'
exec "$venv/bin/python" "$here/mlflow_check.py" "$@"
