#!/usr/bin/env bash
# Regenerates crates/aisec-pickle/capabilities.tsv (see gen_capabilities.py
# for the analysis). Only parses sources; nothing downloaded is imported or run.
#
#   scripts/capabilities/run.sh           regenerate; fail if the inputs differ from inputs.txt
#   UPDATE=1 scripts/capabilities/run.sh  regenerate and re-pin inputs.txt
#
# Inputs: the CPython standard libraries found under pyenv (3.11.7, 3.12.1,
# 3.13.0 on the machine this was made on; set STDLIBS="VER=DIR ..." to
# choose others; CPython 3.14 was not available: its sources are not on a
# package registry) and the wheels pinned below, downloaded from PyPI into
# scripts/capabilities/.cache with pip (no dependencies, never installed).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
CACHE="$HERE/.cache"
OUT="$REPO/crates/aisec-pickle/capabilities.tsv"
WHEELS=(torch==2.15.0 numpy==2.4.6 pandas==3.1.1 joblib==1.6.0 scikit-learn==1.9.1)

# The newest interpreter available parses every older version's syntax.
PYROOT="${PYENV_ROOT:-$HOME/.pyenv}/versions"
BASEPY=""
for v in 3.14 3.13 3.12 3.11; do
    for d in "$PYROOT"/$v*; do
        [ -x "$d/bin/python3" ] && BASEPY="$d/bin/python3" && break 2
    done
done
BASEPY="${BASEPY:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$BASEPY" -m venv "$VENV"
fi
PY="$VENV/bin/python"

if [ -z "${STDLIBS:-}" ]; then
    STDLIBS=""
    for d in "$PYROOT"/3.1[1-4]*; do
        [ -d "$d" ] || continue
        v="$(basename "$d")"
        lib="$(ls -d "$d"/lib/python3.* 2>/dev/null | head -1)"
        [ -n "$lib" ] && STDLIBS="$STDLIBS $v=$lib"
    done
fi
[ -n "$STDLIBS" ] || { echo "no CPython standard library found (set STDLIBS)" >&2; exit 1; }

mkdir -p "$CACHE"
"$PY" -m pip download -q --no-deps --only-binary=:all: --dest "$CACHE" \
    --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 "${WHEELS[@]}"
args=()
for s in $STDLIBS; do args+=(--stdlib "$s"); done
for w in "${WHEELS[@]}"; do
    n="${w%%==*}"; v="${w##*==}"
    f="$(ls "$CACHE"/"${n//-/_}"-"$v"-*.whl 2>/dev/null | head -1)"
    [ -n "$f" ] || { echo "wheel for $w not found in $CACHE" >&2; exit 1; }
    args+=(--wheel "$f")
done
TMP="$(mktemp)"
PYTHONHASHSEED=0 "$PY" "$HERE/gen_capabilities.py" --out "$TMP" "${args[@]}"
grep '^# input	' "$TMP" | sed 's/^# input	//' > "$TMP.inputs"
if [ "${UPDATE:-0}" = 1 ] || [ ! -f "$HERE/inputs.txt" ]; then
    { echo "# Inputs of crates/aisec-pickle/capabilities.tsv (written by run.sh with UPDATE=1)."
      cat "$TMP.inputs"; } > "$HERE/inputs.txt"
elif ! diff <(grep -v '^#' "$HERE/inputs.txt") "$TMP.inputs"; then
    echo "inputs differ from inputs.txt (above); rerun with UPDATE=1 to re-pin" >&2
    rm -f "$TMP" "$TMP.inputs"
    exit 1
fi
mv "$TMP" "$OUT"
rm -f "$TMP.inputs"
echo "wrote $OUT ($(wc -l < "$OUT") lines)" >&2
