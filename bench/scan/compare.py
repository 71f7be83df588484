#!/usr/bin/env python3
"""Turn the raw outputs of run.sh into bench/scan/RESULTS.md.

Reads <work>/corpus/manifest.json (ground truth), <work>/out/* (each tool's
output, exit codes and `/usr/bin/time -v` logs) and <work>/env.json (machine,
versions, commands), and writes the markdown report. Every number in the
report comes from those files; nothing is typed in by hand.

Verdicts per file:
  aisec       caught = a finding at severity high or critical for that file
              (its `location.path`); benign false positive = the same test.
  picklescan  flagged = a "dangerous import ... FOUND" line for the file or a
              member of it (its own "infected" verdict); parse errors are
              counted separately.
  modelscan   flagged = any issue whose `source` is the file or a member of it.
  fickling    CLI: exit status 1 of `fickling --check-safety FILE` (2 = error).
              API: fickling_batch.py, flagged = a result that is not is_safe.

Usage: compare.py WORK_DIR OUT_MARKDOWN
"""

from __future__ import annotations

import collections
import json
import os
import re
import statistics
import sys

SEV_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def load_time(path):
    """Parses GNU time -v output: wall seconds and max RSS (KiB)."""
    if not os.path.exists(path):
        return None
    wall = rss = None
    cpu = 0.0
    for line in open(path, errors="replace"):
        line = line.strip()
        if line.startswith("User time (seconds)") or line.startswith("System time (seconds)"):
            cpu += float(line.rsplit(":", 1)[1])
        if line.startswith("Elapsed (wall clock) time"):
            t = line.rsplit(": ", 1)[1]
            parts = [float(x) for x in t.split(":")]
            wall = 0.0
            for p in parts:
                wall = wall * 60 + p
        elif line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(":", 1)[1])
    if wall is None:
        return None
    return {"wall": wall, "rss_kb": rss, "cpu": cpu}


def norm(path: str, root: str) -> str:
    """Maps a tool's file path (absolute, relative to cwd or to the corpus,
    symlinks resolved or not) to the manifest's relative path."""
    p = path.replace("\\", "/")
    prefixes = {root.rstrip("/") + "/", os.path.realpath(root).rstrip("/") + "/",
                os.path.relpath(root).rstrip("/") + "/"}
    for prefix in sorted(prefixes, key=len, reverse=True):
        if p.startswith(prefix):
            return p[len(prefix):]
    if p.startswith("./"):
        p = p[2:]
    return p


def resolve(rel: str, files) -> str:
    """`rel` itself if it is a manifest path, else the manifest path it ends
    with or starts with (a member glued on), else `rel`."""
    if rel in files:
        return rel
    for cand in files:
        if rel.endswith("/" + cand) or rel.startswith(cand + "/") or rel.startswith(cand + ":"):
            return cand
    return rel


def parse_aisec(path, root, files):
    verdict = {}
    if not os.path.exists(path):
        return None
    try:
        rep = json.load(open(path))
    except json.JSONDecodeError:
        return None
    maxsev = {}
    rules = collections.defaultdict(set)
    for f in rep.get("findings", []):
        loc = f.get("location", {})
        rel = resolve(norm(loc.get("path", ""), root), files)
        s = SEV_ORDER.get(str(f.get("severity", "")).lower(), 0)
        maxsev[rel] = max(maxsev.get(rel, -1), s)
        rules[rel].add(f.get("rule_id", "?"))
    errs = {resolve(norm(e.get("subject", ""), root), files) for e in rep.get("errors", [])}
    for rel in files:
        ms = maxsev.get(rel, -1)
        verdict[rel] = {"flagged": ms >= SEV_ORDER["high"], "any": ms >= 0, "maxsev": ms,
                        "error": rel in errs, "rules": sorted(rules.get(rel, []))}
    return verdict


def parse_picklescan(path, root, files):
    if not os.path.exists(path):
        return None
    flagged, errors = set(), set()
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^(.*?): dangerous import '.*' FOUND$", line)
        if m:
            flagged.add(norm(m.group(1).split(":")[0], root))
            continue
        m = (re.match(r"^WARNING: could not parse (.*?) as pickle: ", line)
             or re.match(r"^ERROR: parsing pickle in (.*?)(?::[^:/]*)?: ", line))
        if m:
            errors.add(norm(m.group(1).split(":")[0], root))
    return {rel: {"flagged": rel in flagged, "error": rel in errors} for rel in files}


