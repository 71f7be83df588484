//! ONNX `ModelProto` inspection.
//!
//! Field numbers follow `onnx/onnx.proto` (ModelProto: ir_version=1,
//! producer_name=2, producer_version=3, domain=4, model_version=5,
//! doc_string=6, graph=7, opset_import=8, metadata_props=14,
//! training_info=20, functions=25; GraphProto: node=1, initializer=5,
//! sparse_initializer=15; NodeProto: input=1, output=2, name=3, op_type=4,
//! attribute=5, domain=7; AttributeProto: t=5, g=6, tensors=10, graphs=11,
//! sparse_tensor=22, sparse_tensors=23; TensorProto: name=8,
//! external_data=13, data_location=14). The walker visits every graph,
//! including subgraphs held in `If`/`Loop`/`Scan` attributes, model-local
//! functions and training graphs, with bounded depth and node counts.
//!
//! Reported: external-data `location`s that are absolute, escape the model
//! folder, use a URL scheme or name devices (onnx path traversal,
//! CVE-2022-25882 and CVE-2024-27318), operator domains that need a
//! custom-op native library, model-local functions and metadata that looks
//! like code or URLs.

use aisec_core::{Confidence, Location, Severity};

use crate::pb::{self, Value, MAX_DEPTH};
use crate::rules::*;
use crate::{clip, FormatReport};

const MAX_NODES: usize = 5_000_000;

/// Operator domains of the ONNX standard.
const STD_DOMAINS: &[&str] = &["", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training"];

/// ModelProto field numbers with their wire types.
const MODEL_FIELDS: &[(u32, u8)] = &[
    (1, 0),
    (2, 2),
    (3, 2),
    (4, 2),
    (5, 0),
    (6, 2),
    (7, 2),
    (8, 2),
    (14, 2),
    (20, 2),
    (25, 2),
];

/// Cheap sniff: the top level parses as a ModelProto using only its field
/// numbers, with a graph or opset import, and an ir_version when present is small.
pub fn looks_like_onnx(data: &[u8]) -> bool {
    if data.len() < 4 {
        return false;
    }
    let Some(seen) = pb::shallow_check(data, MODEL_FIELDS, 4096) else {
        return false;
    };
    if !(seen.contains(&7) || seen.contains(&8)) {
        return false;
    }
    for (n, v) in pb::fields(data).flatten() {
        if n == 1 {
            return matches!(v, Value::Varint(x) if x <= 64);
        }
    }
    true
}

struct Walk<'a> {
    loc: &'a Location,
    r: &'a mut FormatReport,
    nodes: usize,
    domains: Vec<(String, usize)>,
    externals: usize,
}

