#!/usr/bin/env python3
"""Run picklescan's library scanner over every file of the corpus in one process.

`picklescan -p DIR` stops at the first file whose pickle makes its opcode
walker raise (an uncaught ValueError on a STACK_GLOBAL whose operands are not
two constant strings), so it cannot give a verdict for every file of a
directory. This driver does what `scan_directory_path` does (same extension
filter, same `scan_bytes` call) one file at a time and records an exception
as that file's error instead of ending the run. A file is flagged when
picklescan counts it as infected (a dangerous global).

Usage: picklescan_batch.py CORPUS_DIR MANIFEST OUT_JSONL
"""

import json
import os
import sys

from picklescan import scanner


def main():
    root, manifest, out = sys.argv[1:4]
    exts = set(scanner._zip_file_extensions) | set(scanner._pickle_file_extensions) | set(
        scanner._pytorch_file_extensions
    )
    files = [m["path"] for m in json.load(open(manifest))["files"]]
    with open(out, "w") as w:
        for rel in files:
            path = os.path.join(root, rel)
            rec = {"path": rel, "flagged": False, "error": None, "scanned": False}
            ext = os.path.splitext(path)[1]
            if ext in exts:
                rec["scanned"] = True
                try:
                    with open(path, "rb") as f:
                        sr = scanner.scan_bytes(f, path, ext)
                    rec["flagged"] = sr.infected_files > 0
                    if sr.scan_err:
                        rec["error"] = "scan error"
                except Exception as e:  # noqa: BLE001 - what the CLI dies on
                    rec["error"] = f"{type(e).__name__}: {e}"[:200]
            w.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
