#!/usr/bin/env bash
# First requests after the guard starts: the guard's own scan time (audit field scan_us) of each of the
# first N requests, in order, over R fresh starts. Shows the cost of the regex engines' lazily built
# automata on a worker thread's first request (Pipeline::warm_up fills them before the guard serves).
# The upstream is a dead port: every request is scanned, then answered 502; the scan time is unaffected.
# Usage: bench/guard/first_request.sh [N=8] [R=3]   (needs curl; builds the release binary)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
N="${1:-8}"
R="${2:-3}"
cargo build -q --release -p aisec
PORT=18181
BODY='{"model":"m","messages":[{"role":"user","content":"What is the tallest waterfall in the world? Tell me a bit about its history."}]}'
for r in $(seq "$R"); do
  LOG="$(mktemp)"
  target/release/aisec guard --upstream http://127.0.0.1:9 --listen "127.0.0.1:$PORT" 2>"$LOG" &
  PID=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
  for _ in $(seq "$N"); do
    curl -s -o /dev/null -X POST "http://127.0.0.1:$PORT/v1/chat/completions" -H 'content-type: application/json' -d "$BODY"
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true
  echo "start $r: scan_us $(grep -o '"scan_us":[0-9]*' "$LOG" | cut -d: -f2 | tr '\n' ' ')"
  rm -f "$LOG"
done
