#!/usr/bin/env python3
"""Cross-check `aisec explain` against Captum and shap on the same weights.

Trains two models here with torch (CPU) and exports them to ONNX:
  * a BadNets-backdoored CNN on scikit-learn's 8x8 digits (a 2x2 white
    patch in the bottom-right corner stamped on 10% of the training digits,
    relabelled to class 0), and
  * an MLP on scikit-learn's breast-cancer table (30 standardised features),
    plus a tiny 8-feature MLP for exact Shapley values.
Then runs the aisec binary on the ONNX files and Captum / shap on the torch
models, and compares: IG (every Riemann rule and Gauss-Legendre) and saliency
value for value; KernelSHAP with the same background and coalition count,
exactly on the tiny model (full enumeration) and within sampling error on
the 30-feature one; run time side by side on the same thread count; trigger
localisation IoU from both.

    bench/explain/run.sh            # makes the venv, builds aisec, runs this

Writes bench/explain/results_threads<THREADS>.json and .md.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = HERE / "work"
AISEC = os.environ.get("AISEC", str(ROOT / "target" / "debug" / "aisec"))
THREADS = int(os.environ.get("THREADS", "1"))
torch.set_num_threads(THREADS)
torch.manual_seed(0)
np.random.seed(0)

from captum.attr import IntegratedGradients, Saliency, Occlusion  # noqa: E402
import shap  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402

WORK.mkdir(parents=True, exist_ok=True)
TARGET = 0
TRIGGER = np.zeros((8, 8), bool)
TRIGGER[6:, 6:] = True


def stamp(x):
    x = x.copy()
    x[..., 6:, 6:] = 1.0
    return x


def export(model, shape, path):
    model.eval()
    torch.onnx.export(model, (torch.zeros(1, *shape),), str(path), opset_version=13,
                      input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}}, dynamo=False)


def train(model, x, y, epochs, lr=5e-3, bs=32):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    return model


def aisec(args):
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    t = time.perf_counter()
    p = subprocess.run([AISEC, "explain", *args, "--format", "json"], capture_output=True,
                       text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"aisec failed: {p.stderr}")
    return json.loads(p.stdout)["data"]["explain"], wall


def rel(a, b):
    """Largest absolute difference relative to the largest reference magnitude."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def iou_of(attr, k=4):
    m = np.abs(attr).reshape(len(attr), -1)
    out = []
    for row in m:
        top = np.zeros(64, bool)
        top[np.argsort(-row, kind="stable")[:k]] = True
        t = TRIGGER.reshape(-1)
        out.append((top & t).sum() / (top | t).sum())
    return float(np.mean(out))


results = {"threads": THREADS, "torch": torch.__version__, "shap": shap.__version__}
import captum  # noqa: E402
results["captum"] = captum.__version__

# ---------------------------------------------------------------- images
digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)[:, None]
Y = digits.target.astype(np.int64)
n_train = 1500
xtr, ytr = X[:n_train].copy(), Y[:n_train].copy()
xtr[::10] = stamp(xtr[::10])
ytr[::10] = TARGET
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                    nn.Linear(8 * 64, 32), nn.ReLU(), nn.Linear(32, 10))
train(cnn, xtr, ytr, epochs=12)
export(cnn, (1, 8, 8), WORK / "badnets_cnn.onnx")
keep = Y[n_train:] != TARGET
xtest = stamp(X[n_train:][keep])[:128]
ytest = Y[n_train:][keep][:128]
np.save(WORK / "trig_x.npy", xtest)
np.save(WORK / "trig_y.npy", ytest)
with torch.no_grad():
    clean_acc = float((cnn(torch.tensor(X[n_train:])).argmax(1).numpy() == Y[n_train:]).mean())
    asr = float((cnn(torch.tensor(xtest)).argmax(1).numpy() == TARGET).mean())
results["badnets"] = {"clean_accuracy": clean_acc, "attack_success_rate": asr,
                      "triggered_inputs": int(len(xtest))}
xt = torch.tensor(xtest)
with torch.no_grad():
    pred = cnn(xt).argmax(1)

