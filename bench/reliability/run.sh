#!/usr/bin/env bash
# Runs the aisec binary over the hostile inputs of gen.py under a memory cap
# and records exit code, wall time and peak RSS per input.
# Usage: bench/reliability/run.sh [path/to/aisec] [address-space cap, KiB]
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release/aisec}
cap_kib=${2:-4194304}   # 4 GiB of address space
work=$here/work
mkdir -p "$work"
python3 "$here/gen.py" "$work/in" > "$work/sizes.tsv"
run() { # name, then the command
  local name=$1; shift
  local t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/$name.rss" timeout 600 prlimit --as=$((cap_kib * 1024)) -- "$@" \
     > "$work/$name.out" 2> "$work/$name.err"
  local rc=$?
  local t1=$(date +%s.%N)
  printf '%s\t%s\t%.2f\t%s\n' "$name" "$rc" "$(echo "$t1 - $t0" | bc)" "$(tail -1 "$work/$name.rss")"
}
echo -e "input\texit\tseconds\tpeak_rss_kib"
for f in keras_objbomb.keras keras_padded.keras keras_plain.keras objbomb.safetensors nested42.zip overlap.zip; do
  run "$f" "$bin" scan --format json "$work/in/$f"
done
run "four_bombs_j4" "$bin" scan -j 4 --format json "$work/in/nested42.zip" "$work/in/overlap.zip" "$work/in/keras_objbomb.keras" "$work/in/objbomb.safetensors"
run "stdin_dev_zero" bash -c "$bin scan --format json - < /dev/zero"
