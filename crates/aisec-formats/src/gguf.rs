//! GGUF header and metadata parser with chat-template injection checks.
//!
//! Layout per the GGUF specification (ggml-org/ggml `docs/gguf.md`): magic
//! `GGUF`, `u32` version (1–3), tensor count and metadata count (`u32` in v1,
//! `u64` from v2), then typed key/value pairs (strings are a length — `u32`
//! in v1, `u64` later — plus bytes; arrays carry an element type and count and
//! may nest), then tensor infos (name, dims, type, offset). Big-endian files
//! (produced for s390x) use the same layout byte-swapped and are detected by
//! the version field. Every count and length is checked against the bytes
//! left before anything is allocated; tensor data is never read.
//!
//! `tokenizer.chat_template` (and `tokenizer.chat_template.<name>`) holds a
//! Jinja template that servers render for every request; llama-cpp-python
//! rendered it with an unsandboxed Jinja environment (CVE-2024-34359,
//! GHSA-56xg-wfcc-g829), so a template reaching Python internals
//! (`__class__.__mro__`, `__subclasses__`, `__globals__`, `cycler.__init__`...)
//! executes code.

use aisec_core::{Confidence, Location, Severity};

use crate::rules::*;
use crate::{clip, FormatReport};

const MAX_ARRAY_DEPTH: usize = 4;
const MAX_TEMPLATE: usize = 1 << 20;

/// Cheap sniff: the magic and a known version in either byte order.
pub fn looks_like_gguf(data: &[u8]) -> bool {
    data.len() >= 8 && &data[..4] == b"GGUF" && {
        let v = [data[4], data[5], data[6], data[7]];
        (1..=3).contains(&u32::from_le_bytes(v)) || (1..=3).contains(&u32::from_be_bytes(v))
    }
}

struct Rd<'a> {
    d: &'a [u8],
    pos: usize,
    be: bool,
    v1: bool,
}

type R<T> = Result<T, String>;

impl<'a> Rd<'a> {
    fn take(&mut self, n: u64) -> R<&'a [u8]> {
        let rest = (self.d.len() - self.pos) as u64;
        if n > rest {
            return Err(format!(
                "need {n} bytes at offset {} but only {rest} remain",
                self.pos
            ));
        }
        let s = &self.d[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn u32(&mut self) -> R<u32> {
        let b = self.take(4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if self.be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
    fn u64(&mut self) -> R<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(if self.be {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        })
    }
    fn count(&mut self) -> R<u64> {
        if self.v1 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }
    fn remaining(&self) -> u64 {
        (self.d.len() - self.pos) as u64
    }
    fn string(&mut self) -> R<&'a [u8]> {
        let n = self.count()?;
        self.take(n).map_err(|e| format!("string length {n}: {e}"))
    }
    /// Reads (or skips) one value of type `t`; returns string bytes when it is one.
    fn value(&mut self, t: u32, depth: usize) -> R<Option<&'a [u8]>> {
        match t {
            0 | 1 | 7 => self.take(1).map(|_| None),
            2 | 3 => self.take(2).map(|_| None),
            4..=6 => self.take(4).map(|_| None),
            10..=12 => self.take(8).map(|_| None),
            8 => self.string().map(Some),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err("arrays nested too deeply".into());
                }
                let et = self.u32()?;
                let n = self.count()?;
                let min = match et {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    10..=12 => 8,
                    8 => {
                        if self.v1 {
                            4
                        } else {
                            8
                        }
                    }
                    9 => {
                        if self.v1 {
                            8
                        } else {
                            12
                        }
                    }
                    _ => return Err(format!("unknown array element type {et}")),
                };
                if n.checked_mul(min).is_none_or(|b| b > self.remaining()) {
                    return Err(format!(
                        "array of {n} elements of type {et} cannot fit in the {} bytes left",
                        self.remaining()
                    ));
                }
                if et != 8 && et != 9 {
                    self.take(n * min)?;
                } else {
                    for _ in 0..n {
                        self.value(et, depth + 1)?;
                    }
                }
                Ok(None)
            }
            _ => Err(format!("unknown value type {t}")),
        }
    }
}

/// Parses a GGUF file's header, metadata and tensor infos.
pub fn scan_gguf(data: &[u8], loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    if let Err(e) = parse(data, loc, &mut r) {
        r.push(
            GGUF_MALFORMED
                .finding(loc.clone(), clip(&e, 300))
                .confidence(Confidence::Medium),
        );
        r.set_malformed(e);
    }
    r
}

