#!/usr/bin/env python3
"""Generates benign benchmark pickles and times picklescan's scan_pickle_bytes
on them (best of 5, in-process, interpreter start excluded).

Run with the venv made by scripts/fixtures/gen_pickle_fixtures.py plus
`pip install picklescan`:
    scripts/.venv/bin/python crates/aisec-pickle/bench/compare_picklescan.py /tmp/pickle-bench
then time aisec on the same files:
    cargo run --release -p aisec-pickle --example pickle_throughput -- /tmp/pickle-bench/*
"""
import io
import os
import pickle
import sys
import time

import numpy as np
from picklescan.scanner import scan_pickle_bytes

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
files = {
    "numpy_dict_p4.pkl": pickle.dumps({f"layer{i}.weight": np.zeros((2, 2), dtype="f4") for i in range(20000)}, protocol=4),
    "list_1m_p2.pkl": pickle.dumps([i * 0.5 if i % 2 else f"s{i}" for i in range(1_000_000)], protocol=2),
    "nested_p0.pkl": pickle.dumps([{"a": (i, str(i), [i, i + 1])} for i in range(100000)], protocol=0),
}
for name, data in files.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        r = scan_pickle_bytes(io.BytesIO(data), name)
        best = min(best, time.perf_counter() - t)
    print(f"{name}\t{len(data)} bytes\tpicklescan {best * 1e3:.1f} ms\t{len(data) / best / 1e6:.2f} MB/s\tissues={r.issues_count}")
