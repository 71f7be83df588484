#!/usr/bin/env bash
# What CI's build costs: a fresh clone of HEAD, an empty target directory, `.ci/run` as CI calls it;
# prints wall time, the exit code, the target directory's size and the largest test binaries.
# Usage: bench/ci/build_size.sh [WORKDIR [REV]]   (WORKDIR default: a new folder under /tmp, left there for a look;
#        REV default HEAD: the commit to build)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
W="${1:-$(mktemp -d /tmp/aisec-ci-size.XXXXXX)}"
git clone -q "$ROOT" "$W/repo" || exit 2
cd "$W/repo" || exit 2
git checkout -q "${2:-HEAD}" || exit 2
start=$(date +%s)
CI=true CARGO_TARGET_DIR="$W/target" bash .ci/run > "$W/ci.log" 2>&1
rc=$?
end=$(date +%s)
echo "commit $(git rev-parse --short HEAD); .ci/run exit $rc in $((end - start)) s on $(nproc) cores; log $W/ci.log"
echo "tests passed: $(grep 'test result' "$W/ci.log" | awk '{p+=$4} END{print p+0}'), failed: $(grep 'test result' "$W/ci.log" | awk '{f+=$6} END{print f+0}')"
echo "target directory: $(du -sh "$W/target" | cut -f1) (debug $(du -sh "$W/target/debug" 2>/dev/null | cut -f1))"
echo "largest files in target/debug/deps:"
find "$W/target/debug/deps" -type f -size +50M -printf '%s %f\n' | sort -rn | head -5 | awk '{printf "  %.0f MB %s\n", $1/1e6, $2}'
