#!/usr/bin/env python3
"""Two aisec builds, same evasion runs, interleaved: is the newer one slower?

    python3 bench/attack/before_after.py BEFORE_BIN AFTER_BIN [--reps 3] [--n-pgd 300] [--n-aa 10]
        [--threads 2] [--out bench/attack/BEFORE_AFTER.md]

Made for refactorings that must not change speed (issue 12). Needs only Python's standard
library and the committed fixtures (crates/aisec-attack/tests/fixtures: the undefended and the
adversarially trained MNIST CNNs and the first 300 held-out digits), so it runs anywhere the
two binaries do. Each repetition runs every (model, attack) cell on both binaries, in the order
A B on even repetitions and B A on odd ones, so drift in machine load hits both sides alike.
Times are the attack's own `seconds` from the JSON report (model loading and process start
excluded); the load average is read before every run and reported with the medians. The two
builds must also agree on the numbers (same seed, same attacks): the robust accuracies of
both are printed side by side.

With --memory-rows N it also writes N random 64-value rows (and labels) to a temporary
folder and runs FGSM on the committed digits MLP over them with each build, reporting the
peak resident memory (`/usr/bin/time -f %M`) and the size of the JSON report: per-example
outputs held in the report's JSON grow with N, a summary does not.
"""
import argparse
import array
import json
import os
import random
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIX = os.path.join(ROOT, "crates", "aisec-attack", "tests", "fixtures")
X = os.path.join(FIX, "mnist_test.x.npy")
Y = os.path.join(FIX, "mnist_test.y.npy")


def evasion_report(doc):
    if isinstance(doc, dict):
        d = doc.get("data")
        if isinstance(d, dict) and isinstance(d.get("evasion"), dict):
            return d["evasion"]
        for v in doc.values():
            r = evasion_report(v)
            if r is not None:
                return r
    if isinstance(doc, list):
        for v in doc:
            r = evasion_report(v)
            if r is not None:
                return r
    return None


def run(binary, model, attack, n, threads):
    args = [binary, "attack", "evasion", os.path.join(FIX, model + ".onnx"),
            "--inputs", X, "--labels", Y, "--scale", "0.00392156862745098",
            "--limit", str(n), "--attacks", attack, "--eps", "0.3", "--steps", "40",
            "--seed", "0", "--format", "json", "--no-progress"]
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    load = os.getloadavg()[0]
    t = time.time()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.time() - t
    # CPU seconds of the whole process (load, attack, report): steadier
    # than wall clock when other work shares the cores.
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    rep = evasion_report(json.loads(p.stdout)) if p.stdout.strip() else None
    if rep is None:
        raise RuntimeError(f"{binary} failed ({p.returncode}): {p.stderr[:400]}")
    r = [a for a in rep["attacks"] if a["attack"] == attack][0]
    return {"seconds": r["seconds"], "wall": wall, "cpu": cpu, "robust": r["robust_accuracy"], "load": load}


def write_npy(path, descr, shape, arr):
    dims = ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
        arr.tofile(f)


