#!/usr/bin/env bash
# The 2025-2026 technique corpus (issue 20): generate it, run aisec,
# picklescan, modelscan and fickling on every case, write RESULTS_2025.md.
#
#   bench/scan/run_2025.sh
#
# Environment: AISEC_BIN (default target/release/aisec, built if missing),
# VENV (default bench/scan/.venv-2025; created with the pinned peers plus
# torch (CPU wheel when the PyTorch index is reachable), py7zr,
# backports.zstd, h5py), WORK (default bench/scan/work/2025),
# REUSE=1 keep the corpus and the peers' verdicts of the last run (rerun aisec only),
# GEN_PYTHONPATH: PYTHONPATH for the corpus generator only (a folder holding
# torch, when the venv cannot install it; the peers never see it).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${WORK:-$HERE/work/2025}"
VENV="${VENV:-$HERE/.venv-2025}"
AISEC="${AISEC_BIN:-$REPO/target/release/aisec}"
log() { printf '[run_2025 %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q picklescan==1.0.5 modelscan==0.8.8 fickling==0.1.12 \
        typing_extensions==4.16.0 numpy==1.26.4 h5py==3.16.0 py7zr==1.1.4 backports.zstd==1.8.0
    "$VENV/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu \
        || "$VENV/bin/pip" install -q torch
fi
PY="$VENV/bin/python"
CORPUS="$WORK/corpus"
if [ "${REUSE:-0}" != 1 ]; then
    rm -rf "$WORK"
    mkdir -p "$WORK/out"
    PYTHONPATH="${GEN_PYTHONPATH:-${PYTHONPATH:-}}" "$PY" "$HERE/gen_2025.py" --out "$CORPUS" 2> "$WORK/out/gen.stderr"
fi
"$PY" -c 'import json,sys; [print(c["case"]) for c in json.load(open(sys.argv[1]))["cases"]]' \
    "$CORPUS/manifest.json" > "$WORK/cases.txt"

[ "${REUSE:-0}" = 1 ] || {
log "picklescan, modelscan, fickling (per case)"
: > "$WORK/out/peers.tsv"
while IFS= read -r case; do
    d="$CORPUS/$case"
    ps_rc=0
    ps_out="$("$VENV/bin/picklescan" -p "$d" 2>&1)" || ps_rc=$?
    ps_inf="$(printf '%s\n' "$ps_out" | sed -n 's/^Infected files: \([0-9]*\).*/\1/p' | tail -1)"
    ms_rc=0
    "$VENV/bin/modelscan" scan -p "$d" -r json -o "$WORK/out/ms.json" > /dev/null 2>&1 || ms_rc=$?
    ms_n="$("$PY" -c 'import json,sys
try: print(len(json.load(open(sys.argv[1])).get("issues", [])))
except Exception: print(-1)' "$WORK/out/ms.json")"
    rm -f "$WORK/out/ms.json"
    fk=""
    for f in "$d"/*; do
        rc=0
        "$VENV/bin/fickling" --check-safety --json-output /dev/null "$f" > /dev/null 2>&1 || rc=$?
        fk="$fk$rc,"
    done
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$ps_rc" "${ps_inf:-0}" "$ms_rc" "$ms_n" "$fk" >> "$WORK/out/peers.tsv"
done < "$WORK/cases.txt" 2>/dev/null
}
[ -x "$AISEC" ] || (cd "$REPO" && cargo build --release -p aisec)
log "aisec"
"$AISEC" scan "$CORPUS" --format json --no-progress > "$WORK/out/aisec.json" 2> "$WORK/out/aisec.stderr" || true
{
    echo "{"
    echo "\"load\": \"$(cat /proc/loadavg)\","
    echo "\"aisec\": \"$("$AISEC" --version 2>/dev/null | head -1) (git $(cd "$REPO" && git rev-parse --short HEAD))\","
    echo "\"peers\": \"$("$VENV/bin/pip" freeze 2>/dev/null | grep -iE '^(picklescan|modelscan|fickling|torch)==' | tr '\n' ' ')$(PYTHONPATH="${GEN_PYTHONPATH:-${PYTHONPATH:-}}" "$PY" -c 'import torch; print("torch==" + torch.__version__.split("+")[0] + " (generator)")' 2>/dev/null)\""
    echo "}"
} > "$WORK/out/env.json"
"$PY" "$HERE/compare_2025.py" "$WORK" "$HERE/RESULTS_2025.md"
log "wrote $HERE/RESULTS_2025.md"
