#!/usr/bin/env python3
"""Cross-check of `aisec harden adv` (PGD-AT) against a PyTorch PGD-AT
training of the same model from the same initial weights on the same data,
with the same budget and schedule; optionally ART's
AdversarialTrainerMadryPGD instead of the plain torch loop.

Both trained models are then evaluated by the same attack: aisec's
AutoAttack (`aisec attack evasion --attacks autoattack`) on the same test
digits, so the comparison is of the training, not of two attack
implementations. Writes advtrain_results.json / advtrain_results.md here.

Model: docs/specs/digits_cnn.json (conv 8x3x3 - relu - maxpool 2 - dense 32 -
relu - dense 10), whose layer i is torch.nn.Sequential's module i (same
weight layouts), initialised once by torch (seeded) and written as
safetensors for both sides.

Data: the 8x8 digits bundled with aisec (crates/aisec/assets/digits.*.npy,
scikit-learn's copy of the UCI optical digits, CC BY 4.0), values / 16;
the first 1400 digits train, the last 397 test.

Usage (repository root, debug or release aisec binary):
  bench/harden/setup_venv.sh /work/venvs/harden
  cargo build -p aisec
  /work/venvs/harden/bin/python bench/harden/advtrain.py --epochs 10 --threads 1
  ... --no-shuffle      both sides in data order
  ... --torch-order     aisec replays the torch loop's randperm orders (--order FILE)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))


def load_digits():
    x = np.load(os.path.join(ROOT, "crates/aisec/assets/digits.x.npy")).astype(np.float32) / 16.0
    y = np.load(os.path.join(ROOT, "crates/aisec/assets/digits.y.npy")).astype(np.int64)
    x = x.reshape(-1, 1, 8, 8)
    return (x[:1400], y[:1400]), (x[-397:], y[-397:])


def net():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 4 * 4, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    )


def save_aisec(model, path):
    sd = {f"layer{k.split('.')[0]}.{k.split('.')[1]}": v.detach().numpy().copy()
          for k, v in model.state_dict().items()}
    save_file(sd, path)


def pgd(model, x, y, eps, alpha, steps):
    """Madry et al.'s PGD: uniform random start, sign steps, last iterate."""
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xa), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xa)
        xa = xa.detach() + alpha * g.sign()
        xa = torch.min(torch.max(xa, x - eps), x + eps).clamp(0, 1)
    return xa.detach()


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def torch_orders(n, a):
    """The torch loop's per-epoch example orders: `torch.randperm` from one
    generator seeded with --seed (the generator draws nothing else, so
    drawing all epochs up front gives the same permutations as drawing one
    per epoch), or data order with --no-shuffle."""
    if a.no_shuffle:
        return torch.arange(n).repeat(a.epochs, 1)
    g = torch.Generator().manual_seed(a.seed)
    return torch.stack([torch.randperm(n, generator=g) for _ in range(a.epochs)])


def train_torch(model, train, test, a, curve):
    x, y = torch.from_numpy(train[0]), torch.from_numpy(train[1])
    xt, yt = torch.from_numpy(test[0]), torch.from_numpy(test[1])
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    alpha = 2.5 * a.eps / a.steps
    seconds = 0.0
    orders = torch_orders(len(x), a)
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        perm = orders[epoch]
        for s in range(0, len(x), a.batch_size):
            idx = perm[s:s + a.batch_size]
            xb, yb = x[idx], y[idx]
            xa = pgd(model, xb, yb, a.eps, alpha, a.steps)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xa), yb).backward()
            opt.step()
        seconds += time.perf_counter() - t0
        rob = accuracy(model, pgd(model, xt, yt, a.eps, 2.5 * a.eps / 10, 10), yt)
        curve.append({"epoch": epoch + 1, "clean": accuracy(model, xt, yt), "pgd10": rob})
        print(f"torch epoch {epoch + 1}: clean {curve[-1]['clean']:.4f} pgd10 {rob:.4f}", flush=True)
    return seconds


