"""Leave-one-source-out for the guard's fast classifier (issue 17: does it generalise?).

Run through the trainer, which builds the rows and their Rust features once:
    AISEC_GUARD_LOSO=1 AISEC_GUARD_WORK=/tmp/x python3 scripts/guard/train_classifier.py
For every group of training sources G: the classifier is fitted exactly as the shipped one
(train_classifier.fit_mil) on the training split WITHOUT G, its threshold chosen on the
validation split without G (train_classifier.choose_threshold), and G's validation and test
rows are scored. Rows a candidate corpus adds (field `tag`) are scored too but kept apart, so
two corpora are compared on the same rows. Writes WORK/loso/<group>.jsonl (one line per scored
row: text, label, source, kind, split, tag, score, threshold) and prints a table; compare two
runs with scripts/guard/loso_report.py. No model is written.

Leave-one-group-out is the usual check of transfer to an unseen domain (e.g. Gulrajani and
Lopez-Paz 2021, "In search of lost domain generalization"); here it measures whether the
model learnt the instruction, or the style of the sources it saw.
"""
import json
import os
import re

# groups of training sources; attack-only sources stand alone (their rows measure recall)
GROUPS = {
    "s-labs": ["s-labs"],
    "neuralchemy": ["neuralchemy"],
    "yanismiraoui": ["yanismiraoui"],
    "pyrit-jailbreak-templates": ["pyrit-jailbreak-templates"],
    "chatterbot-corpus": ["chatterbot-corpus", "chatterbot-multilingual"],
    "authored-chat+prompts": ["authored-chat", "authored-prompts"],
    "authored-template-app": ["authored-template-app"],
    "documents": ["documents"],
    "man-pages": ["man-pages"],
    "debian-docs": ["debian-docs"],
    # promptsource's templates rendered with benign inputs (scripts/guard/guard_templates.py; tag "promptsource")
    "promptsource-templates": ["promptsource-templates"],
    # LLM-application libraries' prompt templates (guard_templates.lib_rows; tag "libprompts"; candidate)
    "libprompt-templates": ["libprompt-templates"],
    # BIG-bench task descriptions, prefixes and rendered example inputs (guard_bigbench.py; in the shipped corpus since
    # the session of stop 36, but kept out of the threshold pool, as that decision was made: CANDIDATE_GROUPS)
    "bigbench-tasks": ["bigbench-tasks"],
    # dataset-build's synthetic prose in 38 languages, some behind writing-request leads (guard_prose.py; rejected candidate)
    "prose": ["prose"],
    # OpenAI Evals' task instructions and items (guard_evals.py; in the shipped corpus since the session of stop 37, in
    # place of BIG-bench's; decided as a candidate, so reported and kept out of the threshold pool: CANDIDATE_GROUPS)
    "openai-evals": ["openai-evals"],
    # benign multilingual look-alikes of injection wording (guard_lookalike.py; candidate, session of stop 38)
    "lookalike": ["lookalike"],
    # benign legal prose, EU acts and US federal regulations (guard_legal.py; candidate, session of stop 38; in the
    # shipped corpus since the session of stop 44, decided as a candidate, so reported and kept out of the threshold
    # pool like openai-evals: CANDIDATE_GROUPS)
    "legal": ["legal"],
    # parallel multilingual requests and injections (guard_multiling.py; candidate MWLP, session of stop 45)
    "multiling": ["multiling"],
    # people's prompts, IFEval, IFBench, Arena-Hard v2.0 (guard_userprompts.py; candidate, session of stop 38)
    "user-prompts": ["user-prompts"],
    # Django's translated interface strings, benign non-English text (guard_uistrings.py; candidate, session of stop 39)
    "ui-translations": ["ui-translations"],
    # agent task prompts and API responses, BFCL and NESTFUL (guard_agenttasks.py; candidate AT, session of stop 54)
    "agent-tasks": ["agent-tasks"],
    # tool outputs with orders to call a tool, and benign look-alikes (guard_toolcall.py; candidate AT, session of stop 54)
    "toolcall": ["toolcall"],
}

