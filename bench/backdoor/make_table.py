"""Prints the Markdown tables of the model-side backdoor bench
(crates/aisec-defend/examples/backdoor_bench.rs -> results.json): per
attack, clean accuracy CA, attack success rate ASR and accuracy on
triggered inputs with their true label PA (BackdoorBench's three numbers,
in %), before and after each defence; then model inspection on the clean
seeds (false alarms) with their largest anomaly indices.

Usage: python3 bench/backdoor/make_table.py [results.json]
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
d = json.load(open(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "results.json")))


def cell(r):
    if not r:
        return "not run (nothing flagged)"
    a = r["after"] if "after" in r else r
    return f"{100 * a['clean_accuracy']:.1f} / {100 * a['asr']:.1f} / {100 * a['poisoned_accuracy']:.1f}"


cols = [
    ("no defence", lambda r: cell(r["before"])),
    ("NC: flagged (target index)", lambda r: f"{r['neural-cleanse']['inspection']['flagged']} ({r['neural-cleanse']['inspection']['target_index']:.2f})"),
    ("blend: flagged (target index)", lambda r: f"{r['blend']['inspection']['flagged']} ({r['blend']['inspection']['target_index']:.2f})"),
    ("unlearn NC trigger", lambda r: cell(r["neural-cleanse"]["unlearning"])),
    ("unlearn blend trigger", lambda r: cell(r["blend"]["unlearning"])),
    ("unlearn both", lambda r: cell(r.get("both", {}).get("unlearning"))),
    ("fine-prune + unlearn NC", lambda r: cell(r["neural-cleanse"].get("prune_then_unlearn"))),
    ("fine-pruning", lambda r: cell(r["fine_pruning"])),
    ("STRIP TPR / FRR", lambda r: f"{100 * r['strip']['detection']:.1f} / {100 * r['strip']['false_rejection']:.1f}"),
]
print(f"Data: {d['train']} training, {d['clean_sample']} clean (defender), {d['test']} test digits; "
      f"{d['epochs']} epochs; NC {d['inspect']['steps']} steps; {d.get('threads', '?')} threads.\n")
print("CA / ASR / PA in %.\n")
print("| attack | poisoned | " + " | ".join(c[0] for c in cols) + " |")
print("|---|---|" + "---|" * len(cols))
for r in d["attacks"]:
    print(f"| {r['attack']} | {r['planted']} | " + " | ".join(f(r) for _, f in cols) + " |")
plain = [r for r in d["attacks"] if r["neural-cleanse"].get("unlearning_plain") or r["blend"].get("unlearning_plain")]
if plain:
    print("\nAblation: unlearning without the mask gain (the paper's single reversed mask, re-stamped every epoch):\n")
    print("| attack | unlearn NC, gain 1 | unlearn NC, gain 1-3 | unlearn blend, gain 1 | unlearn blend, gain 1-3 |")
    print("|---|---|---|---|---|")
    for r in plain:
        print(f"| {r['attack']} | {cell(r['neural-cleanse'].get('unlearning_plain'))} | {cell(r['neural-cleanse']['unlearning'])} "
              f"| {cell(r['blend'].get('unlearning_plain'))} | {cell(r['blend']['unlearning'])} |")
if d["clean_models"]:
    print("\nClean models (no poison): model inspection must flag nothing.\n")
    print("Anomaly index of the smallest trigger (the only side that can flag), and its size over the median size.\n")
    print("| seed | CA | NC flagged | NC index, size/median | blend flagged | blend index, size/median |")
    print("|---|---|---|---|---|---|")

    def low(i):
        sz = i["sizes"]
        k = min(range(len(sz)), key=lambda j: sz[j])
        med = sorted(sz)[len(sz) // 2 - 1: len(sz) // 2 + 1]
        med = sum(med) / 2 if len(sz) % 2 == 0 else sorted(sz)[len(sz) // 2]
        return f"{i['anomaly_index'][k]:.2f} (class {k}), {sz[k] / med:.2f}"

    for c in d["clean_models"]:
        nc, bl = c["neural-cleanse"], c["blend"]
        print(f"| {c['seed']} | {100 * c['clean_accuracy']:.1f} | {nc['flagged']} | {low(nc)} "
              f"| {bl['flagged']} | {low(bl)} |")
    n = len(d["clean_models"])
    fa = sum(1 for c in d["clean_models"] if c["neural-cleanse"]["flagged"] or c["blend"]["flagged"])
    print(f"\nClean models flagged by either method: {fa} of {n}.")
print(f"\nLoad average at the end of the run: {d['loadavg_end']}.")
