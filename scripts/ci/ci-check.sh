#!/bin/sh
# Runs the repository's CI integrations for real, offline, against a locally
# built aisec, and prints a log (docs/assess/ci-check.log is its output):
#  1. pre-commit: installs `pre-commit` from PyPI into a venv and runs every
#     hook of .pre-commit-hooks.yaml with `pre-commit try-repo` on a fixture
#     git repository (a malicious PyTorch checkpoint, safe artifacts, two
#     system descriptions, a baseline). The hooks are `language: system`, so
#     they run the aisec on PATH: nothing is downloaded by pre-commit.
#  2. action.yml: validates it against the GitHub action metadata schema that
#     the `check-jsonschema` package vendors from SchemaStore
#     (`--builtin-schema vendor.github-actions`), then runs its run step
#     (scripts/ci/action-run.sh) with the environment GitHub sets
#     (GITHUB_OUTPUT, GITHUB_WORKSPACE, RUNNER_TEMP, GITHUB_ACTION_PATH) for
#     `scan` and `assess`, and checks the SARIF and the exit-code output.
# Usage: scripts/ci/ci-check.sh [path/to/aisec]
#   AISEC_CI_VENV: the venv to use or create (default /tmp/aisec-ci-venv).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
aisec=$(cd "$(dirname "${1:-$root/target/debug/aisec}")" && pwd)/$(basename "${1:-aisec}")
[ -x "$aisec" ] || { echo "no aisec binary at $aisec (cargo build -p aisec)"; exit 2; }
venv=${AISEC_CI_VENV:-/tmp/aisec-ci-venv}
if [ ! -x "$venv/bin/pre-commit" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'pre-commit==4.7.0' 'check-jsonschema==0.39.0'
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
ln -s "$aisec" "$work/bin/aisec"
PATH="$work/bin:$venv/bin:$PATH"
export PATH
fail=0
expect() { # expect CODE DESCRIPTION -- command...
  want=$1; what=$2; shift 3
  echo "\$ $*" | sed "s#$work#\$WORK#g; s#$root#\$REPO#g"
  set +e
  "$@" > "$work/out.txt" 2>&1
  got=$?
  set -e
  sed "s#$work#\$WORK#g; s#$root#\$REPO#g" "$work/out.txt" | grep -v '^\[INFO\] Initializing environment\|^\[INFO\] Creating temporary repo' | sed 's/^/    /'
  if [ "$got" = "$want" ]; then echo "  -> exit $got as expected: $what"; else echo "  -> FAIL: exit $got, expected $want: $what"; fail=1; fi
  echo
}

echo "== versions"
echo "pre-commit $(pre-commit --version | cut -d' ' -f2), check-jsonschema $(check-jsonschema --version | awk '{print $NF}'), $(aisec --version)"
echo

echo "== 1. pre-commit try-repo on a fixture repository"
fx="$work/fixture"
mkdir -p "$fx/models" "$fx/svc"
cp "$root/examples/digits-service/models/legacy_checkpoint.pt" "$fx/models/"
cp "$root/examples/digits-service/models/state_dict.pkl" "$root/examples/digits-service/models/encoder.safetensors" "$fx/models/"
cat > "$fx/aisec.toml" <<'TOML'
[system]
name = "pre-commit fixture"

[[component]]
id = "store"
kind = "model-artifact"
path = "models"
TOML
sed 's/pre-commit fixture/second service/' "$fx/aisec.toml" > "$fx/svc/aisec.toml"
cd "$fx"
git init -q
git config user.email ci@example.invalid
git config user.name ci
# The accepted state: the baseline records today's findings.
aisec -q assess aisec.toml --write-baseline .aisec-baseline.json --no-fail > /dev/null
git add -A
git commit -qm fixture
expect 1 "aisec-scan fails on the malicious checkpoint" -- pre-commit try-repo "$root" aisec-scan --all-files
expect 0 "aisec-assess-plan derives the threat model of both descriptions" -- pre-commit try-repo "$root" aisec-assess-plan --all-files
expect 0 "aisec-assess (manual stage) passes: no finding beyond the baseline" -- pre-commit try-repo "$root" aisec-assess --all-files --hook-stage manual
git rm -q models/legacy_checkpoint.pt
git commit -qm "drop the malicious checkpoint"
expect 0 "aisec-scan passes once it is removed" -- pre-commit try-repo "$root" aisec-scan --all-files
printf 'cve = 1\n' >> svc/aisec.toml
git add -A
expect 1 "aisec-assess-plan fails on a description with an unknown key" -- pre-commit try-repo "$root" aisec-assess-plan --files svc/aisec.toml
cd "$root"

echo "== 2. action.yml"
expect 0 "action.yml is valid action metadata (SchemaStore github-action schema)" -- check-jsonschema --builtin-schema vendor.github-actions "$root/action.yml"
# The environment GitHub gives a composite step, plus the step's env block.
gh="$work/gh"
mkdir -p "$gh/workspace" "$gh/temp"
cp -r "$fx/models" "$fx/aisec.toml" "$gh/workspace/"
cp "$root/examples/digits-service/models/legacy_checkpoint.pt" "$gh/workspace/models/"
run_action() { # run_action COMMAND
  : > "$gh/output"
  (cd "$gh/workspace" && env GITHUB_ACTIONS=true GITHUB_WORKSPACE="$gh/workspace" RUNNER_TEMP="$gh/temp" \
    GITHUB_ACTION_PATH="$root" GITHUB_OUTPUT="$gh/output" AISEC_BIN="$aisec" \
    AISEC_COMMAND="$1" AISEC_PATHS=models AISEC_SYSTEM=aisec.toml AISEC_BASELINE="" \
    AISEC_FAIL_ON=high AISEC_SARIF=aisec.sarif bash "$root/scripts/ci/action-run.sh")
}
for cmd in scan assess; do
  rm -f "$gh/workspace/aisec.sarif"
  expect 0 "the run step ($cmd) exits 0 so the SARIF upload runs" -- run_action "$cmd"
  echo "    GITHUB_OUTPUT: $(cat "$gh/output")"
  grep -q '^exit-code=1$' "$gh/output" && echo "  -> exit-code=1 recorded (a high finding: the last step fails the job)" || { echo "  -> FAIL: exit-code is not 1"; fail=1; }
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); r=s["runs"][0]; print("    SARIF %s: %d result(s), rules %s" % (s["version"], len(r["results"]), sorted({x["ruleId"] for x in r["results"]})))' "$gh/workspace/aisec.sarif" || fail=1
  echo
done
ls "$gh/workspace" | sed 's/^/    workspace: /'
expect 2 "an unknown command is a usage error" -- run_action lint
echo "== result: $( [ $fail = 0 ] && echo all checks as expected || echo FAILURES )"
exit $fail
