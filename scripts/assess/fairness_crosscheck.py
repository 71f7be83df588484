#!/usr/bin/env python3
"""Cross-checks aisec's fairness metrics against Fairlearn on the same
predictions: runs `aisec assess SYSTEM --only fairness -f json`, reads each
fairness check's labels, predictions and groups, and compares per-group
accuracy and selection rate (MetricFrame), demographic_parity_difference
and equalized_odds_difference (between_groups) with aisec's numbers.

Usage: scripts/assess/fairness_crosscheck.sh [SYSTEM.toml] [path/to/aisec]
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from fairlearn.metrics import (MetricFrame, demographic_parity_difference,
                               equalized_odds_difference, selection_rate)
from sklearn.metrics import accuracy_score

ROOT = Path(__file__).resolve().parents[2]


def main():
    system = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "examples/digits-service/aisec.toml")
    aisec = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "target/debug/aisec")
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([aisec, "-q", "assess", system, "--only", "fairness", "-f", "json", "--no-fail",
                              "--state", f"{d}/state.json"], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    worst = 0.0
    checked = 0
    for r in report["data"]["assess"]["results"]:
        if r["check"]["kind"] != "fairness" or r["outcome"]["state"] != "done":
            continue
        f = r["data"]["fairness"]
        inp = r["data"]["fairness_inputs"]
        y, p, g = (np.array(inp[k]) for k in ("y", "pred", "group"))
        pos = f["positive_label"]
        yb, pb = (y == pos).astype(int), (p == pos).astype(int)
        mf = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate},
                         y_true=y, y_pred=p, sensitive_features=g)
        mfb = MetricFrame(metrics={"selection_rate": selection_rate}, y_true=yb, y_pred=pb, sensitive_features=g)
        rows = []
        for grp in f["groups"]:
            k = grp["group"]
            rows.append(("accuracy", k, grp["accuracy"], float(mf.by_group.loc[k, "accuracy"])))
            rows.append(("selection_rate", k, grp["selection_rate"], float(mfb.by_group.loc[k, "selection_rate"])))
        rows.append(("demographic_parity_difference", "-", f["demographic_parity_difference"]["value"],
                     float(demographic_parity_difference(yb, pb, sensitive_features=g))))
        rows.append(("equalized_odds_difference", "-", f["equalized_odds_difference"]["value"],
                     float(equalized_odds_difference(yb, pb, sensitive_features=g))))
        print(f"{r['check']['component']}: {len(y)} examples, positive label {pos}")
        print(f"  {'metric':<32} {'group':>5} {'aisec':>10} {'fairlearn':>10} {'|diff|':>9}")
        for name, k, a, b in rows:
            diff = abs(a - b)
            worst = max(worst, diff)
            checked += 1
            print(f"  {name:<32} {k!s:>5} {a:>10.6f} {b:>10.6f} {diff:>9.2e}")
    if checked == 0:
        print("no fairness check ran")
        return 2
    print(f"largest difference {worst:.2e} over {checked} numbers")
    return 0 if worst < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
