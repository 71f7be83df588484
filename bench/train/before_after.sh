#!/usr/bin/env bash
# Before/after of two `aisec` builds against torch: bench.py --quick with
# each binary in turn (BASE, NEW, BASE, NEW, ...) at each thread count,
# one RESULTS-style table per run under OUT_DIR (default /tmp/train-ab).
# Usage: bench/train/before_after.sh BASE_AISEC NEW_AISEC [ROUNDS] [THREADS...]
#   PY=/work/venvs/harden/bin/python bench/train/before_after.sh base/aisec new/aisec 2 1 2
# BENCH_ARGS is passed on to bench.py (for example --omp-passive on a
# loaded machine, where torch's spinning OpenMP workers collapse at 2 threads).
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=$1 NEW=$2 ROUNDS=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
THREADS=("${@:-1 2}")
PY=${PY:-$(scripts/ml-venv.sh)}
OUT=${OUT_DIR:-/tmp/train-ab}
mkdir -p "$OUT"
for t in ${THREADS[@]}; do
  for r in $(seq "$ROUNDS"); do
    for side in base new; do
      bin=$BASE; [ "$side" = new ] && bin=$NEW
      echo "== threads $t round $r $side: $(uptime)"
      AISEC_BIN=$bin "$PY" bench/train/bench.py --quick ${BENCH_ARGS:-} --threads "$t" --out "$OUT/t${t}_r${r}_${side}.md" \
        | grep -v '^wrote'
    done
  done
done
