#!/usr/bin/env bash
# Cross-check of `aisec provenance` against OpenSSF model-signing 1.1.1.
#   bench/provenance/check.sh           run the comparison (writes results.json)
#   bench/provenance/check.sh --regen   also regenerate the signed test fixtures
# Makes a venv at $VENV (default /work/venvs/prov) from PyPI when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-/work/venvs/provenance}
if [ ! -x "$VENV/bin/model_signing" ]; then
  python3 -m venv "$VENV"
  # pyopenssl: model_signing 1.1.1 imports OpenSSL without declaring it.
  "$VENV/bin/pip" install -q model-signing==1.1.1 cryptography pyopenssl
fi
if [ "${1:-}" = "--regen" ]; then
  "$VENV/bin/python" bench/provenance/gen_fixtures.py crates/aisec-provenance/tests/fixtures "$(mktemp -d)"
  "$VENV/bin/python" bench/provenance/gen_cert_fixtures.py crates/aisec-provenance/tests/fixtures "$(mktemp -d)"
  "$VENV/bin/python" bench/provenance/keyless.py crates/aisec-provenance/tests/fixtures/keyless
fi
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo build -q -p aisec
uptime
"$VENV/bin/python" bench/provenance/check.py
"$VENV/bin/python" bench/provenance/keyless.py --check
