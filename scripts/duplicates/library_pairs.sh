#!/usr/bin/env bash
# Same-shape pairs in library code only (issue 12): copies crates/*/src of
# the tree given (default: this checkout) into a scratch folder and runs the
# `duplicates` tool there, so tests/, bench/, scripts/ and fixtures do not
# count. With `--lib` the CLI crate (crates/aisec/src, issue 11's part) is
# not copied, so every pair the tool finds is a library pair.
#
# The tool lists at most 200 rows, but its first line counts every pair it
# found ("N pairs of places ..."); that line is the count. (Until this
# round the script counted the listed rows and dropped CLI rows afterwards,
# which stopped at 200 rows: it said 145/140 where the library held 218.)
# Usage: scripts/duplicates/library_pairs.sh [TREE] [--lib]
set -euo pipefail
SRC=${1:-$(git rev-parse --show-toplevel)}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
for c in "$SRC"/crates/*/; do
  name=$(basename "$c")
  if [ "${2:-}" = "--lib" ] && [ "$name" = "aisec" ]; then
    continue
  fi
  mkdir -p "$D/crates/$name"
  if [ -d "$c/src" ]; then cp -r "$c/src" "$D/crates/$name/"; fi
done
cd "$D"
duplicates --most 200 --seconds 120