ig = IntegratedGradients(cnn)
rows = []
for rule in ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
             "gausslegendre"]:
    out = WORK / f"ig_{rule}"
    data, wall = aisec(["--data", str(WORK / "trig_x.npy"), str(WORK / "badnets_cnn.onnx"),
                        "--labels", str(WORK / "trig_y.npy"), "--limit", "128", "--method", "ig",
                        "--steps", "50", "--rule", rule, "--out", str(out)])
    ours = np.load(out / "attributions.npy")
    t = time.perf_counter()
    ref, delta = ig.attribute(xt, baselines=torch.zeros_like(xt), target=pred, n_steps=50,
                              method=rule, return_convergence_delta=True)
    captum_s = time.perf_counter() - t
    ref = ref.detach().numpy()
    our_json = json.loads((out / "attributions.json").read_text())
    our_delta = np.array([e["delta"] for e in our_json["examples"]])
    # Captum's riemann_trapezoid puts its points at k/(n-1) but weights them
    # 1/n (halved at the ends), so its weights sum to (n-1)/n; aisec uses the
    # trapezoid rule's 1/(n-1). The two then differ by exactly that factor.
    scaled = ours * (49 / 50) if rule == "riemann_trapezoid" else ours
    rows.append({"rule": rule, "rel_err": rel(ours, ref), "rel_err_scaled": rel(scaled, ref),
                 "aisec_mean_abs_delta": float(np.abs(our_delta).mean()),
                 "captum_mean_abs_delta": float(delta.abs().mean()),
                 "aisec_s": data["attribution_seconds"], "aisec_wall_s": wall,
                 "captum_s": captum_s, "iou_aisec": iou_of(ours), "iou_captum": iou_of(ref)})
results["ig"] = rows

out = WORK / "saliency"
data, wall = aisec(["--data", str(WORK / "trig_x.npy"), str(WORK / "badnets_cnn.onnx"),
                    "--limit", "128", "--method", "saliency", "--out", str(out)])
ours = np.load(out / "attributions.npy")
t = time.perf_counter()
ref = Saliency(cnn).attribute(xt.clone().requires_grad_(True), target=pred, abs=True).numpy()
captum_s = time.perf_counter() - t
results["saliency"] = {"rel_err": rel(ours, ref), "aisec_s": data["attribution_seconds"],
                       "captum_s": captum_s, "iou_aisec": iou_of(ours), "iou_captum": iou_of(ref)}

out = WORK / "occlusion"
data, wall = aisec(["--data", str(WORK / "trig_x.npy"), str(WORK / "badnets_cnn.onnx"),
                    "--limit", "128", "--method", "occlusion", "--window", "1,2,2",
                    "--strides", "1,1,1", "--out", str(out)])
ours = np.load(out / "attributions.npy")
t = time.perf_counter()
ref = Occlusion(cnn).attribute(xt, sliding_window_shapes=(1, 2, 2), strides=(1, 1, 1),
                               baselines=0.0, target=pred).numpy()
captum_s = time.perf_counter() - t
results["occlusion"] = {"rel_err": rel(ours, ref), "aisec_s": data["attribution_seconds"],
                        "captum_s": captum_s, "iou_aisec": iou_of(ours),
                        "iou_captum": iou_of(ref)}

# ---------------------------------------------------------------- tabular
bc = load_breast_cancer()
Xb = bc.data.astype(np.float64)
Xb = ((Xb - Xb.mean(0)) / Xb.std(0)).astype(np.float32)
Yb = bc.target.astype(np.int64)
mlp = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 2))
train(mlp, Xb[:400], Yb[:400], epochs=30, lr=1e-3)
export(mlp, (30,), WORK / "cancer_mlp.onnx")
tiny = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
train(tiny, Xb[:400, :8], Yb[:400], epochs=30, lr=1e-3)
export(tiny, (8,), WORK / "cancer_tiny.onnx")


def f_of(model):
    def f(a):
        with torch.no_grad():
            return model(torch.tensor(a, dtype=torch.float32)).numpy()[:, 1]
    return f


bg = Xb[400:420]
expl = Xb[420:430]
np.save(WORK / "bg30.npy", bg)
np.save(WORK / "x30.npy", expl)
np.save(WORK / "bg8.npy", bg[:, :8])
np.save(WORK / "x8.npy", expl[:, :8])

# Tiny model: 2^8 - 2 = 254 coalitions enumerate everything (shap's default nsamples is capped there).
ke = shap.KernelExplainer(f_of(tiny), bg[:, :8])
ref = np.array(ke.shap_values(expl[:, :8], l1_reg=False, silent=True))
out = WORK / "ks8"
aisec(["--data", str(WORK / "x8.npy"), str(WORK / "cancer_tiny.onnx"), "--method", "kernelshap",
       "--target", "1", "--background", str(WORK / "bg8.npy"), "--background-size", "20",
       "--out", str(out)])
