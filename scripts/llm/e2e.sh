#!/usr/bin/env bash
# End-to-end check (not part of the offline test suite): start the local LLM,
# run `aisec probe` against it with a few probe families, check the report is
# sane, stop the server.
# Usage: scripts/llm/e2e.sh [PORT]     Env: AISEC_BIN (default: cargo run --release -p aisec --)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PORT="${1:-8078}"
OUTDIR="$(mktemp -d)"
trap '"$HERE/stop.sh" "$PORT" || true' EXIT
URL="$("$HERE/serve.sh" "$PORT")"
echo "server: $URL" >&2
# AISEC_BIN may name an `aisec` binary (its `probe` subcommand is used); by default the
# standalone build of the same command module (crates/aisec-probe/examples/probe_cli.rs) is.
if [ -n "${AISEC_BIN:-}" ]; then AISEC=("$AISEC_BIN" probe); else
  (cd "$ROOT" && cargo build --release -p aisec-probe --example probe_cli >&2)
  AISEC=("${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/probe_cli")
fi
set +e
"${AISEC[@]}" --url "$URL" --model smollm2 --probes injection,indirect,extraction,xss \
  --concurrency 2 --timeout 120 --max-tokens 96 --seed 7 \
  --journal "$OUTDIR/journal.jsonl" --transcripts "$OUTDIR/transcripts.jsonl" \
  --no-fail --format json --output "$OUTDIR/report.json"
RC=$?
set -e
echo "aisec probe exit code: $RC" >&2
[ "$RC" -le 1 ] || { echo "FAIL: aisec probe errored" >&2; exit 1; }
"$HERE/.venv/bin/python" - "$OUTDIR" <<'PY'
import json, sys, pathlib
d = pathlib.Path(sys.argv[1])
rep = json.loads((d / "report.json").read_text())
p = rep["data"]["probe"]
lines = (d / "transcripts.jsonl").read_text().splitlines()
assert p["attempts"] == len(lines) > 0, (p["attempts"], len(lines))
errors = sum(f["errors"] for f in p["families"])
assert errors == 0, f"{errors} attempts failed: {rep['errors']}"
for f in p["families"]:
    assert 0.0 <= f["ci_low"] <= f["rate"] <= f["ci_high"] <= 1.0, f
    print(f"{f['family']:<12} {f['hits']}/{f['n']}  ASR {f['rate']:.2f}  CI [{f['ci_low']:.2f}, {f['ci_high']:.2f}]")
print(f"attempts {p['attempts']}, {p['attempts_per_second']:.2f}/s, wall {p['wall_seconds']:.1f}s, findings {len(rep['findings'])}")
print("e2e OK")
PY
