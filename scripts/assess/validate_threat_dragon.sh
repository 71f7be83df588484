#!/bin/sh
# Validates Threat Dragon exports with the `jsonschema` package from PyPI,
# in a venv of its own (default /work/venvs/assess, or $AISEC_ASSESS_VENV).
# Usage: scripts/assess/validate_threat_dragon.sh FILE.json ...
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${AISEC_ASSESS_VENV:-$here/.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'jsonschema>=4,<5'
fi
exec "$venv/bin/python" "$here/validate_threat_dragon.py" "$@"
