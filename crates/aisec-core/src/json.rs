//! Bounded JSON reading for untrusted documents.
//!
//! `serde_json` builds a [`serde_json::Value`] that can take about ninety
//! times the size of its text: `[{"":0},{"":0},...]` allocates a map node of
//! several hundred bytes for every seven input bytes. A byte limit alone
//! therefore does not bound memory (a 63 MB Keras config reached 5.8 GB).
//!
//! [`prescan`] walks the bytes once, without allocating, and counts the
//! document's *elements* (every value and every object key) and its nesting
//! depth, stopping at the first bound crossed. Only a document within
//! [`JsonLimits`] is handed to `serde_json`, so the memory of the parsed
//! value is bounded by `max_elements` times the largest per-element cost
//! (a one-entry map, measured at about 230 bytes per element, so about
//! 115 MB for [`JsonLimits::SCAN`]; see `tests/json_memory.rs`) plus the
//! text itself.
//!
//! The element count is structural: one for the document, plus one for
//! every `[`, `{`, `,` and `:` outside strings. That is exact for non-empty
//! containers and counts one extra for each empty one, so it never
//! under-counts. The pre-scan does not validate; `serde_json` still rejects
//! malformed text with a [`JsonError::Syntax`].

use serde::de::DeserializeOwned;

/// Bounds for one untrusted JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Largest document, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects (serde_json itself stops at 128).
    pub max_depth: usize,
    /// Most elements (values plus object keys).
    pub max_elements: usize,
}

impl JsonLimits {
    /// Limits for model configurations and headers read by the scanner:
    /// 64 MiB, depth 128, 500,000 elements (a Keras functional model has
    /// roughly 100 per layer).
    pub const SCAN: JsonLimits = JsonLimits {
        max_bytes: 64 << 20,
        max_depth: 128,
        max_elements: 500_000,
    };

    /// Limits for API request and response bodies (the gateway): 16 MiB,
    /// depth 64, 200,000 elements.
    pub const BODY: JsonLimits = JsonLimits {
        max_bytes: 16 << 20,
        max_depth: 64,
        max_elements: 200_000,
    };

    /// These limits with `max_bytes` replaced.
    pub const fn with_max_bytes(self, max_bytes: usize) -> Self {
        JsonLimits { max_bytes, ..self }
    }

    /// These limits with `max_elements` replaced.
    pub const fn with_max_elements(self, max_elements: usize) -> Self {
        JsonLimits {
            max_elements,
            ..self
        }
    }
}

impl Default for JsonLimits {
    fn default() -> Self {
        JsonLimits::SCAN
    }
}

/// Why a JSON document was not parsed.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The document is longer than `max_bytes`.
    #[error("JSON document is {bytes} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Its length.
        bytes: usize,
        /// The bound.
        limit: usize,
    },
    /// Arrays or objects nest deeper than `max_depth`.
    #[error("JSON nests deeper than {limit} levels (at byte {offset})")]
    TooDeep {
        /// The bound.
        limit: usize,
        /// Where the bound was crossed.
        offset: usize,
    },
    /// The document has more than `max_elements` values and keys.
    #[error("JSON has more than {limit} elements (at byte {offset} of {bytes})")]
    TooManyElements {
        /// The bound.
        limit: usize,
        /// Where the bound was crossed.
        offset: usize,
        /// The document's length.
        bytes: usize,
    },
    /// The text is not valid JSON or not of the expected shape.
    #[error("{0}")]
    Syntax(#[from] serde_json::Error),
}

impl JsonError {
    /// True when a bound was hit (the document may be valid but was not read).
    pub fn is_limit(&self) -> bool {
        !matches!(self, JsonError::Syntax(_))
    }
}

/// What [`prescan`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// Values plus object keys (one over for each empty container).
    pub elements: usize,
    /// Deepest nesting seen.
    pub depth: usize,
}

/// Measures `bytes` without allocating and checks it against `limits`.
pub fn prescan(bytes: &[u8], limits: &JsonLimits) -> Result<Shape, JsonError> {
    if bytes.len() > limits.max_bytes {
        return Err(JsonError::TooLarge {
            bytes: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let mut shape = Shape {
        elements: 1,
        depth: 0,
    };
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(JsonError::TooDeep {
                        limit: limits.max_depth,
                        offset: i,
                    });
                }
                shape.depth = shape.depth.max(depth);
                shape.elements += 1;
            }
            b',' | b':' => shape.elements += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => continue,
        }
        if shape.elements > limits.max_elements {
            return Err(JsonError::TooManyElements {
                limit: limits.max_elements,
                offset: i,
                bytes: bytes.len(),
            });
        }
    }
    Ok(shape)
}

/// Parses `bytes` as `T` after [`prescan`] has accepted it.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8], limits: &JsonLimits) -> Result<T, JsonError> {
    prescan(bytes, limits)?;
    Ok(serde_json::from_slice(bytes)?)
}

