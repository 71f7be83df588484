"""Benign task instructions addressed to a model, from BIG-bench (issue 17; in the shipped model since the
session of stop 36, decided as a candidate: bench/guard/DECISIONS.md).

The classifier before it scored ordinary instructions to a model ("In this task, you are given a
sentence ...", "Reply only with ...") as injections: in the rest of the corpus such wording occurs
almost only in attacks (those two sentences still score above the threshold with it; its gain is on other rows). BIG-bench (Srivastava et al. 2022, "Beyond the Imitation Game") is a
collection of about 200 tasks written by hundreds of authors, each with a description, often a
task prefix (the instruction put before every example) and example inputs; 58 of its subtasks are
Natural-Instructions tasks ("Definition: In this task, ..."). Read from the `bigbench` 1.0.0 sdist
on PyPI (dataset card: Apache-2.0; the package metadata says UNKNOWN), `task.json` files only.
Since the session of stop 37 PyPI serves bigbench 0.0.1 only (no task files): the sdist cannot be had, the trainer
stops if asked for it (AISEC_GUARD_BIGBENCH=1), and scripts/guard/guard_evals.py was decided as its replacement
(bench/guard/DECISIONS.md). Kept for whoever holds the sdist (SHA-256 in train_classifier.SDISTS).

Rows (source "bigbench-tasks", split by task so a task's rows stay in one split):
- each task's description and task prefix (kind "instruction");
- up to 3 example inputs per task rendered as the prompt a model sees (prefix or description,
  then the input; kind "template-app");
- questions and sentences of two multilingual tasks (Spanish cryobiology questions, German
  sentences; kind "prompt");
- an injected copy of about half of the rows above (guard_data.inject with the generator's own
  injections; label 1), so the genre is not what decides.
Tasks about toxicity, bias, alignment or ethics are left out (their inputs are labelled for other
questions than ours). Own random stream: every other row of the corpus stays as it was.
"""
import json
import random
import re

SOURCE = "bigbench-tasks"
MAX_MEMBER = 10 << 20  # task.json files above 10 MB (a few huge generated tasks) are skipped
SKIP_KEYWORDS = {"toxicity", "social bias", "racial bias", "religious bias", "gender bias", "political bias", "alignment",
                 "truthfulness", "inappropriate"}
SKIP_TASKS = re.compile(r"hhh_alignment|toxicity|ethical|moral|bias|offens", re.I)
MULTILINGUAL = {"cryobiology_spanish": 80, "gender_inclusive_sentences_german": 80}
MAX_WORDS = 300


def tasks(tar):
    """(task name, task.json dict) for every readable task.json of the sdist, in archive order."""
    out = []
    for m in tar:
        if not m.isfile() or not m.name.endswith("/task.json") or "/benchmark_tasks/" not in m.name:
            continue
        if m.size > MAX_MEMBER:
            continue
        try:
            j = json.loads(tar.extractfile(m).read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        name = m.name.split("/benchmark_tasks/", 1)[1].rsplit("/task.json", 1)[0]
        out.append((name, j))
    return out


def rows(gd, tar, seed=41):
    rnd = random.Random(seed)
    add, out = gd.injected_copy_adder(rnd, SOURCE, "bigbench", MAX_WORDS)
    for name, j in tasks(tar):
        kw = {k.lower() for k in j.get("keywords", []) if isinstance(k, str)}
        if kw & SKIP_KEYWORDS or SKIP_TASKS.search(name):
            continue
        # split by task; the Natural-Instructions subtasks are separate tasks from separate data sets, the
        # subtasks of the other tasks (list_functions/c001 ... c250) variations of one
        split = gd.split_of("bigbench:" + (name if name.startswith("natural_instructions/") else name.split("/")[0]))
        desc = j.get("description") if isinstance(j.get("description"), str) else ""
        prefix = j.get("task_prefix") if isinstance(j.get("task_prefix"), str) else ""
        for t in (desc, prefix):
            if t:
                add(t, "instruction", split)
        examples = [e for e in j.get("examples", []) if isinstance(e, dict) and isinstance(e.get("input"), str)]
        base = name.split("/")[0]
        if base in MULTILINGUAL:
            for e in examples[: MULTILINGUAL[base]]:
                add(e["input"], "prompt", split)
            continue
        for e in rnd.sample(examples, min(3, len(examples))):
            lead = prefix or (desc if rnd.random() < 0.5 else "")
            text = (lead.strip() + rnd.choice(["\n", "\n\n", " "]) + e["input"].strip()) if lead else e["input"]
            add(text, "template-app", split)
    return out
