#!/usr/bin/env python3
"""Cross-check `aisec attack evasion` against torchattacks (and ART if present).

For each ONNX fixture in crates/aisec-model/tests/fixtures (<name>.onnx with
<name>.x.npy inputs and <name>.y.npy labels) this script

1. converts the ONNX graph to a torch module with onnx2torch (the same
   weights aisec loads),
2. runs PGD (L-inf, random start, step 2.5*eps/steps, Madry et al.),
   AutoAttack 'standard' (torchattacks' implementation: APGD-CE, APGD-T,
   FAB-T, Square) and C&W-L2 with the same settings aisec uses,
3. runs `aisec attack evasion <model> --inputs x.npy --labels y.npy
   --attacks pgd,autoattack,cw-l2 --norm linf --eps E --steps S --seed 0
   --format json` (override the command with AISEC_EVASION_CMD, a template
   with {model} {x} {y} {eps} {steps} {attacks}), and
4. compares clean and robust accuracy per attack, writing RESULTS.md.

JSON fields read from aisec's output (aisec_attack::EvasionReport, found
anywhere in the document, e.g. at top level or under "evasion"):
  clean_accuracy                 float in [0,1]
  worst_case_robust_accuracy     float
  eps, norm                      budget echo
  attacks[]: {attack: "pgd"|"autoattack"|"cw-l2"|..., robust_accuracy,
              attack_success_rate, evaluated, success[], l2[], linf[],
              median_norm_success, total_queries, seconds}
  curve[]: {eps, robust_accuracy, attack}

Tolerances: robust accuracies are random-start estimates on small batches,
so agreement within 5 percentage points (or 2 examples) counts as a match;
AutoAttack should agree more tightly since both are near the true minimum.
C&W is compared by median L2 at success (torchattacks' CW has no binary
search over c, so aisec's should be no larger).
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIX = os.path.join(ROOT, "crates", "aisec-model", "tests", "fixtures")


def load_torch(path):
    import onnx
    from onnx2torch import convert
    m = convert(onnx.load(path))
    m.eval()
    return m


class Shaped(torch.nn.Module):
    """Presents the fixture model to torchattacks with the fixture's input shape."""

    def __init__(self, inner, shape):
        super().__init__()
        self.inner = inner
        self.shape = shape

    def forward(self, x):
        return self.inner(x.reshape((x.shape[0],) + tuple(self.shape)))


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def robust(model, adv, x, y, norm, eps):
    with torch.no_grad():
        pred = model(adv).argmax(1)
    d = (adv - x).reshape(len(x), -1)
    n = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    ok = (pred == y) | (n > eps * 1.0001 + 1e-6)
    return ok.float().mean().item(), pred, n


def run_reference(model, x, y, eps, steps, seed, which):
    import torchattacks as ta
    out = {}
    torch.manual_seed(seed)
    if "pgd" in which:
        run_pgd_aa(ta, model, x, y, eps, steps, seed, which, out)
    if "cw" in which:
        run_cw(ta, model, x, y, out)
    if "pgd" in which:
        run_art(model, x, y, eps, steps, out)
    return out


def run_pgd_aa(ta, model, x, y, eps, steps, seed, which, out):
    t = time.time()
    pgd = ta.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    adv = pgd(x, y)
    out["pgd"] = {"robust_accuracy": robust(model, adv, x, y, "linf", eps)[0], "seconds": time.time() - t}
    if "autoattack" not in which:
        return
    t = time.time()
    aa = ta.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=int(model(x[:1]).shape[1]), seed=seed)
    adv = aa(x, y)
    out["autoattack"] = {"robust_accuracy": robust(model, adv, x, y, "linf", eps)[0], "seconds": time.time() - t}


def run_cw(ta, model, x, y, out):
    t = time.time()
    cw = ta.CW(model, c=1.0, kappa=0.0, steps=100, lr=0.01)
    adv = cw(x, y)
    with torch.no_grad():
        pred = model(adv).argmax(1)
    l2 = (adv - x).reshape(len(x), -1).norm(dim=1)
    succ = (pred != y)
    out["cw-l2"] = {
        "success_rate": succ.float().mean().item(),
        "median_l2": float(l2[succ].median()) if succ.any() else None,
        "seconds": time.time() - t,
    }


def run_art(model, x, y, eps, steps, out):
    try:
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier
        clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                                nb_classes=int(model(x[:1]).shape[1]), clip_values=(0.0, 1.0))
        att = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=2.5 * eps / steps, max_iter=steps,
                                       num_random_init=1, verbose=False)
        adv = torch.tensor(att.generate(x.numpy()))
        out["pgd-art"] = {"robust_accuracy": robust(model, adv, x, y, "linf", eps)[0]}
    except Exception as e:  # ART is optional
        out["pgd-art"] = {"error": str(e)[:200]}


def find_report(doc):
    if isinstance(doc, dict):
        if "attacks" in doc and "clean_accuracy" in doc:
            return doc
        for v in doc.values():
            r = find_report(v)
            if r is not None:
                return r
    if isinstance(doc, list):
        for v in doc:
            r = find_report(v)
            if r is not None:
                return r
    return None