/// Parses `text` as `T` after [`prescan`] has accepted it.
pub fn from_str<T: DeserializeOwned>(text: &str, limits: &JsonLimits) -> Result<T, JsonError> {
    from_slice(text.as_bytes(), limits)
}

/// Parses `bytes` into a [`serde_json::Value`] within `limits`.
pub fn parse_value(bytes: &[u8], limits: &JsonLimits) -> Result<serde_json::Value, JsonError> {
    from_slice(bytes, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn lim(bytes: usize, depth: usize, elements: usize) -> JsonLimits {
        JsonLimits {
            max_bytes: bytes,
            max_depth: depth,
            max_elements: elements,
        }
    }

    #[test]
    fn counts_values_and_keys() {
        let l = JsonLimits::SCAN;
        assert_eq!(prescan(b"0", &l).unwrap().elements, 1);
        assert_eq!(prescan(b"[1,2,3]", &l).unwrap().elements, 4);
        // object, key, value
        assert_eq!(prescan(br#"{"a":1}"#, &l).unwrap().elements, 3);
        let s = prescan(br#"{"a":[1,{"b":2}]}"#, &l).unwrap();
        assert_eq!(s.elements, 7);
        assert_eq!(s.depth, 3);
    }

    #[test]
    fn punctuation_inside_strings_is_not_counted() {
        let l = JsonLimits::SCAN;
        let s = prescan(br#"["[{,:}]", "\"[,", "\\"]"#, &l).unwrap();
        assert_eq!(s.elements, 4);
        assert_eq!(s.depth, 1);
    }

    #[test]
    fn object_bomb_is_refused_before_parsing() {
        let mut doc = b"[".to_vec();
        for i in 0..100_000 {
            if i > 0 {
                doc.push(b',');
            }
            doc.extend_from_slice(br#"{"":0}"#);
        }
        doc.push(b']');
        let e = parse_value(&doc, &lim(1 << 20, 128, 100_000)).unwrap_err();
        assert!(e.is_limit());
        match e {
            JsonError::TooManyElements { limit, offset, .. } => {
                assert_eq!(limit, 100_000);
                // Stopped about a quarter of the way in (4 elements per object).
                assert!(offset < doc.len() / 3, "{offset}");
            }
            other => panic!("{other}"),
        }
        // Within a larger bound it parses.
        let v = parse_value(&doc, &lim(1 << 20, 128, 500_000)).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(100_000));
    }

    #[test]
    fn byte_and_depth_limits() {
        let e = parse_value(b"[1,2,3]", &lim(4, 8, 100)).unwrap_err();
        assert!(matches!(e, JsonError::TooLarge { bytes: 7, limit: 4 }));
        let deep = format!("{}{}", "[".repeat(10), "]".repeat(10));
        let e = parse_value(deep.as_bytes(), &lim(100, 9, 100)).unwrap_err();
        assert!(matches!(
            e,
            JsonError::TooDeep {
                limit: 9,
                offset: 9
            }
        ));
        assert!(parse_value(deep.as_bytes(), &lim(100, 10, 100)).is_ok());
        // A million unclosed brackets: refused by depth, no recursion.
        let e = parse_value(&vec![b'['; 1_000_000], &JsonLimits::SCAN).unwrap_err();
        assert!(matches!(e, JsonError::TooDeep { limit: 128, .. }));
    }

    #[test]
    fn syntax_errors_are_not_limits() {
        let e = parse_value(b"{\"a\":", &JsonLimits::SCAN).unwrap_err();
        assert!(!e.is_limit());
        let e = from_str::<Vec<u8>>("[1,\"x\"]", &JsonLimits::SCAN).unwrap_err();
        assert!(matches!(e, JsonError::Syntax(_)));
        let ok: Value = from_str(r#"{"k":[true,null,"s"]}"#, &JsonLimits::SCAN).unwrap();
        assert_eq!(ok["k"][2], "s");
    }

    #[test]
    fn never_undercounts_what_serde_builds() {
        // Count the values and keys of the parsed document and compare.
        fn count(v: &Value) -> usize {
            1 + match v {
                Value::Array(a) => a.iter().map(count).sum(),
                Value::Object(m) => m.values().map(|x| 1 + count(x)).sum(),
                _ => 0,
            }
        }
        for doc in [
            r#"[]"#,
            r#"{}"#,
            r#"[[],{},[[1]],{"a":{"b":[null,false]}}]"#,
            r#"{"x":"a,b:c","y":[1.5e3,-2],"z":{}}"#,
        ] {
            let v: Value = serde_json::from_str(doc).unwrap();
            let s = prescan(doc.as_bytes(), &JsonLimits::SCAN).unwrap();
            assert!(
                s.elements >= count(&v),
                "{doc}: {} < {}",
                s.elements,
                count(&v)
            );
        }
    }
}
