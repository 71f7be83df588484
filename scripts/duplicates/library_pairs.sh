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
OUT=$(duplicates --most 200 --seconds 120)
printf '%s\n' "$OUT"
# Added in round 6: a breakdown of the rows the tool does not mark
# `boilerplate` (it lists those first, so all of them are among the 200
# rows while there are fewer than 200). The count above is unchanged: its
# first line. A side is test code when its file is a test file by name
# (`tests.rs`, `*_tests.rs`, `testutil.rs`, `testmodels.rs`,
# `test_support.rs`); `#[cfg(test)]` modules inside other files are not
# told apart.
printf '%s\n' "$OUT" | awk '
  /^D[0-9]+ / && !/boilerplate/ {
    n++
    a = $2; b = $4
    ta = (a ~ /(^|\/|_)tests?\.rs:|testutil\.rs:|testmodels\.rs:|test_support\.rs:/)
    tb = (b ~ /(^|\/|_)tests?\.rs:|testutil\.rs:|testmodels\.rs:|test_support\.rs:/)
    if (ta && tb) t++
  }
  END { printf "not boilerplate: %d pairs (%d between test files, %d with library code on a side)\n", n, t, n - t }'
