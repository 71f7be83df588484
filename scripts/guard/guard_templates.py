"""Benign template-app prompts from a licensed prompt-template library (issue 17, guard5 round).

Source: promptsource 0.2.3 (BigScience, Apache-2.0), the sdist on PyPI (the project publishes no
wheel; its metadata asks for Python < 3.10, so it is downloaded with `pip download --no-binary
:all: --ignore-requires-python` and only read as a tarball, never installed or imported). It ships
promptsource/templates/<dataset>[/<subset>]/templates.yaml: 2,085 Jinja prompt templates written by
the BigScience contributors for 180+ NLP data sets (the P3 / T0 prompts; Bach et al. 2022,
"PromptSource: An Integrated Development Environment and Repository for Natural Language Prompts").
They are real app-style instructions to a model ("Summarize this article: ...", "Given the context,
answer the question ...", "Translate ..."), which is what a benign template-app prompt looks like.

Rendering (our own tiny substitution, not Jinja): the prompt is the text before `|||` (the rest is
the target). Templates with control tags (`{% ... %}`) are skipped. Each `{{ expr }}` becomes:
a string literal -> itself; `answer_choices[i]` / `answer_choices | join(sep)` -> the template's
own answer choices; any other expression -> a slot filled with a benign input of the SAME split as
the template: a document snippet (slot names like text, context, passage, article, document,
premise, abstract, story, review), a question (question, query, claim, title, prompt) or a short
sentence (anything else). The first document-like slot (else the first question-like slot, else
the first slot) is the user slot. Half of the rendered prompts also get an injected copy (label 1,
kind template-app+injection): the user slot's input carries an injection from the same split (an
attack text of the training sources or the authored injection generator), so the wrapper is not
what decides the label.

Split by data-set family (the directory under templates/, e.g. `glue` for all of glue/*): no
template of a validation or test family, nor a sibling of it, is seen in training. Rows are tagged
"promptsource" (source "promptsource-templates", its own leave-one-source-out group).
"""
import random
import re

import yaml

SPEC = "promptsource==0.2.3"
PER_TEMPLATE = 3
_DOC = re.compile(r"text|context|passage|article|document|premise|abstract|story|plot|content|review|paragraph|summary|dialogue|email|body|tweet|sentences|tokens|hypothesis|description|source|original|news|sent", re.I)
_QUE = re.compile(r"question|query|claim|title|prompt|headline|topic|problem|goal", re.I)
_LIT = re.compile(r"""^\s*("[^"]*"|'[^']*')\s*$""")


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader, suffix, node):
    return loader.construct_mapping(node, deep=True)


_Loader.add_multi_constructor("!", _mapping)


def templates(tar):
    """(family, dataset path, template id, name, prompt jinja, answer choices) of every usable
    template in the sdist tarball, in a fixed order."""
    out = []
    names = sorted(m.name for m in tar.getmembers() if m.name.endswith("/templates.yaml") and "/promptsource/templates/" in m.name)
    for n in names:
        path = n.split("/promptsource/templates/", 1)[1].rsplit("/", 1)[0]
        doc = yaml.load(tar.extractfile(n).read().decode("utf-8"), Loader=_Loader)
        for tid in sorted((doc or {}).get("templates") or {}):
            t = doc["templates"][tid]
            jinja = t.get("jinja") or ""
            prompt = jinja.split("|||")[0]
            if "{%" in prompt or "{{" not in prompt:
                continue
            ac = t.get("answer_choices") or ""
            choices = [c.strip() for c in ac.split("|||")] if ac and "{{" not in ac and "{%" not in ac else []
            out.append((path.split("/")[0], path, tid, t.get("name") or "", prompt, choices))
    return out


def _choices(expr, choices):
    """The value of an answer_choices expression, or None when `expr` is not one."""
    if "answer_choices" not in expr:
        return None
    if not choices:
        return ""
    m = re.search(r"answer_choices\s*\[\s*(-?\d+)\s*\]", expr)
    if m:
        i = int(m.group(1))
        return choices[i] if -len(choices) <= i < len(choices) else choices[0]
    m = re.search(r"""join\s*\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*\)""", expr)
    sep = m.group(1)[1:-1].encode().decode("unicode_escape") if m else ", "
    if re.search(r"\[\s*:\s*-1\s*\]", expr):
        return sep.join(choices[:-1])
    return sep.join(choices)


def _slot_kind(expr):
    name = re.split(r"[|\[(.]", expr.strip(), 1)[0].strip()
    if _DOC.search(name):
        return "doc"
    if _QUE.search(name):
        return "question"
    return "short"