fn parse(data: &[u8], loc: &Location, r: &mut FormatReport) -> R<()> {
    if data.len() < 8 || &data[..4] != b"GGUF" {
        return Err("missing GGUF magic".into());
    }
    let v = [data[4], data[5], data[6], data[7]];
    let (version, be) = match (u32::from_le_bytes(v), u32::from_be_bytes(v)) {
        (le, _) if (1..=3).contains(&le) => (le, false),
        (_, b) if (1..=3).contains(&b) => (b, true),
        (le, _) => return Err(format!("unsupported GGUF version {le}")),
    };
    let mut rd = Rd {
        d: data,
        pos: 8,
        be,
        v1: version == 1,
    };
    let tensors = rd.count()?;
    let kvs = rd.count()?;
    r.note(format!(
        "GGUF v{version}{}, {tensors} tensors, {kvs} metadata keys",
        if be { " (big-endian)" } else { "" }
    ));
    // Every key/value needs at least a key length, a 1-byte key, a type and a 1-byte value.
    if kvs.saturating_mul(if rd.v1 { 10 } else { 14 }) > rd.remaining() {
        return Err(format!(
            "metadata count {kvs} cannot fit in a {} byte file",
            data.len()
        ));
    }
    if tensors.saturating_mul(if rd.v1 { 17 } else { 29 }) > rd.remaining() {
        return Err(format!(
            "tensor count {tensors} cannot fit in a {} byte file",
            data.len()
        ));
    }
    let mut alignment = 32u64;
    for _ in 0..kvs {
        let key_off = rd.pos;
        let key = String::from_utf8_lossy(rd.string()?).into_owned();
        let t = rd.u32()?;
        let val = rd
            .value(t, 0)
            .map_err(|e| format!("key '{}': {e}", clip(&key, 80)))?;
        if key == "general.alignment" && t == 4 {
            let b = &data[rd.pos - 4..rd.pos];
            let a = [b[0], b[1], b[2], b[3]];
            alignment = u64::from(if be {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            });
        }
        if key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.") {
            if let Some(s) = val {
                let text = String::from_utf8_lossy(&s[..s.len().min(MAX_TEMPLATE)]);
                check_template(&text, &key, &loc.clone().with_offset(key_off as u64), r);
            }
        }
    }
    // Tensor infos.
    let mut max_end = 0u64;
    for i in 0..tensors {
        let name = String::from_utf8_lossy(rd.string()?).into_owned();
        let nd = rd.u32()?;
        if nd > 8 {
            return Err(format!(
                "tensor {i} '{}' has {nd} dimensions",
                clip(&name, 80)
            ));
        }
        let mut elems: Option<u64> = Some(1);
        for _ in 0..nd {
            let d = rd.count()?;
            elems = elems.and_then(|e| e.checked_mul(d));
        }
        let _ty = rd.u32()?;
        let off = rd.u64()?;
        if off > data.len() as u64 {
            return Err(format!(
                "tensor {i} '{}' data offset {off} is beyond the file size {}",
                clip(&name, 80),
                data.len()
            ));
        }
        if elems.is_none() {
            return Err(format!(
                "tensor {i} '{}' element count overflows 64 bits",
                clip(&name, 80)
            ));
        }
        max_end = max_end.max(off);
    }
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(format!(
            "general.alignment {alignment} is not a power of two"
        ));
    }
    let data_start = (rd.pos as u64).div_ceil(alignment) * alignment;
    if tensors > 0 && data_start.saturating_add(max_end) > data.len() as u64 {
        return Err(format!(
            "tensor offsets reach {} but the data section ends at {}",
            data_start + max_end,
            data.len()
        ));
    }
    Ok(())
}

/// Python-internals attributes whose use in a template means escaping the
/// Jinja object model.
const DUNDERS: &[&str] = &[
    "__class__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__import__",
    "__init__",
    "__base__",
    "__bases__",
    "__getattribute__",
    "__dict__",
    "__code__",
    "__func__",
    "__self__",
    "__module__",
    "__reduce__",
    "__reduce_ex__",
    "__loader__",
    "__spec__",
];

/// Constructs that indicate command execution when combined with the above.
const EXEC_WORDS: &[&str] = &[
    "popen",
    "subprocess",
    "os.system",
    "eval(",
    "exec(",
    "__import__",
    "system(",
    "check_output",
    "import_module",
    "getoutput",
];

