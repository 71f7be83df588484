#!/usr/bin/env bash
# Interleaved A/B of the guard's input-stage latency for two classifier files on one machine: the built-in model
# (A) and MODEL_FILE (B, loaded as `[input.injection] model`), PAIRS rounds of A then B, each the `latency` example
# over the typical prompts (bench/guard/work/test.jsonl, written by scripts/guard/train_classifier.py), 3 repeats.
# Prints the typical-prompt rows (all input scanners, classifier alone) of every run. Used for candidate M's latency
# condition in the session of stop 41 (bench/guard/LATENCY-notes.md); run it on an otherwise idle machine.
# Usage: bench/guard/latency_ab.sh MODEL_FILE [PAIRS]   (PAIRS default 3)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
MODEL="${1:?usage: bench/guard/latency_ab.sh MODEL_FILE [PAIRS]}"
PAIRS="${2:-3}"
[ -s bench/guard/work/test.jsonl ] || { echo "bench/guard/work/test.jsonl is missing: run scripts/guard/train_classifier.py" >&2; exit 2; }
cargo build -q --release -p aisec-guard --example latency
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | what | texts | mean chars | p50 us | p99 us | max us | mean us | CPU p50 us | CPU p99 us |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for i in $(seq 1 "$PAIRS"); do
  for side in A B; do
    if [ "$side" = A ]; then out="$(target/release/examples/latency bench/guard/work/test.jsonl 3)"
    else out="$(AISEC_GUARD_MODEL="$MODEL" target/release/examples/latency bench/guard/work/test.jsonl 3)"; fi
    echo "$out" | grep -E '^\| prompt: (rules|classifier alone)' | sed "s/^|/| $side$i |/"
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