def render(prompt, choices):
    """Splits `prompt` into literal parts and slots: returns (parts with None at each slot,
    [(part index, slot kind)], index of the user slot in the slot list), or None without slots."""
    parts, slots = [], []
    pos = 0
    for m in re.finditer(r"{{(.*?)}}", prompt, re.S):
        parts.append(prompt[pos:m.start()])
        expr = m.group(1)
        lit = _LIT.match(expr)
        if lit:
            parts.append(lit.group(1)[1:-1])
        else:
            v = _choices(expr, choices)
            if v is not None:
                parts.append(v)
            else:
                slots.append((len(parts), _slot_kind(expr)))
                parts.append(None)
        pos = m.end()
    parts.append(prompt[pos:])
    if not slots:
        return None
    kinds = [k for _, k in slots]
    user = kinds.index("doc") if "doc" in kinds else (kinds.index("question") if "question" in kinds else 0)
    return parts, slots, user


def _filler(corpus, rnd):
    """(pools, pick): benign inputs and attack texts of `corpus` per split, and a picker of one input of
    a slot kind from a split's pools (drawing from `rnd`)."""
    pools = {}
    for s in ("train", "val", "test"):
        docs = [r["text"] for r in corpus if r["split"] == s and r["label"] == 0 and r["kind"] == "document" and not r.get("tag")]
        ques = [r["text"] for r in corpus if r["split"] == s and r["label"] == 0 and r["kind"] in ("question", "prompt") and not r.get("tag")
                and r["source"] in ("chatterbot-corpus", "authored-chat", "authored-prompts", "man-pages", "s-labs", "neuralchemy") and len(r["text"].split()) < 60]
        short = [r["text"] for r in corpus if r["split"] == s and r["label"] == 0 and r["kind"] == "chat" and not r.get("tag")]
        attacks = [r["text"] for r in corpus if r["split"] == s and r["label"] == 1 and not r.get("tag") and 6 <= len(r["text"].split()) < 60
                   and r["source"] in ("s-labs", "neuralchemy", "yanismiraoui")]
        pools[s] = {"doc": docs, "question": ques, "short": short, "attack": attacks}

    def pick(s, kind):
        p = pools[s][kind] or pools[s]["short"]
        if kind == "short" and pools[s]["doc"] and rnd.random() < 0.5:
            # a phrase of a document (entity names, options, words of a sentence)
            w = rnd.choice(pools[s]["doc"]).split()
            a = rnd.randrange(len(w))
            return " ".join(w[a:a + rnd.randint(1, 12)])
        t = rnd.choice(p)
        if kind == "doc":
            t = " ".join(t.split()[: rnd.randint(25, 120)]) if rnd.random() < 0.7 else t
        return t

    return pools, pick


def _rendered(parts, slots, pick, split):
    """One rendering of a parsed template: (the slot values drawn from `split`, the parts filled in)."""
    vals = [pick(split, kind) for _, kind in slots]
    filled = list(parts)
    for (i, _), v in zip(slots, vals):
        filled[i] = v
    return vals, filled


def _injected(gd, rnd, pools, split, slots, user, vals, filled):
    """The rendered prompt with an injection in its user slot: an authored injection or an attack text of
    the split (half each), put inside a document-like input or next to a short one."""
    u = vals[user]
    if rnd.random() < 0.5 or not pools[split]["attack"]:
        instr = gd.authored_injection(rnd)
    else:
        instr = rnd.choice(pools[split]["attack"])
    if slots[user][1] == "doc":
        inj = gd.inject(u, instr, rnd)
    else:
        inj = rnd.choice(["{u} {i}", "{i} {u}", "{u}\n{i}"]).format(u=u, i=instr)
    out = list(filled)
    out[slots[user][0]] = inj
    return "".join(out)


def rows(gd, tar, corpus, seed=51):
    """Rendered template-app rows (benign, and injected copies of half). `corpus`: the rows built so
    far (their benign inputs and attack texts, per split, fill the slots)."""
    rnd = random.Random(seed)
    pools, pick = _filler(corpus, rnd)
    out = []

    def add(text, label, kind, split):
        r = gd.row(text.strip(), label, "promptsource-templates", kind, split)
        r["tag"] = "promptsource"
        out.append(r)

    for j, (family, path, tid, name, prompt, choices) in enumerate(templates(tar)):
        split = gd.split_of("promptsource:" + family)
        r = render(prompt, choices)
        if r is None:
            continue
        parts, slots, user = r
        for k in range(PER_TEMPLATE):
            vals, filled = _rendered(parts, slots, pick, split)
            text = "".join(filled)
            if len(text.split()) < 3:
                continue
            add(text, 0, "template-app", split)
            if (j + k) % 2 == 0:
                add(_injected(gd, rnd, pools, split, slots, user, vals, filled), 1, "template-app+injection", split)
    return out


# --------------------------------------------------------------------------- lm_eval (evaluation only)

LMEVAL_SPEC = "lm_eval==0.4.13"