/// Checks one chat template for server-side template injection.
///
/// The template is parsed as Jinja ([`crate::jinja`]) and judged on the
/// parse tree with constant strings folded: a dunder attribute reached or a
/// dunder name built is critical ([`GGUF_SSTI`]); `_private` attributes,
/// command-running calls and `|attr` with a non-constant name are high
/// ([`GGUF_TEMPLATE_SUSPICIOUS`]). A template the parser rejects (or that is
/// over a size or nesting bound) is a medium finding and is judged by the
/// older token-level check instead.
pub fn check_template(template: &str, key: &str, loc: &Location, r: &mut FormatReport) {
    match crate::jinja::analyse(template) {
        crate::jinja::Outcome::Parsed(a) => {
            judge_tree(&a, template, key, loc, r);
            if a.too_deep {
                r.push(
                    GGUF_TEMPLATE_SUSPICIOUS
                        .finding(
                            loc.clone(),
                            format!("{key}: template nests deeper than the analysis bound; judged by the token check as well"),
                        )
                        .confidence(Confidence::Medium),
                );
                check_template_tokens(template, key, loc, r);
            }
        }
        crate::jinja::Outcome::Unparseable(why) => {
            r.push(
                GGUF_TEMPLATE_SUSPICIOUS
                    .finding(
                        loc.clone(),
                        format!(
                            "{key}: unparseable template ({}); judged by the token check",
                            clip(&why, 200)
                        ),
                    )
                    .confidence(Confidence::Medium),
            );
            check_template_tokens(template, key, loc, r);
        }
    }
}

fn judge_tree(
    a: &crate::jinja::Analysis,
    template: &str,
    key: &str,
    loc: &Location,
    r: &mut FormatReport,
) {
    let list = |s: &std::collections::BTreeSet<String>| {
        s.iter().take(12).cloned().collect::<Vec<_>>().join(", ")
    };
    if !a.dunders.is_empty() {
        let mut ev = format!("{key}: reaches {}", list(&a.dunders));
        if !a.gadgets.is_empty() {
            ev.push_str(&format!(" from {}", list(&a.gadgets)));
        }
        if !a.exec.is_empty() {
            ev.push_str(&format!("; {}", list(&a.exec)));
        }
        if !a.private.is_empty() {
            ev.push_str(&format!("; private attributes {}", list(&a.private)));
        }
        if let Some(x) = &a.excerpt {
            ev.push_str(&format!("; in: {x}"));
        }
        r.push(GGUF_SSTI.finding(loc.clone(), ev));
        return;
    }
    let mut parts = Vec::new();
    if !a.private.is_empty() {
        parts.push(format!("private attributes {}", list(&a.private)));
    }
    if !a.exec.is_empty() {
        parts.push(list(&a.exec));
    }
    if a.dynamic_attr > 0 {
        parts.push(format!(
            "{} attr() lookups with a non-constant name",
            a.dynamic_attr
        ));
    }
    if !parts.is_empty() {
        r.push(
            GGUF_TEMPLATE_SUSPICIOUS
                .finding(loc.clone(), format!("{key}: {}", parts.join("; ")))
                .severity(Severity::High),
        );
        return;
    }
    // Safety net for a parser differential: dunder names in the text that
    // the parse tree does not reach (template data is only output).
    let text = normalise(template).to_ascii_lowercase();
    let named: Vec<&str> = DUNDERS
        .iter()
        .copied()
        .filter(|d| text.contains(d))
        .collect();
    if !named.is_empty() {
        r.push(
            GGUF_TEMPLATE_SUSPICIOUS
                .finding(
                    loc.clone(),
                    format!(
                        "{key}: template text mentions {} outside any expression",
                        named.join(", ")
                    ),
                )
                .confidence(Confidence::Low),
        );
    }
}

/// The pre-parser judgement: the hand tokenizer and text normalisation,
/// used when the template cannot be parsed as Jinja.
fn check_template_tokens(template: &str, key: &str, loc: &Location, r: &mut FormatReport) {
    // Judge both the text with escapes undone and the constant-folded
    // expression stream, so the same dunder chain is found however it is
    // spelled (`\N{LOW LINE}`, `'__cla' ~ 'ss__'`, `|attr(name)`, `set`
    // variables, `[..]|join`).
    let mut norm = normalise(template);
    let folded = fold_template(template);
    if !folded.is_empty() {
        norm.push('\n');
        norm.push_str(&folded);
    }
    let lower = norm.to_ascii_lowercase();
    let dunders: Vec<&str> = DUNDERS
        .iter()
        .copied()
        .filter(|d| lower.contains(d))
        .collect();
    let exec: Vec<&str> = EXEC_WORDS
        .iter()
        .copied()
        .filter(|w| lower.contains(w))
        .collect();
    let gadgets: Vec<&str> = [
        "cycler",
        "joiner",
        "lipsum",
        "namespace",
        "range",
        "self",
        "config",
        "request",
        "url_for",
        "get_flashed_messages",
    ]
    .into_iter()
    .filter(|g| lower.contains(&format!("{g}.__")) || lower.contains(&format!("{g}|attr")))
    .collect();
    let escaped = template.contains("\\x5f")
        || template.contains("\\u005f")
        || template.contains("\\137")
        || template.contains("\\x5F");
    let attr = lower.contains("|attr(") || lower.contains("| attr(") || lower.contains("|attr (");
    if !dunders.is_empty() || !gadgets.is_empty() {
        let mut ev = format!("{key}: accesses {}", dunders.join(", "));
        if !gadgets.is_empty() {
            ev.push_str(&format!("; gadgets: {}", gadgets.join(", ")));
        }
        if !exec.is_empty() {
            ev.push_str(&format!("; execution: {}", exec.join(", ")));
        }
        if escaped {
            ev.push_str("; uses escaped underscores");
        }
        ev.push_str(&format!(
            "; excerpt: {}",
            excerpt(&norm, &lower, dunders.first().copied().unwrap_or("__"))
        ));
        r.push(GGUF_SSTI.finding(loc.clone(), ev));
    } else if !exec.is_empty() || escaped || attr {
        let mut parts = Vec::new();
        if attr {
            parts.push("attr() filter".to_string());
        }
        if escaped {
            parts.push("escaped underscore characters".to_string());
        }
        if !exec.is_empty() {
            parts.push(format!("mentions {}", exec.join(", ")));
        }
        let sev = if (attr || escaped) && !exec.is_empty() {
            Severity::High
        } else {
            Severity::Medium
        };
        r.push(
            GGUF_TEMPLATE_SUSPICIOUS
                .finding(loc.clone(), format!("{key}: {}", parts.join("; ")))
                .severity(sev)
                .confidence(Confidence::Medium),
        );
    }
}

