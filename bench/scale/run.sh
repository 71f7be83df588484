#!/usr/bin/env bash
# The scale bench of issue 18: a simulated hub of thousands of repos,
# served over loopback by the hub-shaped server (crates/aisec-remote
# examples/hubserve.rs), scanned by a real local Ray cluster (a head and a
# worker node started with the registry's `ray` CLI) through
# deploy/ray/launch.py, merged, and checked against a single-process scan.
#
#   bench/scale/run.sh [REPOS] [SHARDS]
#
# Writes bench/scale/out/ (results.json; the merged and single reports).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPOS=${1:-2000}
SHARDS=${2:-8}
VENV=${VENV:-/work/venvs/ray}
OUT=bench/scale/out
HUB=${HUB_ROOT:-/tmp/aisec-simhub-$REPOS}
PROFILE=${PROFILE:-release}
mkdir -p "$OUT"

VENV=$VENV bench/scale/setup_venv.sh
# Two builds, not one: building the example (with its dev-dependencies)
# together with the CLI would unify features and rebuild the CLI's
# dependencies. SKIP_BUILD=1 uses the binaries already in target/.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  P=$([ "$PROFILE" = release ] && echo --release || true)
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo build $P -p aisec
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo build $P -p aisec-remote --example hubserve
fi
BIN=target/$([ "$PROFILE" = release ] && echo release || echo debug)
AISEC=$PWD/$BIN/aisec

if [ ! -f "$HUB/.done" ]; then
  rm -rf "$HUB"
  python3 bench/scale/gen_hub.py "$HUB" --repos "$REPOS" \
    --fixtures crates/aisec-pickle/tests/fixtures > "$HUB.gen.json"
  touch "$HUB/.done"
fi
cat "$HUB.gen.json"

# The hub server, on loopback.
"$BIN/examples/hubserve" "$HUB" 127.0.0.1:0 > "$OUT/hub.url" &
HUB_PID=$!
cleanup() {
  kill "$HUB_PID" 2>/dev/null || true
  "$VENV/bin/ray" stop --force >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 50); do [ -s "$OUT/hub.url" ] && break; sleep 0.1; done
export HF_ENDPOINT=$(cat "$OUT/hub.url")
echo "hub at $HF_ENDPOINT"

# The work list: every repo.
(cd "$HUB" && ls -d */*/ | sed 's#/$##; s#^#hf://#') > "$OUT/list.txt"
wc -l < "$OUT/list.txt"

# A Ray cluster on this machine: a head and one worker node.
"$VENV/bin/ray" stop --force >/dev/null 2>&1 || true
"$VENV/bin/ray" start --head --port=6390 --num-cpus="${HEAD_CPUS:-2}" --include-dashboard=false --disable-usage-stats >/dev/null
"$VENV/bin/ray" start --address=127.0.0.1:6390 --num-cpus="${WORKER_CPUS:-2}" --disable-usage-stats >/dev/null || \
  echo "note: a second node could not start on this machine; the head runs all shards"
"$VENV/bin/python" -c 'import ray; ray.init(address="auto", log_to_driver=False); print("ray nodes:", len([n for n in ray.nodes() if n["Alive"]]), "cpus:", ray.cluster_resources().get("CPU"))'

LOAD_BEFORE=$(uptime)
T0=$(date +%s.%N)
"$VENV/bin/python" deploy/ray/launch.py --list "$OUT/list.txt" --shards "$SHARDS" --out "$OUT/shards" \
  --aisec "$AISEC" --address auto --env HF_ENDPOINT > "$OUT/ray.json"
T1=$(date +%s.%N)
LOAD_AFTER=$(uptime)
cat "$OUT/ray.json"

# One process over the same list.
T2=$(date +%s.%N)
"$AISEC" scan --quiet --no-progress --no-fail --from-list "$OUT/list.txt" \
  --records "$OUT/single.jsonl" --format json -o "$OUT/single.json" || true
T3=$(date +%s.%N)

python3 - "$OUT" "$REPOS" "$SHARDS" "$T0" "$T1" "$T2" "$T3" "$LOAD_BEFORE" "$LOAD_AFTER" "$HUB.gen.json" <<'PY'
import json, sys
out, repos, shards, t0, t1, t2, t3, lb, la, gen = sys.argv[1:]
m = json.load(open(f"{out}/shards/merged.json"))
s = json.load(open(f"{out}/single.json"))
key = lambda r: sorted(json.dumps(f, sort_keys=True) for f in r["findings"])
same = key(m) == key(s) and m["errors"] == s["errors"] and m["summary"]["items"] == s["summary"]["items"]
ray_s, single_s = float(t1) - float(t0), float(t3) - float(t2)
res = {
    "repos": int(repos), "shards": int(shards), "objects": m["summary"]["items"],
    "findings": len(m["findings"]), "errors": len(m["errors"]),
    "by_severity": m["summary"]["by_severity"],
    "bytes_stored": m["data"]["bytes_stored"], "bytes_read": m["data"]["bytes_read"],
    "share_read": m["data"]["bytes_read"] / max(1, m["data"]["bytes_stored"]),
    "ray_seconds": round(ray_s, 2), "ray_repos_per_s": round(int(repos) / ray_s, 2),
    "single_seconds": round(single_s, 2), "single_repos_per_s": round(int(repos) / single_s, 2),
    "merged_equals_single": same, "load_before": lb.strip(), "load_after": la.strip(),
    "generated": json.load(open(gen)),
}
json.dump(res, open(f"{out}/results.json", "w"), indent=1)
print(json.dumps(res, indent=1))
sys.exit(0 if same else 1)
PY
