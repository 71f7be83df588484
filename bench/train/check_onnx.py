"""Cross-check: spec models that `aisec train` exports to ONNX run in
onnxruntime with the same outputs as torch running the same spec with aisec's
safetensors weights (batch norm in eval form, residual blocks, pooling).
Trains each spec for one epoch on the bundled 8x8 digits.

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
    print("ok")


if __name__ == "__main__":
    main()