/// Undoes the escapes template payloads use to hide underscores and names
/// (`\x5f`, `\u005f`, octal `\137`) and drops whitespace around `.`/`|`.
fn normalise(t: &str) -> String {
    let b = t.as_bytes();
    let mut out = String::with_capacity(t.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = |s: &[u8]| {
                std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| u32::from_str_radix(s, 16).ok())
            };
            if b.get(i + 1) == Some(&b'x') {
                if let Some(c) = b.get(i + 2..i + 4).and_then(hex).and_then(char::from_u32) {
                    out.push(c);
                    i += 4;
                    continue;
                }
            } else if b.get(i + 1) == Some(&b'u') {
                if let Some(c) = b.get(i + 2..i + 6).and_then(hex).and_then(char::from_u32) {
                    out.push(c);
                    i += 6;
                    continue;
                }
            } else if let Some(o) = b.get(i + 1..i + 4) {
                if o.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    let v = u32::from(o[0] - b'0') * 64
                        + u32::from(o[1] - b'0') * 8
                        + u32::from(o[2] - b'0');
                    if let Some(c) = char::from_u32(v) {
                        out.push(c);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        // Safe: we step by whole UTF-8 characters.
        let ch_len = t[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&t[i..i + ch_len]);
        i += ch_len;
    }
    // Join string-concatenation tricks like '__cla' ~ 'ss__' and '_' + '_'.
    let joined = out
        .replace("'~'", "")
        .replace("\"~\"", "")
        .replace("' ~ '", "")
        .replace("\" ~ \"", "")
        .replace("'+'", "")
        .replace("' + '", "");
    let mut s = String::with_capacity(joined.len());
    let mut prev_sep = false;
    for c in joined.chars() {
        if c.is_whitespace() && prev_sep {
            continue;
        }
        prev_sep = matches!(c, '.' | '|' | '(' | '[');
        s.push(c);
    }
    s
}

/// A token of a Jinja expression (inside `{{ }}` / `{% %}`).
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Name(String),
    Op(char),
}

