#!/usr/bin/env python3
"""Regenerates the example system's data files (standard library only).

Writes, from the bundled 8x8 digits (crates/aisec/assets/digits.*.npy):
  data/members.npy   uint8 [400]: 1 for the first 400 digits that train the
                     MLP (a seeded random half), 0 for the other half;
  data/train_x.npy, data/train_y.npy: those 200 member digits and labels;
  data/ink_group.npy uint8 [1797]: 1 when a digit has more ink (sum of its
                     pixel values) than the median digit, else 0. A proxy
                     attribute standing in for a sensitive one (the digits
                     carry none), so the fairness check has groups to compare.
Then run ./regenerate.sh to train models/digits_mlp.onnx on them with
`aisec train` and to write the sample artifacts of models/.
"""
import ast
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.join(HERE, "..", "..", "crates", "aisec", "assets")


def read_npy(path):
    with open(path, "rb") as f:
        raw = f.read()
    assert raw[:6] == b"\x93NUMPY"
    major = raw[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", raw[8:10])
        start = 10
    else:
        (hlen,) = struct.unpack("<I", raw[8:12])
        start = 12
    header = ast.literal_eval(raw[start:start + hlen].decode("latin1"))
    return header, raw[start + hlen:]


def write_npy(path, descr, shape, data):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + data)


def main():
    hx, x = read_npy(os.path.join(ASSETS, "digits.x.npy"))
    hy, y = read_npy(os.path.join(ASSETS, "digits.y.npy"))
    assert hx["descr"] in ("|u1", "<u1") and tuple(hx["shape"][1:]) == (1, 8, 8), hx
    row = 64
    n = 400
    rng = random.Random(2024)
    idx = list(range(n))
    rng.shuffle(idx)
    members = set(idx[: n // 2])
    mask = bytes(1 if i in members else 0 for i in range(n))
    write_npy(os.path.join(HERE, "data", "members.npy"), "|u1", (n,), mask)
    ysize = {"|u1": 1, "<u1": 1, "<i8": 8, "<i4": 4, "<u2": 2, "<i2": 2}[hy["descr"]]
    take = sorted(members)
    tx = b"".join(x[i * row:(i + 1) * row] for i in take)
    ty = b"".join(y[i * ysize:(i + 1) * ysize] for i in take)
    write_npy(os.path.join(HERE, "data", "train_x.npy"), hx["descr"], (len(take), 1, 8, 8), tx)
    write_npy(os.path.join(HERE, "data", "train_y.npy"), hy["descr"], (len(take),), ty)
    total = hx["shape"][0]
    ink = [sum(x[i * row:(i + 1) * row]) for i in range(total)]
    median = sorted(ink)[total // 2]
    groups = bytes(1 if v > median else 0 for v in ink)
    write_npy(os.path.join(HERE, "data", "ink_group.npy"), "|u1", (total,), groups)
    print(f"members: {len(take)} of the first {n} digits; ink groups: {sum(groups)} of {total} above the median")


if __name__ == "__main__":
    main()
