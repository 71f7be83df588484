#!/usr/bin/env bash
# Issue 19's hostile gateway cases against a release build of the guard
# -> bench/guard/HOSTILE.md. Loopback only; Python standard library only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
WORK=bench/guard/work; mkdir -p "$WORK"
cargo build -q --release -p aisec-guard --example serve
BIN="${CARGO_TARGET_DIR:-target}/release/examples/serve"
python3 bench/guard/hostile.py "$BIN" "$WORK" bench/guard/HOSTILE.md