/// Tokenizes the expression parts of a template (text outside `{{ }}` and
/// `{% %}` is skipped; comments `{# #}` dropped).
fn tokenize(t: &str) -> Vec<Tok> {
    const MAX_TOKENS: usize = 200_000;
    let mut toks = Vec::new();
    let b = t.as_bytes();
    let mut i = 0;
    let mut in_expr = false;
    while i < b.len() && toks.len() < MAX_TOKENS {
        if !in_expr {
            match t[i..].find(['{']) {
                Some(p) => {
                    i += p;
                    match b.get(i + 1) {
                        Some(b'{') | Some(b'%') => {
                            in_expr = true;
                            i += 2;
                            toks.push(Tok::Op(';'));
                        }
                        Some(b'#') => {
                            i = t[i..].find("#}").map_or(b.len(), |q| i + q + 2);
                        }
                        _ => i += 1,
                    }
                }
                None => break,
            }
            continue;
        }
        let c = b[i];
        if (c == b'}' || c == b'%') && b.get(i + 1) == Some(&b'}') {
            in_expr = false;
            i += 2;
            continue;
        }
        if c == b'-' && matches!(b.get(i + 1), Some(b'}') | Some(b'%')) {
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != c {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            let body = t.get(i + 1..j.min(b.len())).unwrap_or("");
            toks.push(Tok::Str(crate::jinja::unescape(body)));
            i = j + 1;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == b'_' {
            let j = i + b[i..]
                .iter()
                .position(|x| !(x.is_ascii_alphanumeric() || *x == b'_'))
                .unwrap_or(b.len() - i);
            toks.push(Tok::Name(t[i..j].to_string()));
            i = j;
            continue;
        }
        let ch = t[i..].chars().next().unwrap_or(' ');
        toks.push(Tok::Op(ch));
        i += ch.len_utf8();
    }
    toks
}

/// Folds constant string expressions and renders the expression stream as
/// plain attribute chains: `'__cla' ~ 'ss__'` → `'__class__'`,
/// `x|attr('__class__')` and `x['__class__']` → `x.__class__`,
/// `['__', 'class', '__']|join` → `'__class__'`, and `{% set n = ... %}`
/// variables bound to constants are substituted. The output is only for
/// judging, never executed.
pub fn fold_template(t: &str) -> String {
    let toks = tokenize(t);
    let mut vars: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    // pass 1: fold concatenations and list joins into single strings
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let tok = match &toks[i] {
            Tok::Name(n) if vars.contains_key(n) && !matches!(out.last(), Some(Tok::Op('.'))) => {
                Tok::Str(vars[n].clone())
            }
            other => other.clone(),
        };
        // `[ 'a', 'b' ] | join`
        if tok == Tok::Op('[')
            && !matches!(
                out.last(),
                Some(Tok::Name(_)) | Some(Tok::Op(')')) | Some(Tok::Op(']'))
            )
        {
            let mut j = i + 1;
            let mut parts = Vec::new();
            while let Some(Tok::Str(s)) = toks.get(j) {
                parts.push(s.clone());
                j += 1;
                if toks.get(j) == Some(&Tok::Op(',')) {
                    j += 1;
                }
            }
            if toks.get(j) == Some(&Tok::Op(']'))
                && toks.get(j + 1) == Some(&Tok::Op('|'))
                && toks.get(j + 2) == Some(&Tok::Name("join".into()))
            {
                out.push(Tok::Str(parts.concat()));
                i = j + 3;
                continue;
            }
        }
        // string (~|+) string  → one string
        // (not when a tighter operator follows: `'a' ~ 'b' * 2`, `'a' ~ 'b'|upper`)
        let tighter = matches!(toks.get(i + 1), Some(Tok::Op('*' | '|')));
        if let (Tok::Str(s), false) = (&tok, tighter) {
            if let [.., Tok::Str(prev), Tok::Op('~' | '+')] = out.as_slice() {
                let joined = format!("{prev}{s}");
                out.pop();
                out.pop();
                out.push(Tok::Str(joined));
                i += 1;
                continue;
            }
        }
        out.push(tok);
        i += 1;
        reduce_tail(&mut out, toks.get(i));
        // {% set name = <string> %}
        if let [.., Tok::Name(set), Tok::Name(var), Tok::Op('='), Tok::Str(v)] = out.as_slice() {
            if set == "set"
                && !(toks.get(i) == Some(&Tok::Op('~')) || toks.get(i) == Some(&Tok::Op('+')))
            {
                vars.insert(var.clone(), v.clone());
            }
        }
        if vars.len() > 10_000 {
            break;
        }
    }
    // pass 2: render attribute access uniformly
    let mut s = String::new();
    let mut k = 0;
    while k < out.len() {
        match (
            &out[k],
            out.get(k + 1),
            out.get(k + 2),
            out.get(k + 3),
            out.get(k + 4),
        ) {
            (
                Tok::Op('|'),
                Some(Tok::Name(a)),
                Some(Tok::Op('(')),
                Some(Tok::Str(n)),
                Some(Tok::Op(')')),
            ) if a == "attr" => {
                s.push('.');
                s.push_str(n);
                k += 5;
                continue;
            }
            (Tok::Op('['), Some(Tok::Str(n)), Some(Tok::Op(']')), _, _) if k > 0 => {
                s.push('.');
                s.push_str(n);
                k += 3;
                continue;
            }
            _ => {}
        }
        match &out[k] {
            Tok::Str(v) => {
                s.push('\'');
                s.push_str(v);
                s.push('\'');
            }
            Tok::Name(n) => {
                if s.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '\'') {
                    s.push(' ');
                }
                s.push_str(n);
            }
            Tok::Op(';') => s.push_str(" ; "),
            Tok::Op(c) => s.push(*c),
        }
        k += 1;
    }
    s
}

/// Longest string a fold may build (`'_' * 100000` is not expanded).
const MAX_FOLDED: usize = 4096;

