#!/usr/bin/env bash
# Offline checks of deploy/ (no cluster and no container runtime here):
#   1. deploy/k8s/scan-job.yaml against Kubernetes' JSON schemas
#      (kubernetes-validate --strict, unknown fields rejected) for every
#      version from 1.29 (first with backoffLimitPerIndex on by default)
#      to 1.37, with two mutated copies that must fail (the check checks);
#   2. deploy/k8s/Dockerfile with hadolint;
#   3. the Dockerfile's Rust toolchain against the highest `rust-version`
#      of the locked dependencies (cargo metadata --locked --offline);
#   4. the build context excludes target/.
# The container command itself is run through the CLI by the test
# `cargo test -p aisec --test cli the_k8s_job_command_runs_through_the_cli`.
# What is still not run: a docker build, a pod, a cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-/work/venvs/deploy}
VENV=$VENV deploy/check/setup_venv.sh >/dev/null
KV="$VENV/bin/kubernetes-validate"
JOB=deploy/k8s/scan-job.yaml
fail=0
for v in 1.29 1.30 1.31 1.32 1.33 1.34 1.35 1.36 1.37; do
  "$KV" --strict -k "$v" "$JOB" || fail=1
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/completionMode:/completionMod:/' "$JOB" > "$tmp/unknown-field.yaml"
sed 's/parallelism: 64/parallelism: "all"/' "$JOB" > "$tmp/wrong-type.yaml"
for bad in "$tmp/unknown-field.yaml" "$tmp/wrong-type.yaml"; do
  if "$KV" --strict --quiet "$bad" >/dev/null 2>&1; then
    echo "FAIL: $(basename "$bad") was accepted"; fail=1
  else
    echo "ok: mutated manifest $(basename "$bad") rejected"
  fi
done
if "$VENV/bin/hadolint" --no-color deploy/k8s/Dockerfile; then
  echo "ok: hadolint found nothing"
else
  fail=1
fi
python3 - <<'PY' || fail=1
import json, re, subprocess, sys
meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--locked", "--offline"],
    check=True, capture_output=True, text=True).stdout)
ver = lambda s: (tuple(int(x) for x in s.split(".")) + (0, 0))[:3]
own = set(meta["workspace_members"])
need = max((ver(p["rust_version"]), p["name"]) for p in meta["packages"]
           if p.get("rust_version") and p["id"] not in own)
ws = min(ver(p["rust_version"]) for p in meta["packages"] if p["id"] in own)
m = re.search(r"^FROM rust:(\d+\.\d+)", open("deploy/k8s/Dockerfile").read(), re.M)
have = ver(m.group(1))
show = lambda v: ".".join(map(str, v))
print(f"Dockerfile toolchain {m.group(1)}; workspace rust-version {show(ws)}; "
      f"locked dependencies need {show(need[0])} ({need[1]})")
# The workspace's rust-version is the true minimum: not below what its
# dependencies need, and the image's toolchain at least that.
sys.exit(0 if ws >= need[0] and have >= ws else 1)
PY
grep -qx target deploy/k8s/Dockerfile.dockerignore && echo "ok: the build context excludes target/" || fail=1
exit $fail
