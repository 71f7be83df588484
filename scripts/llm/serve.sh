#!/usr/bin/env bash
# Start a local OpenAI-compatible LLM server (llama-cpp-python + SmolLM2-135M-Instruct)
# on 127.0.0.1 and print its base URL (e.g. http://127.0.0.1:8077/v1) on stdout.
# Usage: scripts/llm/serve.sh [PORT]        (stop it with scripts/llm/stop.sh [PORT])
# Env: AISEC_LLM_THREADS (default 2), AISEC_LLM_MODEL (a .gguf to use instead),
#      AISEC_LLM_CTX (context size, default 4096).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${AISEC_LLM_VENV:-$HERE/.venv}"
PORT="${1:-8077}"
RUN="$HERE/.run"
mkdir -p "$RUN"
if ! "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
  echo "llama-cpp-python is not installed; running scripts/llm/setup.sh (about 10 minutes the first time)" >&2
  "$HERE/setup.sh" >&2
fi
MODEL="$("$HERE/model-path.sh")"
PIDFILE="$RUN/server-$PORT.pid"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "server already running on port $PORT (pid $(cat "$PIDFILE"))" >&2
else
  nohup "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias smollm2 \
    --host 127.0.0.1 --port "$PORT" --n_threads "${AISEC_LLM_THREADS:-2}" \
    --n_ctx "${AISEC_LLM_CTX:-4096}" >"$RUN/server-$PORT.log" 2>&1 &
  echo $! >"$PIDFILE"
fi
URL="http://127.0.0.1:$PORT/v1"
for _ in $(seq 1 120); do
  if "$VENV/bin/python" - "$URL" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/models", timeout=2).read()
PY
  then
    echo "$URL"
    exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "server exited; log:" >&2; tail -n 30 "$RUN/server-$PORT.log" >&2; rm -f "$PIDFILE"; exit 1
  fi
  sleep 0.5
done
echo "server did not become ready in 60 s; log: $RUN/server-$PORT.log" >&2
exit 1
