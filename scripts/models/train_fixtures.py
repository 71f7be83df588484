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
Softmax, GELU (Erf), Clip, Concat, Slice, Pad, Split, Transpose and more;
plus (group "arch") small random-weight networks with torchvision's
ViT, MobileNetV2 and VGG layouts, exported by both the TorchScript and the
dynamo exporter.

Usage: python3 scripts/models/train_fixtures.py [--out DIR] [--only small,arch] [--resnet PATH]
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
    subprocess.check_call([PY, "-m", "pip", "install", "-q", "torch", "torchvision", "onnx", "onnxscript",
                           "onnxruntime", "scikit-learn", "numpy"])
    os.execv(PY, [PY] + sys.argv)


ensure_venv()

import numpy as np  # noqa: E402
import onnx  # noqa: E402
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


# ---- torchvision-shaped architectures (small widths so the files stay small) ----

def tiny_vit():
    """torchvision's VisionTransformer (conv patch embedding, class token
    Concat, learned position embedding, pre-norm encoder blocks with
    nn.MultiheadAttention and a GELU MLP), 16x16 input, patch 4, 2 blocks."""
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=16, patch_size=4, num_layers=2, num_heads=2,
                             hidden_dim=16, mlp_dim=32, num_classes=10)


class ManualVit(nn.Module):
    """A ViT with attention written out (the form timm and many hand-written
    ViTs export to): conv patch embedding, class token expanded and Concat-ed,
    position embedding, pre-norm blocks whose qkv Linear is chunked (Split),
    heads split by Reshape/Transpose, MatMul-Softmax-MatMul, GELU MLP; the
    head reads the class token and the mean of the patch tokens. Unlike
    torchvision's nn.MultiheadAttention it also exports at opset 11."""

    def __init__(self, dim=16, heads=2, depth=2, classes=10):
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, dim, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, 17, dim) * 0.2)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(nn.ModuleDict({
                "ln1": nn.LayerNorm(dim), "qkv": nn.Linear(dim, 3 * dim),
                "proj": nn.Linear(dim, dim), "ln2": nn.LayerNorm(dim),
                "fc1": nn.Linear(dim, 2 * dim), "fc2": nn.Linear(2 * dim, dim)}))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(2 * dim, classes)

    def forward(self, x):
        n = x.shape[0]
        q_dim = self.cls.shape[-1]
        t = self.patch(x).flatten(2).transpose(1, 2)             # [N,16,D]
        t = torch.cat([self.cls.expand(n, -1, -1), t], dim=1) + self.pos
        for b in self.blocks:
            h = b["ln1"](t)
            q, k, v = torch.split(b["qkv"](h), [q_dim] * 3, dim=-1)
            sh = (n, t.shape[1], self.heads, -1)
            q, k, v = (z.reshape(sh).transpose(1, 2) for z in (q, k, v))
            a = torch.softmax(q @ k.transpose(-2, -1) * (q.shape[-1] ** -0.5), dim=-1)
            o = (a @ v).transpose(1, 2).reshape(n, t.shape[1], -1)
            t = t + b["proj"](o)
            t = t + b["fc2"](F.gelu(b["fc1"](b["ln2"](t))))
        t = self.norm(t)
        return self.head(torch.cat([t[:, 0], t[:, 1:].mean(1)], dim=1))


class TinyMobileNetV2(nn.Module):
    """MobileNetV2 layout built from torchvision's own blocks (stem
    Conv-BN-ReLU6, inverted residuals: 1x1 expand, 3x3 depthwise, 1x1
    linear projection, residual Add when shapes allow), width-reduced:
    channels 8..24, last 1x1 conv to 64, Dropout + Linear head."""

    def __init__(self, classes=10):
        super().__init__()
        from torchvision.models.mobilenetv2 import InvertedResidual
        from torchvision.ops.misc import Conv2dNormActivation
        layers = [Conv2dNormActivation(3, 8, stride=2, norm_layer=nn.BatchNorm2d,
                                       activation_layer=nn.ReLU6)]
        cin = 8
        for t, c, n, s in [(1, 8, 1, 1), (4, 12, 2, 2), (4, 16, 2, 2), (4, 24, 1, 1)]:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, expand_ratio=t))
                cin = c
        layers.append(Conv2dNormActivation(cin, 64, kernel_size=1, norm_layer=nn.BatchNorm2d,
                                           activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, classes))

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))