def run_aisec(model_path, xp, yp, eps, steps, attacks, norm="linf"):
    tmpl = os.environ.get(
        "AISEC_EVASION_CMD",
        "{bin} attack evasion {model} --inputs {x} --labels {y} --attacks {attacks} --norm {norm} "
        "--eps {eps} --steps {steps} --seed 0 --format json",
    )
    cmd = tmpl.format(bin=os.environ.get("AISEC_BIN", "aisec"), model=model_path, x=xp, y=yp,
                      eps=eps, steps=steps, attacks=attacks, norm=norm)
    t = time.time()
    p = subprocess.run(shlex.split(cmd), capture_output=True, text=True)
    secs = time.time() - t
    if not p.stdout.strip():
        return None, f"`{cmd}` exited {p.returncode}: {p.stderr.strip()[:300]}", secs
    try:
        rep = find_report(json.loads(p.stdout))
    except json.JSONDecodeError as e:
        return None, f"non-JSON output from `{cmd}`: {e}", secs
    if rep is None:
        return None, "no EvasionReport (attacks + clean_accuracy) in aisec's JSON", secs
    return rep, None, secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="digits_mlp,digits_cnn")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--attacks", default="pgd,autoattack,cw",
                    help="reference blocks to run: pgd, autoattack (needs pgd), cw")
    a = ap.parse_args()
    lines = ["# Evasion cross-check: aisec vs torchattacks", "",
             f"Command: `bench/attack/run.sh --eps {a.eps} --steps {a.steps}`  ",
             f"Threat model: L-inf, eps={a.eps}, PGD steps={a.steps} (step 2.5*eps/steps), seed={a.seed}.", "",
             "| model | n | clean (ref) | clean (aisec) | attack | robust acc (ref) | robust acc (aisec) | match | ref s | aisec s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name in a.models.split(","):
        mp = os.path.join(FIX, name + ".onnx")
        xp, yp = os.path.join(FIX, name + ".x.npy"), os.path.join(FIX, name + ".y.npy")
        if not all(os.path.exists(p) for p in (mp, xp, yp)):
            notes.append(f"{name}: fixture missing, skipped")
            continue
        xn = np.load(xp).astype(np.float32)
        yn = np.load(yp).astype(np.int64)
        if xn.min() < 0 or xn.max() > 1:
            notes.append(f"{name}: inputs outside [0,1] ({xn.min()}..{xn.max()}); torchattacks assumes [0,1]")
        inner = load_torch(mp)
        model = Shaped(inner, xn.shape[1:])
        x, y = torch.tensor(xn), torch.tensor(yn)
        if x.dim() != 4:
            # torchattacks' APGD/FAB/Square expect image batches [N,C,H,W].
            x = x.reshape(len(x), 1, 1, -1)
        clean_ref = accuracy(model, x, y)
        which = a.attacks.split(",")
        ref = run_reference(model, x, y, a.eps, a.steps, a.seed, which)
        ai_attacks = ",".join(k for k in ("pgd", "autoattack") if k in which) or "pgd"
        rep, err, secs = run_aisec(mp, xp, yp, a.eps, a.steps, ai_attacks)
        if err:
            notes.append(f"{name}: aisec run failed: {err}")
        by = {r["attack"]: r for r in (rep or {}).get("attacks", [])}
        clean_ai = rep["clean_accuracy"] if rep else None
        n = len(yn)
        for att in [k for k in ("pgd", "autoattack") if k in ref]:
            r_ref = ref[att]["robust_accuracy"]
            r_ai = by.get(att, {}).get("robust_accuracy")
            match = "n/a" if r_ai is None else ("yes" if abs(r_ref - r_ai) <= max(0.05, 2.0 / n) else "NO")
            lines.append(f"| {name} | {n} | {clean_ref:.3f} | {fmt(clean_ai)} | {att} | {r_ref:.3f} | {fmt(r_ai)} | {match} "
                         f"| {ref[att]['seconds']:.1f} | {fmt(by.get(att, {}).get('seconds'))} |")
        if "cw-l2" in ref:
            # Unbounded L2 run: every success counts, median L2 compares directly.
            rcw, err, _ = run_aisec(mp, xp, yp, 1000.0, a.steps, "cw-l2", norm="l2")
            cw_ai = {r["attack"]: r for r in (rcw or {}).get("attacks", [])}.get("cw-l2", {})
            ai_rate = cw_ai.get("attack_success_rate")
            notes.append(f"{name}: C&W-L2 median L2 over successes: torchattacks (c=1, 100 Adam steps, no binary search) "
                         f"{fmt(ref['cw-l2']['median_l2'])} at success rate {ref['cw-l2']['success_rate']:.3f}; "
                         f"aisec (9 binary-search steps x 100) {fmt(cw_ai.get('median_norm_success'))} at success rate {fmt(ai_rate)}"
                         + (f" [aisec failed: {err}]" if err else ""))
        if "pgd-art" not in ref:
            pass
        elif "robust_accuracy" in ref["pgd-art"]:
            notes.append(f"{name}: ART PGD robust accuracy {ref['pgd-art']['robust_accuracy']:.3f}")
        else:
            notes.append(f"{name}: ART not run ({ref['pgd-art'].get('error')})")
    lines += ["", "Notes:", ""] + [f"- {s}" for s in notes]
    open(a.out, "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


def fmt(v):
    if v is None:
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    sys.exit(main())
