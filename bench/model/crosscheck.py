#!/usr/bin/env python3
"""Cross-check aisec-model against onnxruntime/PyTorch and measure throughput.

1. Exports (into bench/model/work/, gitignored) an MNIST-shaped CNN and a
   ResNet-18-shaped network at 32x32 with random weights, with references.
2. For every committed fixture and those two: runs aisec's executor
   (crates/aisec-model/examples/model_bench.rs) and compares logits with
   onnxruntime (max abs diff < 1e-4) and input gradients with PyTorch
   (max abs diff / max |ref| < 1e-4).
3. Times forward + input gradient at batch 128 for the MNIST CNN and
   ResNet-18@32x32: aisec vs PyTorch, both on the same number of threads.

Writes bench/model/RESULTS.md. Run via bench/model/bench.sh.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "models"))
import train_fixtures as tf  # noqa: E402  (re-execs inside its venv)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

BIN = os.environ["AISEC_MODEL_BENCH"]
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
WORK = os.path.join(HERE, "work")
FIX = os.path.join(ROOT, "crates", "aisec-model", "tests", "fixtures")


def check(path_prefix):
    out = os.path.join(WORK, "out")
    os.makedirs(out, exist_ok=True)
    subprocess.check_call([BIN, path_prefix + ".onnx", "check", path_prefix + ".x.npy",
                           path_prefix + ".y.npy", out])
    z = np.load(os.path.join(out, "logits.npy"))
    g = np.load(os.path.join(out, "grad.npy"))
    zr = np.load(path_prefix + ".logits.npy")
    gr = np.load(path_prefix + ".grad.npy").reshape(g.shape)
    dz = float(np.abs(z - zr).max())
    dg = float(np.abs(g - gr).max() / max(np.abs(gr).max(), 1e-12))
    return dz, dg


def written_onnx_checks():
    """Files aisec writes (retrained fixture, spec export) must run in onnxruntime
    and agree with aisec's own outputs."""
    import onnxruntime as ort
    out = os.path.join(WORK, "out")
    os.makedirs(out, exist_ok=True)
    res = []
    pre = os.path.join(FIX, "digits_mlp")
    trained = os.path.join(WORK, "digits_mlp_trained.onnx")
    subprocess.check_call([BIN, "--train", pre + ".onnx", pre + ".x.npy", pre + ".y.npy", trained])
    spec = os.path.join(WORK, "spec.json")
    with open(spec, "w") as f:
        f.write('{"input": [1, 8, 8], "layers": [{"type": "conv2d", "filters": 4, "kernel": 3, '
                '"padding": 1}, {"type": "relu"}, {"type": "max_pool2d", "size": 2}, '
                '{"type": "flatten"}, {"type": "dense", "units": 10}]}')
    spec_onnx = os.path.join(WORK, "spec_cnn.onnx")
    subprocess.check_call([BIN, "--spec", spec, spec_onnx])
    x = np.load(pre + ".x.npy")
    y = np.load(pre + ".y.npy")
    xs = x.reshape(-1, 1, 8, 8).astype(np.float32)
    np.save(os.path.join(WORK, "xs.npy"), xs)
    for name, path, xin, xfile in [("digits_mlp after 5 SGD steps", trained, x, pre + ".x.npy"),
                                   ("spec CNN export", spec_onnx, xs, os.path.join(WORK, "xs.npy"))]:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        ref = sess.run(None, {sess.get_inputs()[0].name: xin})[0]
        subprocess.check_call([BIN, path, "check", xfile, pre + ".y.npy", out])
        z = np.load(os.path.join(out, "logits.npy"))
        res.append((name, float(np.abs(z - ref).max())))
    return res


def bench_torch(model, shape, batch=128, iters=10):
    torch.set_num_threads(THREADS)
    model.eval()
    x = torch.rand(batch, *shape)
    y = torch.arange(batch) % 10

    def step():
        xg = x.clone().requires_grad_(True)
        F.cross_entropy(model(xg), y, reduction="sum").backward()
        return xg.grad

    step()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    return batch * iters / (time.perf_counter() - t)


def bench_aisec(onnx, batch=128, iters=10):
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    out = subprocess.check_output([BIN, onnx, "bench", str(batch), str(iters)], env=env, text=True)
    return float(out.strip().split("=")[1])


EPOCH_N = int(os.environ.get("EPOCH_N", "12800"))


