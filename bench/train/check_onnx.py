"""Cross-checks against onnxruntime and torch on the bundled 8x8 digits:

1. spec models that `aisec train` exports to ONNX run in onnxruntime with the
   same outputs as torch running the same spec with aisec's safetensors
   weights (batch norm in eval form, residual blocks, pooling);
2. one epoch of training in data order from the same initial weights gives
   the same weights and running statistics in aisec and torch (training-mode
   batch norm, SGD momentum with L2 decay, Adam with L2 decay).

    PY="$(scripts/ml-venv.sh)"; AISEC_BIN=target/debug/aisec "$PY" bench/train/check_onnx.py
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
DIGITS = ROOT / "crates" / "aisec-model" / "tests" / "fixtures" / "digits"

SPECS = {
    "mlp_bn": {"input": [64], "layers": [
        {"type": "dense", "units": 32}, {"type": "batch_norm"}, {"type": "tanh"},
        {"type": "dense", "units": 10}]},
    "cnn": {"input": [1, 8, 8], "layers": [
        {"type": "conv2d", "filters": 8, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "avg_pool2d", "size": 2}, {"type": "flatten"}, {"type": "dense", "units": 10}]},
    "resnet_bn": {"input": [1, 8, 8], "layers": [
        {"type": "conv2d", "filters": 8, "kernel": 3, "padding": 1}, {"type": "batch_norm"},
        {"type": "relu"}, {"type": "residual", "filters": 8, "batch_norm": True},
        {"type": "residual", "filters": 16, "stride": 2, "batch_norm": True},
        {"type": "max_pool2d", "size": 2}, {"type": "global_avg_pool"},
        {"type": "dense", "units": 10}]},
}


def main():
    import onnxruntime as ort
    import torch
    from spec_torch import SpecNet, load_weights

    binary = os.environ.get("AISEC_BIN", str(ROOT / "target" / "release" / "aisec"))
    x = np.load(DIGITS / "x.npy").astype(np.float32) / 16.0
    tmp = Path(tempfile.mkdtemp(prefix="aisec-onnx-check-"))
    worst = 0.0
    for name, spec in SPECS.items():
        sp = tmp / f"{name}.json"
        sp.write_text(json.dumps(spec))
        out, onnx = tmp / f"{name}.safetensors", tmp / f"{name}.onnx"
        subprocess.run([binary, "train", str(DIGITS / "x.npy"), "--labels", str(DIGITS / "y.npy"),
                        "--scale", "0.0625", "--arch", str(sp), "--epochs", "1", "--optimizer", "sgd",
                        "--lr", "0.05", "--out", str(out), "--onnx", str(onnx), "--no-progress"],
                       check=True, capture_output=True)
        xs = x[:256].reshape([256] + spec["input"])
        net = load_weights(SpecNet(spec), out).eval()
        with torch.no_grad():
            zt = net(torch.from_numpy(xs)).numpy()
        sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        zo = sess.run(None, {sess.get_inputs()[0].name: xs})[0]
        d = float(np.abs(zo - zt).max())
        worst = max(worst, d)
        print(f"{name}: max |onnxruntime - torch| = {d:.2e} over {zo.size} logits")
    if worst > 1e-4:
        raise SystemExit(f"FAIL: outputs differ by {worst:.2e}")

    # Training parity: one epoch in data order from the same initial
    # weights, aisec against torch (batch-norm batch statistics and running
    # averages, SGD momentum with L2 decay, Adam).
    y = np.load(DIGITS / "y.npy").astype(np.int64)
    n = 512
    for name, opt in [("resnet_bn", "sgd"), ("mlp_bn", "adam")]:
        spec = SPECS[name]
        sp = tmp / f"{name}.json"
        init, out = tmp / f"{name}.init.safetensors", tmp / f"{name}.trained.safetensors"
        np.savez(tmp / "sub.npz", x=np.load(DIGITS / "x.npy")[:n], y=y[:n])
        common = [binary, "train", str(tmp / "sub.npz"), "--scale", "0.0625", "--arch", str(sp),
                  "--no-shuffle", "--batch-size", "32", "--optimizer", opt, "--no-progress"]
        lr = "0.05" if opt == "sgd" else "0.003"
        subprocess.run(common + ["--epochs", "0", "--out", str(init)], check=True, capture_output=True)
        subprocess.run(common + ["--epochs", "1", "--lr", lr, "--momentum", "0.9", "--weight-decay",
                                 "1e-3", "--out", str(out)], check=True, capture_output=True)
        torch.manual_seed(0)
        net = load_weights(SpecNet(spec), init)
        if opt == "sgd":
            o = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
        else:
            o = torch.optim.Adam(net.parameters(), lr=0.003, weight_decay=1e-3)
        xs = torch.from_numpy(x[:n].reshape([n] + spec["input"]))
        ys = torch.from_numpy(y[:n])
        net.train()
        for s in range(0, n, 32):
            o.zero_grad()
            torch.nn.functional.cross_entropy(net(xs[s:s + 32]), ys[s:s + 32]).backward()
            o.step()
        from safetensors_lite import read_safetensors
        ours = read_safetensors(out)
        sd = net.state_dict()
        # A bias right before batch norm has an exactly zero gradient (the
        # batch mean removes it), so what is left is rounding noise, which
        # Adam's normalised step turns into +-lr moves in both frameworks:
        # such biases are not comparable and are left out.
        skip = {"layer0.bias"} if name == "mlp_bn" else set()
        diffs = {k: float(np.abs(ours[k] - sd[k].numpy()).max()) for k in ours if k not in skip}
        d = max(diffs.values())
        worst_k = max(diffs, key=diffs.get)
        # How many values differ by more than 1e-4 (Adam's normalised step
        # amplifies rounding on weights whose gradient is near zero).
        frac = np.mean(np.concatenate([np.abs(ours[k] - sd[k].numpy()).ravel() > 1e-4
                                       for k in ours if k not in skip]))
        print(f"   worst {worst_k}; {100 * frac:.2f}% of values differ by > 1e-4")
        print(f"{name} ({opt}): one epoch, max |aisec - torch| over all weights and "
              f"running statistics = {d:.2e}")
        if d > 1e-3:
            raise SystemExit(f"FAIL: training diverges from torch by {d:.2e}")
    print("ok")


if __name__ == "__main__":
    main()
