"""Benign task instructions addressed to a model, from OpenAI Evals (issue 17; in the shipped model since the session
of stop 37, decided as a candidate by the rule in bench/guard/DECISIONS.md).

Why: the shipped model's instruction rows came from BIG-bench's task files (scripts/guard/guard_bigbench.py), read from
the PyPI sdist bigbench==1.0.0, which the registry no longer serves (only 0.0.1, without tasks), so that corpus cannot
be rebuilt. Before those rows the classifier scored ordinary instructions to a model ("In this task, you are given ...",
"Reply only with ...") as injections. OpenAI Evals (the `evals` 3.0.1.post1 wheel on PyPI; MIT, LICENSE.md in its
dist-info) ships its eval registry's data: about 470 evals written by many contributors, each sample a chat whose
system message is usually the task instruction ("You will be given a singular feminine Spanish word. ... Answer with
either \"La\" or \"El\" only") and whose user message is the item. Only the JSONL files under evals/registry/data are
read (streamed out of the wheel, never unpacked, installed or imported), the first MAX_LINES lines of each.

Left out: `prompt-injection` (its samples carry injected text); the seven data sets LICENSE.md gives licences of their
own (already_said_that, ballots, sandbagging, schelling_point, steganography, text_compression, theory_of_mind; two hold
CC BY-NC parts); six whose system message is the item itself rather than an instruction (pointer-value-retrieval,
abstract-causal-reasoning, poker_hand_ranks, logical_counting, connect4, sql); and naughty_strings (its items are XSS
and shell payloads, another detector's business).

Rows (source "openai-evals", split by eval so an eval's rows stay in one split):
- up to 4 distinct system messages per eval (kind "instruction");
- up to 3 items rendered as one prompt, the system message then the user message (kind "template-app");
- up to 2 user messages alone (kind "prompt");
- an injected copy of about half of the rows above (guard_data.inject with the generator's own injections; label 1),
  so the genre is not what decides.
Own random stream: every other row of the corpus stays as it was.
"""
import json
import random

SOURCE = "openai-evals"
PREFIX = "evals/registry/data/"
SKIP = {
    "prompt-injection",
    # LICENSE.md: data sets under their own licences
    "already_said_that", "ballots", "sandbagging", "schelling_point", "steganography", "text_compression", "theory_of_mind",
    # the system message is the item, not an instruction
    "pointer-value-retrieval", "abstract-causal-reasoning", "poker_hand_ranks", "logical_counting", "connect4", "sql",
    # payload strings (XSS, shell), not our genre
    "naughty_strings",
}
MAX_LINES = 300
MAX_LINE_BYTES = 64 << 10
MAX_WORDS = 300
PER_EVAL = {"instruction": 4, "template-app": 3, "prompt": 2}


def samples(z):
    """{eval name: [(system message or "", user message or "")]} from the first MAX_LINES lines of each JSONL
    file of the wheel's registry data, in archive order; skipped folders left out."""
    out = {}
    for name in sorted(n for n in z.namelist() if n.startswith(PREFIX) and n.endswith(".jsonl")):
        ev = name[len(PREFIX):].split("/")[0]
        if ev in SKIP:
            continue
        got = out.setdefault(ev, [])
        with z.open(name) as f:
            for i, line in enumerate(f):
                if i >= MAX_LINES:
                    break
                if len(line) > MAX_LINE_BYTES:
                    continue
                try:
                    o = json.loads(line.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    continue
                msgs = o.get("input") if isinstance(o, dict) else None
                if not isinstance(msgs, list):
                    continue
                sys_m = [m["content"].strip() for m in msgs if isinstance(m, dict) and m.get("role") == "system" and isinstance(m.get("content"), str)]
                user_m = [m["content"].strip() for m in msgs if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)]
                # the instruction is the first system message; few-shot evals repeat examples as later ones
                got.append((sys_m[0] if sys_m else "", user_m[-1] if user_m else ""))
    return {k: v for k, v in out.items() if v}


def rows(gd, z, seed=43):
    rnd = random.Random(seed)
    add, out = gd.injected_copy_adder(rnd, SOURCE, "evals", MAX_WORDS)
    for ev, items in samples(z).items():
        split = gd.split_of("openai-evals:" + ev)
        systems = sorted({s for s, _ in items if s})
        for s in rnd.sample(systems, min(PER_EVAL["instruction"], len(systems))):
            add(s, "instruction", split)
        pairs = [(s, u) for s, u in items if s and u]
        for s, u in rnd.sample(pairs, min(PER_EVAL["template-app"], len(pairs))):
            add(s + rnd.choice(["\n", "\n\n", " "]) + u, "template-app", split)
        users = sorted({u for _, u in items if u})
        for u in rnd.sample(users, min(PER_EVAL["prompt"], len(users))):
            add(u, "prompt", split)
    return out
