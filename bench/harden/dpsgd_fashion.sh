#!/bin/sh
# DP-SGD at full size: aisec vs Opacus on the whole Fashion-MNIST (60,000
# train / 10,000 test; Xiao, Rasul & Vollgraf 2017, MIT licence), the
# Opacus MNIST example's CNN and hyper-parameters (sigma 1.0, clip 1.0,
# SGD lr 0.1, Poisson rate 0.004 = expected batch 240, delta 1e-5).
# The 60k MNIST of the published anchors is not reachable here; Debian's
# dataset-fashion-mnist package ships Fashion-MNIST's IDX files.
#
# Usage (repository root, as root for apt-get):
#   bench/harden/dpsgd_fashion.sh [EPOCHS] [SEEDS] [THREADS]
# Needs the venv of bench/harden/setup_venv.sh at $VENV (default /work/venvs/harden).
# Writes bench/harden/dpsgd_fashion_results.{json,md}.
set -eu
EPOCHS=${1:-3}
SEEDS=${2:-1}
THREADS=${3:-1}
VENV=${VENV:-/work/venvs/harden}

if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
    apt-get update
    apt-get install -y dataset-fashion-mnist
fi
# Where the package put the IDX files (/usr/share/datasets/fashion-mnist on Debian 13).
IDX=$(dirname "$(dpkg -L dataset-fashion-mnist | grep 'train-images-idx3-ubyte.gz$' | head -n 1)")
echo "Fashion-MNIST IDX files: $IDX"

cargo build --release -p aisec-harden --example dpsgd_mnist
uptime
"$VENV/bin/python" bench/harden/dpsgd.py --dataset fashion --idx-dir "$IDX" \
    --epochs "$EPOCHS" --seeds "$SEEDS" --threads "$THREADS" \
    --q 0.004 --sigma 1.0 --clip 1.0 --lr 0.1 --delta 1e-5 --out dpsgd_fashion_results
uptime
