"""The benign documents the guard's trainer used to read from the build machine, pinned in the repository.

guard_data.training_rows once read part of its benign side from the machine it ran on: licence texts
(/usr/share/common-licenses), the interpreter's own documentation and standard library, README/lib.rs of
the crates in the local cargo registry, Debian manual pages and /usr/share/doc files. A retrain on another
machine (or after a package was installed) built different rows and so a different model. Those documents
are now read from one committed file, `scripts/guard/data/host_docs.jsonl.xz`, so every machine builds the
same rows; this module writes it (`--freeze`, from the machine that made the committed model) and reads it.

File: xz-compressed JSON lines. The first line is a header (format, where and from what it was made); each
other line is one record {"g": group, "f": [fields], "lic": licence of the text}, in the order the original
readers returned them (the row builder's random draws depend on that order):
  licence      (kind, key, text)          a licence text's paragraphs: each licence permits verbatim copies
  python       (kind, key, text)          CPython's pydoc topics, stdlib docstrings and code chunks: PSF-2.0
  crate        (kind, key, text)          crates.io README paragraphs and lib.rs chunks: the crate's licence
  man          (kind, key, text)          Debian manual page paragraphs: the package's licence
  man_question (command, description, key) from each man page's NAME line (questions are generated from them)
  debian_doc   (kind, group, key, text)   /usr/share/doc/PKG/{copyright,README*,NEWS*} paragraphs: PKG's licence
The Debian changelog entries of the evaluation set (never trained on) are pinned the same way in
`scripts/guard/data/changelogs.jsonl.xz` (`--freeze-changelogs`): a header line, then one record per entry in the
order of the draw, {"pkg": the /usr/share/doc directory it came from, "text": the entry, "lic": that package's
licence as its copyright file lists it}. Same selection rule as before (guard_more.debian_changelogs).

Usage: scripts/guard/host_docs.py --freeze   (overwrites the pinned file from this machine)
       scripts/guard/host_docs.py --freeze-changelogs   (overwrites the pinned changelog entries from this machine)
       scripts/guard/host_docs.py --check    (prints the record counts and the files' SHA-256)
"""
import glob
import hashlib
import json
import lzma
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FILE = os.path.join(HERE, "data", "host_docs.jsonl.xz")
FORMAT = "aisec-guard-host-docs/1"
CHANGELOG_FILE = os.path.join(HERE, "data", "changelogs.jsonl.xz")
CHANGELOG_FORMAT = "aisec-guard-changelogs/1"
GROUPS = ("licence", "python", "crate", "man", "man_question", "debian_doc")


def _deb_licence(pkg, cache={}):
    """The licence names a Debian package's machine-readable copyright file lists (DEP-5 `License:` fields)."""
    if pkg in cache:
        return cache[pkg]
    names = []
    try:
        with open(f"/usr/share/doc/{pkg}/copyright", encoding="utf-8", errors="replace") as f:
            for ln in f:
                m = re.match(r"^License:\s*(\S.*)$", ln)
                if m and m.group(1).strip() not in names:
                    names.append(m.group(1).strip())
    except OSError:
        pass
    lic = " / ".join(names[:6]) if names else "see the package's copyright file"
    cache[pkg] = f"Debian package {pkg}: {lic}"
    return cache[pkg]


def _man_packages(names):
    """Man page name (e.g. 'ls.1') -> owning Debian package, via dpkg -S."""
    paths = {}
    for n in names:
        for sec in ("man1", "man5", "man8"):
            p = f"/usr/share/man/{sec}/{n}.gz"
            if os.path.exists(p):
                paths.setdefault(p, []).append(n)
                if os.path.realpath(p) != p:  # pages behind alternatives symlinks
                    paths.setdefault(os.path.realpath(p), []).append(n)
                break
    out = {}
    plist = sorted(paths)
    for i in range(0, len(plist), 200):
        r = subprocess.run(["dpkg", "-S"] + plist[i:i + 200], capture_output=True, text=True)
        for ln in r.stdout.splitlines():
            if ": " in ln:
                pkgs, path = ln.split(": ", 1)
                for n in paths.get(path, []):
                    out.setdefault(n, pkgs.split(",")[0].split(":")[0].strip())
    return out


def _crate_licence(base):
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    for d in sorted(glob.glob(os.path.join(home, "registry", "src", "*", base))):
        try:
            t = open(os.path.join(d, "Cargo.toml"), encoding="utf-8").read()
        except OSError:
            continue
        m = re.search(r'^license\s*=\s*"([^"]+)"', t, re.M)
        if m:
            return f"crates.io {base}: {m.group(1)}"
    return f"crates.io {base}: see the crate's licence files"


