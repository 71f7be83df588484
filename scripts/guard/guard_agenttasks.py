"""Benign agent tasks and tool outputs (issue 17; a candidate training source, not in the shipped model;
bench/guard/AGENT_TASK_SOURCES.md). Enabled by AISEC_GUARD_AGENTTASKS=1 in train_classifier.py; rejected in the session of
stop 54 as candidates AT, ATA and ATAS (bench/guard/DECISIONS.md).

Why: users' task instructions to tool-using agents ("Send the following message to ...", "Book a table for ...") and
tool outputs (API JSON) are a benign genre the corpus barely has; agentdojo's benign rows (evaluation) are of it.
fresh11 (scripts/guard/fresh11.py: ToolTalk, WebArena, tool-eval-bench, WorkArena) is the never-used check for the
genre and stays out of training. Sources, read out of pinned wheels (never installed, never imported):
- bfcl-eval 2026.3.23 (Berkeley Function Calling Leaderboard; Apache-2.0 per its METADATA): the user turns of
  `bfcl_eval/data/BFCL_v4_*.json` (`question`: a list of turns, each a list of messages; role `user`), every category
  except `format_sensitivity` and `memory`;
- nestful-wrapper 0.1.7 (NESTFUL; Apache-2.0): the task inputs of `data_v1/**/*-data.json` (`input`) and, from
  ComplexFuncBench's part, each call's API response (`output[].response`, rendered as JSON, kind `document`).
Rows (source "agent-tasks", tag "agenttasks"): kind "prompt" (or "chat" under 8 words) or "document", split by the
text's key, an injected copy of about half (guard_data.injected_copy_adder), so the genre is not what decides. Texts
with a jailbreak marker (guard_userprompts.JAILBREAK) are left out and counted. Own random stream.
"""
import json
import random

SOURCE = "agent-tasks"
MAX_WORDS = 300
BFCL_DIR = "bfcl_eval/data/"
BFCL_SKIP = ("format_sensitivity", "memory")
NESTFUL_DIR = "data_v1/"
MAX_DOC_CHARS = 4000


def bfcl_turns(z):
    """[(key, text)]: every user message of the BFCL v4 files, in file order."""
    out = []
    names = sorted(n for n in z.namelist() if n.startswith(BFCL_DIR + "BFCL_v4_") and n.endswith(".json")
                   and not any(s in n for s in BFCL_SKIP))
    for name in names:
        for line in z.read(name).decode("utf-8").split("\n"):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            turns = r.get("question") or []
            for i, turn in enumerate(turns):
                for j, m in enumerate(turn if isinstance(turn, list) else []):
                    if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                        out.append((f"{r.get('id')}:{i}:{j}", m["content"]))
    return out


def nestful_items(z):
    """([(key, task text)], [(key, API response as JSON)])."""
    tasks, docs = [], []
    names = sorted(n for n in z.namelist() if n.startswith(NESTFUL_DIR) and n.endswith("-data.json"))
    for name in names:
        for i, r in enumerate(json.loads(z.read(name).decode("utf-8"))):
            if not isinstance(r, dict):
                continue
            if isinstance(r.get("input"), str):
                tasks.append((f"{name}:{i}", r["input"]))
            for k, call in enumerate(r.get("output") or []):
                resp = call.get("response") if isinstance(call, dict) else None
                if isinstance(resp, (dict, list)) and resp:
                    text = json.dumps(resp, ensure_ascii=False, indent=1)
                    if len(text) <= MAX_DOC_CHARS:
                        docs.append((f"{name}:{i}:{k}", text))
    return tasks, docs


def rows(gd, bfcl_zip, nestful_zip, seed=67):
    from guard_userprompts import JAILBREAK

    rnd = random.Random(seed)
    add, out = gd.injected_copy_adder(rnd, SOURCE, "agenttasks", MAX_WORDS)
    tasks = [("bfcl", k, t) for k, t in bfcl_turns(bfcl_zip)]
    ntasks, docs = nestful_items(nestful_zip)
    tasks += [("nestful", k, t) for k, t in ntasks]
    dropped = 0
    for name, key, text in tasks:
        if JAILBREAK.search(text):
            dropped += 1
            continue
        add(text, "chat" if len(text.split()) < 8 else "prompt", gd.split_of(f"agent-tasks:{name}:{key}"))
    for key, text in docs:
        add(text, "document", gd.split_of(f"agent-tasks:nestful-doc:{key}"))
    print(f"agent-tasks: {len(tasks)} task texts ({dropped} with a jailbreak marker left out), {len(docs)} API responses")
    return out