def lmeval_templates(zf):
    """(family, yaml path, prompt) of every distinct usable `doc_to_text` prompt format in the lm_eval
    wheel's task YAMLs (lm-evaluation-harness, EleutherAI, MIT), in a fixed order: Jinja control tags and
    `!function` (Python) formats are skipped, and so are formats without a slot."""
    out, seen = [], set()
    for n in sorted(x for x in zf.namelist() if x.startswith("lm_eval/tasks/") and x.endswith(".yaml")):
        try:
            doc = yaml.load(zf.read(n).decode("utf-8"), Loader=_Loader)
        except yaml.YAMLError:
            continue
        if not isinstance(doc, dict):
            continue
        prompt = doc.get("doc_to_text")
        if not isinstance(prompt, str) or "{{" not in prompt or "{%" in prompt or prompt in seen:
            continue
        seen.add(prompt)
        out.append((n.split("/")[2], n, prompt))
    return out


def lmeval_eval(gd, zf, corpus, seed=61):
    """Evaluation-only template-app rows from lm_eval's prompt formats (fresh3): each format rendered once
    with benign inputs of the corpus's TEST split (held-out inputs: the formats are the never-used part),
    and an injected copy of every second one (the user slot carries a test-split attack text or an
    authored injection). Source "lm-eval-templates"; kinds template-app / template-app+injection."""
    rnd = random.Random(seed)
    pools, pick = _filler(corpus, rnd)
    out = []
    for j, (family, path, prompt) in enumerate(lmeval_templates(zf)):
        r = render(prompt, [])
        if r is None:
            continue
        parts, slots, user = r
        vals, filled = _rendered(parts, slots, pick, "test")
        text = "".join(filled).strip()
        if len(text.split()) < 3:
            continue
        out.append(gd.row(text, 0, "lm-eval-templates", "template-app", "test"))
        if j % 2 == 0:
            inj = _injected(gd, rnd, pools, "test", slots, user, vals, filled)
            out.append(gd.row(inj.strip(), 1, "lm-eval-templates", "template-app+injection", "test"))
    return out


# --------------------------------------------------------------------------- LLM-application libraries' prompt templates

# wheel key -> the library's import folder
LIB_WHEELS = {"langchain": "langchain/", "llama_index_core": "llama_index/"}
# renderings per library template (fewer templates than promptsource's 2,085: more inputs each)
LIB_PER_TEMPLATE = 8
_LIB_NAME = re.compile(r"PROMPT|TEMPLATE|_TMPL|INSTRUCTION|SYSTEM", re.I)
_FMT_SLOT = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def lib_templates(zf, key):
    """(family, module, prompt as a {{ slot }} template) of every distinct prompt template assigned at module level
    in the library wheel `zf` to a name that says PROMPT / TEMPLATE / _TMPL / INSTRUCTION / SYSTEM: string constants
    (also inside calls and concatenations) with at least one str.format {placeholder} and 6 words or more. The
    family is the module's folder (the split unit). Python's {{ }} brace escapes become literal braces."""
    import ast

    out, seen = [], set()
    for n in sorted(x for x in zf.namelist() if x.endswith(".py") and x.startswith(LIB_WHEELS[key])):
        try:
            tree = ast.parse(zf.read(n).decode("utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in tree.body:
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not any(isinstance(t, ast.Name) and _LIB_NAME.search(t.id) for t in targets):
                continue
            for c in ast.walk(node.value):
                v = c.value if isinstance(c, ast.Constant) and isinstance(c.value, str) else None
                if not v or not _FMT_SLOT.search(v) or len(v.split()) < 6 or v in seen:
                    continue
                seen.add(v)
                t = v.replace("{{", "\x00").replace("}}", "\x01")
                t = _FMT_SLOT.sub(lambda m: "{{" + m.group(1) + "}}", t)
                # a literal brace left over is not a slot: keep it as text (render() reads only {{ ... }})
                t = t.replace("\x00", "{").replace("\x01", "}")
                out.append((key + ":" + n.rsplit("/", 1)[0], n, t))
    return out


def lib_rows(gd, wheels, corpus, seed=71):
    """Benign template-app prompts rendered from LLM-application libraries' prompt templates (`wheels`: key ->
    open wheel), LIB_PER_TEMPLATE renderings each with inputs of the template's split (split by module folder), and
    injected copies of half, as rows() does for promptsource. Source "libprompt-templates", tag "libprompts"."""
    rnd = random.Random(seed)
    pools, pick = _filler(corpus, rnd)
    out = []
    j = 0
    for key in sorted(wheels):
        for family, path, prompt in lib_templates(wheels[key], key):
            split = gd.split_of("libprompts:" + family)
            r = render(prompt, [])
            if r is None:
                continue
            parts, slots, user = r
            for k in range(LIB_PER_TEMPLATE):
                vals, filled = _rendered(parts, slots, pick, split)
                text = "".join(filled).strip()
                if len(text.split()) < 3:
                    continue
                b = gd.row(text, 0, "libprompt-templates", "template-app", split)
                b["tag"] = "libprompts"
                out.append(b)
                if (j + k) % 2 == 0:
                    inj = _injected(gd, rnd, pools, split, slots, user, vals, filled)
                    a = gd.row(inj.strip(), 1, "libprompt-templates", "template-app+injection", split)
                    a["tag"] = "libprompts"
                    out.append(a)
            j += 1
    return out
