#!/usr/bin/env python3
"""Order ablation for the PGD-AT gap (ADVTRAIN.md): aisec `harden adv`
trained twice per seed from the same torch-initialised weights, once in
its own seeded shuffle and once in the torch loop's `torch.randperm`
orders (`--order`), everything else equal (the random starts of aisec's
inner attack are drawn from (seed, epoch, batch), not from the order).
If aisec's own shuffle were biased towards more robust models, the paired
difference would be positive on average. Cheap proxy for AutoAttack:
aisec's PGD-10 accuracy on the 397 test digits after the last epoch (the
`val_robust_accuracy` of the run's history), plus clean accuracy.

Usage: python bench/harden/order_ablation.py --seeds 5-24 [--aisec BIN]
Appends one JSON line per run to bench/harden/order_ablation.jsonl.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import advtrain  # noqa: E402  (same data, model, initialisation and orders)

HERE = advtrain.HERE
ROOT = advtrain.ROOT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="5-24")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--aisec")
    a = ap.parse_args()
    lo, hi = (int(v) for v in a.seeds.split("-"))
    binary = advtrain.aisec_bin(a.aisec)
    torch.set_num_threads(1)
    train, test = advtrain.load_digits()
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    spec = os.path.join(ROOT, "docs/specs/digits_cnn.json")
    cfg = argparse.Namespace(epochs=a.epochs, eps=0.1, steps=10, batch_size=64, lr=1e-3,
                             no_shuffle=False)
    for seed in range(lo, hi + 1):
        cfg.seed = seed
        torch.manual_seed(seed)  # as advtrain.py: the initial weights come first
        with tempfile.TemporaryDirectory() as d:
            init = os.path.join(d, "init.safetensors")
            advtrain.save_aisec(advtrain.net(), init)
            np.savez(os.path.join(d, "train.npz"), x=train[0], y=train[1])
            np.savez(os.path.join(d, "test.npz"), x=test[0], y=test[1])
            order = os.path.join(d, "order.npy")
            np.save(order, advtrain.torch_orders(len(train[1]), cfg).numpy().astype(np.int64))
            for arm, extra in (("own", []), ("torch_order", ["--order", order])):
                r = subprocess.run(
                    [binary, "harden", "adv", os.path.join(d, "train.npz"), "--model", init, "--spec", spec,
                     "--test", os.path.join(d, "test.npz"), "--eps", "0.1", "--steps", "10",
                     "--epochs", str(a.epochs), "--batch-size", "64", "--optimizer", "adam", "--lr", "1e-3",
                     "--seed", str(seed), "--eval-steps", "10", "--eval-examples", str(len(test[1])),
                     "--no-autoattack", "--out", os.path.join(d, f"{arm}.safetensors"),
                     "--format", "json", "--no-progress", "--quiet"] + extra,
                    capture_output=True, text=True, env=env, cwd=ROOT)
                if r.returncode != 0:
                    sys.exit(f"aisec harden adv failed: {r.stderr}")
                last = json.loads(r.stdout)["data"]["harden"]["history"]["epochs"][-1]
                row = {"seed": seed, "arm": arm, "clean": last["val_accuracy"],
                       "pgd10": last["val_robust_accuracy"], "loadavg": os.getloadavg(),
                       "aisec_binary": binary}
                print(json.dumps(row), flush=True)
                with open(os.path.join(HERE, "order_ablation.jsonl"), "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
