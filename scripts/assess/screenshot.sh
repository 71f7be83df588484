#!/bin/sh
# Assesses the example system and screenshots its HTML report in headless
# chromium (Debian package `chromium`), cut into pages with Pillow (in the
# venv of validate_threat_dragon.sh), into docs/assess/.
# Usage: scripts/assess/screenshot.sh [path/to/aisec]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
aisec=${1:-$root/target/debug/aisec}
venv=${AISEC_ASSESS_VENV:-$root/scripts/assess/.venv}
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q 'jsonschema>=4,<5'; }
"$venv/bin/python" -c 'import PIL' 2>/dev/null || "$venv/bin/pip" install -q pillow
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$aisec" -q assess "$root/examples/digits-service/aisec.toml" --state "$work/state.json" \
  --html "$work/report.html" --threat-dragon "$work/td.json" --no-fail > /dev/null
"$root/scripts/assess/validate_threat_dragon.sh" "$work/td.json"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,24000 \
  --screenshot="$work/full.png" "file://$work/report.html" > /dev/null 2>&1
"$venv/bin/python" - "$work/full.png" "$root/docs/assess" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
w, h = im.size
bg = im.getpixel((5, h - 1))
y = h - 1
while y > 0 and all(im.getpixel((x, y)) == bg for x in range(0, w, 20)):
    y -= 1
names = ["report-summary", "report-measurements", "report-probes-threats", "report-threats", "report-threats-2", "report-compliance", "report-compliance-2"]
for i, name in enumerate(names):
    top = i * 2400
    if top >= y:
        break
    part = im.crop((0, top, w, min(top + 2400, y + 20)))
    part.quantize(colors=128).save(f"{sys.argv[2]}/{name}.png", optimize=True)
    print(f"{sys.argv[2]}/{name}.png")
PY
