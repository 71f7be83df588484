"""Prints the Markdown table of bench/poison/mnist_mlp.json (clean accuracy
CA, attack success rate ASR, accuracy on triggered inputs with the true
label RA, in %; before and after each data defence removes what it flags
and the victim is retrained)."""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
d = json.load(open(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "mnist_mlp.json")))
short = {"activation-clustering": "AC", "spectral-signatures": "SS", "early-loss": "ABL-loss"}
pct = lambda v: f"{100 * v:.1f}"
print("| attack | poisoned | no defence CA / ASR / RA | " + " | ".join(
    f"after {short[m['method']]} CA / ASR / RA (flagged, P / R)" for m in d["rows"][0]["defences"]) + " |")
print("|---|---|---|" + "---|" * len(d["rows"][0]["defences"]))
for r in d["rows"]:
    b = r["before"]
    cells = [f"{r['attack']} {100 * r['rate']:g}%", str(r["poisoned"]),
             f"{pct(b['clean_accuracy'])} / {pct(b['attack_success_rate'])} / {pct(b['poisoned_accuracy'])}"]
    for m in r["defences"]:
        a, det = m["after"], m["detection"]
        cells.append(f"{pct(a['clean_accuracy'])} / {pct(a['attack_success_rate'])} / {pct(a['poisoned_accuracy'])} "
                     f"({m['flagged']}, {det['precision']:.2f} / {det['recall']:.2f})")
    print("| " + " | ".join(cells) + " |")
print()
c = d["rows"][0]["clean_model"]
print(f"Clean model (no poison): CA {pct(c['clean_accuracy'])}%, ASR of the BadNets trigger {pct(c['attack_success_rate'])}%. "
      f"Load average during the run: {d['loadavg']}.")