/// Folds constant expressions at the end of the token list, repeatedly:
/// `'_' * 2`, `2 * '_'`, `('x')`, `'X'|lower` (and `upper`, `reverse`,
/// `trim`, `string`, `title`, `capitalize`), `'x'|replace('a', 'b')`, and
/// `'a' ~ 'b'` formed by an earlier fold. Jinja's filters and operators on
/// string constants, evaluated as Jinja2 evaluates them (jinja2/filters.py),
/// so that names assembled at render time are judged by their value.
fn reduce_tail(out: &mut Vec<Tok>, next: Option<&Tok>) {
    for _ in 0..64 {
        let n = out.len();
        let folded: Option<(usize, String)> = match out.as_slice() {
            [.., Tok::Str(a), Tok::Op('*'), Tok::Name(k)]
            | [.., Tok::Name(k), Tok::Op('*'), Tok::Str(a)]
                if k.bytes().all(|b| b.is_ascii_digit()) && next != Some(&Tok::Op('|')) =>
            {
                let times: usize = k.parse().unwrap_or(usize::MAX);
                (a.len().saturating_mul(times) <= MAX_FOLDED).then(|| (3, a.repeat(times)))
            }
            [.., before, Tok::Op('('), Tok::Str(a), Tok::Op(')')]
                if !matches!(before, Tok::Name(_) | Tok::Op(')') | Tok::Op(']')) =>
            {
                Some((3, a.clone()))
            }
            [Tok::Op('('), Tok::Str(a), Tok::Op(')')] => Some((3, a.clone())),
            [.., Tok::Str(a), Tok::Op('|'), Tok::Name(f)] if next != Some(&Tok::Op('(')) => {
                let v = match f.as_str() {
                    "lower" => Some(a.to_lowercase()),
                    "upper" => Some(a.to_uppercase()),
                    "reverse" => Some(a.chars().rev().collect()),
                    "trim" => Some(a.trim().to_string()),
                    "string" => Some(a.clone()),
                    "title" | "capitalize" => None,
                    _ => None,
                };
                v.map(|v| (3, v))
            }
            [.., Tok::Str(a), Tok::Op('|'), Tok::Name(f), Tok::Op('('), Tok::Str(x), Tok::Op(','), Tok::Str(y), Tok::Op(')')]
                if f == "replace" && !x.is_empty() =>
            {
                let v = a.replace(x.as_str(), y.as_str());
                (v.len() <= MAX_FOLDED).then_some((8, v))
            }
            [.., Tok::Str(a), Tok::Op('~' | '+'), Tok::Str(b)]
                if !matches!(next, Some(Tok::Op('|' | '*'))) =>
            {
                Some((3, format!("{a}{b}")))
            }
            _ => None,
        };
        match folded {
            Some((k, v)) if k <= n => {
                out.truncate(n - k);
                out.push(Tok::Str(v));
            }
            _ => return,
        }
    }
}

