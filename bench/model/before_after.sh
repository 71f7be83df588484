#!/usr/bin/env bash
# Interleaved before/after throughput of two model_bench binaries on the
# same ONNX files (forward + input gradient, batch 128): the spec-built
# MNIST CNN, ResNet-18 and thin 16-channel ResNet shapes (specs/, exported
# by the NEW binary) and the torch-exported fixtures. Needs no Python.
# Usage: bench/model/before_after.sh BASE_BIN NEW_BIN [ROUNDS] > table.md
# ONLY=resnet18 (a model name, or several separated by |) times just those.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=$1 NEW=$2 ROUNDS=${3:-3}
THREADS=${RAYON_NUM_THREADS:-1}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$NEW" --spec bench/model/specs/mnist_cnn.json "$WORK/mnist_cnn.onnx"
"$NEW" --spec bench/model/specs/resnet18.json "$WORK/resnet18.onnx"
"$NEW" --spec bench/model/specs/resnet16_thin.json "$WORK/resnet16_thin.onnx"
FIX=crates/aisec-model/tests/fixtures
MODELS="$WORK/mnist_cnn.onnx:20 $WORK/resnet18.onnx:10 $WORK/resnet16_thin.onnx:20 $FIX/vgg_tiny.onnx:100 $FIX/mobilenetv2_tiny.onnx:100 $FIX/vit_tiny.onnx:50 $FIX/seq_lstm.onnx:200"
# "wall,cpu" images per second of one run.
ips() { RAYON_NUM_THREADS=$THREADS "$1" "$2" bench 128 "$3" | sed 's/images_per_s=\([0-9.]*\) cpu_images_per_s=\([0-9.]*\)/\1,\2/'; }
echo "| model | base CPU img/s (runs) | new CPU img/s (runs) | new / base CPU | base wall img/s | new wall img/s | new / base wall |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for spec in $MODELS; do
  f=${spec%%:*} it=${spec##*:}
  if [ -n "${ONLY:-}" ] && ! [[ "|$ONLY|" == *"|$(basename "$f" .onnx)|"* ]]; then
    continue
  fi
  b=() n=()
  for _ in $(seq "$ROUNDS"); do
    b+=("$(ips "$BASE" "$f" "$it")")
    n+=("$(ips "$NEW" "$f" "$it")")
  done
  python3 - "$(basename "$f" .onnx)" "${b[*]}" "${n[*]}" <<'PY'
import statistics, sys
name = sys.argv[1]
b = [tuple(map(float, r.split(","))) for r in sys.argv[2].split()]
n = [tuple(map(float, r.split(","))) for r in sys.argv[3].split()]
med = lambda rs, k: statistics.median(r[k] for r in rs)
f = lambda rs: ", ".join(f"{r[1]:.0f}" for r in rs)
bc, nc, bw, nw = med(b, 1), med(n, 1), med(b, 0), med(n, 0)
print(f"| {name} | {bc:.0f} ({f(b)}) | {nc:.0f} ({f(n)}) | {nc / bc:.2f} | {bw:.0f} | {nw:.0f} | {nw / bw:.2f} |")
PY
done
echo
echo "Threads: $THREADS; $ROUNDS rounds per model, base and new alternating; medians. CPU img/s is images per CPU-second of the process (steadier than wall clock on a loaded machine). \`uptime\` at the end: $(uptime)"
