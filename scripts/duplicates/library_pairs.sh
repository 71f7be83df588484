#!/usr/bin/env bash
# Same-shape pairs in library code only (issue 12): copies crates/*/src of
# the tree given (default: this checkout) into a scratch folder and runs the
# `duplicates` tool there, so tests/, bench/, scripts/ and fixtures do not
# count. Pairs with a side in crates/aisec/src (the CLI) are dropped from the
# count by `--lib` (the CLI's own clean-up is issue 11's).
# Usage: scripts/duplicates/library_pairs.sh [TREE] [--lib]
set -euo pipefail
SRC=${1:-$(git rev-parse --show-toplevel)}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
for c in "$SRC"/crates/*/; do
  name=$(basename "$c")
  mkdir -p "$D/crates/$name"
  [ -d "$c/src" ] && cp -r "$c/src" "$D/crates/$name/"
done
cd "$D"
if [ "${2:-}" = "--lib" ]; then
  duplicates --most 200 --seconds 120 | grep '^D' | grep -v 'crates/aisec/src'
else
  duplicates --most 200 --seconds 120
fi
