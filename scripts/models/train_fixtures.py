#!/usr/bin/env python3
"""Train and export the small ONNX fixtures aisec-model's tests use.

Creates its own venv in scripts/models/.venv (gitignored), installs torch,
onnx, onnxruntime and scikit-learn there, then re-executes itself inside it.

Writes to crates/aisec-model/tests/fixtures/:
  <name>.onnx          the model (opset given per model)
  <name>.x.npy         a test batch (float32)
  <name>.y.npy         labels of that batch (int64)
  <name>.logits.npy    onnxruntime outputs for the batch
  <name>.grad.npy      torch's gradient of the summed cross-entropy w.r.t. x

Models: an MLP and a small CNN trained on scikit-learn's 8x8 digits, and an
"op zoo" network with random weights exercising pooling variants, grouped
and dilated convolution, batch/layer normalisation, attention-style MatMul,
Softmax, GELU (Erf), Clip, Concat, Slice, Pad, Split, Transpose and more.

Usage: python3 scripts/models/train_fixtures.py [--out DIR] [--resnet PATH]
  --mnist PATH additionally exports the PyTorch MNIST example CNN (random
  weights, 28x28) with its references next to PATH.
  --resnet PATH additionally exports a ResNet-18-shaped network (random
  weights, 32x32 input, 10 classes) with its references next to PATH.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(HERE, ".venv")
PY = os.path.join(VENV, "bin", "python")


def ensure_venv():
    if os.path.abspath(sys.prefix) == os.path.abspath(VENV):
        return
    if not os.path.exists(PY):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([PY, "-m", "pip", "install", "-q", "torch", "onnx",
                           "onnxruntime", "scikit-learn", "numpy"])
    os.execv(PY, [PY] + sys.argv)


ensure_venv()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

torch.manual_seed(0)
np.random.seed(0)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(64, 32)
        self.l2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.l2(torch.tanh(self.l1(x)))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.fc(x.view(x.size(0), -1))


class Zoo(nn.Module):
    """Random-weight network touching many operators (input [N,3,12,12])."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.pw = nn.Conv2d(8, 12, 1)
        self.ln = nn.LayerNorm(12)
        self.q = nn.Linear(12, 12)
        self.k = nn.Linear(12, 12)
        self.fc = nn.Linear(12 * 2 + 8, 10)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 1.5)
            self.bn.weight.uniform_(0.5, 1.5)
            self.bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x):
        x = F.pad(x, (1, 0, 0, 1))                       # Pad -> 13x13
        x = self.bn(self.c1(x))                          # Conv s2, BN -> 7x7
        x = torch.clamp(x, 0.0, 6.0)                     # Clip (ReLU6)
        x = F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                         count_include_pad=False)        # 4x4
        x = torch.sigmoid(self.dw(x)) * x                # grouped, dilated conv
        m = F.max_pool2d(x, 2, stride=1, padding=1)      # 5x5
        y = self.pw(m)                                   # [N,12,5,5]
        t = y.flatten(2).transpose(1, 2)                 # [N,25,12]
        t = self.ln(t)
        a = torch.softmax(self.q(t) @ self.k(t).transpose(1, 2) / 12 ** 0.5, dim=-1)
        t = F.gelu(a @ t)                                # Erf
        t1, t2 = torch.split(t, [10, 15], dim=1)         # Split
        f = torch.cat([t1.mean(1), torch.tanh(t2[:, 2:9:3]).mean(1)], dim=1)
        g = F.adaptive_avg_pool2d(m, 1).flatten(1)       # GlobalAveragePool
        return self.fc(torch.cat([f, g], dim=1))


class Upsampler(nn.Module):
    """Decoder-style ops (input [N,3,6,6]): ConvTranspose, Resize, LeakyRelu."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1, groups=1)
        self.upg = nn.ConvTranspose2d(4, 4, 2, stride=2, groups=2)
        self.fc = nn.Linear(4 * 3 + 3, 10)

    def forward(self, x):
        a = F.leaky_relu(self.up(x), 0.1)                                  # [N,4,12,12]
        b = F.interpolate(x, scale_factor=2, mode="nearest")               # [N,3,12,12]
        c = F.interpolate(x, size=(9, 7), mode="bilinear", align_corners=False)
        d = F.interpolate(x, size=(5, 8), mode="bilinear", align_corners=True)
        e = self.upg(a[:, :, ::3, ::3])                                    # [N,4,8,8]
        f = torch.cat([a.mean((2, 3)), e.mean((2, 3)), (e * e).mean((2, 3)),
                       b.mean((2, 3)) + c.sum((2, 3)) / 10 - d.mean((2, 3))], 1)
        return self.fc(f)


class TextClf(nn.Module):
    """Bag-of-embeddings text classifier over token ids [N,6]."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.fc = nn.Linear(8, 10)

    def forward(self, t):
        return self.fc(torch.relu(self.emb(t).mean(1)))


