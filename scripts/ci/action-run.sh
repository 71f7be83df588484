#!/usr/bin/env bash
# The "Run aisec" step of action.yml, as a script so it can be run and
# tested outside GitHub (crates/aisec/tests/cli/assess_ci.rs runs it with
# the environment GitHub sets). Inputs come from the environment:
#   AISEC_BIN        the aisec binary (the action installs it under $RUNNER_TEMP)
#   AISEC_COMMAND    scan | assess
#   AISEC_PATHS      scan: files or folders, space-separated
#   AISEC_SYSTEM     assess: the system description
#   AISEC_BASELINE   assess: a baseline file (only new findings count), or empty
#   AISEC_FAIL_ON    severity at or above which findings fail the job
#   AISEC_SARIF      where the SARIF report goes
#   GITHUB_OUTPUT    the step's output file (GitHub sets it)
# aisec's exit code is written as `exit-code=N` to $GITHUB_OUTPUT; the script
# itself exits 0 so the SARIF upload runs before the action's last step
# fails the job on that code. A usage error exits 2 at once.
set -uo pipefail
bin=${AISEC_BIN:-aisec}
command=${AISEC_COMMAND:-scan}
sarif=${AISEC_SARIF:-aisec.sarif}
fail_on=${AISEC_FAIL_ON:-high}
out=${GITHUB_OUTPUT:-/dev/null}
case "$command" in
  scan)
    read -r -a paths <<< "${AISEC_PATHS:-.}"
    "$bin" scan "${paths[@]}" --format sarif --output "$sarif" --fail-on "$fail_on"
    ;;
  assess)
    extra=()
    if [ -n "${AISEC_BASELINE:-}" ]; then extra+=(--baseline "$AISEC_BASELINE"); fi
    "$bin" assess "${AISEC_SYSTEM:-aisec.toml}" --format sarif --output "$sarif" --fail-on "$fail_on" \
      --html aisec-report.html --threat-dragon aisec-threat-dragon.json \
      --write-baseline aisec-baseline.json "${extra[@]}"
    ;;
  *)
    echo "aisec action: unknown command '$command' (scan or assess)" >&2
    echo "exit-code=2" >> "$out"
    exit 2
    ;;
esac
code=$?
echo "exit-code=$code" >> "$out"
exit 0