ours = np.load(out / "attributions.npy")
out = WORK / "exact8"
aisec(["--data", str(WORK / "x8.npy"), str(WORK / "cancer_tiny.onnx"), "--method",
       "exact-shapley", "--target", "1", "--background", str(WORK / "bg8.npy"),
       "--background-size", "20", "--out", str(out)])
exact = np.load(out / "attributions.npy")
results["kernelshap_tiny"] = {"max_abs_diff_vs_shap": float(np.max(np.abs(ours - ref))),
                              "max_abs_diff_exact_vs_shap": float(np.max(np.abs(exact - ref))),
                              "max_abs_value": float(np.max(np.abs(ref)))}

# 30 features, 500 coalitions: sampled. Reference: shap with 20000 coalitions.
ke = shap.KernelExplainer(f_of(mlp), bg)
reference = np.array(ke.shap_values(expl, nsamples=20000, l1_reg=False, silent=True))
shap_runs = []
for seed in range(3):
    np.random.seed(seed)
    shap_runs.append(np.array(ke.shap_values(expl, nsamples=500, l1_reg=False, silent=True)))
aisec_runs = []
for seed in range(3):
    out = WORK / f"ks30_{seed}"
    aisec(["--data", str(WORK / "x30.npy"), str(WORK / "cancer_mlp.onnx"), "--method",
           "kernelshap", "--target", "1", "--background", str(WORK / "bg30.npy"),
           "--background-size", "20", "--nsamples", "500", "--seed", str(seed), "--out", str(out)])
    aisec_runs.append(np.load(out / "attributions.npy"))


