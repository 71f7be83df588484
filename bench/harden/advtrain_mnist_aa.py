#!/usr/bin/env python3
"""aisec's AutoAttack (standard: APGD-CE, APGD-T, FAB-T, Square at their
defaults) on the per-epoch models that advtrain_mnist.py saved, at L-inf eps
0.3 on the first --limit digits of its fixed 1,000-digit test subset.
Separate from the training runs so that AutoAttack (minutes of CPU per
model here) can be spent on the epochs that time allows, without holding
training up. Results are merged into advtrain_mnist_aa.json here, keyed by
side, epoch and limit, with wall and CPU seconds and the load average.

Usage: python bench/harden/advtrain_mnist_aa.py --side aisec --epochs 1,2,4 --limit 200 --aisec /path/aisec
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SPEC = os.path.join(HERE, "mnist_cnn.json")
OUT = os.path.join(HERE, "advtrain_mnist_aa.json")


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", choices=["aisec", "torch"], required=True)
    ap.add_argument("--epochs", required=True, help="comma-separated")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/advtrain_mnist")
    ap.add_argument("--aisec", required=True)
    a = ap.parse_args()
    work = os.path.join(a.work, a.side)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    for e in [int(x) for x in a.epochs.split(",")]:
        model = os.path.join(work, f"epoch{e}.safetensors")
        if not os.path.exists(model):
            sys.exit(f"{model} not there (yet)")
        t0, c0 = time.perf_counter(), child_cpu()
        r = subprocess.run(
            [a.aisec, "attack", "evasion", model, "--spec", SPEC,
             "--inputs", os.path.join(work, "test1k_x.npy"), "--labels", os.path.join(work, "test1k_y.npy"),
             "--limit", str(a.limit), "--attacks", "autoattack", "--eps", str(a.eps), "--seed", "0",
             "--format", "json", "--no-fail", "--no-progress"],
            capture_output=True, text=True, env=env, cwd=ROOT)
        if r.returncode != 0:
            sys.exit(f"aisec attack evasion failed: {r.stderr}")
        ev = json.loads(r.stdout)["data"]["evasion"]
        aa = ev.get("worst_case_robust_accuracy")
        if aa is None:
            aa = [x for x in ev["attacks"] if x["attack"] == "autoattack"][0]["robust_accuracy"]
        row = {"side": a.side, "epoch": e, "limit": a.limit, "eps": a.eps, "clean": ev["clean_accuracy"],
               "autoattack": aa, "wall_s": time.perf_counter() - t0, "cpu_s": child_cpu() - c0,
               "loadavg": os.getloadavg()}
        print(json.dumps(row), flush=True)
        rows = json.load(open(OUT)) if os.path.exists(OUT) else []
        rows = [x for x in rows if (x["side"], x["epoch"], x["limit"]) != (a.side, e, a.limit)] + [row]
        rows.sort(key=lambda x: (x["side"], x["limit"], x["epoch"]))
        with open(OUT, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
