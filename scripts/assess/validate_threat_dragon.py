#!/usr/bin/env python3
"""Cross-checks `aisec assess --threat-dragon` output against Threat Dragon's
v2 JSON schema with the `jsonschema` package (Draft 7 validator), the way
Threat Dragon's own ajv check does, plus each threat in `cell.data.threats`
(where Threat Dragon keeps them) against the schema's threat definition.

Usage: scripts/assess/validate_threat_dragon.sh FILE.json ...
"""
import json
import sys
from pathlib import Path

import jsonschema

SCHEMA = Path(__file__).resolve().parents[2] / "crates/aisec-assess/schema/threat-dragon-v2.schema.json"


def ajv_nullable(node):
    """The schema uses OpenAPI's `nullable: true`, which ajv (Threat Dragon's
    validator) honours and Draft 7 does not know: rewrite it as a null type."""
    if isinstance(node, dict):
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for v in node.values():
            ajv_nullable(v)
    elif isinstance(node, list):
        for v in node:
            ajv_nullable(v)
    return node


def main(paths):
    schema = ajv_nullable(json.loads(SCHEMA.read_text()))
    threat_schema = schema["properties"]["detail"]["properties"]["diagrams"]["items"]["properties"]["cells"]["items"]["properties"]["threats"]["items"]
    validator = jsonschema.Draft7Validator(schema)
    threat_validator = jsonschema.Draft7Validator(threat_schema)
    bad = 0
    for p in paths:
        model = json.loads(Path(p).read_text())
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(model)]
        threats = 0
        for d in model.get("detail", {}).get("diagrams", []):
            for i, cell in enumerate(d.get("cells", [])):
                for j, t in enumerate(cell.get("data", {}).get("threats", [])):
                    threats += 1
                    errors += [f"cells/{i}/data/threats/{j}: {e.message}" for e in threat_validator.iter_errors(t)]
        if errors:
            bad += 1
            print(f"{p}: INVALID ({len(errors)} errors)")
            for e in errors[:20]:
                print("  " + e)
        else:
            print(f"{p}: valid Threat Dragon v2 model ({threats} threats)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
