#!/usr/bin/env bash
# Cross-check and benchmark of `aisec scan` against picklescan, modelscan and
# fickling on a generated corpus. Writes bench/scan/RESULTS.md.
#
#   bench/scan/run.sh                      full corpus (~3 GB, 1,000+ files)
#   CORPUS_SCALE=0.1 bench/scan/run.sh     quick run on a smaller corpus
#
# Environment:
#   CORPUS_SCALE  shrink factor for counts and sizes (default 1)
#   REGEN=1       regenerate the corpus even if one with the same scale exists
#   SKIP_PEERS=1  do not run any peer; use whatever peer outputs are in work/out
#   FRESH=1       rerun every peer even when its outputs for this corpus exist
#   SKIP_AISEC=1  do not build or run aisec
#   SKIP_FICKLING_CLI=1  do not run fickling's CLI once per file (the slowest step)
#   SKIP_SCALING=1  do not run the size-scaling step (keeps work/out/scaling.json from an earlier run)
#   AISEC_BIN     use this aisec binary instead of building one
#   BENCH_WORK    work directory (default bench/scan/work); the report then goes to $BENCH_WORK/RESULTS.md
#   AISEC_RUNS    how many times aisec scans the corpus (median reported; default 3)
#   CARGO_TARGET_DIR  where cargo builds (default: <repo>/target)
#   VENV          the peers' virtual environment (default bench/scan/.venv; created if missing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${BENCH_WORK:-$HERE/work}"
CORPUS="$WORK/corpus"
SCALING="$WORK/scaling"
OUT="$WORK/out"
VENV="${VENV:-$HERE/.venv}"
SCALE="${CORPUS_SCALE:-1}"
AISEC_RUNS="${AISEC_RUNS:-3}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
AISEC="$TARGET/release/aisec"

