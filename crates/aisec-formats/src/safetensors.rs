//! safetensors header validation.
//!
//! Layout (huggingface/safetensors, `safetensors/src/tensor.rs`): an 8-byte
//! little-endian header length `N`, `N` bytes of UTF-8 JSON mapping tensor
//! names to `{dtype, shape, data_offsets: [begin, end]}` plus an optional
//! string-to-string `__metadata__`, then the data section. The reference
//! loader caps `N` at 100 MB and requires the tensors, sorted by offset, to
//! tile the data section exactly. Each deviation is reported, since loaders
//! that trust the header can crash or be made to alias weights. Tensor data
//! is never read.

use aisec_core::{Finding, Location, Rule, Severity};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::rules::*;
use crate::{clip, FormatReport};

/// Header size limit of the reference implementation.
pub const MAX_HEADER: u64 = 100_000_000;
const MAX_TENSORS: usize = 1_000_000;
/// Bounds for the header JSON: the reference loader's byte cap and a
/// million elements (a tensor entry has about 13, so 75,000 tensors; far
/// more than any published checkpoint holds in one file). Keeps a
/// `{"t":{"":0},...}` header from taking ninety times its size in memory.
pub const HEADER_JSON_LIMITS: aisec_core::json::JsonLimits = aisec_core::json::JsonLimits::SCAN
    .with_max_bytes(MAX_HEADER as usize)
    .with_max_elements(1_000_000);

