#!/usr/bin/env python3
"""Mean, sd and standard error of the aisec - torch AutoAttack gap per arm
(own shuffles, one shared data order, torch's orders replayed by aisec)
(and its 95 % confidence interval) over the advtrain_results_torch_e{E}_t{T}_s{seed}[_noshuffle|_torchorder].json
files that advtrain.py wrote here. Prints a Markdown table.

Usage: python3 bench/harden/advtrain_summary.py [--epochs 15] [--threads 1]
"""
import argparse
import glob
import json
import math
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def t975(df):
    """Two-sided 95 % Student-t quantile (scipy when importable, else the normal 1.96)."""
    try:
        from scipy.stats import t
        return float(t.ppf(0.975, df))
    except ImportError:
        return 1.96


def stats(xs):
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else float("nan")
    return n, m, sd, sd / math.sqrt(n) if n > 1 else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    arms = {"own": "", "noshuffle": "_noshuffle", "torchorder": "_torchorder"}
    rows = {}
    for arm, suffix in arms.items():
        pat = re.compile(rf"advtrain_results_torch_e{a.epochs}_t{a.threads}_s(\d+){suffix}\.json$")
        for f in sorted(glob.glob(os.path.join(HERE, "advtrain_results_torch_*.json"))):
            m = pat.search(f)
            if not m:
                continue
            r = json.load(open(f))
            rows.setdefault(arm, {})[int(m.group(1))] = (
                100 * r["aisec"]["autoattack"], 100 * r["torch"]["autoattack"],
                100 * r["aisec"]["clean"], 100 * r["torch"]["clean"])
    print("| arm | seeds | mean gap (points) | sd | SE | 95% CI | aisec AA mean | torch AA mean | aisec clean | torch clean |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for arm, by_seed in rows.items():
        seeds = sorted(by_seed)
        gaps = [by_seed[s][0] - by_seed[s][1] for s in seeds]
        n, m, sd, se = stats(gaps)
        mean = lambda k: sum(by_seed[s][k] for s in seeds) / n
        ci = t975(n - 1) * se if n > 1 else float("nan")
        print(f"| {arm} | {n} ({seeds[0]}-{seeds[-1]}) | {m:+.2f} | {sd:.2f} | {se:.2f} | {m - ci:+.2f} to {m + ci:+.2f} | "
              f"{mean(0):.2f} | {mean(1):.2f} | {mean(2):.2f} | {mean(3):.2f} |")
    print()
    print("| seed | " + " | ".join(f"gap {arm}" for arm in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for s in sorted(set().union(*[set(v) for v in rows.values()])):
        cells = [f"{rows[arm][s][0] - rows[arm][s][1]:+.2f}" if s in rows[arm] else "" for arm in rows]
        print(f"| {s} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
