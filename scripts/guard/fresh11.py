#!/usr/bin/env python3
"""fresh11 (bench/guard/DECISIONS.md, session of stop 50): users' task prompts to tool-using agents and tool outputs,
benign only, from sources never used for anything else, read from pinned wheels (never installed, never imported,
nothing in them run; readers in guard_fresh.py, sources and licences in bench/guard/AGENT_TASK_SOURCES.md):
ToolTalk (nvidia-tooltalk 26.3, MIT), WebArena's intents (webarena-verified 1.2.3, Apache-2.0), tool-eval-bench 3.0.0
(MIT), WorkArena's knowledge-base questions (browsergym-workarena 0.5.3, Apache-2.0).

Each text is de-duplicated (normalised) against the pinned training corpus and every earlier evaluation file in
bench/guard/work. Writes bench/guard/work/fresh11.jsonl ({"text", "label", "source", "kind"} per line), which
bench/guard/quality.sh reports on its own. Usage: scripts/guard/fresh11.py (uses train_classifier.py's venv).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import train_classifier as tc  # noqa: E402


def main():
    tc.ensure_venv()
    import guard_fresh as gf

    keys = {tc.normalise(r["text"]) for r in tc.read_pinned_corpus()}
    for name in tc.EVAL_SET_NAMES:
        path = os.path.join(tc.WORK, name + ".jsonl")
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run scripts/guard/train_classifier.py first (it writes the earlier evaluation sets)")
        with open(path, encoding="utf-8") as f:
            keys.update(tc.normalise(json.loads(l)["text"]) for l in f if l.strip())
    rows = []
    for name, read, key in (("tooltalk", gf.tooltalk_eval, "nvidia_tooltalk"), ("webarena", gf.webarena_eval, "webarena_verified"),
                            ("tool-eval-bench", gf.tool_eval_bench_eval, "tool_eval_bench"),
                            ("workarena", gf.workarena_eval, "browsergym_workarena")):
        rs, stats = read(tc.wheel(key), keys)
        print(f"{name}: {stats}")
        keys.update(tc.normalise(r["text"]) for r in rs)
        rows += rs
    out = os.path.join(tc.WORK, "fresh11.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {out}: {len(rows)} benign rows")


if __name__ == "__main__":
    main()