log() { printf '[run.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# ---- tools ---------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
    log "installing GNU time"
    apt-get install -y time >/dev/null
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
# Pinned to the versions this benchmark was written against. numpy<2
# because modelscan 0.8.8's .npy scanner calls numpy.lib.format._check_version,
# which numpy 2 removed; fickling 0.1.12 imports typing_extensions without
# declaring it.
"$VENV/bin/pip" install -q \
    picklescan==1.0.5 modelscan==0.8.8 fickling==0.1.12 typing_extensions==4.16.0 \
    numpy==1.26.4 joblib==1.6.0 h5py==3.16.0
PY="$VENV/bin/python"

run_aisec=1
if [ "${SKIP_AISEC:-0}" = 1 ]; then
    run_aisec=0
elif [ -n "${AISEC_BIN:-}" ]; then
    AISEC="$AISEC_BIN"
    log "using AISEC_BIN=$AISEC (not building)"
else
    log "building aisec (release)"
    if ! (cd "$REPO" && cargo build --release -p aisec); then
        if [ -x "$AISEC" ]; then
            log "aisec does not build now; using the binary from the last successful build: $AISEC"
        else
            log "aisec does not build; continuing with the peers only"
            run_aisec=0
        fi
    fi
fi
if [ "$run_aisec" = 1 ] && ! "$AISEC" scan --help >/dev/null 2>&1; then
    log "aisec has no working 'scan' command; continuing with the peers only"
    run_aisec=0
fi

# ---- corpus --------------------------------------------------------------
mkdir -p "$WORK" "$OUT"
have_scale=""
if [ -f "$CORPUS/manifest.json" ]; then
    have_scale="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["scale"])' "$CORPUS/manifest.json")"
fi
want_scale="$("$PY" -c 'import sys; print(max(0.01, min(1.0, float(sys.argv[1]))))' "$SCALE")"
if [ "${REGEN:-0}" = 1 ] || [ "$have_scale" != "$want_scale" ] || [ ! -f "$SCALING/ckpt_1GB.pt" ]; then
    log "generating corpus (scale $want_scale)"
    rm -rf "$CORPUS" "$SCALING"
    "$PY" "$HERE/gen_corpus.py" --out "$CORPUS" --scale "$want_scale" --scaling-dir "$SCALING"
    rm -f "$OUT"/*
else
    log "reusing corpus in $CORPUS (scale $have_scale)"
fi
"$PY" -c 'import json,sys; [print(m["path"]) for m in json.load(open(sys.argv[1]))["files"]]' \
    "$CORPUS/manifest.json" > "$WORK/files.txt"

TIMEV=(/usr/bin/time -v)

# ---- peers ---------------------------------------------------------------
# A step whose outputs already exist for this corpus is not run again
# (outputs are cleared whenever the corpus is regenerated); FRESH=1 reruns all.
[ "${FRESH:-0}" = 1 ] && rm -f "$OUT"/picklescan* "$OUT"/modelscan* "$OUT"/fickling*
need() { [ "${SKIP_PEERS:-0}" != 1 ] && [ ! -s "$OUT/$1.time" ]; }

if need picklescan; then
    log "picklescan CLI over the corpus directory"
    "${TIMEV[@]}" -o "$OUT/picklescan.time" "$VENV/bin/picklescan" -p "$CORPUS" \
        > "$OUT/picklescan.txt" 2>&1 || true
fi
if need picklescan_api; then
    log "picklescan library, one process, file by file"
    "${TIMEV[@]}" -o "$OUT/picklescan_api.time" "$PY" "$HERE/picklescan_batch.py" "$CORPUS" \
        "$CORPUS/manifest.json" "$OUT/picklescan_api.jsonl" > "$OUT/picklescan_api.log" 2>&1 || true
fi
if need modelscan; then
    log "modelscan"
    rm -f "$OUT/modelscan.json"
    "${TIMEV[@]}" -o "$OUT/modelscan.time" "$VENV/bin/modelscan" scan -p "$CORPUS" -r json \
        -o "$OUT/modelscan.json" > "$OUT/modelscan.log" 2>&1 || true
fi
if [ "${SKIP_FICKLING_CLI:-0}" = 1 ]; then
    log "fickling CLI skipped (SKIP_FICKLING_CLI=1): one process per file takes minutes; the library run below gives fickling's verdicts"
    rm -f "$OUT/fickling_cli.time" "$OUT/fickling_cli.tsv"
elif need fickling_cli; then
    log "fickling CLI, one process per file ($(wc -l < "$WORK/files.txt") files)"
    # One bash loop timed as a whole: GNU time reports the loop's wall time
    # and the largest RSS of any fickling process it waited for.
    "${TIMEV[@]}" -o "$OUT/fickling_cli.time" bash -c '
        set -u
        while IFS= read -r rel; do
            rc=0
            "$1/bin/fickling" --check-safety --json-output /dev/null "$2/$rel" >/dev/null 2>&1 || rc=$?
            printf "%s\t%s\n" "$rc" "$rel"
        done < "$3"' _ "$VENV" "$CORPUS" "$WORK/files.txt" > "$OUT/fickling_cli.tsv"
fi
if need fickling_api; then
    log "fickling library, one process"
    "${TIMEV[@]}" -o "$OUT/fickling_api.time" "$PY" "$HERE/fickling_batch.py" "$CORPUS" \
        "$CORPUS/manifest.json" "$OUT/fickling_api.jsonl" > "$OUT/fickling_api.log" 2>&1 || true
fi

# ---- aisec ---------------------------------------------------------------
if [ "$run_aisec" = 1 ]; then
    rm -f "$OUT"/aisec.run*.time
    for i in $(seq 0 $((AISEC_RUNS - 1))); do
        log "aisec run $((i + 1))/$AISEC_RUNS"
        "${TIMEV[@]}" -o "$OUT/aisec.run$i.time" "$AISEC" scan "$CORPUS" --format json --no-progress \
            > "$OUT/aisec.json" 2> "$OUT/aisec.stderr" || true
    done
    cp "$OUT/aisec.run0.time" "$OUT/aisec.time"
    # The peers are single-threaded; one worker thread is the like-for-like CPU comparison.
    rm -f "$OUT"/aisec_j1.run*.time
    for i in $(seq 0 $((AISEC_RUNS - 1))); do
        log "aisec -j 1 run $((i + 1))/$AISEC_RUNS"
        "${TIMEV[@]}" -o "$OUT/aisec_j1.run$i.time" "$AISEC" scan "$CORPUS" --format json --no-progress -j 1 \
            > /dev/null 2>&1 || true
    done
fi

# ---- size scaling --------------------------------------------------------
AISEC_FOR_SCALING=""
[ "$run_aisec" = 1 ] && AISEC_FOR_SCALING="$AISEC"
if [ "${SKIP_SCALING:-0}" = 1 ]; then
    log "size scaling skipped (SKIP_SCALING=1)"
    SCALING_PY=(true)
else
    log "size scaling (10 MB / 100 MB / 1 GB checkpoints)"
    SCALING_PY=("$PY" -)
fi
"${SCALING_PY[@]}" "$SCALING" "$OUT/scaling.json" "$VENV" "$AISEC_FOR_SCALING" <<'EOF'
import json, os, statistics, subprocess, sys, tempfile, time
sd, out, venv, aisec = sys.argv[1:5]
repeats = 5
tools = {}
if aisec:
    tools["aisec"] = lambda p: [aisec, "scan", p, "--format", "json", "--no-progress"]
tools["picklescan"] = lambda p: [f"{venv}/bin/picklescan", "-p", p]
tools["modelscan"] = lambda p: [f"{venv}/bin/modelscan", "scan", "-p", p, "-r", "json", "-o", os.devnull]

def evict(path):
    # Drop this one file's pages from the page cache (POSIX_FADV_DONTNEED on
    # a clean file), so the next run reads from disk; other files untouched.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)

def resident_bytes(path):
    # Bytes of `path` now in the page cache (mincore over a read-only map).
    import ctypes, mmap
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        a = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, f.fileno(), 0)
        if a in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            n = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vec = (ctypes.c_ubyte * n)()
            if libc.mincore(ctypes.c_void_p(a), ctypes.c_size_t(size), vec) != 0:
                return None
            return sum(v & 1 for v in vec) * mmap.PAGESIZE
        finally:
            libc.munmap(ctypes.c_void_p(a), size)

def timed(cmd):
    with tempfile.NamedTemporaryFile("r") as tf:
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        try:
            rss = int(open(tf.name).read().strip().splitlines()[-1])
        except (ValueError, IndexError):
            rss = None
    return wall, rss

rows = []
for name in ["10MB", "100MB", "1GB"]:
    p = os.path.join(sd, f"ckpt_{name}.pt")
    warm, cold, rss, cached = {}, {}, {}, {}
    for t, cmd in tools.items():
        ws, cs, rs = [], [], []
        for _ in range(repeats):
            w, r = timed(cmd(p))
            ws.append(w)
            rs.append(r or 0)
        rb = []
        for _ in range(3):
            evict(p)
            w, r = timed(cmd(p))
            cs.append(w)
            rs.append(r or 0)
            rb.append(resident_bytes(p) or 0)
        cached[t] = max(rb) / 1048576
        warm[t] = statistics.median(ws)
        cold[t] = statistics.median(cs)
        rss[t] = max(rs) / 1024
    rows.append({"name": name, "bytes": os.path.getsize(p), "times": warm, "cold": cold, "rss_mib": rss,
                 "cached_after_cold_mib": cached})
ra = "?"
try:
    dev = os.stat(sd).st_dev
    name = os.path.basename(os.path.realpath(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"))
    for cand in (f"/sys/block/{name}/queue/read_ahead_kb", f"/sys/class/block/{name}/../queue/read_ahead_kb"):
        if os.path.exists(cand):
            ra = open(cand).read().strip()
            break
except OSError:
    pass
json.dump({"repeats": repeats, "cold_repeats": 3, "read_ahead_kb": ra, "tools": list(tools), "rows": rows},
          open(out, "w"), indent=1)
EOF

# ---- environment and report ----------------------------------------------
AISEC_VERSION="not run"
if [ "$run_aisec" = 1 ]; then
    dirty=""
    (cd "$REPO" && git diff --quiet HEAD -- crates Cargo.toml) || dirty=", working tree with uncommitted changes"
    AISEC_VERSION="$("$AISEC" --version 2>/dev/null | head -1 | sed 's/^aisec //' || echo unknown)"
    if [ -n "${AISEC_BIN:-}" ]; then
        AISEC_VERSION="$AISEC_VERSION (binary given as AISEC_BIN; repo at git $(cd "$REPO" && git rev-parse --short HEAD))"
    else
        AISEC_VERSION="$AISEC_VERSION (built from git $(cd "$REPO" && git rev-parse --short HEAD)$dirty)"
    fi
fi
"$PY" - "$WORK/env.json" "$VENV" "$AISEC_VERSION" "$SCALE" <<'EOF'
import datetime, json, os, platform, subprocess, sys
out, venv, aisec_v, scale = sys.argv[1:5]
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
mem_kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
freeze = subprocess.run([f"{venv}/bin/pip", "freeze"], capture_output=True, text=True).stdout.split()
vers = {"aisec": aisec_v, "python": platform.python_version()}
for line in freeze:
    if "==" in line:
        k, v = line.split("==", 1)
        if k.lower() in ("picklescan", "modelscan", "fickling", "numpy"):
            vers[k] = v
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    "machine": f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1048576:.0f} GiB RAM, {platform.system()} {platform.release()}",
    "command": ("CORPUS_SCALE=%s " % scale if scale != "1" else "") + "bench/scan/run.sh",
    "versions": vers,
    "loadavg_at_report": open("/proc/loadavg").read().split()[:3],
}, open(out, "w"), indent=1)
EOF
# The committed report is bench/scan/RESULTS.md; a run in another BENCH_WORK writes its report there instead.
RESULTS="$HERE/RESULTS.md"
[ -n "${BENCH_WORK:-}" ] && RESULTS="$WORK/RESULTS.md"
"$PY" "$HERE/compare.py" "$WORK" "$RESULTS"
log "done: $RESULTS"
