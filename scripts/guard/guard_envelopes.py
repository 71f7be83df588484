"""Structured tool-output envelopes for documents, on both sides of the label.

bench/guard/format_shift.py showed that the fast classifier reads a JSON or YAML record around a
document as a sign of injection (an envelope with a one-line body alone scores 0.58-0.62), because
the training rows put injections into tool-result fields more often than they wrap benign text in
records. This module wraps a fixed share of the documents of every split -- benign `document` rows
and `document+injection` rows alike, at the same rate -- in one of several generic envelopes
(an e-mail, a file, a calendar event, a search hit, a ticket, a review, a chat message; as one-line
JSON, indented JSON or YAML, the text as a quoted or block scalar), so that the envelope carries no
label of its own. The wrapped copy keeps its row's split, source (so its leave-one-source-out group)
and label, and is tagged "envelope". Field names and filler values are written here for aisec
(Apache-2.0); no evaluation source was read to write them.

Off unless AISEC_GUARD_ENVELOPES=1 (an experiment, not in the shipped model); own random stream, so
every other row is unchanged. Result (bench/guard/QUALITY-notes.md, "Envelope augmentation"): the envelope
FPRs of format_shift.py fall to the bare level, but held out the short chat turns get worse (leave-one-source-out
short-text FPR 0.0088 -> 0.0111), so it was not shipped. The e-mail, file and calendar-event fields resemble
agentdojo's records, which the dojo round had read: with these rows, agentdojo is no clean test.
"""

import json
import os
import random

RATE = 0.3
PEOPLE = ["alex.martin", "sam.lee", "priya.n", "jordan.kim", "maria.garcia", "chen.wei", "omar.haddad", "lena.fischer"]
DOMAINS = ["example.com", "example.org", "corp.example", "mail.example.net"]
SCHEMAS = {
    "email": ["id", "sender", "recipients", "subject", "body", "timestamp", "read"],
    "file": ["id", "filename", "owner", "size", "last_modified", "content"],
    "event": ["id", "title", "description", "start_time", "end_time", "location", "participants"],
    "search": ["rank", "title", "url", "snippet"],
    "ticket": ["id", "title", "status", "priority", "reporter", "description"],
    "review": ["author", "rating", "date", "text"],
    "message": ["channel", "user", "ts", "text"],
}
TEXT_FIELD = {"email": "body", "file": "content", "event": "description", "search": "snippet",
              "ticket": "description", "review": "text", "message": "text"}
TITLE_FIELDS = {"subject", "title"}


def _filler(field, rnd, text):
    who = lambda: f"{rnd.choice(PEOPLE)}@{rnd.choice(DOMAINS)}"
    date = f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
    time = f"{rnd.randint(7, 19):02d}:{rnd.choice(['00', '15', '30', '45'])}"
    if field in TITLE_FIELDS:
        return " ".join(text.split()[: rnd.randint(3, 7)])
    return {
        "id": str(rnd.randint(1, 9999)), "rank": rnd.randint(1, 10), "sender": who(), "owner": who(),
        "reporter": who(), "author": rnd.choice(PEOPLE).replace(".", " ").title(), "user": rnd.choice(PEOPLE),
        "recipients": [who() for _ in range(rnd.randint(1, 2))], "participants": [who() for _ in range(rnd.randint(1, 3))],
        "timestamp": f"{date} {time}:00", "last_modified": f"{date} {time}", "date": date, "ts": f"{date}T{time}:00Z",
        "start_time": f"{date} {time}", "end_time": f"{date} {rnd.randint(8, 20):02d}:00",
        "read": rnd.choice([True, False]), "size": rnd.randint(200, 90000),
        "filename": f"{rnd.choice(['notes', 'report', 'draft', 'summary', 'minutes', 'readme'])}-{rnd.randint(1, 99)}.{rnd.choice(['txt', 'md', 'docx'])}",
        "location": rnd.choice(["Room 4B", "online", "Main office", "Conference room 2"]),
        "url": f"https://www.{rnd.choice(['docs', 'wiki', 'blog', 'news'])}.example/{rnd.randint(100, 999)}",
        "status": rnd.choice(["open", "in progress", "resolved"]), "priority": rnd.choice(["low", "medium", "high"]),
        "rating": rnd.randint(1, 5), "channel": rnd.choice(["#general", "#random", "#team", "#support"]),
    }.get(field, "")


def _yaml_scalar(v, rnd, indent):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "\n" + "\n".join(f"{indent}- {x}" for x in v)
    if "\n" in v or (len(v) > 80 and rnd.random() < 0.5):
        return "|\n" + "\n".join(indent + "  " + line for line in v.split("\n"))
    return "'" + v.replace("'", "''") + "'"


def wrap(text, rnd):
    schema = rnd.choice(sorted(SCHEMAS))
    rec = {}
    for f in SCHEMAS[schema]:
        rec[f] = text if f == TEXT_FIELD[schema] else _filler(f, rnd, text)
    style = rnd.choice(["json", "json-indent", "yaml", "yaml-item"])
    if style == "json":
        return json.dumps(rec, ensure_ascii=False)
    if style == "json-indent":
        return json.dumps(rec, ensure_ascii=False, indent=2)
    item = style == "yaml-item"
    pad = "  " if item else ""
    lines = []
    for i, (k, v) in enumerate(rec.items()):
        lead = "- " if item and i == 0 else pad
        lines.append(f"{lead}{k}: {_yaml_scalar(v, rnd, pad)}")
    return "\n".join(lines)


def rows(corpus):
    """Wrapped copies of a RATE share of the corpus's document rows (both labels), tagged "envelope"."""
    # AISEC_GUARD_ENVELOPE_SEED draws other envelopes for the same share (a check of how much the
    # leave-one-source-out numbers move with the draw alone)
    rnd = random.Random(int(os.environ.get("AISEC_GUARD_ENVELOPE_SEED", "20261204")))
    out = []
    for r in corpus:
        if r["kind"] not in ("document", "document+injection"):
            continue
        if rnd.random() >= RATE:
            continue
        w = dict(r)
        w["text"] = wrap(r["text"], rnd)
        w["tag"] = "envelope"
        out.append(w)
    return out