def epoch_torch(model, shape, n=EPOCH_N, batch=128):
    """One SGD (momentum 0.9) epoch over n examples, the same data recipe as aisec's."""
    torch.set_num_threads(THREADS)
    model.train()
    numel = int(np.prod(shape))
    x = torch.tensor(((np.arange(n * numel) * 7919) % 1000 / 1000.0).astype(np.float32)).reshape(n, *shape)
    y = torch.arange(n) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    t = time.perf_counter()
    for i in range(0, n, batch):
        opt.zero_grad()
        F.cross_entropy(model(x[i:i + batch]), y[i:i + batch]).backward()
        opt.step()
    return time.perf_counter() - t


def epoch_aisec(onnx, n=EPOCH_N, batch=128):
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    out = subprocess.check_output([BIN, onnx, "train-epoch", str(n), str(batch)], env=env, text=True)
    return float(out.strip().split("=")[1])


def main():
    os.makedirs(WORK, exist_ok=True)
    mnist = os.path.join(WORK, "mnist_cnn.onnx")
    resnet = os.path.join(WORK, "resnet18.onnx")
    torch.manual_seed(0)
    sys.argv = ["train_fixtures.py", "--skip-small", "--mnist", mnist, "--resnet", resnet]
    tf.main()
    rows = []
    ok = True
    for name in ["digits_mlp", "digits_cnn", "op_zoo", "upsample_zoo", "upsample_zoo11", "text_clf",
                 *tf.ARCH]:
        rows.append((name, *check(os.path.join(FIX, name))))
    for p in [mnist, resnet]:
        rows.append((os.path.basename(p)[:-5], *check(p[:-5])))
    lines = ["# aisec-model: cross-check and throughput", "",
             "Generated by `bench/model/bench.sh` (`bench/model/crosscheck.py`).", "",
             "## Agreement with onnxruntime (logits) and PyTorch (input gradients)", "",
             "| model | max abs logit diff vs onnxruntime | max rel grad diff vs torch | pass (1e-4) |",
             "| --- | --- | --- | --- |"]
    for name, dz, dg in rows:
        p = dz < 1e-4 and dg < 1e-4
        ok &= p
        lines.append(f"| {name} | {dz:.2e} | {dg:.2e} | {'yes' if p else 'NO'} |")
    lines += ["", "## ONNX files written by aisec, run by onnxruntime", "",
              "| file | max abs diff aisec vs onnxruntime | pass (1e-4) |", "| --- | --- | --- |"]
    for name, diff in written_onnx_checks():
        p = diff < 1e-4
        ok &= p
        lines.append(f"| {name} | {diff:.2e} | {'yes' if p else 'NO'} |")
    lines += ["", f"## Throughput: forward + input gradient, batch 128, {THREADS} threads", "",
              "| model | aisec img/s | torch img/s | aisec / torch |", "| --- | --- | --- | --- |"]
    for name, onnx, model, shape, iters in [
        ("MNIST CNN 1x28x28", mnist, tf.MnistCnn(), (1, 28, 28), 20),
        ("ResNet-18 3x32x32", resnet, tf.ResNet18(), (3, 32, 32), 3),
    ]:
        a = bench_aisec(onnx, iters=iters)
        t = bench_torch(model, shape, iters=iters)
        lines.append(f"| {name} | {a:.0f} | {t:.0f} | {a / t:.2f} |")
    lines += ["", f"## One training epoch: MNIST CNN, {EPOCH_N} examples, batch 128, SGD momentum 0.9, {THREADS} threads", "",
              "| | aisec s | torch s | aisec / torch speed |", "| --- | --- | --- | --- |"]
    ea = epoch_aisec(mnist)
    et = epoch_torch(tf.MnistCnn(), (1, 28, 28))
    lines.append(f"| epoch | {ea:.2f} | {et:.2f} | {et / ea:.2f} |")
    lines.append(f"\nA full 60,000-image MNIST epoch scales linearly: about {ea * 60000 / EPOCH_N:.0f} s (aisec) "
                 f"and {et * 60000 / EPOCH_N:.0f} s (torch) at these rates.")
    load = os.getloadavg()
    lines += ["", f"Machine: {os.cpu_count()} logical CPUs, load average at the end "
              f"{load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} (1/5/15 min); torch {torch.__version__}.",
              "Timings are only comparable when the load average is near 0: re-run `bench/model/bench.sh`",
              "on a quiet machine before quoting them.", ""]
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
