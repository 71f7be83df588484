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
pub fn check_template(template: &str, key: &str, loc: &Location, r: &mut FormatReport) {
    let norm = normalise(template);
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
