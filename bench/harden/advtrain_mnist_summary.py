#!/usr/bin/env python3
"""Tabulates the full-MNIST PGD-AT curve written by advtrain_mnist.py
(advtrain_mnist_{aisec,torch}.json) and advtrain_mnist_aa.py
(advtrain_mnist_aa.json) as Markdown, and draws advtrain_mnist_curve.svg
(clean, PGD-10 and AutoAttack accuracy against epochs) when matplotlib is
importable.

Usage: python bench/harden/advtrain_mnist_summary.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name, default):
    p = os.path.join(HERE, name)
    return json.load(open(p)) if os.path.exists(p) else default


def main():
    runs = {s: load(f"advtrain_mnist_{s}.json", {"epochs": []})["epochs"] for s in ("aisec", "torch")}
    aa = load("advtrain_mnist_aa.json", [])
    aa_by = {(r["side"], r["epoch"]): r for r in aa}
    limits = sorted({r["limit"] for r in aa})
    n = max([len(v) for v in runs.values()] + [0])
    pct = lambda v: f"{100 * v:.1f}%" if v is not None else ""
    print("| epoch | aisec clean | aisec PGD-10 | aisec AA | aisec epoch s (CPU s of the call) "
          "| torch clean | torch PGD-10 | torch AA | torch epoch s (CPU s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in range(1, n + 1):
        cells = [str(k)]
        for s in ("aisec", "torch"):
            row = next((r for r in runs[s] if r["epoch"] == k), None)
            a = aa_by.get((s, k))
            if row is None:
                cells += ["", "", pct(a["autoattack"]) if a else "", ""]
                continue
            cpu = row.get("call_cpu_s", row.get("train_cpu_s"))
            cells += [pct(row["clean"]), pct(row["pgd10"]),
                      f"{pct(a['autoattack'])} (n={a['limit']})" if a else "",
                      f"{row['train_seconds']:.0f} ({cpu:.0f})"]
        print("| " + " | ".join(cells) + " |")
    if aa:
        print()
        print("| side | epoch | AutoAttack digits | clean | AutoAttack | wall s | CPU s | load after |")
        print("|---|---|---|---|---|---|---|---|")
        for r in aa:
            print(f"| {r['side']} | {r['epoch']} | {r['limit']} | {pct(r['clean'])} | {pct(r['autoattack'])} | "
                  f"{r['wall_s']:.0f} | {r['cpu_s']:.0f} | {r['loadavg'][0]:.1f} |")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    matplotlib.rcParams["svg.hashsalt"] = "aisec"
    fig, ax = plt.subplots(figsize=(6.4, 4))
    style = {"aisec": "-", "torch": "--"}
    for s in ("aisec", "torch"):
        if not runs[s]:
            continue
        ep = [r["epoch"] for r in runs[s]]
        ax.plot(ep, [100 * r["clean"] for r in runs[s]], style[s], color="tab:blue", marker="o", label=f"{s} clean")
        ax.plot(ep, [100 * r["pgd10"] for r in runs[s]], style[s], color="tab:orange", marker="o",
                label=f"{s} PGD-10")
        pts = sorted((r["epoch"], 100 * r["autoattack"]) for r in aa if r["side"] == s)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style[s], color="tab:red", marker="s",
                    label=f"{s} AutoAttack (n={','.join(str(x) for x in limits)})")
    ax.axhline(89, color="grey", lw=0.8, ls=":")
    ax.set_xticks(range(1, n + 1))
    ax.text(1, 90.5, "Madry et al. 2018, ~100 epochs, full-width CNN: 89%", fontsize=7, color="grey")
    ax.set_xlabel("epoch (60,000 MNIST digits, PGD-AT eps 0.3)")
    ax.set_ylabel("accuracy on the 1,000-digit test subset (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "advtrain_mnist_curve.svg"), metadata={"Date": None})


if __name__ == "__main__":
    main()
