#!/usr/bin/env python3
"""Run fickling's library scanner over every file of the corpus in one process.

fickling's CLI (`fickling --check-safety FILE`) reads a file as a stream of
raw pickles and fails on zip containers, so the comparison runs it twice:
the CLI per file (run.sh), and this driver, which does what fickling's own
Hugging Face scanning path does without torch installed: zip archives go to
`fickling.loader.scan_zip_archive`, everything else to `scan_file`. A file is
flagged when any result is not `is_safe` (severity above LIKELY_SAFE).

Usage: fickling_batch.py CORPUS_DIR MANIFEST OUT_JSONL
"""

import json
import os
import sys
import zipfile

from fickling.loader import scan_file, scan_zip_archive


def main():
    root, manifest, out = sys.argv[1:4]
    files = [m["path"] for m in json.load(open(manifest))["files"]]
    with open(out, "w") as w:
        for rel in files:
            path = os.path.join(root, rel)
            rec = {"path": rel, "flagged": False, "error": None, "severity": None}
            try:
                if zipfile.is_zipfile(path):
                    results = list(scan_zip_archive(path, graceful=True, json_output_path=os.devnull).values())
                else:
                    results = [scan_file(path, graceful=True, json_output_path=os.devnull)]
                rec["flagged"] = any(not r.is_safe for r in results)
                errs = [e for r in results for e in r.errors]
                if errs:
                    rec["error"] = errs[0][:200]
                if results:
                    rec["severity"] = max(r.severity for r in results).name
            except Exception as e:  # noqa: BLE001 - a crash on one file is that file's error
                rec["error"] = f"{type(e).__name__}: {e}"[:200]
            w.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
