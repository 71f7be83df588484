#!/usr/bin/env python3
"""Writes scikit-learn's whole 8x8 digits data set (1,797 images) as uint8
.npy files for aisec's tests and demo: crates/aisec-model/tests/fixtures/digits/.

  x.npy  uint8 [1797, 1, 8, 8], pixel values 0..16 (divide by 16 for [0, 1])
  y.npy  uint8 [1797], the digit

Usage: PY="$(scripts/ml-venv.sh)"; "$PY" scripts/models/export_digits.py
"""
import os

import numpy as np
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "crates", "aisec-model", "tests", "fixtures", "digits")
os.makedirs(OUT, exist_ok=True)
d = load_digits()
x = d.images.astype(np.uint8).reshape(-1, 1, 8, 8)
y = d.target.astype(np.uint8)
np.save(os.path.join(OUT, "x.npy"), x)
np.save(os.path.join(OUT, "y.npy"), y)
print(x.shape, y.shape, np.bincount(y))