def parse_modelscan(path, root, files):
    if not os.path.exists(path):
        return None
    try:
        rep = json.load(open(path))
    except json.JSONDecodeError:
        return None
    flagged, errors = set(), set()
    for i in rep.get("issues", []) or []:
        flagged.add(norm(str(i.get("source", "")).split(":")[0], root))
    for e in rep.get("errors", []) or []:
        errors.add(norm(str(e.get("source", "")).split(":")[0], root))
    return {rel: {"flagged": rel in flagged, "error": rel in errors} for rel in files}


def parse_jsonl_verdicts(path, root, files):
    if not os.path.exists(path):
        return None
    recs = {}
    for line in open(path):
        r = json.loads(line)
        recs[r["path"]] = r
    return {rel: {"flagged": bool(recs.get(rel, {}).get("flagged")),
                  "error": bool(recs.get(rel, {}).get("error"))} for rel in files}


def picklescan_cli_aborted(path):
    """The CLI's output ends in a Python traceback when it dies mid-directory."""
    if not os.path.exists(path):
        return None
    text = open(path, errors="replace").read()
    if "Traceback (most recent call last)" in text:
        return text.strip().splitlines()[-1][:200]
    return None


def parse_fickling_cli(path, root, files):
    if not os.path.exists(path):
        return None
    rc = {}
    for line in open(path):
        code, rel = line.rstrip("\n").split("\t", 1)
        rc[rel] = int(code)
    return {rel: {"flagged": rc.get(rel) == 1, "error": rc.get(rel) not in (0, 1)} for rel in files}


FICKLING_STRICT = {"LIKELY_OVERTLY_MALICIOUS", "OVERTLY_MALICIOUS"}


def parse_fickling_api(path, root, files, strict=False):
    """strict=False: fickling's own is_safe verdict; strict=True: only its two
    top severities (likely overtly / overtly malicious)."""
    if not os.path.exists(path):
        return None
    recs = {}
    for line in open(path):
        r = json.loads(line)
        recs[r["path"]] = r
    out = {}
    for rel in files:
        r = recs.get(rel, {})
        flagged = (r.get("severity") in FICKLING_STRICT) if strict else bool(r.get("flagged"))
        out[rel] = {"flagged": flagged, "error": bool(r.get("error"))}
    return out


def run_at(*paths):
    """When a timing file was written (UTC, minutes), for the table."""
    import datetime
    for p in paths:
        if os.path.exists(p):
            return datetime.datetime.fromtimestamp(os.path.getmtime(p), datetime.timezone.utc).strftime("%H:%M")
    return "?"


def aisec_timing(outd, prefix):
    """Median wall and CPU over the repeated aisec runs `<prefix>.run<i>.time`."""
    runs = []
    for i in range(20):
        ti = load_time(os.path.join(outd, f"{prefix}.run{i}.time"))
        if ti:
            runs.append(ti)
    if not runs:
        return None
    return {"wall": statistics.median(r["wall"] for r in runs),
            "cpu": statistics.median(r["cpu"] for r in runs),
            "rss_kb": max(r["rss_kb"] or 0 for r in runs), "runs": [r["wall"] for r in runs],
            "cpu_runs": [r["cpu"] for r in runs]}


def fmt_rate(n, d):
    return f"{n / d:,.1f}" if d > 0 else "n/a"


HAND_MARKER = "<!-- hand-written below this line: compare.py keeps it -->"