def freeze(root=ROOT):
    """Reads the documents from this machine with the original readers and writes the pinned file."""
    sys.path.insert(0, HERE)
    import guard_data as gd
    import guard_more as gm

    recs = []
    for kind, key, text in gd.licence_docs():
        name = key.split("#")[0]
        recs.append({"g": "licence", "f": [kind, key, text], "lic": f"licence text {name}: verbatim copies permitted by the licence itself"})
    py = f"PSF-2.0 (CPython {sys.version.split()[0]} documentation and standard library)"
    for kind, key, text in gd.python_docs():
        recs.append({"g": "python", "f": [kind, key, text], "lic": py})
    for kind, key, text in gd.crate_docs(root):
        recs.append({"g": "crate", "f": [kind, key, text], "lic": _crate_licence(key.split(":")[1])})
    man_docs, man_q = gm.man_pages()
    owner = _man_packages(sorted({k.split("#")[0][4:] for _, k, _ in man_docs} | {q[2] for q in man_q}))
    for kind, key, text in man_docs:
        pkg = owner.get(key.split("#")[0][4:])
        recs.append({"g": "man", "f": [kind, key, text], "lic": _deb_licence(pkg) if pkg else "Debian main (DFSG-free), package not recorded"})
    for cmd, desc, key in man_q:
        pkg = owner.get(key)
        recs.append({"g": "man_question", "f": [cmd, desc, key], "lic": _deb_licence(pkg) if pkg else "Debian main (DFSG-free), package not recorded"})
    for kind, group, key, text in gm.debian_docs():
        recs.append({"g": "debian_doc", "f": [kind, group, key, text], "lic": _deb_licence(group[4:])})
    try:
        osr = dict(l.rstrip().split("=", 1) for l in open("/etc/os-release") if "=" in l)
        made_on = osr.get("PRETTY_NAME", "").strip('"')
    except OSError:
        made_on = "unknown"
    header = {"format": FORMAT, "made_on": made_on, "python": sys.version.split()[0], "records": len(recs),
              "note": "benign training documents of aisec-guard; each record's text keeps the licence in its lic field"}
    os.makedirs(os.path.dirname(FILE), exist_ok=True)
    body = "\n".join(json.dumps(x, ensure_ascii=False, sort_keys=True) for x in [header] + recs) + "\n"
    with lzma.open(FILE, "wb", preset=9 | lzma.PRESET_EXTREME) as f:
        f.write(body.encode("utf-8"))
    return header


class PinnedDocsError(Exception):
    pass


def read_pinned(path, fmt, count_key, missing_hint):
    """(header, records) of a pinned xz JSON-lines file (host_docs, changelogs, and train_classifier's pinned corpus and
    evaluation sets): a header line naming its format and its record count under `count_key`, then one JSON record per
    line. A missing, foreign or truncated file raises PinnedDocsError with the reason (`missing_hint` says how to make
    it)."""
    if not os.path.exists(path):
        raise PinnedDocsError(f"{path} is missing: {missing_hint}")
    with lzma.open(path, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        if header.get("format") != fmt:
            raise PinnedDocsError(f"{path}: format {header.get('format')!r}, expected {fmt!r}")
        records = [json.loads(ln) for ln in f]
    if len(records) != header.get(count_key):
        raise PinnedDocsError(f"{path}: {len(records)} records, the header says {header.get(count_key)} (truncated?)")
    return header, records


def load(path=FILE):
    """The pinned records per group, in file order: {group: [tuple of fields]}."""
    out = {g: [] for g in GROUPS}
    for r in read_pinned(path, FORMAT, "records", "run scripts/guard/host_docs.py --freeze on the machine that made the model")[1]:
        out[r["g"]].append(tuple(r["f"]))
    return out


def _made_on():
    try:
        osr = dict(l.rstrip().split("=", 1) for l in open("/etc/os-release") if "=" in l)
        return osr.get("PRETTY_NAME", "").strip('"')
    except OSError:
        return "unknown"


def freeze_changelogs():
    """Draws the evaluation changelog entries on this machine (guard_more.debian_changelogs) and pins them."""
    sys.path.insert(0, HERE)
    import guard_more as gm

    recs = [{"pkg": pkg, "text": text, "lic": _deb_licence(pkg)} for pkg, text in gm.debian_changelogs(with_package=True)]
    header = {"format": CHANGELOG_FORMAT, "made_on": _made_on(), "records": len(recs),
              "rule": "first 6 entries of each /usr/share/doc/*/changelog*.gz with 15-400 words; 600 drawn with random.Random(13).sample",
              "note": "evaluation-only benign documents of aisec-guard (never trained on); lic: the package's licence"}
    body = "\n".join(json.dumps(x, ensure_ascii=False, sort_keys=True) for x in [header] + recs) + "\n"
    with lzma.open(CHANGELOG_FILE, "wb", preset=9 | lzma.PRESET_EXTREME) as f:
        f.write(body.encode("utf-8"))
    return header


def load_changelogs(path=CHANGELOG_FILE):
    """The pinned changelog entries, in draw order: [(package, text, licence)]."""
    _, recs = read_pinned(path, CHANGELOG_FORMAT, "records", "run scripts/guard/host_docs.py --freeze-changelogs")
    return [(r["pkg"], r["text"], r["lic"]) for r in recs]


def main():
    if "--freeze-changelogs" in sys.argv:
        h = freeze_changelogs()
        print(f"wrote {CHANGELOG_FILE}: {h['records']} records")
    if "--freeze" in sys.argv:
        h = freeze()
        print(f"wrote {FILE}: {h['records']} records")
    recs = load()
    print(" ".join(f"{g} {len(v)}" for g, v in recs.items()))
    print(f"{os.path.getsize(FILE)} bytes, sha256 {hashlib.sha256(open(FILE, 'rb').read()).hexdigest()}")
    cl = load_changelogs()
    print(f"changelogs {len(cl)} entries ({len({t for _, t, _ in cl})} distinct texts, {len({p for p, _, _ in cl})} packages)")
    print(f"{os.path.getsize(CHANGELOG_FILE)} bytes, sha256 {hashlib.sha256(open(CHANGELOG_FILE, 'rb').read()).hexdigest()}")


if __name__ == "__main__":
    main()
