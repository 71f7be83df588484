#!/usr/bin/env bash
# aisec probe vs garak, same targets, same concurrency budget.
#  1. Throughput where the server is not the bottleneck: both tools against a
#     scripted Rust OpenAI-compatible server (crates/aisec-probe/examples/fast_openai_server.rs),
#     with 0 ms and 20 ms simulated latency, 8 requests in flight.
#  2. Hit rates on a real local model (SmolLM2-135M-Instruct via llama-cpp-python,
#     scripts/llm/serve.sh), comparable families: garak promptinject + encoding.InjectBase64
#     vs aisec injection + encoding.
# Writes bench/probe/RESULTS.md. Needs: scripts/llm/setup.sh done (or it runs it), network to PyPI for garak.
# garak is installed with --no-deps plus the few packages its OpenAI-compatible generator and these
# probes/detectors import (its full dependency set pulls torch/CUDA, gigabytes).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="$ROOT/bench/work/probe"
mkdir -p "$WORK"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
GV="$ROOT/bench/work/garak-venv"
GARAK_VERSION="${GARAK_VERSION:-0.17.1}"
CAP="${CAP:-200}"           # garak prompts per probe on the fast server
REPEATS="${REPEATS:-40}"    # aisec repetitions on the fast server
LLM_CAP="${LLM_CAP:-20}"    # garak prompts per probe on the real model
J=8

if [ ! -x "$GV/bin/python" ] || ! "$GV/bin/python" -c 'import garak' 2>/dev/null; then
  python3 -m venv "$GV"
  "$GV/bin/pip" install -q --upgrade pip
  "$GV/bin/pip" install -q --no-deps "garak==$GARAK_VERSION"
  "$GV/bin/pip" install -q 'openai>=2,<3' httpx requests aiohttp tqdm colorama backoff mikeshardmind-base2048 \
    zalgolib ecoji jsonpath-ng xdg-base-dirs markdown stdlibs cmd2==2.4.3 ftfy lorem==0.1.1 pyyaml jinja2 numpy \
    langdetect==1.0.9 py-markdown-table avidtools==0.1.2 nltk jsonschema
fi
GVER="$("$GV/bin/python" -c 'import importlib.metadata as m; print(m.version("garak"))')"

(cd "$ROOT" && cargo build --release -p aisec-probe --example fast_openai_server >&2)
FAST="$CARGO_TARGET_DIR/release/examples/fast_openai_server"
# AISEC_BIN may name an `aisec` binary; its `probe` subcommand is then used. By default the
# standalone build of the same command module (crates/aisec-probe/examples/probe_cli.rs) is.
if [ -n "${AISEC_BIN:-}" ]; then AISEC=("$AISEC_BIN" probe); else
  (cd "$ROOT" && cargo build --release -p aisec-probe --example probe_cli >&2)
  AISEC=("$CARGO_TARGET_DIR/release/examples/probe_cli"); fi

garak_run() { # name uri model cap probes...
  local name="$1" uri="$2" model="$3" cap="$4"; shift 4
  cat >"$WORK/$name.yaml" <<YAML
run:
  generations: 1
  soft_probe_prompt_cap: $cap
plugins:
  generators:
    openai:
      OpenAICompatible:
        uri: $uri
        api_key: not-used
        model: $model
        max_tokens: 96
        temperature: 0.0
        suppressed_params: ["n", "frequency_penalty", "presence_penalty", "stop"]
YAML
  rm -f "$WORK/garak/garak/garak_runs/$name".*
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$WORK" && XDG_DATA_HOME="$WORK/garak" XDG_CONFIG_HOME="$WORK/garak-cfg" XDG_CACHE_HOME="$WORK/garak-cache" \
    OPENAICOMPATIBLE_API_KEY=x "$GV/bin/python" -m garak --config "$name.yaml" --target_type openai.OpenAICompatible \
    --target_name "$model" --probes "$(IFS=,; echo "$*")" --parallel_attempts "$J" --report_prefix "$name" \
    >"$WORK/$name.log" 2>&1)
  t1=$(date +%s.%N)
  echo "$t0 $t1" >"$WORK/$name.time"
}

aisec_run() { # name url jobs repeats families
  local name="$1" url="$2" jobs="$3" reps="$4" fams="$5" t0 t1
  rm -f "$WORK/$name.journal"
  t0=$(date +%s.%N)
  "${AISEC[@]}" --url "$url" --model m --probes "$fams" -j "$jobs" --repeats "$reps" --seed 1 --timeout 300 \
    --max-tokens 96 --no-fail --format json --output "$WORK/$name.json" --transcripts "$WORK/$name.transcripts.jsonl" \
    2>"$WORK/$name.log" || true
  t1=$(date +%s.%N)
  echo "$t0 $t1" >"$WORK/$name.time"
}

# 1. throughput on the scripted server
for delay in 0 20; do
  "$FAST" --port 0 --delay-ms "$delay" >"$WORK/fast.url" &
  FPID=$!
  sleep 1
  URL="$(head -n1 "$WORK/fast.url")"
  garak_run "garak-fast-$delay" "$URL" fast "$CAP" encoding.InjectBase64 promptinject.HijackHateHumans
  aisec_run "aisec-fast-$delay" "$URL" "$J" "$REPEATS" injection,indirect,encoding
  kill "$FPID"; wait "$FPID" 2>/dev/null || true
done

# 2. hit rates on the real model
LLM_PORT=8079
trap '"$ROOT/scripts/llm/stop.sh" "$LLM_PORT" || true' EXIT
LURL="$("$ROOT/scripts/llm/serve.sh" "$LLM_PORT")"
garak_run garak-llm "$LURL" smollm2 "$LLM_CAP" encoding.InjectBase64 promptinject.HijackHateHumans
aisec_run aisec-llm "$LURL" 2 1 injection,encoding
"$ROOT/scripts/llm/stop.sh" "$LLM_PORT" || true

"$GV/bin/python" "$HERE/summarise.py" "$WORK" "$GVER" >"$HERE/RESULTS.md"
cat "$HERE/RESULTS.md"