def main():
    work, out_md = sys.argv[1], sys.argv[2]
    work = os.path.abspath(work)
    root = os.path.join(work, "corpus")
    man = json.load(open(os.path.join(root, "manifest.json")))
    files = {m["path"]: m for m in man["files"]}
    env = json.load(open(os.path.join(work, "env.json")))
    outd = os.path.join(work, "out")

    tools = [
        ("aisec", parse_aisec(os.path.join(outd, "aisec.json"), root, files), "aisec"),
        ("picklescan", parse_jsonl_verdicts(os.path.join(outd, "picklescan_api.jsonl"), root, files), "picklescan_api"),
        ("modelscan", parse_modelscan(os.path.join(outd, "modelscan.json"), root, files), "modelscan"),
        ("fickling (CLI, per file)", parse_fickling_cli(os.path.join(outd, "fickling_cli.tsv"), root, files), "fickling_cli"),
        ("fickling (API, one process)", parse_fickling_api(os.path.join(outd, "fickling_api.jsonl"), root, files), "fickling_api"),
        ("fickling (API, overtly malicious only)",
         parse_fickling_api(os.path.join(outd, "fickling_api.jsonl"), root, files, strict=True), "fickling_api"),
    ]
    tools = [t for t in tools if t[1] is not None]
    peers = [t for t in tools if t[0] != "aisec"]

    n_files = len(files)
    total_bytes = sum(m["size"] for m in files.values())
    benign = [p for p, m in files.items() if m["label"] == "benign"]
    malicious = [p for p, m in files.items() if m["label"] == "malicious"]

    L = []
    L.append("# `aisec scan` cross-check and benchmark")
    L.append("")
    L.append("Generated by `bench/scan/run.sh` (which calls `gen_corpus.py`, the tools, and `compare.py`). "
             "Do not edit by hand: every number below is parsed from the tools' outputs in `bench/scan/work/out/`.")
    L.append("")
    L.append("## Setup")
    L.append("")
    L.append(f"- Date (UTC): {env.get('date')}")
    L.append(f"- Machine: {env.get('machine')}; shared with other jobs (load average when the report was "
             f"written: {' '.join(env.get('loadavg_at_report', []))}), so timings carry that noise")
    L.append(f"- Command: `{env.get('command')}`")
    L.append(f"- Versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()))
    L.append(f"- Corpus: seed {man['seed']}, scale {man['scale']}: **{n_files} files, {total_bytes / 1e9:.2f} GB** "
             f"({len(benign)} benign, {len(malicious)} malicious). Ground truth: `work/corpus/manifest.json`.")
    L.append("- The corpus was just written, so every tool reads it from a warm page cache; each tool runs once "
             "over the whole corpus (fickling's CLI once per file, since it takes one file), timed by `/usr/bin/time -v`. "
             "aisec uses all cores (rayon); the Python tools run single-threaded.")
    L.append("")

    # corpus table
    L.append("### Corpus")
    L.append("")
    L.append("| label | technique / kind | files | MB |")
    L.append("|---|---|---:|---:|")
    groups = collections.OrderedDict()
    for p, m in sorted(files.items(), key=lambda kv: (kv[1]["label"], kv[1]["technique"])):
        g = groups.setdefault((m["label"], m["technique"]), [0, 0])
        g[0] += 1
        g[1] += m["size"]
    for (lab, tech), (n, b) in groups.items():
        L.append(f"| {lab} | {tech} | {n} | {b / 1e6:,.1f} |")
    L.append("")

    # speed table
    L.append("## Speed and memory (whole corpus)")
    L.append("")
    L.append("| tool | wall s | CPU s (user+sys) | files/s | MB/s | peak RSS MiB | files with errors | run at (UTC) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|")
    timing = {}
    for name, verdict, key in tools:
        if key in timing:
            continue
        t = load_time(os.path.join(outd, f"{key}.time"))
        if key == "aisec":
            t = aisec_timing(outd, "aisec")
        timing[key] = t
        errs = sum(1 for v in verdict.values() if v.get("error"))
        if t:
            when = run_at(os.path.join(outd, f"{key}.run0.time"), os.path.join(outd, f"{key}.time"))
            L.append(f"| {name} | {t['wall']:.2f} | {t['cpu']:.2f} | {fmt_rate(n_files, t['wall'])} | "
                     f"{fmt_rate(total_bytes / 1e6, t['wall'])} | {(t['rss_kb'] or 0) / 1024:,.0f} | {errs} | {when} |")
        else:
            L.append(f"| {name} | n/a | n/a | n/a | n/a | n/a | {errs} | |")
    j1 = aisec_timing(outd, "aisec_j1")
    if j1:
        L.append(f"| aisec `-j 1` (one worker thread) | {j1['wall']:.2f} | {j1['cpu']:.2f} | "
                 f"{fmt_rate(n_files, j1['wall'])} | {fmt_rate(total_bytes / 1e6, j1['wall'])} | "
                 f"{(j1['rss_kb'] or 0) / 1024:,.0f} | (same files) | {run_at(os.path.join(outd, 'aisec_j1.run0.time'))} |")
    cli_t = load_time(os.path.join(outd, "picklescan.time"))
    aborted = picklescan_cli_aborted(os.path.join(outd, "picklescan.txt"))
    if cli_t:
        L.append(f"| picklescan CLI (`picklescan -p DIR`){' — aborted' if aborted else ''} | {cli_t['wall']:.2f} | "
                 f"{cli_t['cpu']:.2f} | "
                 f"{'n/a' if aborted else fmt_rate(n_files, cli_t['wall'])} | "
                 f"{'n/a' if aborted else fmt_rate(total_bytes / 1e6, cli_t['wall'])} | "
                 f"{(cli_t['rss_kb'] or 0) / 1024:,.0f} | n/a | {run_at(os.path.join(outd, 'picklescan.time'))} |")
    # A peer killed before it finished (its `time -v` output says so) gives no
    # verdicts; say how long it ran instead of leaving it out silently.
    for key, name in [("modelscan", "modelscan"), ("fickling_api", "fickling (API, one process)"),
                      ("picklescan_api", "picklescan")]:
        path = os.path.join(outd, f"{key}.time")
        if os.path.exists(path) and "terminated by signal" in open(path, errors="replace").read():
            t = load_time(path)
            cpu = f"{t['cpu']:.0f}" if t and t.get("cpu") is not None else "?"
            L.append(f"| {name} — killed before finishing (no verdicts) | > {t['wall']:.0f} | > {cpu} | n/a | n/a | "
                     f"{(t['rss_kb'] or 0) / 1024:,.0f} | n/a | {run_at(path)} |" if t else
                     f"| {name} — killed before finishing (no verdicts) | n/a | n/a | n/a | n/a | n/a | n/a | |")
    if not os.path.exists(os.path.join(outd, "fickling_cli.tsv")):
        L.append("")
        L.append("fickling's CLI (one process per file) was not run for this report (`SKIP_FICKLING_CLI=1`); "
                 "fickling's verdicts come from its library, run in one process.")
    L.append("")
    L.append("picklescan's row is `picklescan_batch.py`: picklescan's own directory logic (same extension filter, "
             "same `scan_bytes`) in one process, one file at a time, so that an exception on one file does not end "
             "the run. fickling's CLI takes one file per process; its API row is `fickling_batch.py`.")
    if aborted:
        L.append("")
        L.append(f"The picklescan CLI run over the corpus directory died before finishing with `{aborted}`, "
                 "so it gives no verdict for the files after that point and its time is not comparable; it is left "
                 "out of the speedup and the detection table.")
    L.append("")
    if "aisec" in timing and timing["aisec"] and timing["aisec"].get("runs"):
        L.append("aisec wall times of the repeated runs (median shown above): "
                 + ", ".join(f"{w:.3f} s" for w in timing["aisec"]["runs"]) + "; CPU times: "
                 + ", ".join(f"{w:.3f} s" for w in timing["aisec"]["cpu_runs"]) + ".")
        L.append("")
    peer_times = [(name, timing[key]["wall"]) for name, _, key in peers if timing.get(key)]
    peer_times = [(n.split(" (")[0] if "fickling" not in n else n, w) for n, w in peer_times]
    if timing.get("aisec") and peer_times:
        fastest = min(peer_times, key=lambda x: x[1])
        sp = fastest[1] / timing["aisec"]["wall"] if timing["aisec"]["wall"] > 0 else float("inf")
        L.append(f"**Speedup of aisec over the fastest peer ({fastest[0]}, {fastest[1]:.2f} s): {sp:.1f}x wall-clock** "
                 f"(target: at least 20x).")
        peer_cpu = [(name, timing[key]["cpu"]) for name, _, key in peers if timing.get(key)]
        fc = min(peer_cpu, key=lambda x: x[1])
        if timing["aisec"]["cpu"] > 0:
            L.append("")
            L.append(f"In CPU time (user+sys, less sensitive to the other jobs on this machine): fastest peer "
                     f"{fc[0].split(' (')[0] if 'fickling' not in fc[0] else fc[0]} {fc[1]:.2f} s, aisec "
                     f"{timing['aisec']['cpu']:.2f} s: {fc[1] / timing['aisec']['cpu']:.1f}x"
                     + (f"; aisec `-j 1` {j1['cpu']:.2f} s: {fc[1] / j1['cpu']:.1f}x" if j1 and j1["cpu"] > 0 else "")
                     + ".")
        L.append("")

    # detection matrix
    L.append("## Detection per technique (malicious files caught / total)")
    L.append("")
    hdr = "| technique | files | " + " | ".join(n for n, _, _ in tools) + " |"
    L.append(hdr)
    L.append("|---|---:|" + "---:|" * len(tools))
    techs = collections.OrderedDict()
    for p in sorted(malicious, key=lambda p: files[p]["technique"]):
        techs.setdefault(files[p]["technique"], []).append(p)
    totals = collections.Counter()
    for tech, ps in techs.items():
        cells = []
        for name, verdict, _ in tools:
            c = sum(1 for p in ps if verdict[p]["flagged"])
            totals[name] += c
            cells.append(f"{c}/{len(ps)}")
        L.append(f"| {tech} | {len(ps)} | " + " | ".join(cells) + " |")
    L.append(f"| **all** | {len(malicious)} | " + " | ".join(f"**{totals[n]}/{len(malicious)}**" for n, _, _ in tools) + " |")
    L.append("")
    L.append("A peer's \"caught\" is its own verdict on the file. fickling's library scanner marks every file it cannot "
             "parse as a pickle SUSPICIOUS, and its CLI reads any file as a pickle stream, so many of its hits on "
             "non-pickle formats (and its benign flags below) come from parse failure rather than detection; the "
             "\"overtly malicious only\" column is the same fickling run counted at its two top severities. "
             "modelscan's Keras Lambda scanners need `modelscan[tensorflow]`, which is not installed here "
             "(TensorFlow is too large for this benchmark), so modelscan reports a dependency error on .keras files.")
    L.append("")

    # false positives
    L.append("## False positives on benign files")
    L.append("")
    L.append("aisec: benign files with a finding at high or critical (any-severity count in brackets). "
             "Peers: benign files the tool flags.")
    L.append("")
    L.append("| benign kind | files | " + " | ".join(n for n, _, _ in tools) + " |")
    L.append("|---|---:|" + "---:|" * len(tools))
    btech = collections.OrderedDict()
    for p in sorted(benign, key=lambda p: files[p]["technique"]):
        btech.setdefault(files[p]["technique"], []).append(p)
    fp_tot = collections.Counter()
    any_tot = 0
    for tech, ps in btech.items():
        cells = []
        for name, verdict, key in tools:
            c = sum(1 for p in ps if verdict[p]["flagged"])
            fp_tot[name] += c
            if key == "aisec":
                a = sum(1 for p in ps if verdict[p]["any"])
                any_tot += a
                cells.append(f"{c} ({a})")
            else:
                cells.append(str(c))
        L.append(f"| {tech} | {len(ps)} | " + " | ".join(cells) + " |")
    cells = []
    for name, _, key in tools:
        cells.append(f"**{fp_tot[name]}** ({any_tot})" if key == "aisec" else f"**{fp_tot[name]}**")
    L.append(f"| **all** | {len(benign)} | " + " | ".join(cells) + " |")
    L.append("")

    # gaps
    aisec = next((v for n, v, k in tools if k == "aisec"), None)
    if aisec is not None:
        L.append("## Files a peer catches and aisec misses")
        L.append("")
        gaps = []
        for p in sorted(malicious):
            who = [n for n, v, k in peers if v[p]["flagged"]]
            if who and not aisec[p]["flagged"]:
                gaps.append((p, who))
        if not gaps:
            L.append("None: every malicious file any peer flags, aisec flags at high or critical.")
        else:
            L.append(f"{len(gaps)} files:")
            L.append("")
            for p, who in gaps[:80]:
                sev = aisec[p]["maxsev"]
                sevname = [k for k, v in SEV_ORDER.items() if v == sev]
                L.append(f"- `{p}` ({files[p]['technique']}): caught by {', '.join(who)}; aisec max severity "
                         f"{sevname[0] if sevname else 'none'} {aisec[p]['rules']}")
        L.append("")
        only = [p for p in malicious if aisec[p]["flagged"] and not any(v[p]["flagged"] for _, v, _ in peers)]
        L.append(f"Malicious files only aisec catches: {len(only)}.")
        missed = [p for p in malicious if not aisec[p]["flagged"]]
        if missed:
            L.append("")
            L.append(f"Malicious files aisec misses (no high/critical finding): {len(missed)}: "
                     + ", ".join(f"`{p}`" for p in missed[:60]) + (" ..." if len(missed) > 60 else ""))
        fps = [p for p in benign if aisec[p]["flagged"]]
        if fps:
            L.append("")
            L.append("aisec benign files at high/critical: "
                     + ", ".join(f"`{p}` {aisec[p]['rules']}" for p in fps[:40]) + (" ..." if len(fps) > 40 else ""))
        L.append("")

    # scaling
    scal = os.path.join(work, "out", "scaling.json")
    if os.path.exists(scal):
        sc = json.load(open(scal))
        L.append("## Checkpoint size scaling")
        L.append("")
        L.append("PyTorch zip checkpoints with the same 32 tensor names and 2-D layout (only the row count differs), "
                 "so `data.pkl` is the same length apart from the integers; the rest is tensor data. "
                 f"Warm: median of {sc.get('repeats')} runs with the file in the page cache. "
                 f"Cold: median of {sc.get('cold_repeats', 0)} runs, each right after evicting that file from the "
                 "page cache (`posix_fadvise(DONTNEED)`), so bytes a tool reads come from disk. Wall seconds "
                 "(process start included); peak RSS in MiB; \"read\" = MiB of the file in the page cache right "
                 "after a cold run (`mincore`), i.e. what the tool made the kernel read, kernel readahead included "
                 f"(this disk's `read_ahead_kb` is {sc.get('read_ahead_kb', '?')}).")
        L.append("")
        tools_sc = sc["tools"]
        L.append("| checkpoint | bytes | " + " | ".join(f"{t} warm | {t} cold | {t} RSS | {t} read" for t in tools_sc) + " |")
        L.append("|---|---:|" + "---:|---:|---:|---:|" * len(tools_sc))
        for row in sc["rows"]:
            cells = []
            for t in tools_sc:
                w = row["times"].get(t)
                c_ = row.get("cold", {}).get(t)
                m = row.get("rss_mib", {}).get(t)
                cells.append(f"{w:.4f}" if w is not None else "n/a")
                cells.append(f"{c_:.4f}" if c_ is not None else "n/a")
                cells.append(f"{m:,.0f}" if m is not None else "n/a")
                rd = row.get("cached_after_cold_mib", {}).get(t)
                cells.append(f"{rd:,.1f}" if rd is not None else "n/a")
            L.append(f"| {row['name']} | {row['bytes']:,} | " + " | ".join(cells) + " |")
        L.append("")
        if "aisec" in tools_sc and len(sc["rows"]) >= 2:
            a = sc["rows"][0]["times"]["aisec"]
            b = sc["rows"][-1]["times"]["aisec"]
            ac = sc["rows"][0].get("cold", {}).get("aisec")
            bc = sc["rows"][-1].get("cold", {}).get("aisec")
            size_ratio = sc["rows"][-1]["bytes"] / sc["rows"][0]["bytes"]
            msg = (f"aisec, {sc['rows'][-1]['name']} vs {sc['rows'][0]['name']} ({size_ratio:.0f}x the bytes): "
                   f"warm time ratio {b / a:.2f}")
            if ac and bc:
                msg += f", cold time ratio {bc / ac:.2f}"
            L.append(msg + ".")
            L.append("")
    L.append("## Reproduce")
    L.append("")
    L.append("```")
    L.append("bench/scan/run.sh                 # full corpus (about 3 GB, 1,000+ files)")
    L.append("CORPUS_SCALE=0.1 bench/scan/run.sh   # quick run")
    L.append("```")
    L.append("")
    # Hand-written notes live after HAND_MARKER and are kept.
    kept = ""
    if os.path.exists(out_md):
        prev = open(out_md).read()
        if HAND_MARKER in prev:
            kept = "\n\n" + prev[prev.index(HAND_MARKER):]
    with open(out_md, "w") as f:
        f.write("\n".join(L) + kept)
    print(f"wrote {out_md}")


if __name__ == "__main__":
    main()