def train_art(model, train, test, a, curve):
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=a.lr),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
    )
    t0 = time.perf_counter()
    trainer = AdversarialTrainerMadryPGD(
        clf, nb_epochs=a.epochs, batch_size=a.batch_size, eps=a.eps,
        eps_step=2.5 * a.eps / a.steps, max_iter=a.steps, num_random_init=1,
    )
    trainer.fit(train[0], train[1])
    seconds = time.perf_counter() - t0
    xt, yt = torch.from_numpy(test[0]), torch.from_numpy(test[1])
    rob = accuracy(model, pgd(model, xt, yt, a.eps, 2.5 * a.eps / 10, 10), yt)
    curve.append({"epoch": a.epochs, "clean": accuracy(model, xt, yt), "pgd10": rob})
    return seconds


def reused_torch(a):
    """--torch-order --reuse-torch: the torch side of a --torch-order run is,
    by construction, the torch side of the own-shuffle run of the same seed
    (same initial weights, the same randperm generator, the same global
    generator for the random starts), so it is taken from that run's results
    file instead of being trained again; the settings must match."""
    f = os.path.join(HERE, f"advtrain_results_torch_e{a.epochs}_t{a.threads}_s{a.seed}.json")
    with open(f) as fh:
        prev = json.load(fh)
    st = prev["setup"]
    for k, v in (("eps", a.eps), ("steps", a.steps), ("batch_size", a.batch_size), ("lr", a.lr),
                 ("epochs", a.epochs), ("threads", a.threads), ("trainer", "torch"), ("shuffle", True)):
        if st.get(k) != v:
            sys.exit(f"--reuse-torch: {f} has {k}={st.get(k)}, this run {v}")
    t = dict(prev["torch"])
    t["reused_from"] = os.path.basename(f)
    print(f"torch side reused from {f}: clean {t['clean']:.4f} autoattack {t['autoattack']:.4f}", flush=True)
    return t


def aisec_bin(given):
    if given:
        return os.path.abspath(given)
    for p in ("target/release/aisec", "target/debug/aisec"):
        if os.path.exists(os.path.join(ROOT, p)):
            return os.path.join(ROOT, p)
    sys.exit("build aisec first (cargo build -p aisec)")