fn excerpt(norm: &str, lower: &str, needle: &str) -> String {
    let at = lower.find(needle).unwrap_or(0);
    let start = (0..=at.saturating_sub(60))
        .rev()
        .find(|&i| norm.is_char_boundary(i))
        .unwrap_or(0);
    let rest = &norm[start..];
    clip(rest, 160)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gguf(template: &str) -> Vec<u8> {
        let mut v = b"GGUF".to_vec();
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&0u64.to_le_bytes());
        v.extend_from_slice(&1u64.to_le_bytes());
        let k = b"tokenizer.chat_template";
        v.extend_from_slice(&(k.len() as u64).to_le_bytes());
        v.extend_from_slice(k);
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&(template.len() as u64).to_le_bytes());
        v.extend_from_slice(template.as_bytes());
        v
    }

    #[test]
    fn ssti_detected_benign_quiet() {
        let bad =
            "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}";
        let r = scan_gguf(&gguf(bad), &Location::path("m.gguf"));
        assert!(r.malformed.is_none(), "{:?}", r.malformed);
        assert_eq!(r.findings[0].rule_id, "AISEC-GGUF-001");
        let esc = r"{{ ''|attr('\x5f\x5fclass\x5f\x5f') }}";
        let r = scan_gguf(&gguf(esc), &Location::path("m.gguf"));
        assert_eq!(r.findings[0].rule_id, "AISEC-GGUF-001");
        let good = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' }}{% endfor %}{% set ns = namespace(x=1) %}";
        let r = scan_gguf(&gguf(good), &Location::path("m.gguf"));
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }

    fn judge(t: &str) -> Vec<aisec_core::Finding> {
        let mut r = FormatReport::default();
        check_template(
            t,
            "tokenizer.chat_template",
            &Location::path("m.gguf"),
            &mut r,
        );
        r.findings
    }

    /// One payload (`cycler.__init__.__globals__.os.popen('id').read()`,
    /// the CVE-2024-34359 shape) spelled many ways: every spelling must give
    /// the same critical finding naming the same dunders.
    #[test]
    fn one_payload_many_spellings_same_critical_finding() {
        let spellings: &[(&str, &str)] = &[
            ("plain", "{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
            ("N-escapes", r"{{ cycler|attr('\N{LOW LINE}\N{LOW LINE}init\N{LOW LINE}\N{LOW LINE}')|attr('\N{low line}\N{low line}globals\N{LOW LINE}\N{LOW LINE}') }}"),
            ("hex escapes in subscripts", r"{{ cycler['\x5f\x5finit\x5f\x5f']['\x5f\x5fglobals\x5f\x5f'].os.popen('id') }}"),
            ("u escapes", r"{{ cycler|attr('\u005f\u005finit\u005f\u005f')|attr('\u005f_globals_\u005f') }}"),
            ("U escapes", r"{{ cycler|attr('\U0000005f\U0000005finit__')|attr('__globals\U0000005f\U0000005f') }}"),
            ("octal escapes", r"{{ cycler|attr('\137\137init\137\137')|attr('\137\137globals\137\137') }}"),
            ("tilde and set", "{% set a = '__in' ~ 'it__' %}{% set g = '__glo' ~ 'bals__' %}{{ (cycler|attr(a))|attr(g) }}"),
            ("plus", "{{ cycler|attr('__' + 'init' + '__')|attr('__' + 'globals' + '__') }}"),
            ("list join", "{{ cycler[['__', 'init', '__']|join][('__', 'globals', '__')|join] }}"),
            ("join with separator", "{{ cycler|attr(['', 'init', '']|join('__'))|attr(['', 'globals', '']|join('__')) }}"),
            ("printf format filter", "{{ cycler|attr('%sinit%s'|format('__', '__'))|attr('%s%s%s'|format('__', 'globals', '__')) }}"),
            ("percent operator", "{{ cycler|attr('%s%s%s' % ('__', 'init', '__'))|attr('__%s__' % 'globals') }}"),
            ("str.format method", "{{ cycler|attr('{}init{}'.format('__', '__'))|attr('{0}globals{0}'.format('__')) }}"),
            ("str.join method", "{{ cycler|attr(''.join(['__', 'init', '__']))|attr('__'.join(['', 'globals', ''])) }}"),
            ("repetition", "{% set u = '_' * 2 %}{{ cycler|attr(u ~ 'init' ~ u)|attr(2 * '_' ~ 'globals' ~ '_' * 2) }}"),
            ("reverse", "{{ cycler|attr('__tini__'|reverse)|attr('__slabolg__'|reverse) }}"),
            ("replace", "{{ cycler|attr('XXinitXX'|replace('X', '_'))|attr('__glob-ls__'|replace('-', 'a')) }}"),
            ("lower", "{{ cycler|attr('__INIT__'|lower)|attr(('__GLOBALS__')|lower) }}"),
            ("set block", "{% set a %}__init__{% endset %}{% set g %}__glo{{ 'bals' }}__{% endset %}{{ cycler|attr(a)|attr(g) }}"),
            ("dict keys", "{{ cycler|attr(dict(__init__=1)|list|first)|attr(dict(__globals__=1)|first) }}"),
            ("slices", "{{ cycler|attr('xx__init__yy'[2:-2])|attr('__slabolg__'[::-1]) }}"),
            ("index", "{{ cycler|attr(['a', '__init__'][1])|attr(['__globals__', 'b'][-2]) }}"),
            ("percent-c", "{% set u = '%c%c'|format(95, 95) %}{{ cycler|attr(u ~ 'init' ~ u)|attr(u ~ 'globals' ~ u) }}"),
            ("adjacent literals", "{{ cycler|attr('__in' 'it__')|attr(\"__glo\" '' 'bals__') }}"),
            ("with block", "{% with a = '__in' ~ 'it__', g = '__globals__'|string %}{{ cycler|attr(a)|attr(g) }}{% endwith %}"),
            ("map attribute", "{{ [cycler]|map(attribute='__init__')|map(attribute='__glo' ~ 'bals__')|first }}"),
            ("whitespace control", "{%- set a = '__init__' -%}{{- cycler | attr( a ) | attr ( '__globals__' ) -}}"),
            ("split", "{{ cycler|attr('a __init__ b'.split()[1])|attr('x,__globals__'.split(',')[1]) }}"),
        ];
        for (what, t) in spellings {
            let f = judge(t);
            let ssti: Vec<_> = f.iter().filter(|f| f.rule_id == "AISEC-GGUF-001").collect();
            assert_eq!(ssti.len(), 1, "{what}: {t}: {f:?}");
            assert_eq!(ssti[0].severity, Severity::Critical, "{what}");
            assert!(
                ssti[0].evidence.contains("__globals__") && ssti[0].evidence.contains("__init__"),
                "{what}: {}",
                ssti[0].evidence
            );
            assert!(
                ssti[0].evidence.contains("cycler"),
                "{what}: {}",
                ssti[0].evidence
            );
        }
    }

    /// Chat templates of real models (written from their published form in
    /// tests/data/chat_templates) give no finding at all.
    #[test]
    fn real_model_chat_templates_stay_clean() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat_templates");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().and_then(|x| x.to_str()) != Some("jinja") {
                continue;
            }
            let t = std::fs::read_to_string(&p).unwrap();
            assert!(
                matches!(crate::jinja::analyse(&t), crate::jinja::Outcome::Parsed(_)),
                "{} does not parse: {:?}",
                p.display(),
                crate::jinja::analyse(&t)
            );
            let r = scan_gguf(&gguf(&t), &Location::path("m.gguf"));
            assert!(r.findings.is_empty(), "{}: {:?}", p.display(), r.findings);
            n += 1;
        }
        assert!(n >= 9, "only {n} templates");
    }

    #[test]
    fn private_exec_and_dynamic_attr_are_high() {
        for t in [
            "{{ self._TemplateReference__context }}",
            "{{ x.popen('id') }}",
            "{% for m in messages %}{{ m|attr(m.content) }}{% endfor %}",
        ] {
            let f = judge(t);
            assert_eq!(f.len(), 1, "{t}: {f:?}");
            assert_eq!(f[0].rule_id, "AISEC-GGUF-002");
            assert_eq!(f[0].severity, Severity::High, "{t}");
        }
    }

    #[test]
    fn unparseable_template_is_medium_and_falls_back_to_tokens() {
        // Unbalanced block: not Jinja; the token check still sees the chain.
        let f = judge("{% if %}{{ cycler.__init__.__globals__ ");
        assert!(
            f.iter().any(|f| f.rule_id == "AISEC-GGUF-002"
                && f.severity == Severity::Medium
                && f.evidence.contains("unparseable")),
            "{f:?}"
        );
        assert!(f.iter().any(|f| f.rule_id == "AISEC-GGUF-001"), "{f:?}");
        // Unparseable but harmless: only the medium finding.
        let f = judge("{% for %}hello");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Medium);
    }

    #[test]
    fn template_bounds_are_findings_not_crashes() {
        // A 100k-operator chain (tree depth 100k if parsed): over the
        // per-block token bound, so not parsed.
        let chain = format!("{{{{ 'a'{} }}}}", " ~ 'a'".repeat(100_000));
        let f = judge(&chain);
        assert!(
            f.iter().any(|f| f.evidence.contains("unparseable")),
            "{f:?}"
        );
        // Attribute chain just under the block bound: parsed, walked within
        // the depth bound, nothing suspicious.
        let attrs = format!("{{{{ x{} }}}}", ".a".repeat(900));
        assert!(judge(&attrs).is_empty());
        // Deep parentheses: the parser's own recursion limit.
        let parens = format!("{{{{ {}'a'{} }}}}", "(".repeat(5000), ")".repeat(5000));
        let f = judge(&parens);
        assert!(f.iter().all(|f| f.severity <= Severity::Medium), "{f:?}");
        // Over the size bound.
        let big = "x".repeat(crate::jinja::MAX_PARSE_BYTES + 1);
        assert!(judge(&big)
            .iter()
            .any(|f| f.evidence.contains("parse bound")));
        // A string that would grow without bound is not expanded.
        let f = judge("{{ ('_' * 1000000000)|attr('x') }}");
        assert!(f.is_empty(), "{f:?}");
        // Extreme slice steps and replace/format growth are refused, not overflowed.
        for t in [
            "{{ 'abc'[::9223372036854775807] }}",
            "{{ 'abc'[::-9223372036854775807] }}",
            "{{ 'abc'[-9223372036854775807:9223372036854775807] }}",
            "{{ ('a' * 4000)|replace('', 'bbbbbbbbbb') }}",
            "{{ ('a' * 4000)|replace('a', 'bbbbbbbbbb', 9223372036854775807) }}",
            "{{ '%c'|format(9223372036854775807) }}",
        ] {
            assert!(judge(t).is_empty(), "{t}");
        }
        // Many `set`s copying a large constant: bounded, still judged.
        let mut t = String::from("{% set a = 'x' * 4000 %}");
        for i in 0..3000 {
            t.push_str(&format!("{{% set b{i} = a %}}"));
        }
        t.push_str("{{ cycler.__init__ }}");
        assert!(judge(&t).iter().any(|f| f.rule_id == "AISEC-GGUF-001"));
    }

    #[test]
    fn absurd_counts_are_malformed() {
        let mut v = b"GGUF".to_vec();
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        let r = scan_gguf(&v, &Location::path("x"));
        assert!(r.malformed.is_some());
        assert_eq!(r.findings[0].rule_id, "AISEC-GGUF-003");
        let r = scan_gguf(b"GGUF", &Location::path("x"));
        assert!(r.malformed.is_some());
    }
}
