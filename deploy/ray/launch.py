#!/usr/bin/env python3
"""Fans `aisec scan --shard K/N` out over a Ray cluster and merges the
shards with `aisec report merge`.

The aisec binary stays a plain CLI: each Ray task runs one shard of the
work list as a subprocess on whatever node Ray places it, and returns its
JSON Lines records to the driver, which writes them beside each other and
merges them. Every node needs the aisec binary at --aisec (bake it into the
node image, see deploy/k8s/Dockerfile) and the environment the sources need
(HF_TOKEN / HF_ENDPOINT, AWS_*), passed through with --env.

    python launch.py --list repos.txt --shards 64 --out results/ \
        --aisec /usr/local/bin/aisec --address auto --env HF_TOKEN

Prints one JSON line: shards, seconds, exit codes, the merged report path.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import ray


@ray.remote(num_cpus=1, max_retries=2)
def scan_shard(aisec, list_text, k, n, env, extra):
    import tempfile
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        lst = os.path.join(d, "list.txt")
        rec = os.path.join(d, "records.jsonl")
        with open(lst, "w") as f:
            f.write(list_text)
        cmd = [aisec, "scan", "--quiet", "--no-progress", "--from-list", lst,
               "--shard", f"{k}/{n}", "--records", rec, "--no-fail",
               "--format", "json", "-o", os.path.join(d, "report.json")] + extra
        p = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
        records = open(rec).read() if os.path.exists(rec) else ""
    return {"shard": k, "code": p.returncode, "seconds": time.time() - t0,
            "records": records, "stderr": p.stderr[-2000:], "node": ray.get_runtime_context().get_node_id()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", required=True, help="work list: one source a line")
    ap.add_argument("--shards", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--aisec", default="aisec")
    ap.add_argument("--address", default="auto")
    ap.add_argument("--env", action="append", default=[], help="NAME to pass through to the tasks")
    ap.add_argument("--format", default="json", help="merged report format")
    ap.add_argument("extra", nargs="*", help="more `aisec scan` arguments (after --)")
    a = ap.parse_args()
    ray.init(address=a.address, log_to_driver=False)
    os.makedirs(a.out, exist_ok=True)
    text = open(a.list).read()
    env = {k: os.environ[k] for k in a.env if k in os.environ}
    t0 = time.time()
    futures = [scan_shard.remote(a.aisec, text, k, a.shards, env, a.extra) for k in range(a.shards)]
    results = ray.get(futures)
    files = []
    for r in sorted(results, key=lambda r: r["shard"]):
        path = os.path.join(a.out, f"shard-{r['shard']:04d}.jsonl")
        with open(path, "w") as f:
            f.write(r["records"])
        files.append(path)
    scan_s = time.time() - t0
    merged = os.path.join(a.out, f"merged.{a.format}")
    m = subprocess.run([a.aisec, "report", "merge", "--no-fail", "--format", a.format, "-o", merged] + files)
    # Exit 2 from a shard means some objects could not be read (they are in
    # its records as errors); anything else above 1 is a failed shard.
    bad = [r for r in results if r["code"] not in (0, 1, 2)]
    print(json.dumps({
        "shards": a.shards, "seconds": round(time.time() - t0, 3), "scan_seconds": round(scan_s, 3),
        "codes": sorted({r["code"] for r in results}), "nodes": len({r["node"] for r in results}),
        "merged": merged, "merge_code": m.returncode,
        "failed_shards": [{"shard": r["shard"], "stderr": r["stderr"]} for r in bad],
    }))
    sys.exit(1 if bad or m.returncode not in (0, 1, 2) else 0)


if __name__ == "__main__":
    main()