# the held-out constraint of the shipped threshold (train_classifier, AISEC_GUARD_LOSO_THRESHOLD)
LOSO_MAX_FPR = 0.02
LOSO_MAX_SHORT_FPR = 0.01

_DISCARD = re.compile(r"\b(ignore|disregard|forget|skip|stop (reading|summari[sz]ing))\b[^.\n]{0,40}\b(rest|above|previous|prior|everything|earlier|remaining|document|data|context)\b", re.I)
_TURN = re.compile(r"\n\s*(\[?(user|human|assistant|system|admin|bot|q)\]?\s*[:>]|###\s*(instruction|response)|<(user|assistant)>|<\|im_start\|>)", re.I)
_NOTE = re.compile(r"\[\s*system[^\]]*\]|note to (any |the )?(ai|automated|assistant|model|llm|reviewer)|message for the|hidden (note|instruction)|<!--|\battention (llm|ai|assistant)", re.I)
_COND = re.compile(r"\b(if|when|whenever)\b (the |a |any )?(user|anyone|you are (an? )?(ai|asked)|asked to|summari[sz]ing|the user requests)", re.I)
_ROLE = re.compile(r"\b(pretend|role-?play|act as|you are now|two (entities|characters)|dan\b|developer mode|cipher|base64|rot13|caesar|morse)", re.I)


def error_class(r):
    """The issue-17 error class of a row (its kind, refined by what the text carries)."""
    t, k = r["text"], r["kind"]
    words = len(t.split())
    if r["label"] == 0:
        if k == "chat" or words < 8:
            return "benign short chat (<8 words)"
        if k == "document":
            return "benign document"
        if k == "template-app":
            return "benign template-app input"
        return "benign " + ("question/prompt" if k in ("question", "prompt", "instruction", "persona-prompt") else k)
    if k in ("document+injection", "template-app+injection"):
        where = "doc" if k == "document+injection" else "template-app"
        for name, rx in (("fake dialogue turn", _TURN), ("discard-the-rest order", _DISCARD), ("note to automated reader", _NOTE), ("conditional order", _COND)):
            if rx.search(t):
                return f"{where}+injection: {name}"
        return f"{where}+injection: other"
    if k == "roleplay-jailbreak" or _ROLE.search(t):
        return "role-play / persona / cipher jailbreak"
    return "plain injection"


def run(XA, rows, nwins, first, C, work, skip=()):
    """Runs leave-one-source-out for each corpus variant: `shipped` (the rows without a `tag`, the
    shipped model's corpus) and `all` (every row), sharing one feature matrix.
    AISEC_GUARD_LOSO_VARIANTS and AISEC_GUARD_LOSO_GROUPS (comma lists) pick a subset; `skip`: variants
    already run (the trainer's threshold rule runs "all")."""
    variants = [v for v in os.environ.get("AISEC_GUARD_LOSO_VARIANTS", "shipped,all").split(",") if v]
    for v in variants:
        if v in skip:
            continue
        rs = [r for r in rows if not r.get("tag")] if v == "shipped" else rows
        run_variant(XA, rs, nwins, first, C, os.path.join(work, "loso-" + v), v)


# groups a candidate corpus adds (GROUPS entries the shipped corpus lacks): their folds are scored and reported,
# but kept out of threshold_offset's pool, so that a candidate and the shipped corpus choose d on the same rows.
# Why: held out, the LLM-application libraries' templates (a genre no other group has) were flagged 349 of 745
# times and alone moved the candidate's d from 0.00 to 0.07 (bench/guard/QUALITY.md, the libprompts candidate).
# bigbench-tasks was decided as a candidate (d chosen without it; bench/guard/DECISIONS.md) and shipped so: its fold is
# reported, not pooled; openai-evals, its replacement, the same way, and legal (shipped in the session of stop 44).
CANDIDATE_GROUPS = ("libprompt-templates", "bigbench-tasks", "prose", "openai-evals", "lookalike", "legal", "user-prompts", "ui-translations", "multiling",
                    "agent-tasks", "toolcall")