def rms(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


results["kernelshap_sampled"] = {
    "nsamples": 500, "features": 30, "background": 20, "examples": 10,
    "shap_rms_err_vs_reference": [rms(r, reference) for r in shap_runs],
    "aisec_rms_err_vs_reference": [rms(r, reference) for r in aisec_runs],
    "shap_vs_shap_rms": rms(shap_runs[0], shap_runs[1]),
    "aisec_vs_shap_rms": rms(aisec_runs[0], shap_runs[0]),
    "reference_rms_value": float(np.sqrt(np.mean(reference ** 2))),
}

# Speed: default nsamples (2M + 2048 = 2108), 50 background rows, 10 inputs.
bg50 = Xb[400:450]
np.save(WORK / "bg50.npy", bg50)
ke = shap.KernelExplainer(f_of(mlp), bg50)
t = time.perf_counter()
ke.shap_values(expl, l1_reg=False, silent=True)
shap_s = time.perf_counter() - t
out = WORK / "ks_speed"
data, wall = aisec(["--data", str(WORK / "x30.npy"), str(WORK / "cancer_mlp.onnx"), "--method",
                    "kernelshap", "--target", "1", "--background", str(WORK / "bg50.npy"),
                    "--background-size", "50", "--out", str(out)])
results["kernelshap_speed"] = {"shap_s": shap_s, "aisec_s": data["attribution_seconds"],
                               "aisec_wall_s": wall, "coalitions": 2108, "background": 50,
                               "examples": 10}

# Repeated timings (median of 5) of the two headline workloads, each side warm.
def median_times(fn, n=5):
    ts = []
    for _ in range(n):
        ts.append(fn())
    return float(np.median(ts)), float(np.min(ts))


def captum_ig():
    t = time.perf_counter()
    ig.attribute(xt, baselines=torch.zeros_like(xt), target=pred, n_steps=50,
                 method="gausslegendre")
    return time.perf_counter() - t


def aisec_ig():
    d, _ = aisec(["--data", str(WORK / "trig_x.npy"), str(WORK / "badnets_cnn.onnx"), "--limit",
                  "128", "--method", "ig", "--steps", "50", "--out", str(WORK / "ig_speed")])
    return d["attribution_seconds"]


def shap_ks():
    t = time.perf_counter()
    ke.shap_values(expl, l1_reg=False, silent=True)
    return time.perf_counter() - t


def aisec_ks():
    d, _ = aisec(["--data", str(WORK / "x30.npy"), str(WORK / "cancer_mlp.onnx"), "--method",
                  "kernelshap", "--target", "1", "--background", str(WORK / "bg50.npy"),
                  "--background-size", "50", "--out", str(WORK / "ks_speed")])
    return d["attribution_seconds"]


results["speed"] = {
    "ig_gausslegendre_50_steps_128_images": {"captum": median_times(captum_ig),
                                             "aisec": median_times(aisec_ig)},
    "kernelshap_2108_coalitions_50_background_10_inputs": {"shap": median_times(shap_ks, 3),
                                                           "aisec": median_times(aisec_ks, 3)},
}

(HERE / f"results_threads{THREADS}.json").write_text(json.dumps(results, indent=2))

# ---------------------------------------------------------------- table
L = []
b = results["badnets"]
L.append(f"Threads: {THREADS} (torch.set_num_threads and RAYON_NUM_THREADS); torch {results['torch']}, "
         f"Captum {results['captum']}, shap {results['shap']}.\n")
L.append(f"BadNets CNN (digits, 2x2 patch, 10% poison, target 0): clean accuracy {b['clean_accuracy']:.3f}, "
         f"ASR {b['attack_success_rate']:.3f} on {b['triggered_inputs']} triggered held-out digits.\n")
L.append("| method | max abs diff / max abs Captum value | mean abs delta aisec | mean abs delta Captum | aisec s | Captum s | trigger IoU aisec | trigger IoU Captum |")
L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
for r in results["ig"]:
    err = f"{r['rel_err']:.2e}"
    if r["rule"] == "riemann_trapezoid":
        err += f" ({r['rel_err_scaled']:.2e} after x 49/50)"
    L.append(f"| IG {r['rule']}, 50 steps, 128 images | {err} | {r['aisec_mean_abs_delta']:.2e} | "
             f"{r['captum_mean_abs_delta']:.2e} | {r['aisec_s']:.3f} | {r['captum_s']:.3f} | "
             f"{r['iou_aisec']:.3f} | {r['iou_captum']:.3f} |")
for name in ["saliency", "occlusion"]:
    r = results[name]
    L.append(f"| {name} | {r['rel_err']:.2e} | - | - | {r['aisec_s']:.3f} | {r['captum_s']:.3f} | "
             f"{r['iou_aisec']:.3f} | {r['iou_captum']:.3f} |")
k = results["kernelshap_tiny"]
L.append("")
L.append(f"KernelSHAP, tiny MLP (8 features, 254 coalitions = full enumeration, 20 background rows): "
         f"max |aisec - shap| = {k['max_abs_diff_vs_shap']:.2e}, max |aisec exact Shapley - shap| = "
         f"{k['max_abs_diff_exact_vs_shap']:.2e} (largest value {k['max_abs_value']:.3f}).\n")
k = results["kernelshap_sampled"]
L.append(f"KernelSHAP, MLP on 30 features, 500 coalitions, 20 background rows, 10 inputs; error against shap "
         f"with 20000 coalitions (RMS value {k['reference_rms_value']:.4f}):\n")
L.append("| | seed 0 | seed 1 | seed 2 |")
L.append("| --- | --- | --- | --- |")
L.append("| shap RMS error | " + " | ".join(f"{v:.4f}" for v in k["shap_rms_err_vs_reference"]) + " |")
L.append("| aisec RMS error | " + " | ".join(f"{v:.4f}" for v in k["aisec_rms_err_vs_reference"]) + " |")
L.append(f"\nRMS(shap seed 0 - shap seed 1) = {k['shap_vs_shap_rms']:.4f}; "
         f"RMS(aisec seed 0 - shap seed 0) = {k['aisec_vs_shap_rms']:.4f}.\n")
k = results["kernelshap_speed"]
L.append(f"KernelSHAP speed (30-feature MLP, 2108 coalitions, 50 background rows, 10 inputs): "
         f"shap {k['shap_s']:.2f} s, aisec {k['aisec_s']:.2f} s (whole command {k['aisec_wall_s']:.2f} s).\n")
sp = results["speed"]
L.append("Repeated timings (median and best, seconds; the method alone, models loaded):\n")
L.append("| workload | reference median | reference best | aisec median | aisec best |")
L.append("| --- | --- | --- | --- | --- |")
a = sp["ig_gausslegendre_50_steps_128_images"]
L.append(f"| IG gausslegendre, 50 steps, 128 images 1x8x8 (Captum) | {a['captum'][0]:.3f} | {a['captum'][1]:.3f} | "
         f"{a['aisec'][0]:.3f} | {a['aisec'][1]:.3f} |")
a = sp["kernelshap_2108_coalitions_50_background_10_inputs"]
L.append(f"| KernelSHAP, 30-feature MLP, 2108 coalitions x 50 background, 10 inputs (shap) | {a['shap'][0]:.3f} | "
         f"{a['shap'][1]:.3f} | {a['aisec'][0]:.3f} | {a['aisec'][1]:.3f} |")
(HERE / f"results_threads{THREADS}.md").write_text("\n".join(L) + "\n")
print("\n".join(L))
