"""The aisec architecture spec (crates/aisec-model/src/spec.rs) as a torch
module, with parameter names equal to aisec's weight names, so safetensors
files move between the two unchanged. Used by the training benchmark and the
onnxruntime cross-check; not part of aisec."""

import json

import torch
from torch import nn


class Residual(nn.Module):
    """3x3 conv (stride s) - [BN] - ReLU - 3x3 conv - [BN], plus identity or
    1x1 projection (stride s) [+ BN], then ReLU, as aisec compiles it."""

    def __init__(self, c, f, stride, bn):
        super().__init__()
        self.conv1 = nn.Conv2d(c, f, 3, stride, 1)
        self.conv2 = nn.Conv2d(f, f, 3, 1, 1)
        self.bn = bn
        if bn:
            self.bn1 = nn.BatchNorm2d(f)
            self.bn2 = nn.BatchNorm2d(f)
        self.has_proj = not (c == f and stride == 1)
        if self.has_proj:
            self.proj = nn.Conv2d(c, f, 1, stride, 0)
            if bn:
                self.proj_bn = nn.BatchNorm2d(f)

    def forward(self, x):
        h = self.conv1(x)
        if self.bn:
            h = self.bn1(h)
        h = self.conv2(torch.relu(h))
        if self.bn:
            h = self.bn2(h)
        s = x
        if self.has_proj:
            s = self.proj(x)
            if self.bn:
                s = self.proj_bn(s)
        return torch.relu(h + s)


class SpecNet(nn.Module):
    def __init__(self, spec):
        super().__init__()
        shape = list(spec["input"])
        self.order = []
        for i, l in enumerate(spec["layers"]):
            t = l["type"]
            name = f"layer{i}"
            if t == "dense":
                m = nn.Linear(shape[0], l["units"])
                shape = [l["units"]]
            elif t == "conv2d":
                k, s, p = l["kernel"], l.get("stride", 1), l.get("padding", 0)
                m = nn.Conv2d(shape[0], l["filters"], k, s, p)
                shape = [l["filters"], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
            elif t in ("max_pool2d", "avg_pool2d"):
                k = l["size"]
                m = (nn.MaxPool2d if t == "max_pool2d" else nn.AvgPool2d)(k, k)
                shape = [shape[0], shape[1] // k, shape[2] // k]
            elif t == "global_avg_pool":
                m = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
                shape = [shape[0]]
            elif t == "flatten":
                m = nn.Flatten()
                n = 1
                for d in shape:
                    n *= d
                shape = [n]
            elif t == "relu":
                m = nn.ReLU()
            elif t == "tanh":
                m = nn.Tanh()
            elif t == "sigmoid":
                m = nn.Sigmoid()
            elif t == "batch_norm":
                bn = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
                m = bn(shape[0], eps=l.get("eps", 1e-5), momentum=l.get("momentum", 0.1))
            elif t == "residual":
                s = l.get("stride", 1)
                m = Residual(shape[0], l["filters"], s, l.get("batch_norm", False))
                h = (shape[1] + 2 - 3) // s + 1
                w = (shape[2] + 2 - 3) // s + 1
                shape = [l["filters"], h, w]
            else:
                raise ValueError(f"unknown layer type {t}")
            setattr(self, name, m)
            self.order.append(name)

    def forward(self, x):
        for n in self.order:
            x = getattr(self, n)(x)
        return x


def load_spec(path):
    with open(path) as f:
        return json.load(f)


def load_weights(net, path):
    """Loads an aisec safetensors file into `net` (names match)."""
    from safetensors_lite import read_safetensors

    ws = read_safetensors(path)
    sd = net.state_dict()
    missing = [k for k in sd if k not in ws and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"weights lack {missing}")
    net.load_state_dict({k: torch.from_numpy(v) for k, v in ws.items()}, strict=False)
    return net