class TinyVgg(nn.Module):
    """VGG layout (torchvision's make_layers: stacked 3x3 Conv+ReLU and
    2x2 MaxPool, adaptive average pool, Flatten, Linear-ReLU-Dropout x2,
    Linear) at 16x16 with narrow layers."""

    def __init__(self, classes=10):
        super().__init__()
        from torchvision.models.vgg import make_layers
        self.features = make_layers([8, "M", 16, 16, "M", 32, 32, "M"], batch_norm=False)
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(32 * 2 * 2, 48), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(48, 48), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(48, classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class ActZoo(nn.Module):
    """Random-weight network (input [N,3,8,8]) for the operators timm and
    torchvision models add on top of the classics: HardSwish, HardSigmoid
    (squeeze-excitation gate), InstanceNormalization, PRelu, Elu, Selu,
    Celu, Softplus, Mish, ReduceMax (amax), Max/Min, Tile, GlobalMaxPool,
    Reciprocal, Neg, Abs, Exp, Log, Sqrt, Pow."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.prelu = nn.PReLU(8)
        self.se1 = nn.Conv2d(8, 4, 1)
        self.se2 = nn.Conv2d(4, 8, 1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8 * 6, 10)
        with torch.no_grad():
            self.inorm.weight.uniform_(0.5, 1.5)
            self.inorm.bias.uniform_(-0.2, 0.2)
            self.prelu.weight.uniform_(0.05, 0.4)

    def forward(self, x):
        h = self.prelu(self.inorm(self.c1(x)))
        s = F.hardsigmoid(self.se2(F.hardswish(self.se1(F.adaptive_avg_pool2d(h, 1)))))
        h = F.hardswish(self.c2(h * s))                               # [N,8,8,8]
        a = F.elu(h, 0.7) + F.selu(h) - F.celu(h, 0.8)
        b = F.mish(h) * F.softplus(-h)
        m = torch.maximum(a, b) + torch.minimum(a, 0.5 * b)
        t = h[:, :, :2, :2].repeat(1, 1, 2, 3)                         # Tile -> [N,8,4,6]
        f = torch.cat([
            m.amax(dim=(2, 3)),
            F.adaptive_max_pool2d(h, 1).flatten(1),
            t.abs().mean((2, 3)),
            torch.log(1.0 + torch.exp(-h.abs())).mean((2, 3)),
            torch.sqrt(h * h + 1.0).mean((2, 3)) ** 1.5,
            torch.reciprocal(1.0 + b.abs()).neg().mean((2, 3)),
        ], dim=1)
        return self.fc(f)


class TextCnn(nn.Module):
    """A Kim-style (2014) convolutional text classifier over token ids [N,12]:
    Embedding (Gather), Transpose, two Conv1d widths, ReLU, max over time
    (ReduceMax), Concat, Linear."""

    def __init__(self, vocab=30, dim=8, classes=10):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.c3 = nn.Conv1d(dim, 6, 3, padding=1)
        self.c5 = nn.Conv1d(dim, 6, 5, padding=2)
        self.fc = nn.Linear(12, classes)

    def forward(self, t):
        e = self.emb(t).transpose(1, 2)                       # [N,D,L]
        f = torch.cat([F.relu(self.c3(e)).amax(2), F.relu(self.c5(e)).amax(2)], 1)
        return self.fc(f)


class TextLstm(nn.Module):
    """A recurrent text classifier over token ids [N,10]: Embedding, a
    bidirectional batch-first nn.LSTM (ONNX LSTM with Transposes around
    it), the final hidden states of both directions and the mean of the
    outputs, Linear."""

    def __init__(self, vocab=30, dim=6, hidden=5, classes=10):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(4 * hidden, classes)

    def forward(self, t):
        out, (hn, _) = self.rnn(self.emb(t))
        return self.fc(torch.cat([hn[0], hn[1], out.mean(1)], 1))


class SeqLstm(nn.Module):
    """A time-series classifier over float features [N,8,4]: a two-layer
    batch-first nn.LSTM (two ONNX LSTM nodes), the last step's output,
    Linear; float inputs, so torch's input gradient checks the LSTM adjoint."""

    def __init__(self, classes=10):
        super().__init__()
        self.rnn = nn.LSTM(4, 6, num_layers=2, batch_first=True)
        self.fc = nn.Linear(6, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class SeqGru(nn.Module):
    """A bidirectional batch-first nn.GRU over float features [N,8,4]
    (ONNX GRU with linear_before_reset=1), final hidden states, Linear."""

    def __init__(self, classes=10):
        super().__init__()
        self.rnn = nn.GRU(4, 5, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(10, classes)

    def forward(self, x):
        _, hn = self.rnn(x)
        return self.fc(torch.cat([hn[0], hn[1]], 1))


def randomize_bn(net, seed):
    """Gives eval-mode BatchNorm layers non-trivial statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)


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


def export(model, name, x, y, out, opset, constant_folding=True, dynamo=False):
    model.eval()
    path = os.path.join(out, name + ".onnx")
    xt = torch.tensor(x)
    if dynamo:
        # The torch.export-based exporter (onnxscript); weights inlined.
        prog = torch.onnx.export(model, (xt,), opset_version=opset, input_names=["x"],
                                 output_names=["logits"], dynamo=True,
                                 dynamic_shapes=({0: torch.export.Dim("batch")},),
                                 external_data=False)
        prog.save(path, external_data=False)
        # Drop the exporter's per-node stack traces and value_info (metadata
        # only) so the file stays small.
        m = onnx.load(path)
        for n in m.graph.node:
            n.doc_string = ""
            del n.metadata_props[:]
        del m.graph.value_info[:]
        del m.metadata_props[:]
        onnx.save(m, path)
    else:
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


ARCH = ["vit_tiny", "vit_tiny_dynamo", "vit_manual", "vit_manual11", "vit_manual_dynamo", "mobilenetv2_tiny",
        "mobilenetv2_tiny_dynamo", "act_zoo", "act_zoo_dynamo", "text_cnn", "text_cnn_dynamo", "text_lstm", "seq_lstm", "seq_gru", "vgg_tiny", "vgg_tiny_dynamo"]


def export_arch(out):
    """ViT-, MobileNetV2- and VGG-shaped networks with random weights, in the
    TorchScript exporter's opset-17/13 form and the dynamo exporter's
    opset-18 form; the hand-written ViT also at opset 11 (attribute forms of
    Split/Squeeze/Unsqueeze/ReduceMean, decomposed LayerNorm)."""
    rng = np.random.RandomState(5)
    x = rng.rand(4, 3, 16, 16).astype(np.float32)
    y = rng.randint(0, 10, 4).astype(np.int64)
    torch.manual_seed(10)
    vit = tiny_vit()
    with torch.no_grad():   # torchvision zero-initialises the head and the class token
        vit.heads.head.weight.normal_(0, 0.3)
        vit.class_token.normal_(0, 0.5)
    export(vit, "vit_tiny", x, y, out, 17)
    export(vit, "vit_tiny_dynamo", x, y, out, 18, dynamo=True)
    torch.manual_seed(13)
    mv = ManualVit()
    export(mv, "vit_manual", x, y, out, 17)
    export(mv, "vit_manual11", x, y, out, 11)
    export(mv, "vit_manual_dynamo", x, y, out, 18, dynamo=True)
    torch.manual_seed(11)
    mb = TinyMobileNetV2()
    randomize_bn(mb, 11)
    # Without constant folding the exporter keeps BatchNormalization nodes
    # (eval mode) instead of fusing them into the convolutions. (Its opset-11
    # form is the same graph, so it is not exported separately.)
    export(mb, "mobilenetv2_tiny", x, y, out, 13, constant_folding=False)
    export(mb, "mobilenetv2_tiny_dynamo", x, y, out, 18, dynamo=True)
    torch.manual_seed(14)
    az = ActZoo()
    ax = np.random.RandomState(6).randn(4, 3, 8, 8).astype(np.float32)
    export(az, "act_zoo", ax, y, out, 17)
    export(az, "act_zoo_dynamo", ax, y, out, 18, dynamo=True)
    torch.manual_seed(15)
    tcnn = TextCnn()
    tx = np.random.RandomState(7).randint(0, 30, (6, 12)).astype(np.int64)
    ty = np.random.RandomState(8).randint(0, 10, 6).astype(np.int64)
    export(tcnn, "text_cnn", tx, ty, out, 13)
    export(tcnn, "text_cnn_dynamo", tx, ty, out, 18, dynamo=True)
    torch.manual_seed(16)
    tl = TextLstm()
    lx = np.random.RandomState(9).randint(0, 30, (5, 10)).astype(np.int64)
    ly = np.random.RandomState(10).randint(0, 10, 5).astype(np.int64)
    export(tl, "text_lstm", lx, ly, out, 14)
    torch.manual_seed(17)
    sx = np.random.RandomState(11).randn(5, 8, 4).astype(np.float32)
    export(SeqLstm(), "seq_lstm", sx, ly, out, 14)
    torch.manual_seed(18)
    export(SeqGru(), "seq_gru", sx, ly, out, 14)
    torch.manual_seed(12)
    vgg = TinyVgg()
    export(vgg, "vgg_tiny", x, y, out, 13)
    export(vgg, "vgg_tiny_dynamo", x, y, out, 18, dynamo=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "crates", "aisec-model", "tests", "fixtures"))
    ap.add_argument("--resnet", default=None)
    ap.add_argument("--mnist", default=None,
                    help="also export an MNIST-shaped CNN (random weights) to this path")
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--only", default=None,
                    help="comma-separated groups to (re)export: small, arch (ViT/MobileNetV2/VGG)")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else {"small", "arch"}
    torch.set_num_threads(2)
    if not a.skip_small and "small" in only:
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
    if not a.skip_small and "arch" in only:
        os.makedirs(a.out, exist_ok=True)
        export_arch(a.out)
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
