#!/usr/bin/env python3
"""Cross-check aisec-model against onnxruntime/PyTorch and measure throughput.

1. Exports (into bench/model/work/, gitignored) an MNIST-shaped CNN and a
   ResNet-18-shaped network at 32x32 with random weights, with references.
2. For every committed fixture and those two: runs aisec's executor
   (crates/aisec-model/examples/model_bench.rs) and compares logits with
   onnxruntime (max abs diff < 1e-4) and input gradients with PyTorch
   (max abs diff / max |ref| < 1e-4).
3. Times forward + input gradient at batch 128 for the MNIST CNN and
   ResNet-18@32x32, and one SGD training epoch of the MNIST CNN: aisec vs
   PyTorch on the same number of threads, for each thread count in
   BENCH_THREADS (default "1 2"). Each aisec/torch pair runs back to back,
   with `uptime` recorded around it; wall-clock and CPU-time throughput are
   both reported (on a loaded machine CPU time is the steadier of the two
   for 1-thread runs).

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
THREAD_COUNTS = [int(t) for t in os.environ.get("BENCH_THREADS", "1 2").replace(",", " ").split()]
THREADS = THREAD_COUNTS[0]
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


def uptime():
    return subprocess.check_output(["uptime"], text=True).strip()


def fold_bn(model):
    """Folds each eval-mode BatchNorm into the convolution before it, as the
    ONNX export aisec runs does, so both sides compute the same graph."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    model.eval()
    pairs = [("conv1", "bn1"), ("c1", "b1"), ("c2", "b2")]
    for mod in model.modules():
        for c, b in pairs:
            if isinstance(getattr(mod, b, None), torch.nn.BatchNorm2d):
                setattr(mod, c, fuse_conv_bn_eval(getattr(mod, c), getattr(mod, b)))
                setattr(mod, b, torch.nn.Identity())
        down = getattr(mod, "down", None)
        if isinstance(down, torch.nn.Sequential) and isinstance(down[1], torch.nn.BatchNorm2d):
            mod.down = torch.nn.Sequential(fuse_conv_bn_eval(down[0], down[1]))
    return model


def bench_torch(model, shape, batch=128, iters=10):
    """Forward + input gradient, as (wall img/s, CPU-time img/s)."""
    torch.set_num_threads(THREADS)
    model = fold_bn(model)
    x = torch.rand(batch, *shape)
    y = torch.arange(batch) % 10

    def step():
        xg = x.clone().requires_grad_(True)
        F.cross_entropy(model(xg), y, reduction="sum").backward()
        return xg.grad

    step()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(iters):
        step()
    return batch * iters / (time.perf_counter() - t), batch * iters / (time.process_time() - c)


def run_aisec(args):
    env = dict(os.environ, RAYON_NUM_THREADS=str(THREADS))
    out = subprocess.check_output([BIN] + args, env=env, text=True)
    return dict(kv.split("=") for kv in out.split())


def bench_aisec(onnx, batch=128, iters=10):
    """Forward + input gradient, as (wall img/s, CPU-time img/s)."""
    r = run_aisec([onnx, "bench", str(batch), str(iters)])
    return float(r["images_per_s"]), float(r["cpu_images_per_s"])


EPOCH_N = int(os.environ.get("EPOCH_N", "12800"))


def epoch_torch(model, shape, n=EPOCH_N, batch=128):
    """One SGD (momentum 0.9) epoch over n examples, the same data recipe as
    aisec's, as (wall s, CPU s)."""
    torch.set_num_threads(THREADS)
    model.train()
    numel = int(np.prod(shape))
    x = torch.tensor(((np.arange(n * numel) * 7919) % 1000 / 1000.0).astype(np.float32)).reshape(n, *shape)
    y = torch.arange(n) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    t, c = time.perf_counter(), time.process_time()
    for i in range(0, n, batch):
        opt.zero_grad()
        F.cross_entropy(model(x[i:i + batch]), y[i:i + batch]).backward()
        opt.step()
    return time.perf_counter() - t, time.process_time() - c


def epoch_aisec(onnx, n=EPOCH_N, batch=128):
    r = run_aisec([onnx, "train-epoch", str(n), str(batch)])
    return float(r["epoch_s"]), float(r["cpu_s"])


def timing_tables(mnist, resnet):
    """Throughput and epoch tables for every thread count in BENCH_THREADS."""
    global THREADS
    lines = ["", "## Throughput: forward + input gradient, batch 128", "",
             "img/s by wall clock, and by CPU time (images per CPU-second, all threads). "
             "`uptime` before each aisec/torch pair. torch runs in eval mode with its BatchNorms "
             "folded into the convolutions, the same graph as the ONNX export aisec runs.", "",
             "| model | threads | aisec img/s | torch img/s | aisec / torch | aisec CPU img/s | torch CPU img/s | aisec / torch (CPU) | load before |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    epoch = ["", f"## One training epoch: MNIST CNN, {EPOCH_N} examples, batch 128, SGD momentum 0.9", "",
             "| threads | aisec s | torch s | aisec / torch speed | aisec CPU s | torch CPU s | aisec / torch (CPU) | load before |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    uptimes = []
    for THREADS in THREAD_COUNTS:
        for name, onnx, model, shape, iters in [
            ("MNIST CNN 1x28x28", mnist, tf.MnistCnn(), (1, 28, 28), 20),
            ("ResNet-18 3x32x32", resnet, tf.ResNet18(), (3, 32, 32), 4),
        ]:
            up = uptime()
            uptimes.append(up)
            load = up.split("load average:")[-1].strip()
            a, ac = bench_aisec(onnx, iters=iters)
            t, tc = bench_torch(model, shape, iters=iters)
            lines.append(f"| {name} | {THREADS} | {a:.0f} | {t:.0f} | {a / t:.2f} | {ac:.0f} | {tc:.0f} | "
                         f"{ac / tc:.2f} | {load} |")
        up = uptime()
        uptimes.append(up)
        load = up.split("load average:")[-1].strip()
        ea, eac = epoch_aisec(mnist)
        et, etc = epoch_torch(tf.MnistCnn(), (1, 28, 28))
        epoch.append(f"| {THREADS} | {ea:.2f} | {et:.2f} | {et / ea:.2f} | {eac:.2f} | {etc:.2f} | "
                     f"{etc / eac:.2f} | {load} |")
    uptimes.append(uptime())
    epoch.append("")
    epoch.append("A full 60,000-image MNIST epoch scales linearly with the example count.")
    return lines + epoch, uptimes


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
    timing, uptimes = timing_tables(mnist, resnet)
    lines += timing
    lines += ["", f"Machine: {os.cpu_count()} logical CPUs; torch {torch.__version__}; "
              "`uptime` at each timing and at the end:", ""]
    lines += [f"    {u}" for u in uptimes]
    lines += ["", "Timings are only comparable when the load average is near 0: re-run `bench/model/bench.sh`",
              "on a quiet machine before quoting them.", ""]
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