class MnistCnn(nn.Module):
    """The PyTorch MNIST example network (input [N,1,28,28])."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3)
        self.c2 = nn.Conv2d(32, 64, 3)
        self.f1 = nn.Linear(9216, 128)
        self.f2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        return self.f2(F.relu(self.f1(torch.flatten(x, 1))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        o = F.relu(self.b1(self.c1(x)))
        o = self.b2(self.c2(o))
        return F.relu(o + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """torchvision's resnet18 layout (7x7 stem, max-pool, 4 stages of 2 blocks)."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers = []
        cin = 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layers(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def digits():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    return x, y


def train(model, x, y, epochs, lr=0.05):
    opt = torch.optim.Adam(model.parameters(), lr=lr * 0.1)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    return acc


def export(model, name, x, y, out, opset, constant_folding=True):
    model.eval()
    path = os.path.join(out, name + ".onnx")
    xt = torch.tensor(x)
    torch.onnx.export(model, (xt,), path, opset_version=opset, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "batch"}},
                      do_constant_folding=constant_folding, dynamo=False)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"x": x})[0]
    if xt.dtype.is_floating_point:
        xg = xt.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xg), torch.tensor(y), reduction="sum")
        loss.backward()
        grad = xg.grad.numpy()
    else:
        grad = np.zeros(x.shape)
        x = x.astype(np.float32)
    np.save(os.path.join(out, name + ".x.npy"), x)
    np.save(os.path.join(out, name + ".y.npy"), y)
    np.save(os.path.join(out, name + ".logits.npy"), logits.astype(np.float32))
    np.save(os.path.join(out, name + ".grad.npy"), grad.astype(np.float32))
    with torch.no_grad():
        diff = np.abs(model(xt).numpy() - logits).max()
    assert diff < 1e-4, f"{name}: torch and onnxruntime disagree"
    print(f"{name}: opset {opset}, {os.path.getsize(path)} bytes, torch-vs-ort max diff {diff:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "crates", "aisec-model", "tests", "fixtures"))
    ap.add_argument("--resnet", default=None)
    ap.add_argument("--mnist", default=None,
                    help="also export an MNIST-shaped CNN (random weights) to this path")
    ap.add_argument("--skip-small", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if not a.skip_small:
        os.makedirs(a.out, exist_ok=True)
        x, y = digits()
        rng = np.random.RandomState(0)
        test = rng.choice(len(x), 16, replace=False)
        mlp = Mlp()
        print("mlp train acc", train(mlp, x, y, 30))
        export(mlp, "digits_mlp", x[test], y[test], a.out, 11)
        cnn = Cnn()
        print("cnn train acc", train(cnn, x.reshape(-1, 1, 8, 8), y, 15))
        export(cnn, "digits_cnn", x[test].reshape(-1, 1, 8, 8), y[test], a.out, 13)
        zoo = Zoo()
        zx = rng.rand(4, 3, 12, 12).astype(np.float32)
        zy = rng.randint(0, 10, 4).astype(np.int64)
        export(zoo, "op_zoo", zx, zy, a.out, 17, constant_folding=False)
        up = Upsampler()
        ux = rng.rand(4, 3, 6, 6).astype(np.float32)
        export(up, "upsample_zoo", ux, zy, a.out, 13)
        export(up, "upsample_zoo11", ux, zy, a.out, 11)
        tc = TextClf()
        tx = rng.randint(0, 20, (8, 6)).astype(np.int64)
        ty = rng.randint(0, 10, 8).astype(np.int64)
        export(tc, "text_clf", tx, ty, a.out, 14)
    if a.mnist:
        d = os.path.dirname(os.path.abspath(a.mnist))
        os.makedirs(d, exist_ok=True)
        mx = np.random.RandomState(2).rand(8, 1, 28, 28).astype(np.float32)
        my = np.arange(8, dtype=np.int64) % 10
        export(MnistCnn(), os.path.splitext(os.path.basename(a.mnist))[0], mx, my, d, 13)
    if a.resnet:
        os.makedirs(os.path.dirname(os.path.abspath(a.resnet)), exist_ok=True)
        net = ResNet18()
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        rx = np.random.RandomState(1).rand(4, 3, 32, 32).astype(np.float32)
        ry = np.arange(4, dtype=np.int64)
        d = os.path.dirname(os.path.abspath(a.resnet))
        export(net, os.path.splitext(os.path.basename(a.resnet))[0], rx, ry, d, 13)


if __name__ == "__main__":
    main()