/// Scans an ONNX model.
pub fn scan_onnx(data: &[u8], loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    let mut w = Walk {
        loc,
        r: &mut r,
        nodes: 0,
        domains: Vec::new(),
        externals: 0,
    };
    if let Err(e) = w.model(data) {
        w.r.set_malformed(e);
    }
    let (domains, externals, nodes) = (std::mem::take(&mut w.domains), w.externals, w.nodes);
    r.note(format!(
        "{nodes} nodes (all graphs, subgraphs and functions)"
    ));
    for (d, count) in domains {
        if d == "com.microsoft" || d.starts_with("com.microsoft.") {
            r.note(format!("{count} node(s) use the ONNX Runtime contrib domain '{d}' (known, built into onnxruntime)"));
            continue;
        }
        r.push(ONNX_CUSTOM_DOMAIN.finding(
            loc.clone(),
            format!(
                "{count} node(s) use operator domain '{}', which needs a custom-op library",
                clip(&d, 120)
            ),
        ));
    }
    if externals > 0 {
        r.note(format!(
            "{externals} tensor(s) store data in external files"
        ));
    }
    r
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Walk<'_> {
    fn model(&mut self, data: &[u8]) -> Result<(), String> {
        let mut has_graph = false;
        for f in pb::fields(data) {
            let (n, v) = f.map_err(|e| format!("ModelProto: {e}"))?;
            match (n, v) {
                (1, Value::Varint(x)) => self.r.note(format!("ONNX ir_version {x}")),
                (2, Value::Bytes(b)) => self.r.note(format!("producer: {}", clip(&text(b), 80))),
                (6, Value::Bytes(b)) => self.metadata_text("doc_string", &text(b)),
                (7, Value::Bytes(b)) => {
                    has_graph = true;
                    self.graph(b, 1)?;
                }
                (14, Value::Bytes(b)) => {
                    let (mut k, mut val) = (String::new(), String::new());
                    for f in pb::fields(b) {
                        match f.map_err(|e| format!("metadata_props: {e}"))? {
                            (1, Value::Bytes(x)) => k = text(x),
                            (2, Value::Bytes(x)) => val = text(x),
                            _ => {}
                        }
                    }
                    self.metadata_text(&k, &val);
                }
                (20, Value::Bytes(b)) => {
                    for f in pb::fields(b) {
                        if let (1 | 2, Value::Bytes(g)) =
                            f.map_err(|e| format!("training_info: {e}"))?
                        {
                            self.graph(g, 1)?;
                        }
                    }
                }
                (25, Value::Bytes(b)) => self.function(b)?,
                _ => {}
            }
        }
        if !has_graph {
            self.r.note("ModelProto has no graph");
        }
        Ok(())
    }

    fn function(&mut self, b: &[u8]) -> Result<(), String> {
        let mut name = String::new();
        let mut domain = String::new();
        let mut nodes = 0usize;
        for f in pb::fields(b) {
            match f.map_err(|e| format!("FunctionProto: {e}"))? {
                (1, Value::Bytes(x)) => name = text(x),
                (10, Value::Bytes(x)) => domain = text(x),
                (7, Value::Bytes(x)) => {
                    nodes += 1;
                    self.node(x, 1)?;
                }
                _ => {}
            }
        }
        self.r.push(ONNX_FUNCTIONS.finding(
            self.loc.clone(),
            format!(
                "model-local function '{}' in domain '{}' with {nodes} nodes",
                clip(&name, 100),
                clip(&domain, 100)
            ),
        ));
        Ok(())
    }

    fn graph(&mut self, b: &[u8], depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("subgraphs nested too deeply".into());
        }
        for f in pb::fields(b) {
            match f.map_err(|e| format!("GraphProto: {e}"))? {
                (1, Value::Bytes(x)) => self.node(x, depth)?,
                (5, Value::Bytes(x)) => self.tensor(x)?,
                (15, Value::Bytes(x)) => self.sparse(x)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn node(&mut self, b: &[u8], depth: usize) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err("too many nodes".into());
        }
        let mut domain = String::new();
        for f in pb::fields(b) {
            match f.map_err(|e| format!("NodeProto: {e}"))? {
                (7, Value::Bytes(x)) => domain = text(x),
                (5, Value::Bytes(x)) => self.attribute(x, depth)?,
                _ => {}
            }
        }
        if !STD_DOMAINS.contains(&domain.as_str()) {
            if let Some(i) = self.domains.iter().position(|(d, _)| *d == domain) {
                self.domains[i].1 += 1;
            } else if self.domains.len() < 64 {
                self.domains.push((domain, 1));
            }
        }
        Ok(())
    }

    fn attribute(&mut self, b: &[u8], depth: usize) -> Result<(), String> {
        for f in pb::fields(b) {
            match f.map_err(|e| format!("AttributeProto: {e}"))? {
                (5 | 10, Value::Bytes(x)) => self.tensor(x)?,
                (6 | 11, Value::Bytes(x)) => self.graph(x, depth + 1)?,
                (22 | 23, Value::Bytes(x)) => self.sparse(x)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn sparse(&mut self, b: &[u8]) -> Result<(), String> {
        for f in pb::fields(b) {
            if let (1 | 2, Value::Bytes(x)) = f.map_err(|e| format!("SparseTensorProto: {e}"))? {
                self.tensor(x)?;
            }
        }
        Ok(())
    }

    fn tensor(&mut self, b: &[u8]) -> Result<(), String> {
        let mut name = String::new();
        let mut external = false;
        let mut location: Option<String> = None;
        for f in pb::fields(b) {
            match f.map_err(|e| format!("TensorProto: {e}"))? {
                (8, Value::Bytes(x)) => name = text(x),
                (14, Value::Varint(1)) => external = true,
                (13, Value::Bytes(x)) => {
                    let (mut k, mut v) = (Vec::new(), Vec::new());
                    for g in pb::fields(x) {
                        match g.map_err(|e| format!("external_data: {e}"))? {
                            (1, Value::Bytes(y)) => k = y.to_vec(),
                            (2, Value::Bytes(y)) => v = y.to_vec(),
                            _ => {}
                        }
                    }
                    if k == b"location" {
                        location = Some(text(&v));
                    }
                }
                _ => {}
            }
        }
        if let Some(l) = location {
            self.externals += 1;
            self.check_location(&name, &l, external);
        }
        Ok(())
    }

    fn check_location(&mut self, tensor: &str, l: &str, external: bool) {
        let verdict = classify_location(l);
        let suffix = if external {
            ""
        } else {
            " (data_location is not EXTERNAL, but loaders may still follow it)"
        };
        match verdict {
            LocationKind::Inside => {}
            LocationKind::DotDotInside => self.r.push(ONNX_RELATIVE_DOTDOT.finding(
                self.loc.clone(),
                format!("tensor '{}' location '{}'", clip(tensor, 80), clip(l, 200)),
            )),
            LocationKind::Escapes(why) => {
                let f = ONNX_EXTERNAL_PATH.finding(
                    self.loc.clone(),
                    format!(
                        "tensor '{}' external data location '{}' {why}{suffix}",
                        clip(tensor, 80),
                        clip(l, 200)
                    ),
                );
                self.r.push(if external {
                    f
                } else {
                    f.confidence(Confidence::Medium)
                });
            }
        }
    }

    fn metadata_text(&mut self, key: &str, val: &str) {
        let lower = val.to_ascii_lowercase();
        let markers = [
            "http://",
            "https://",
            "file://",
            "ftp://",
            "<script",
            "javascript:",
            "__import__",
            "os.system",
            "subprocess",
            "eval(",
            "exec(",
            "$(",
            "`",
            "/bin/sh",
            "powershell",
            "curl ",
            "wget ",
        ];
        let hits: Vec<&str> = markers
            .iter()
            .copied()
            .filter(|m| lower.contains(m))
            .collect();
        if hits.is_empty() {
            return;
        }
        let urls_only = hits.iter().all(|h| h.starts_with("http"));
        let f = ONNX_METADATA.finding(
            self.loc.clone(),
            format!(
                "metadata '{}' contains {}: {}",
                clip(key, 80),
                hits.join(", "),
                clip(val, 160)
            ),
        );
        self.r.push(if urls_only {
            f.severity(Severity::Info)
        } else {
            f
        });
    }
}

/// How an external-data location relates to the model directory.
#[derive(Debug, PartialEq, Eq)]
pub enum LocationKind {
    /// A plain relative path inside the directory.
    Inside,
    /// Relative, uses `..`, but stays inside.
    DotDotInside,
    /// Leaves the directory or is not a plain file path; the text says how.
    Escapes(&'static str),
}

/// Classifies an ONNX external-data `location` value.
pub fn classify_location(l: &str) -> LocationKind {
    if l.contains('\0') {
        return LocationKind::Escapes("contains a NUL byte");
    }
    let lower = l.to_ascii_lowercase();
    if let Some(i) = lower.find("://") {
        if lower[..i]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
            return LocationKind::Escapes("uses a URL scheme");
        }
    }
    if lower.starts_with("file:") {
        return LocationKind::Escapes("uses a URL scheme");
    }
    if l.starts_with("\\\\") || l.starts_with("//") {
        return LocationKind::Escapes("is a UNC/network path");
    }
    if l.starts_with('/')
        || l.starts_with('\\')
        || (l.len() >= 2 && l.as_bytes()[1] == b':' && l.as_bytes()[0].is_ascii_alphabetic())
    {
        let dev = ["/dev/", "/proc/", "/sys/"]
            .iter()
            .any(|p| lower.starts_with(p));
        return LocationKind::Escapes(if dev {
            "names a device or special file"
        } else {
            "is an absolute path"
        });
    }
    let mut depth: i64 = 0;
    let mut dotdot = false;
    for comp in l.split(['/', '\\']) {
        match comp {
            "" | "." => {}
            ".." => {
                dotdot = true;
                depth -= 1;
                if depth < 0 {
                    return LocationKind::Escapes("climbs out of the model directory with '..'");
                }
            }
            c => {
                let stem = c.split('.').next().unwrap_or("").to_ascii_uppercase();
                if ["CON", "NUL", "PRN", "AUX", "COM1", "LPT1"].contains(&stem.as_str()) {
                    return LocationKind::Escapes("names a Windows device");
                }
                depth += 1;
            }
        }
    }
    if dotdot {
        LocationKind::DotDotInside
    } else {
        LocationKind::Inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(classify_location("weights.bin"), LocationKind::Inside);
        assert_eq!(classify_location("a/../w.bin"), LocationKind::DotDotInside);
        assert!(matches!(
            classify_location("../../etc/passwd"),
            LocationKind::Escapes(_)
        ));
        assert!(matches!(
            classify_location("/etc/passwd"),
            LocationKind::Escapes(_)
        ));
        assert!(matches!(
            classify_location("C:\\x"),
            LocationKind::Escapes(_)
        ));
        assert!(matches!(
            classify_location("https://e.invalid/w"),
            LocationKind::Escapes(_)
        ));
        assert!(matches!(
            classify_location("/dev/zero"),
            LocationKind::Escapes("names a device or special file")
        ));
    }

    #[test]
    fn sniff_rejects_noise() {
        assert!(!looks_like_onnx(b"hello world, not a model"));
        assert!(!looks_like_onnx(&[0x08]));
        // ir_version 8, graph {}
        assert!(looks_like_onnx(&[0x08, 0x08, 0x3a, 0x00]));
    }
}