def autoattack(binary, model, spec, test_xy, a, env):
    out = subprocess.run(
        [binary, "attack", "evasion", model, "--spec", spec, "--inputs", test_xy[0],
         "--labels", test_xy[1],
         "--attacks", "autoattack", "--eps", str(a.eps), "--seed", "0",
         "--format", "json", "--no-fail", "--no-progress"],
        capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"aisec attack evasion failed: {out.stderr}")
    ev = json.loads(out.stdout)["data"]["evasion"]
    aa = ev.get("worst_case_robust_accuracy")
    if aa is None:
        aa = [x for x in ev["attacks"] if x["attack"] == "autoattack"][0]["robust_accuracy"]
    return ev["clean_accuracy"], aa


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trainer", choices=["torch", "art"], default="torch")
    ap.add_argument("--aisec", help="aisec binary [default: target/release, else target/debug]")
    ap.add_argument("--no-shuffle", action="store_true",
                    help="both sides take the examples in data order every epoch (one shared order)")
    ap.add_argument("--torch-order", action="store_true",
                    help="aisec trains in the torch loop's torch.randperm orders (aisec harden adv --order)")
    ap.add_argument("--reuse-torch", action="store_true",
                    help="with --torch-order: take the torch side from the own-shuffle results file of "
                         "the same seed (identical by construction) instead of training it again")
    a = ap.parse_args()
    if a.reuse_torch and not a.torch_order:
        sys.exit("--reuse-torch needs --torch-order")
    if (a.no_shuffle or a.torch_order) and a.trainer == "art":
        sys.exit("--no-shuffle / --torch-order: ART's trainer shuffles internally")
    if a.no_shuffle and a.torch_order:
        sys.exit("--no-shuffle and --torch-order exclude each other")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train, test = load_digits()
    binary = aisec_bin(a.aisec)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    with tempfile.TemporaryDirectory() as d:
        spec = os.path.join(ROOT, "docs/specs/digits_cnn.json")
        init = os.path.join(d, "init.safetensors")
        m0 = net()
        save_aisec(m0, init)
        np.savez(os.path.join(d, "train.npz"), x=train[0], y=train[1])
        test_npz = os.path.join(d, "test.npz")
        np.savez(test_npz, x=test[0], y=test[1])
        test_xy = (os.path.join(d, "test_x.npy"), os.path.join(d, "test_y.npy"))
        np.save(test_xy[0], test[0])
        np.save(test_xy[1], test[1])

        # --torch-order: aisec trains in the torch loop's own permutations
        order_file = None
        if a.torch_order:
            order_file = os.path.join(d, "order.npy")
            np.save(order_file, torch_orders(len(train[1]), a).numpy().astype(np.int64))

        # aisec
        out = os.path.join(d, "aisec.safetensors")
        t0 = time.perf_counter()
        r = subprocess.run(
            [binary, "harden", "adv", os.path.join(d, "train.npz"), "--model", init, "--spec", spec,
             "--test", test_npz, "--eps", str(a.eps), "--steps", str(a.steps),
             "--epochs", str(a.epochs), "--batch-size", str(a.batch_size), "--optimizer", "adam",
             "--lr", str(a.lr), "--seed", str(a.seed), "--eval-steps", "10",
             "--eval-examples", str(len(test[1])), "--no-autoattack", "--out", out,
             "--format", "json", "--no-progress", "--quiet"]
            + (["--no-shuffle"] if a.no_shuffle else [])
            + (["--order", order_file] if order_file else []),
            capture_output=True, text=True, env=env, cwd=ROOT)
        aisec_wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"aisec harden adv failed: {r.stderr}")
        rep = json.loads(r.stdout)["data"]["harden"]
        aisec_train_s = sum(e["seconds"] for e in rep["history"]["epochs"])
        aisec_curve = [{"epoch": e["epoch"], "clean": e["val_accuracy"], "pgd10": e["val_robust_accuracy"]}
                       for e in rep["history"]["epochs"]]

        aa_aisec = autoattack(binary, out, spec, test_xy, a, env)
        reused = reused_torch(a) if a.reuse_torch else None
        if reused is not None:
            torch_train_s, torch_curve = reused["train_seconds"], reused["curve"]
            aa_torch = (reused["clean"], reused["autoattack"])
        else:
            # torch / ART from the same initial weights
            m1 = net()
            m1.load_state_dict(m0.state_dict())
            torch_curve = []
            if a.trainer == "art":
                torch_train_s = train_art(m1, train, test, a, torch_curve)
            else:
                torch_train_s = train_torch(m1, train, test, a, torch_curve)
            tout = os.path.join(d, "torch.safetensors")
            save_aisec(m1, tout)
            aa_torch = autoattack(binary, tout, spec, test_xy, a, env)

    load = os.getloadavg()
    res = {
        "setup": {"epochs": a.epochs, "eps": a.eps, "norm": "linf", "steps": a.steps,
                  "step_size": 2.5 * a.eps / a.steps, "batch_size": a.batch_size, "optimizer": "adam",
                  "lr": a.lr, "threads": a.threads, "trainer": a.trainer,
                  "shuffle": not a.no_shuffle,
                  "order": "data" if a.no_shuffle else ("torch, shared" if a.torch_order else "own"),
                  "train_examples": len(train[1]), "test_examples": len(test[1]),
                  "aisec_binary": os.path.relpath(binary, ROOT),
                  "torch": torch.__version__, "loadavg_after": load},
        "aisec": {"train_seconds": aisec_train_s, "wall_seconds": aisec_wall,
                  "clean": aa_aisec[0], "autoattack": aa_aisec[1], "curve": aisec_curve},
        a.trainer: {"train_seconds": torch_train_s, "clean": aa_torch[0],
                    "autoattack": aa_torch[1], "curve": torch_curve,
                    **({"reused_from": reused["reused_from"]} if reused else {})},
        "autoattack_gap_points": 100 * abs(aa_aisec[1] - aa_torch[1]),
    }
    tag = f"{a.trainer}_e{a.epochs}_t{a.threads}_s{a.seed}" + ("_noshuffle" if a.no_shuffle else "") + ("_torchorder" if a.torch_order else "")
    with open(os.path.join(HERE, f"advtrain_results_{tag}.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
