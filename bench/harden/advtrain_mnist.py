#!/usr/bin/env python3
"""The Madry MNIST curve at CPU size (issue 14): PGD-AT (Madry et al. 2018,
"Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR) on the
full 60,000 MNIST training digits at L-inf eps 0.3, by `aisec harden adv` and
by a plain PyTorch PGD-AT loop from the same initial weights, with the same
data, batches size, inner attack and optimiser. After every epoch each
model is written out and measured on a fixed 1,000-digit subset of the
MNIST test set: clean accuracy and PGD-10 accuracy every epoch, and aisec's
AutoAttack (`aisec attack evasion --attacks autoattack`, standard settings)
at the epochs given by --aa-epochs (AutoAttack on 1,000 digits costs
minutes of CPU on this model, more than an epoch of training).

Model: bench/harden/mnist_cnn.json, the CNN of Madry et al.'s MNIST
challenge (5x5 conv 32, pool, 5x5 conv 64, pool, dense 1024, dense 10) at a
quarter of its width (8, 16, 256): their capacity study (Fig. 4) found
capacity to matter at eps 0.3, but the full width does not fit this CPU
budget. Layer i of the spec is module i of the torch nn.Sequential.

Data: the full MNIST from bench/data/mnist.sh (gzip IDX), values / 255; the
test subset is 1,000 digits drawn once by numpy's default_rng(0).

aisec runs one `harden adv` call per epoch, each resuming the previous
epoch's checkpoint (`--resume`, which the crate's tests show gives the
uninterrupted run's weights), so every epoch's model can be measured.

Usage (repository root):
  python bench/harden/advtrain_mnist.py --side aisec --epochs 8 --aisec /path/aisec
  python bench/harden/advtrain_mnist.py --side torch --epochs 3 --aisec /path/aisec
Each side writes advtrain_mnist_{side}.json here after every epoch.
"""
import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "mnist_cnn.json")


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def prepare(mnist, work, train_limit):
    """train.npz (x float32 [n,1,28,28] in [0,1], y int64), test1k.npz and
    test1k_{x,y}.npy (the fixed 1,000-digit test subset)."""
    x = idx(os.path.join(mnist, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = idx(os.path.join(mnist, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    if train_limit:
        x, y = x[:train_limit], y[:train_limit]
    xt = idx(os.path.join(mnist, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    yt = idx(os.path.join(mnist, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    sub = np.sort(np.random.default_rng(0).permutation(len(yt))[:1000])
    xt, yt = xt[sub].reshape(-1, 1, 28, 28), yt[sub]
    np.savez(os.path.join(work, "train.npz"), x=x.reshape(-1, 1, 28, 28), y=y)
    np.savez(os.path.join(work, "test1k.npz"), x=xt, y=yt)
    np.save(os.path.join(work, "test1k_x.npy"), xt)
    np.save(os.path.join(work, "test1k_y.npy"), yt)
    return (x.reshape(-1, 1, 28, 28), y), (xt, yt)


def net(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 10))


def save_aisec(model, path):
    from safetensors.numpy import save_file
    sd = {f"layer{k.split('.')[0]}.{k.split('.')[1]}": v.detach().numpy().copy()
          for k, v in model.state_dict().items()}
    save_file(sd, path)


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def autoattack(binary, model, work, eps, env):
    t0, c0 = time.perf_counter(), child_cpu()
    out = subprocess.run(
        [binary, "attack", "evasion", model, "--spec", SPEC,
         "--inputs", os.path.join(work, "test1k_x.npy"), "--labels", os.path.join(work, "test1k_y.npy"),
         "--attacks", "autoattack", "--eps", str(eps), "--seed", "0",
         "--format", "json", "--no-fail", "--no-progress"],
        capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"aisec attack evasion failed: {out.stderr}")
    ev = json.loads(out.stdout)["data"]["evasion"]
    aa = ev.get("worst_case_robust_accuracy")
    if aa is None:
        aa = [x for x in ev["attacks"] if x["attack"] == "autoattack"][0]["robust_accuracy"]
    return {"clean": ev["clean_accuracy"], "autoattack": aa,
            "aa_wall_s": time.perf_counter() - t0, "aa_cpu_s": child_cpu() - c0}


def write(a, res):
    res["setup"]["loadavg_now"] = os.getloadavg()
    with open(os.path.join(HERE, f"advtrain_mnist_{a.side}{a.tag}.json"), "w") as f:
        json.dump(res, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", choices=["aisec", "torch"], required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--step-size", type=float, help="default 2.5 * eps / steps")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-limit", type=int, default=0, help="first N training digits only (timing probes)")
    ap.add_argument("--aa-epochs", default="", help="comma-separated epochs measured by AutoAttack")
    ap.add_argument("--mnist", default="/work/data/mnist")
    ap.add_argument("--work", default="/tmp/advtrain_mnist")
    ap.add_argument("--tag", default="", help="suffix of the results file")
    ap.add_argument("--aisec", required=True)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    alpha = a.step_size if a.step_size else 2.5 * a.eps / a.steps
    aa_epochs = {int(e) for e in a.aa_epochs.split(",") if e}
    work = os.path.join(a.work, a.side + a.tag)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    (x, y), (xt, yt) = prepare(a.mnist, work, a.train_limit)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    binary = os.path.abspath(a.aisec)

    m0 = net(torch)
    init = os.path.join(work, "init.safetensors")
    save_aisec(m0, init)
    res = {"setup": {"side": a.side, "epochs": a.epochs, "eps": a.eps, "norm": "linf", "steps": a.steps,
                     "step_size": alpha, "random_start": "uniform", "batch_size": a.batch_size,
                     "optimizer": "adam", "lr": a.lr, "seed": a.seed, "threads": a.threads,
                     "train_examples": len(y), "test_subset": 1000, "model": "bench/harden/mnist_cnn.json",
                     "torch": torch.__version__, "aisec_binary": binary,
                     "loadavg_start": os.getloadavg()},
           "epochs": []}

    if a.side == "aisec":
        ck = os.path.join(work, "ck")
        for k in range(1, a.epochs + 1):
            out = os.path.join(work, f"epoch{k}.safetensors")
            cmd = [binary, "harden", "adv", os.path.join(work, "train.npz"), "--model", init, "--spec", SPEC,
                   "--test", os.path.join(work, "test1k.npz"), "--eps", str(a.eps), "--steps", str(a.steps),
                   "--step-size", str(alpha), "--epochs", str(k), "--batch-size", str(a.batch_size),
                   "--optimizer", "adam", "--lr", str(a.lr), "--seed", str(a.seed), "--eval-steps", "10",
                   "--eval-examples", "1000", "--no-autoattack", "--checkpoint-dir", ck,
                   "--out", out, "--format", "json", "--no-progress", "--quiet", "--no-fail"]
            cmd += ["--resume", ck] if k > 1 else []
            t0, c0 = time.perf_counter(), child_cpu()
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            wall, cpu = time.perf_counter() - t0, child_cpu() - c0
            if r.returncode != 0:
                sys.exit(f"aisec harden adv failed: {r.stderr}")
            ep = json.loads(r.stdout)["data"]["harden"]["history"]["epochs"][-1]
            row = {"epoch": k, "train_seconds": ep["seconds"], "call_wall_s": wall, "call_cpu_s": cpu,
                   "clean": ep["val_accuracy"], "pgd10": ep["val_robust_accuracy"],
                   "loadavg": os.getloadavg()}
            if k in aa_epochs:
                row.update(autoattack(binary, out, work, a.eps, env))
            res["epochs"].append(row)
            print(json.dumps(row), flush=True)
            write(a, res)
        return

    # torch PGD-AT loop: the same inner attack as `harden adv` (uniform random
    # start in the eps cube clipped to [0, 1], sign steps of alpha, projection
    # onto the cube then the box, last iterate), whole batch adversarial,
    # mean cross-entropy, Adam, a fresh randperm every epoch.
    F = torch.nn.functional

    def pgd(model, xb, yb, eps, step, steps):
        xa = (xb + torch.empty_like(xb).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(steps):
            xa.requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(xa), yb, reduction="sum"), xa)
            xa = xa.detach() + step * g.sign()
            xa = torch.min(torch.max(xa, xb - eps), xb + eps).clamp(0, 1)
        return xa.detach()

    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    XT, YT = torch.from_numpy(xt), torch.from_numpy(yt)
    opt = torch.optim.Adam(m0.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(a.seed)
    for k in range(1, a.epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(len(Y), generator=g)
        for s in range(0, len(Y), a.batch_size):
            i = perm[s:s + a.batch_size]
            xa = pgd(m0, X[i], Y[i], a.eps, alpha, a.steps)
            opt.zero_grad()
            F.cross_entropy(m0(xa), Y[i]).backward()
            opt.step()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        with torch.no_grad():
            clean = (m0(XT).argmax(1) == YT).float().mean().item()
        xa = pgd(m0, XT, YT, a.eps, 2.5 * a.eps / 10, 10)
        with torch.no_grad():
            rob = (m0(xa).argmax(1) == YT).float().mean().item()
        out = os.path.join(work, f"epoch{k}.safetensors")
        save_aisec(m0, out)
        row = {"epoch": k, "train_seconds": wall, "train_cpu_s": cpu, "clean": clean, "pgd10": rob,
               "loadavg": os.getloadavg()}
        if k in aa_epochs:
            row.update(autoattack(binary, out, work, a.eps, env))
        res["epochs"].append(row)
        print(json.dumps(row), flush=True)
        write(a, res)


if __name__ == "__main__":
    main()