/// Cheap sniff: a plausible header length followed by `{`.
pub fn looks_like_safetensors(data: &[u8]) -> bool {
    let Some(h) = data.get(..8) else { return false };
    let n = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    if !(2..=MAX_HEADER).contains(&n) || n > data.len() as u64 - 8 {
        return false;
    }
    let rest = &data[8..];
    rest.iter().take(64).find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Bits per element of each known dtype.
fn dtype_bits(d: &str) -> Option<u64> {
    Some(match d {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// JSON object kept as an ordered list of entries so duplicates are visible.
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = m.next_entry::<String, Value>()? {
                    if v.len() >= MAX_TENSORS {
                        return Err(serde::de::Error::custom("too many header entries"));
                    }
                    v.push((k, x));
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Validates a safetensors file.
pub fn scan_safetensors(data: &[u8], loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    let Some(h) = data.get(..8) else {
        r.set_malformed("file shorter than the 8-byte header length");
        return r;
    };
    let n = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let avail = data.len() as u64 - 8;
    if n > MAX_HEADER || n > avail {
        r.push(ST_HEADER_SIZE.finding(
            loc.clone().with_offset(0),
            format!("header length {n} bytes (file has {avail} bytes after the length; loader cap {MAX_HEADER})"),
        ));
        r.set_malformed("header length exceeds the file or the 100 MB cap");
        return r;
    }
    let header = &data[8..8 + n as usize];
    let data_len = avail - n;
    let entries: Entries = match aisec_core::json::from_slice(header, &HEADER_JSON_LIMITS) {
        Ok(e) => e,
        Err(e) => {
            r.push(ST_HEADER_JSON.finding(
                loc.clone().with_offset(8),
                if e.is_limit() {
                    format!("header was not parsed: {e}")
                } else {
                    format!("header is not a JSON object: {e}")
                },
            ));
            r.set_malformed(format!("header JSON invalid: {e}"));
            return r;
        }
    };
    let mut seen = std::collections::HashSet::new();
    let mut spans: Vec<(u64, u64, String)> = Vec::new();
    for (name, v) in &entries.0 {
        if !seen.insert(name.as_str()) {
            r.push(ST_DUP_KEY.finding(
                loc.clone(),
                format!("tensor name '{}' appears more than once", clip(name, 120)),
            ));
            continue;
        }
        if name == "__metadata__" {
            match v {
                Value::Object(m) => {
                    let bad: Vec<&String> = m
                        .iter()
                        .filter(|(_, x)| !x.is_string())
                        .map(|(k, _)| k)
                        .collect();
                    if !bad.is_empty() {
                        r.push(ST_METADATA.finding(
                            loc.clone(),
                            format!(
                                "non-string __metadata__ values for keys: {}",
                                clip(&format!("{bad:?}"), 200)
                            ),
                        ));
                    }
                }
                _ => r.push(ST_METADATA.finding(loc.clone(), "__metadata__ is not an object")),
            }
            continue;
        }
        let dtype = v.get("dtype").and_then(Value::as_str);
        let shape: Option<Vec<u64>> = v
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let offs: Option<Vec<u64>> = v
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let (Some(dtype), Some(shape), Some(offs)) = (dtype, shape, offs) else {
            r.push(tensor_finding(
                &ST_DTYPE,
                loc,
                name,
                "lacks a valid dtype, shape or data_offsets",
            ));
            continue;
        };
        if offs.len() != 2 {
            let what = format!("data_offsets has {} entries", offs.len());
            r.push(tensor_finding(&ST_DTYPE, loc, name, what));
            continue;
        }
        let (b, e) = (offs[0], offs[1]);
        if b > e || e > data_len {
            let what = format!("data_offsets [{b}, {e}] outside data section of {data_len} bytes");
            r.push(tensor_finding(&ST_OUT_OF_BOUNDS, loc, name, what));
            continue;
        }
        match dtype_bits(dtype) {
            None => {
                let what = format!("has unknown dtype '{}'", clip(dtype, 40));
                r.push(tensor_finding(&ST_DTYPE, loc, name, what));
            }
            Some(bits) => {
                let elems = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
                let bytes = elems
                    .and_then(|x| x.checked_mul(bits))
                    .map(|b| b.div_ceil(8));
                if bytes != Some(e - b) {
                    let what = format!(
                        "{dtype}{shape:?} needs {} bytes but data_offsets span {}",
                        bytes.map_or("overflowing".into(), |x| x.to_string()),
                        e - b
                    );
                    r.push(tensor_finding(&ST_SIZE_MISMATCH, loc, name, what));
                }
            }
        }
        spans.push((b, e, name.clone()));
    }
    spans.sort();
    let mut cursor = 0u64;
    let mut gap_reported = false;
    for (b, e, name) in &spans {
        if *b < cursor {
            let what = format!("[{b}, {e}] overlaps the previous tensor (ends at {cursor})");
            r.push(tensor_finding(&ST_OVERLAP, loc, name, what));
        } else if *b > cursor && !gap_reported {
            gap_reported = true;
            r.push(ST_GAP.finding(
                loc.clone(),
                format!(
                    "{} unreferenced bytes before tensor '{}'",
                    b - cursor,
                    clip(name, 120)
                ),
            ));
        }
        cursor = cursor.max(*e);
    }
    if cursor < data_len {
        let f = ST_GAP.finding(
            loc.clone().with_offset(8 + n + cursor),
            format!(
                "{} bytes after the last tensor are not referenced by the header",
                data_len - cursor
            ),
        );
        r.push(if data_len - cursor > 4096 {
            f
        } else {
            f.severity(Severity::Low)
        });
    }
    r.note(format!(
        "safetensors: {} tensors, header {} bytes",
        spans.len(),
        n
    ));
    r
}

/// A finding of `rule` about the tensor `name`: `tensor 'NAME' WHAT`.
fn tensor_finding(
    rule: &'static Rule,
    loc: &Location,
    name: &str,
    what: impl std::fmt::Display,
) -> Finding {
    rule.finding(loc.clone(), format!("tensor '{}' {what}", clip(name, 120)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(h: &str, data: usize) -> Vec<u8> {
        let mut v = (h.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(h.as_bytes());
        v.extend(std::iter::repeat_n(0u8, data));
        v
    }

    /// Issue 19: a 10 MB header of one-entry objects used 931 MB; now it is
    /// refused by the element bound before anything is built.
    #[test]
    fn object_bomb_header_is_refused() {
        let mut h = String::from("{");
        let mut i = 0;
        while h.len() < 10_000_000 {
            h.push_str(&format!(r#""t{i}":{{"":0}},"#));
            i += 1;
        }
        h.push_str(r#""z":{"":0}}"#);
        let r = scan_safetensors(&file(&h, 0), &Location::path("x.safetensors"));
        let f = r
            .findings
            .iter()
            .find(|f| f.rule_id == ST_HEADER_JSON.id)
            .expect("header finding");
        assert!(
            f.evidence.contains("more than 1000000 elements"),
            "{}",
            f.evidence
        );
        assert!(r.malformed.is_some());
    }

    #[test]
    fn good_file_is_clean() {
        let f = file(
            r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}"#,
            22,
        );
        assert!(looks_like_safetensors(&f));
        let r = scan_safetensors(&f, &Location::path("m.safetensors"));
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert!(r.malformed.is_none());
    }

    #[test]
    fn overlap_dup_and_oversize() {
        let f = file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"c":{"dtype":"Q9","shape":[1],"data_offsets":[12,13]}}"#,
            13,
        );
        let r = scan_safetensors(&f, &Location::path("x"));
        let ids: Vec<&str> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert!(ids.contains(&"AISEC-SAFETENSORS-009"));
        assert!(ids.contains(&"AISEC-SAFETENSORS-006"));
        assert!(ids.contains(&"AISEC-SAFETENSORS-003"));
        let mut big = u64::MAX.to_le_bytes().to_vec();
        big.extend_from_slice(b"{}");
        let r = scan_safetensors(&big, &Location::path("x"));
        assert_eq!(r.findings[0].rule_id, "AISEC-SAFETENSORS-001");
        assert!(r.malformed.is_some());
    }
}
