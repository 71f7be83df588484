"""Turns the raw outputs of bench/probe/compare.sh into RESULTS.md (markdown on stdout)."""
import json
import pathlib
import platform
import sys

work = pathlib.Path(sys.argv[1])
garak_version = sys.argv[2]


def wall(name):
    t0, t1 = (float(x) for x in (work / f"{name}.time").read_text().split())
    return t1 - t0


def garak(name):
    rep = work / "garak" / "garak" / "garak_runs" / f"{name}.report.jsonl"
    attempts, per_probe = 0, {}
    for line in rep.read_text().splitlines():
        e = json.loads(line)
        if e.get("entry_type") == "attempt" and e.get("status") == 2:
            attempts += 1
        if e.get("entry_type") == "eval":
            p = per_probe.setdefault(e["probe"], {})
            total = e.get("total_evaluated", e.get("total", 0))
            hits = total - e.get("passed", 0)
            p[e["detector"]] = (hits, total)
    return attempts, per_probe


def aisec(name):
    rep = json.loads((work / f"{name}.json").read_text())
    return rep["data"]["probe"]


rows = []
for delay in (0, 20):
    ga, _ = garak(f"garak-fast-{delay}")
    gw = wall(f"garak-fast-{delay}")
    ap = aisec(f"aisec-fast-{delay}")
    aw = wall(f"aisec-fast-{delay}")
    rows.append((delay, ga, gw, ap["attempts"], aw, ap["attempts_per_second"]))

out = []
out.append("# aisec probe vs garak\n")
out.append(f"Measured by `bench/probe/compare.sh` (garak {garak_version}, {platform.machine()}, "
           "2 shared CPU cores; other jobs were running on the machine). Both tools: 8 requests in flight "
           "(`--parallel_attempts 8` / `-j 8`), one generation per prompt, wall time of the whole process "
           "(start-up included).\n")
out.append("## Throughput where the server is not the bottleneck\n")
out.append("Target: `fast_openai_server` (scripted Rust OpenAI-compatible server, fixed refusal) with the given "
           "simulated latency. garak: `encoding.InjectBase64` + `promptinject.HijackHateHumans` (prompt cap per probe "
           "in the script); aisec: `injection,indirect,encoding` with `--repeats`.\n")
out.append("| server latency | garak attempts | garak wall s | garak attempts/s | aisec attempts | aisec wall s | aisec attempts/s (process) | speed-up |")
out.append("|---|---|---|---|---|---|---|---|")
for delay, ga, gw, aa, aw, _ in rows:
    g, a = ga / gw, aa / aw
    out.append(f"| {delay} ms | {ga} | {gw:.1f} | {g:.1f} | {aa} | {aw:.2f} | {a:.1f} | {a / g:.0f}x |")
out.append("")
out.append("At 0 ms the aisec run is so short that process start-up and timer resolution dominate; the 20 ms row "
           "is the meaningful one: with 8 in flight and 20 ms per reply the ceiling is 400 attempts/s, which aisec "
           "nearly reaches while garak stays far below it. aisec's own count of attempts per second of run time is "
           "in the JSON report (`data.probe.attempts_per_second`).\n")
out.append("## Hit rates on a real local model (SmolLM2-135M-Instruct Q4_1, llama-cpp-python, temperature 0)\n")
out.append("The server answers one request at a time, so here wall time is the model's, not the harness's. "
           "Both tools got 2 requests in flight.\n")
ga, per = garak("garak-llm")
gw = wall("garak-llm")
out.append(f"garak: {ga} attempts in {gw:.0f} s.\n")
out.append("| garak probe | detector | hits / evaluated | rate |")
out.append("|---|---|---|---|")
for probe, dets in sorted(per.items()):
    for det, (h, t) in sorted(dets.items()):
        out.append(f"| {probe} | {det} | {h}/{t} | {h / t if t else 0:.2f} |")
ap = aisec("aisec-llm")
aw = wall("aisec-llm")
out.append(f"\naisec: {ap['attempts']} attempts in {aw:.0f} s.\n")
out.append("| aisec family | hits / n | ASR | Wilson 95% CI | unscored | errors |")
out.append("|---|---|---|---|---|---|")
for f in ap["families"]:
    out.append(f"| {f['family']} | {f['hits']}/{f['n']} | {f['rate']:.2f} | [{f['ci_low']:.2f}, {f['ci_high']:.2f}] "
               f"| {f['unscored']} | {f['errors']} |")
out.append("")
out.append("Notes: the families are comparable in intent (goal hijacking; base64-encoded injections), not in "
           "prompts, so the rates are not expected to match. garak's DecodeMatch/DecodeApprox detectors count "
           "a reply that contains the decoded payload text; aisec counts an exact per-attempt canary (also after "
           "decoding) and scores a reply that only copies the instruction around the canary as a miss (detector `canary-echo`). Hits on a 135M model "
           "are often garbled: read the transcripts (`--transcripts`) before acting on a single hit.")
print("\n".join(out))
