"""Translated interface strings: benign non-English text of ordinary kinds (candidate H, session of stop 39; rule in
bench/guard/DECISIONS.md, "Translated interface strings"). Off by default: `AISEC_GUARD_UISTRINGS=1`.

Why: the classifier's non-English false positives (HealthBench's Spanish and Portuguese questions, bastioncorpus's
look-alikes, three of fresh9's headlines) are not a label-prior effect (candidate G re-weighted the languages and moved
no decision): the corpus has almost no benign non-English text. Interface strings are the most translated ordinary
text there is: messages, questions and instructions to people ("Are you sure you want to delete ...?", "Please correct
the errors below."), in about a hundred languages.

Source: Django 5.2.8's translation catalogs (PyPI wheel, BSD-3-Clause; `django/**/locale/<lang>/LC_MESSAGES/django.po`,
read as text from the wheel, never imported or compiled). Rows: the translated strings (msgstr, or msgstr[0] of a
plural entry) of three words or more of every non-English catalog, placeholders (`%(name)s`, `%s`, `%d`, `{name}`)
filled with neutral words, at most PER_CATALOG per catalog (the ones with the smallest SHA-1, so the choice does not
depend on file order), de-duplicated; label 0, source "ui-translations", kind "chat" under 8 words else "prompt", split
by a hash of the text (guard_data.split_of).
"""
import hashlib
import re

SOURCE = "ui-translations"
PER_CATALOG = 40
CATALOG = re.compile(r"^django/(.+)/locale/([A-Za-z_@]+)/LC_MESSAGES/django\.po$")
MAX_PO_BYTES = 4 << 20
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|%[sdif]|\{\w*\}")
_FILL = {"s": "Anna", "d": "3", "i": "3", "f": "2.5"}


def _unquote(s):
    """The value of one C-style quoted .po string (the part between the quotes)."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def po_strings(text):
    """The translated strings of a .po file: msgstr (or msgstr[0]) of every entry with a non-empty msgid, continuation
    lines joined; entries marked fuzzy are skipped (their translation is not confirmed)."""
    out, field, cur, fuzzy = [], None, {}, False

    def flush():
        if cur.get("msgid") and cur.get("msgstr") and not fuzzy:
            out.append(cur["msgstr"])

    for line in text.split("\n"):
        line = line.strip()
        if not line:
            flush()
            cur, field, fuzzy = {}, None, False
            continue
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
            continue
        if line.startswith("#"):
            continue
        m = re.match(r'^(msgid|msgid_plural|msgstr|msgstr\[0\]|msgstr\[\d+\]|msgctxt)\s+"(.*)"$', line)
        if m:
            key = m.group(1)
            field = "msgstr" if key in ("msgstr", "msgstr[0]") else ("msgid" if key == "msgid" else None)
            if field:
                cur[field] = _unquote(m.group(2))
            continue
        if line.startswith('"') and line.endswith('"') and field:
            cur[field] += _unquote(line[1:-1])
    flush()
    return out


def _fill(text):
    return _PLACEHOLDER.sub(lambda m: "Anna" if m.group(1) else _FILL.get(m.group(0)[-1:], "item"), text).replace("%%", "%")


def rows(gd, zf):
    """The candidate's rows from the open Django wheel `zf` (a zipfile.ZipFile)."""
    out, seen = [], set()
    for name in sorted(zf.namelist()):
        m = CATALOG.match(name)
        if not m or m.group(2).lower().startswith("en"):
            continue
        info = zf.getinfo(name)
        if info.file_size > MAX_PO_BYTES:
            continue
        strings = []
        for s in po_strings(zf.read(name).decode("utf-8", "replace")):
            t = " ".join(_fill(s).split())
            if len(t.split()) >= 3 and t not in seen:
                strings.append(t)
        strings.sort(key=lambda t: hashlib.sha1(t.encode("utf-8")).hexdigest())
        for t in strings[:PER_CATALOG]:
            seen.add(t)
            kind = "chat" if len(t.split()) < 8 else "prompt"
            out.append({"text": t, "label": 0, "source": SOURCE, "kind": kind, "split": gd.split_of(f"{SOURCE}:{t}")})
    return out


if __name__ == "__main__":
    sample = 'msgid ""\nmsgstr "header"\n\n#, python-format\nmsgid "Delete %(name)s?"\nmsgstr "¿Eliminar %(name)s?"\n\n' \
             '#, fuzzy\nmsgid "a b c"\nmsgstr "x y z"\n\nmsgid "one"\nmsgid_plural "many"\nmsgstr[0] "ein \\"Ding\\""\n' \
             'msgstr[1] "viele"\n\nmsgid "long"\nmsgstr ""\n"Bitte korrigieren Sie "\n"die Fehler."\n'
    got = po_strings(sample)
    assert got == ["¿Eliminar %(name)s?", 'ein "Ding"', "Bitte korrigieren Sie die Fehler."], got
    assert _fill("¿Eliminar %(name)s? %d de %s {x} 100%%") == "¿Eliminar Anna? 3 de Anna item 100%", _fill("¿Eliminar %(name)s? %d de %s {x} 100%%")
    print("guard_uistrings self-check passed")
