#!/usr/bin/env python3
"""Where the bytes went: per fetch plan and kind of file, from a scan's
JSON Lines records (bench/scale/out/single.jsonl).

    python3 bench/scale/bytes_table.py bench/scale/out/single.jsonl
"""
import collections
import json
import sys


def kind(rec):
    name = rec["object"].rsplit("/", 1)[-1]
    if name.endswith(".json"):
        return "`*.json` (tokenizers, configs)"
    if name == "README.md":
        return "`README.md`"
    if rec["plan"] in ("zip", "gguf", "safetensors"):
        return rec["format"]
    return "pickles, joblib, `.py`, `.npy`, `.pt` fixtures"


rows = collections.defaultdict(lambda: [0, 0, 0])
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    r = json.loads(line)
    k = (r["plan"], kind(r))
    rows[k][0] += 1
    rows[k][1] += r["size"]
    rows[k][2] += r["bytes_read"]
total = sum(v[2] for v in rows.values())
print("| plan | kind | objects | bytes stored | bytes read | read / stored | share of all bytes read |")
print("|---|---|---:|---:|---:|---:|---:|")
for (plan, k), (n, stored, read) in sorted(rows.items(), key=lambda kv: -kv[1][2]):
    print(f"| {plan} | {k} | {n} | {stored} | {read} | {100 * read / max(1, stored):.3f} % "
          f"| {100 * read / max(1, total):.1f} % |")
print(f"\ntotal bytes read: {total}")
