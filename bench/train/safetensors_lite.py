"""Reads F32 safetensors files with numpy only (the `safetensors` package is
not in the shared venv)."""

import json
import struct

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8 : 8 + n])
    data = b[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {e['dtype']}")
        s, t = e["data_offsets"]
        out[name] = np.frombuffer(data[s:t], dtype="<f4").reshape(e["shape"]).copy()
    return out
