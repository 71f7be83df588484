#!/usr/bin/env python3
"""Format shift: does wrapping a document in a structured tool-output envelope change the guard's verdict?

Takes the validation split's documents (bench/guard/work/val.jsonl, written by
scripts/guard/train_classifier.py; benign `document` rows and `document+injection` rows of
80-1,500 characters, 1,200 of each at most, fixed seed) and writes each one four ways:
  bare         the text as it is
  json-record  {"id", "sender", "subject", "body": TEXT, "read"} on one line (an e-mail tool result)
  yaml-record  the same fields as a YAML list item, TEXT as a single-quoted scalar
  yaml-file    filename / owner / size / content: | TEXT as a block scalar (a file-reading tool result)
then scores all four with the guard's `quality` example (default policy). The envelopes are generic
(written here, not taken from any evaluation source), and the bodies are the same rows in every
variant, so any change in the benign FPR or the recall is the envelope's doing.
Diagnostic only: nothing is trained or tuned on it. AISEC_GUARD_WORK points at another work folder;
use the default corpus's (a corpus with guard_envelopes.py's rows has wrapped documents in its val.jsonl).

Usage: python3 bench/guard/format_shift.py   (after quality.sh has built the release examples)
"""
import json
import os
import random
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.environ.get("AISEC_GUARD_WORK", os.path.join(ROOT, "bench", "guard", "work"))
N = 1200


def yaml_quoted(s):
    return "'" + s.replace("'", "''").replace("\n", " ") + "'"


def variants(i, text):
    subject = " ".join(text.split()[:6])
    yield "bare", text
    yield "json-record", json.dumps(
        {"id": str(i), "sender": "alex.martin@example.com", "subject": subject, "body": text, "read": True},
        ensure_ascii=False,
    )
    yield "yaml-record", (
        f"- id_: '{i}'\n  sender: alex.martin@example.com\n  recipients:\n  - sam.lee@example.com\n"
        f"  subject: {yaml_quoted(subject)}\n  body: {yaml_quoted(text)}\n  read: true\n"
        f"  timestamp: 2024-05-14 10:{i % 60:02d}:00"
    )
    yield "yaml-file", f"filename: notes-{i}.txt\nowner: alex.martin@example.com\nsize: {len(text)}\ncontent: |\n  " + text.replace("\n", "\n  ")


def main():
    rows = [json.loads(l) for l in open(os.path.join(WORK, "val.jsonl"), encoding="utf-8")]
    rnd = random.Random(5)
    out = []
    for kind in ("document", "document+injection"):
        docs = [r for r in rows if r["kind"] == kind and 80 <= len(r["text"]) <= 1500]
        rnd.shuffle(docs)
        for i, r in enumerate(docs[:N]):
            for name, text in variants(i, r["text"]):
                out.append({"text": text, "label": r["label"], "source": name, "kind": kind})
    path = os.path.join(WORK, "format_shift.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    exe = os.path.join(ROOT, "target", "release", "examples", "quality")
    if not os.path.exists(exe):
        sys.exit("build the examples first: cargo build --release -p aisec-guard --examples")
    res = subprocess.run([exe, f"format shift (validation documents in envelopes)={path}"], check=True,
                         capture_output=True, text=True)
    table = res.stdout.split("Per error class")[0]
    print(table.strip())


if __name__ == "__main__":
    main()
