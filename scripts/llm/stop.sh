#!/usr/bin/env bash
# Stop the server started by scripts/llm/serve.sh [PORT] (only that process, by its pid file).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${1:-8077}"
PIDFILE="$HERE/.run/server-$PORT.pid"
if [ ! -f "$PIDFILE" ]; then echo "no server recorded for port $PORT" >&2; exit 0; fi
PID="$(cat "$PIDFILE")"
if kill -0 "$PID" 2>/dev/null; then
  kill "$PID"
  for _ in $(seq 1 20); do kill -0 "$PID" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$PID" 2>/dev/null && kill -9 "$PID"
fi
rm -f "$PIDFILE"
echo "stopped server on port $PORT" >&2