def memory(binary, x, y, out):
    model = os.path.join(ROOT, "crates", "aisec-model", "tests", "fixtures", "digits_mlp.onnx")
    args = ["/usr/bin/time", "-f", "%M", binary, "attack", "evasion", model, "--inputs", x, "--labels", y,
            "--attacks", "fgsm", "--eps", "0.1", "--batch-size", "1024", "--format", "json", "--no-progress"]
    load = os.getloadavg()[0]
    with open(out, "w") as f:
        p = subprocess.run(args, stdout=f, stderr=subprocess.PIPE, text=True)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{binary} failed ({p.returncode}): {p.stderr[-400:]}")
    return {"rss_mb": int(p.stderr.strip().splitlines()[-1]) / 1024, "json_bytes": os.path.getsize(out), "load": load}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n-pgd", type=int, default=300)
    ap.add_argument("--n-aa", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="mnist_cnn,mnist_madry")
    ap.add_argument("--label-before", default="before")
    ap.add_argument("--label-after", default="after")
    ap.add_argument("--memory-rows", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "BEFORE_AFTER.md"))
    a = ap.parse_args()
    cells = [(m, at, n) for m in a.models.split(",")
             for at, n in (("pgd", a.n_pgd), ("autoattack", a.n_aa))]
    res = {(c, side): [] for c in cells for side in ("A", "B")}
    loads = []
    for rep in range(a.reps):
        for c in cells:
            order = ("A", "B") if rep % 2 == 0 else ("B", "A")
            for side in order:
                binary = a.before if side == "A" else a.after
                r = run(binary, c[0], c[1], c[2], a.threads)
                res[(c, side)].append(r)
                loads.append(r["load"])
                print(json.dumps({"rep": rep, "model": c[0], "attack": c[1], "n": c[2], "side": side, **r}),
                      file=sys.stderr, flush=True)
    L = [f"# Evasion timing, two builds interleaved ({a.label_before} vs {a.label_after})", "",
         f"Command: `python3 bench/attack/before_after.py BEFORE AFTER {' '.join(sys.argv[3:])}`".rstrip() + "  ",
         f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} logical cores; "
         f"RAYON_NUM_THREADS={a.threads}  ",
         f"Load average (1 min) over the runs: min {min(loads):.2f}, median {statistics.median(loads):.2f}, "
         f"max {max(loads):.2f}", "",
         "L-inf eps 0.3 on the first N committed held-out MNIST digits (PGD-40; AutoAttack standard). "
         "Seconds are the attack's own time from the JSON report; median (min-max) over the repetitions, "
         "the two builds alternating A B / B A. CPU s is the process's user + system time (load, attack "
         "and report), the comparison on a loaded machine.", "",
         f"| model | attack | N | {a.label_before} s | {a.label_after} s | {a.label_after} / {a.label_before} "
         f"| {a.label_before} CPU s | {a.label_after} CPU s | CPU ratio | robust acc (both) | load avg (median) |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        A, B = res[(c, "A")], res[(c, "B")]
        sa = [r["seconds"] for r in A]
        sb = [r["seconds"] for r in B]
        ra = {round(r["robust"], 4) for r in A}
        rb = {round(r["robust"], 4) for r in B}
        same = "same" if ra == rb else "DIFFER"
        ca = [r["cpu"] for r in A]
        cb = [r["cpu"] for r in B]
        L.append(f"| {c[0]} | {c[1]} | {c[2]} | {statistics.median(sa):.2f} ({min(sa):.2f}-{max(sa):.2f}) | "
                 f"{statistics.median(sb):.2f} ({min(sb):.2f}-{max(sb):.2f}) | "
                 f"{statistics.median(sb) / max(statistics.median(sa), 1e-9):.2f}x | "
                 f"{statistics.median(ca):.2f} ({min(ca):.2f}-{max(ca):.2f}) | "
                 f"{statistics.median(cb):.2f} ({min(cb):.2f}-{max(cb):.2f}) | "
                 f"{statistics.median(cb) / max(statistics.median(ca), 1e-9):.2f}x | "
                 f"{'/'.join(map(str, sorted(ra)))} vs {'/'.join(map(str, sorted(rb)))} ({same}) | "
                 f"{statistics.median([r['load'] for r in A + B]):.2f} |")
    if a.memory_rows > 0:
        with tempfile.TemporaryDirectory() as d:
            rng = random.Random(0)
            x, y = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
            write_npy(x, "<f4", (a.memory_rows, 64), array.array("f", (rng.random() for _ in range(a.memory_rows * 64))))
            write_npy(y, "<i8", (a.memory_rows,), array.array("q", (rng.randrange(10) for _ in range(a.memory_rows))))
            mem = {"A": [], "B": []}
            for rep in range(a.reps):
                for side in (("A", "B") if rep % 2 == 0 else ("B", "A")):
                    r = memory(a.before if side == "A" else a.after, x, y, os.path.join(d, "out.json"))
                    mem[side].append(r)
                    print(json.dumps({"memory_rows": a.memory_rows, "side": side, **r}), file=sys.stderr, flush=True)
        L += ["", f"Memory: FGSM on the digits MLP over {a.memory_rows:,} random 64-value rows (batch 1,024), "
              "peak resident set (`/usr/bin/time -f %M`) and the size of the JSON report; median over the repetitions.", "",
              f"| build | peak RSS MB | JSON report bytes | load avg (median) |", "|---|---|---|---|"]
        for side, label in (("A", a.label_before), ("B", a.label_after)):
            m = mem[side]
            L.append(f"| {label} | {statistics.median([r['rss_mb'] for r in m]):.0f} | "
                     f"{statistics.median([r['json_bytes'] for r in m]):,.0f} | "
                     f"{statistics.median([r['load'] for r in m]):.2f} |")
    open(a.out, "w").write("\n".join(L) + "\n")
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
