#!/usr/bin/env bash
# Validates aisec's SARIF output against the official SARIF 2.1.0 JSON schema.
#
# The schema (sarif-2.1.0-rtm.5.json, the final 2.1.0 schema published by
# OASIS) is taken from Microsoft's @microsoft/jest-sarif npm package (MIT),
# and checked with ajv. Both are installed into scripts/.sarif-check, which
# git ignores. Usage: scripts/validate-sarif.sh [FILE.sarif ...]
# With no file, it validates the SARIF of `aisec demo` and of a scan of the
# demo samples.
set -euo pipefail
cd "$(dirname "$0")/.."
work=scripts/.sarif-check
mkdir -p "$work"
if [ ! -d "$work/node_modules/@microsoft/jest-sarif" ] || [ ! -d "$work/node_modules/ajv" ]; then
  (cd "$work" && echo "{\"name\":\"sarif-check\",\"private\":true}" > package.json && npm install --silent --no-audit --no-fund @microsoft/jest-sarif@1.0.0-beta.0 ajv@8 ajv-formats@3 >/dev/null)
fi
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  cargo build --release -q -p aisec
  tmp=$(mktemp -d)
  target/release/aisec demo --keep "$tmp/samples" --format sarif -o "$tmp/demo.sarif"
  target/release/aisec scan "$tmp/samples" --format sarif --no-fail -o "$tmp/scan.sarif"
  files=("$tmp/demo.sarif" "$tmp/scan.sarif")
fi
cat > "$work/validate.js" <<'JS'
const fs = require('fs');
const path = require('path');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');
const schemaPath = path.join(__dirname, 'node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json');
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
delete schema['$schema'];
if (schema.id) { schema['$id'] = schema.id; delete schema.id; }
const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false });
addFormats(ajv);
const validate = ajv.compile(schema);
let bad = 0;
for (const f of process.argv.slice(2)) {
  const doc = JSON.parse(fs.readFileSync(f, 'utf8'));
  if (validate(doc)) {
    const n = doc.runs.reduce((a, r) => a + r.results.length, 0);
    console.log(`valid SARIF 2.1.0: ${f} (${n} results)`);
  } else {
    bad++;
    console.log(`INVALID: ${f}`);
    for (const e of validate.errors.slice(0, 20)) console.log(`  ${e.instancePath} ${e.message}`);
  }
}
process.exit(bad ? 1 : 0);
JS
node "$work/validate.js" "${files[@]}"
