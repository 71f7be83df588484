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
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,40000 \
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
import glob, os
for old in glob.glob(f"{sys.argv[2]}/report-*.png"):
    os.remove(old)
# Pages of 2,400 pixels from the top, numbered in reading order.
for i in range(0, (y + 2399) // 2400):
    top = i * 2400
    part = im.crop((0, top, w, min(top + 2400, y + 20)))
    name = f"{sys.argv[2]}/report-{i + 1:02d}.png"
    part.quantize(colors=128).save(name, optimize=True)
    print(name)
PY