# the held-out threshold rule scans d upward from here: the lowest threshold that meets the held-out bounds, which
# may lie below the validation threshold when a corpus generalises better than its validation split suggests
MIN_OFFSET = -0.10


def held_rows(out_dir, split, exclude=()):
    """The scored rows of `split` of a leave-one-source-out run (out_dir/<group>.jsonl), group by group;
    groups named in `exclude` are skipped."""
    for name in sorted(os.listdir(out_dir)):
        if not name.endswith(".jsonl") or name[:-6] in exclude:
            continue
        with open(os.path.join(out_dir, name), encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r["split"] == split:
                    yield r


def threshold_offset(out_dir, step=0.01, min_d=MIN_OFFSET, max_d=0.30, exclude=CANDIDATE_GROUPS):
    """The held-out threshold rule: the smallest offset d (a multiple of `step`, from min_d) such that the pooled
    leave-one-source-out VALIDATION rows (each group scored by the model fitted without it, at that
    fold's threshold + d; rows of every corpus variant's own tags included; groups in `exclude` left out)
    have benign FPR <= LOSO_MAX_FPR and short-text benign FPR <= LOSO_MAX_SHORT_FPR. Test rows are not read.
    Returns (d, recall, fpr, short_fpr, n_benign, n_short) at that d (the largest tried if none meets it)."""
    import numpy as np

    import train_classifier as tc

    sc, th, y, short = [], [], [], []
    for r in held_rows(out_dir, "val", exclude):
        sc.append(r["score"]); th.append(r["threshold"]); y.append(r["label"])
        short.append(len(tc.normalise(r["text"]).split(" ")) < tc.SHORT_WORDS)
    sc, th, y, short = np.array(sc), np.array(th), np.array(y), np.array(short)
    nb, ns = int(np.sum(y == 0)), int(np.sum((y == 0) & short))
    res = None
    for k in range(int(round(min_d / step)), int(round(max_d / step)) + 1):
        d = round(k * step, 2)
        pred = sc >= th + d
        fpr = int(np.sum(pred & (y == 0))) / max(1, nb)
        sfpr = int(np.sum(pred & (y == 0) & short)) / max(1, ns)
        rec = int(np.sum(pred & (y == 1))) / max(1, int(np.sum(y == 1)))
        res = (d, rec, fpr, sfpr, nb, ns)
        if fpr <= LOSO_MAX_FPR and sfpr <= LOSO_MAX_SHORT_FPR:
            break
    return res


# the length correction of the threshold (Classifier::threshold_for): the grid its slope is chosen from, and
# the window count from which it stops growing (what padding a document with benign text can buy an attacker)
LENGTH_SLOPES = [round(0.05 * i, 2) for i in range(11)]
LENGTH_CAP = 32


def n_windows(text):
    """The classifier's window count for `text` (classifier.rs window_ranges on the prepared text)."""
    import train_classifier as tc

    n = len(tc.normalise(text).split(" ")) if text.strip() else 0
    if n <= tc.WINDOW:
        return 1
    starts = list(range(0, n - tc.WINDOW + 1, tc.STRIDE))
    return len(starts) + (starts[-1] != n - tc.WINDOW)


def length_threshold(t, n, slope, cap=LENGTH_CAP):
    """sigmoid(logit(t) + slope * ln(min(n, cap))), as Classifier::threshold_for computes it."""
    import math

    n = min(max(n, 1), cap)
    if slope <= 0 or n <= 1 or not 0 < t < 1:
        return t
    return 1 / (1 + math.exp(-(math.log(t / (1 - t)) + slope * math.log(n))))


def length_slope(out_dir, d, split="val", exclude=CANDIDATE_GROUPS):
    """The length rule: the slope in LENGTH_SLOPES with the best F1 on the pooled leave-one-source-out
    rows of `split` (each group scored by the model fitted without it at that fold's threshold + d, then
    length-corrected; threshold_offset's pool: groups in `exclude` left out); ties go to the smaller slope.
    VALIDATION rows choose it; the test rows are only read by the report (split="test").
    Returns (slope, [per-slope dicts])."""
    rows = [(r["score"], min(0.99, r["threshold"] + d), r["label"], n_windows(r["text"])) for r in held_rows(out_dir, split, exclude)]
    table = []
    for k in LENGTH_SLOPES:
        tp = fp = fn = nb = 0
        for s, t, y, n in rows:
            hit = s >= length_threshold(t, n, k)
            if y:
                tp += hit
                fn += not hit
            else:
                nb += 1
                fp += hit
        table.append({"slope": k, "recall": round(tp / max(1, tp + fn), 4), "fpr": round(fp / max(1, nb), 4), "fp": fp, "benign": nb,
                      "f1": round(2 * tp / max(1, 2 * tp + fp + fn), 4)})
    best = max(table, key=lambda r: (r["f1"], -r["slope"]))
    return best["slope"], table


def run_variant(XA, rows, nwins, first, C, out_dir, variant):
    import time

    import numpy as np

    import train_classifier as tc

    only = [g for g in os.environ.get("AISEC_GUARD_LOSO_GROUPS", "").split(",") if g]
    os.makedirs(out_dir, exist_ok=True)
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    for name in only or list(GROUPS):
        srcs = GROUPS[name]
        t0 = time.process_time()
        tr = [r for r in train if r["source"] not in srcs]
        va = [r for r in val if r["source"] not in srcs]
        held = [r for r in rows if r["source"] in srcs and r["split"] in ("val", "test")]
        if not held:
            continue
        model = tc.fit_mil(XA, tr, nwins, first, C)
        w = model.coef_[0].astype("<f2").astype(np.float64)
        b = float(np.float32(model.intercept_[0]))
        hid = tc.hidden_of(model)
        th, best, short_th = tc.choose_threshold(tc.scores_of(XA, va, nwins, first, w, b, hid), va)
        sc = tc.scores_of(XA, held, nwins, first, w, b, hid)
        with open(os.path.join(out_dir, name + ".jsonl"), "w", encoding="utf-8") as f:
            for r, p in zip(held, sc):
                short = len(tc.normalise(r["text"]).split(" ")) < tc.SHORT_WORDS
                f.write(json.dumps({"text": r["text"], "label": r["label"], "source": r["source"], "kind": r["kind"], "split": r["split"],
                                    "tag": r.get("tag", ""), "score": float(p), "threshold": short_th if short else th}, ensure_ascii=False) + "\n")
        # the printed line: the rows without a tag (comparable across corpus variants), or all held rows
        # when the group is a candidate's own (every row tagged)
        base = [(r, p) for r, p in zip(held, sc) if not r.get("tag")] or list(zip(held, sc))
        y = np.array([r["label"] for r, _ in base])
        pred = np.array([p >= (short_th if len(tc.normalise(r["text"]).split(" ")) < tc.SHORT_WORDS else th) for r, p in base])
        tp = int(np.sum(pred & (y == 1))); fp = int(np.sum(pred & (y == 0))); fn = int(np.sum(~pred & (y == 1)))
        nb = int(np.sum(y == 0))
        print(f"LOSO {variant:8s} {name:26s} cpu {time.process_time() - t0:5.0f}s train {len(tr):6d} held {len(base):5d} th {th:.2f}/{short_th:.2f} recall {tp / max(1, tp + fn):.3f} "
              f"FPR {fp / max(1, nb):.4f} ({fp}/{nb}) F1 {2 * tp / max(1, 2 * tp + fp + fn):.3f}", flush=True)
