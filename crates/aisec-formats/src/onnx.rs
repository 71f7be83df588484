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
//!
//! The walk reads through [`pb::Source`]: the whole file for a local scan,
//! or the pieces a remote fetch plan holds ([`plan_metadata`], followed
//! round by round by `aisec-remote`'s ONNX plan), so that local and
//! remote scans share this one walk. Payloads it steps over by their
//! lengths (tensor data above all) are never read, so a remote plan
//! never fetches them.

use aisec_core::{Confidence, Location, Severity};

use crate::pb::{self, Source, Span, SpanValue as At, MAX_DEPTH};
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

/// Most top-level fields [`looks_like_onnx`] reads.
const DETECT_FIELDS: usize = 4096;

/// Cheap sniff: the top level parses as a ModelProto using only its field
/// numbers, with a graph or opset import, and an ir_version when present is small.
pub fn looks_like_onnx(data: &[u8]) -> bool {
    looks_like_onnx_in(&Source::whole(data))
}

/// [`looks_like_onnx`] over the bytes `src` holds: it reads the top-level
/// keys and varints only (a hole ends the top level early; see
/// [`plan_metadata`]).
pub fn looks_like_onnx_in(src: &Source<'_>) -> bool {
    detect_walk(src).unwrap_or(false)
}

/// What the bytes held say about [`looks_like_onnx`] on the whole file
/// (see [`looks_like_onnx_held`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnnxSniff {
    /// `looks_like_onnx` is true for every file of that size holding
    /// these bytes.
    Onnx,
    /// `looks_like_onnx` is false for every such file.
    NotOnnx,
    /// Undecided: the walk reached a top-level key (or varint) at this
    /// offset that no piece holds.
    Lacks(u64),
}

/// [`looks_like_onnx`] from the pieces of a file of `size` bytes that are
/// known: the sniff walks the top-level keys in order and says no at the
/// first that is malformed, runs past the end or breaks the ModelProto
/// field list (or past [`DETECT_FIELDS`] fields), so a walk that meets
/// such a field before it runs into a hole decides for the whole file;
/// one that runs into a hole first is undecided. Used by remote fetch
/// plans to prove a raw blob is no ONNX model from a few ranged reads.
pub fn looks_like_onnx_held(size: u64, pieces: Vec<(u64, &[u8])>) -> OnnxSniff {
    let src = Source::pieces(size, pieces);
    let verdict = detect_walk(&src);
    match (verdict, src.misses().keys.first()) {
        (None, _) => OnnxSniff::NotOnnx,
        (Some(_), Some(&(at, _))) => OnnxSniff::Lacks(at),
        (Some(true), None) => OnnxSniff::Onnx,
        (Some(false), None) => OnnxSniff::NotOnnx,
    }
}

/// The top-level walk of [`looks_like_onnx`]: `None` when a field it read
/// rules the file out (whatever the bytes it did not read), else the
/// verdict from the fields it read (all of them unless it ran into a
/// hole, which the source records as a miss).
fn detect_walk(src: &Source<'_>) -> Option<bool> {
    if src.size() < 4 {
        return None;
    }
    let mut seen = Vec::new();
    let mut ir_version_ok = None;
    for (i, f) in src.fields(src.all()).enumerate() {
        if i >= DETECT_FIELDS {
            return None;
        }
        let Ok((num, v)) = f else {
            return None;
        };
        let wire = match v {
            At::Varint(_) => 0,
            At::Fixed64(_) => 1,
            At::Bytes(_) => 2,
            At::Fixed32(_) => 5,
        };
        if !MODEL_FIELDS.contains(&(num, wire)) {
            return None;
        }
        if num == 1 && ir_version_ok.is_none() {
            ir_version_ok = Some(matches!(v, At::Varint(x) if x <= 64));
        }
        if !seen.contains(&num) {
            seen.push(num);
        }
    }
    Some((seen.contains(&7) || seen.contains(&8)) && ir_version_ok.unwrap_or(true))
}

/// Why a file that opens as an ONNX `ModelProto` is not a whole one: the
/// top level starts with a small `ir_version` (every ONNX exporter writes
/// it first) followed only by ModelProto fields, and then a field runs past
/// the end of the file. That is a cut-off download or a damaged model, not
/// some other format under an `.onnx` name, so the scanner reports it as
/// malformed rather than as a suffix mismatch. Reads the same top-level keys
/// and varints as [`looks_like_onnx`] (which says no to such a file), so a
/// remote plan that proved the object no ONNX model holds all it needs.
pub fn truncated_onnx(data: &[u8]) -> Option<String> {
    let src = Source::whole(data);
    // Every field before the one at `i` was a valid ModelProto field.
    for (i, f) in src.fields(src.all()).enumerate() {
        if i >= DETECT_FIELDS {
            return None;
        }
        let (num, v) = match f {
            Ok(x) => x,
            Err(e) => {
                let cut = e.what.starts_with("truncated") || e.what.contains("runs past");
                // The cut field's key, when whole, must be a ModelProto field too.
                let mut at = e.offset;
                let key_ok = pb::read_varint(data, &mut at)
                    .map(|k| MODEL_FIELDS.contains(&((k >> 3) as u32, (k & 7) as u8)))
                    .unwrap_or(true);
                return (cut && key_ok && i > 0).then(|| {
                    format!(
                        "ONNX model cut short: {e} of a {}-byte file, after {i} valid top-level field(s)",
                        data.len()
                    )
                });
            }
        };
        let wire = match v {
            At::Varint(_) => 0,
            At::Fixed64(_) => 1,
            At::Bytes(_) => 2,
            At::Fixed32(_) => 5,
        };
        let first_ok = i > 0 || matches!((num, v), (1, At::Varint(x)) if x <= 64);
        if !first_ok || !MODEL_FIELDS.contains(&(num, wire)) {
            return None;
        }
    }
    None
}

struct Walk<'a, 'd> {
    src: &'a Source<'d>,
    loc: &'a Location,
    r: &'a mut FormatReport,
    nodes: usize,
    domains: Vec<(String, usize)>,
    externals: usize,
}

/// Scans an ONNX model.
pub fn scan_onnx(data: &[u8], loc: &Location) -> FormatReport {
    scan_source(&Source::whole(data), loc)
}

/// The scan's one walk, over the whole file or the pieces of it a remote
/// plan holds (see [`plan_metadata`]).
fn scan_source(src: &Source<'_>, loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    let mut w = Walk {
        src,
        loc,
        r: &mut r,
        nodes: 0,
        domains: Vec::new(),
        externals: 0,
    };
    if let Err(e) = w.model(src.all()) {
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

/// What a remote fetch plan learns from one walk over the bytes it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataPlan {
    /// The ranges the walk lacked. Empty: it read only held bytes, and
    /// another walk over the same bytes (the scan's) reads the same.
    pub missing: pb::Misses,
    /// [`looks_like_onnx_in`] over the held bytes; the original's answer
    /// when `missing` is empty.
    pub looks_like_onnx: bool,
}

/// Walks an ONNX file over the bytes `src` holds (the scan's own walk,
/// and the top-level fields format detection reads) and says what it
/// lacked. A remote plan fetches the misses and walks again; when nothing
/// is missing, [`scan_onnx`] and [`looks_like_onnx`] over a file holding
/// those bytes (anything, zeros, elsewhere) give the results they give on
/// the original file. Payloads the scan never reads (tensor `raw_data`
/// and typed data, names of inputs and outputs, value infos, attribute
/// values other than tensors and graphs, doc strings of graphs and nodes)
/// are stepped over by their lengths and never asked for.
pub fn plan_metadata(src: &Source<'_>) -> MetadataPlan {
    let looks_like_onnx = looks_like_onnx_in(src);
    let _ = scan_source(src, &Location::path("plan"));
    MetadataPlan {
        missing: src.misses(),
        looks_like_onnx,
    }
}

impl Walk<'_, '_> {
    fn text(&self, s: Span) -> String {
        self.src.text(s)
    }

    fn model(&mut self, m: Span) -> Result<(), String> {
        let mut has_graph = false;
        for f in self.src.fields(m) {
            let (n, v) = f.map_err(|e| format!("ModelProto: {e}"))?;
            match (n, v) {
                (1, At::Varint(x)) => self.r.note(format!("ONNX ir_version {x}")),
                (2, At::Bytes(b)) => {
                    let t = self.text(b);
                    self.r.note(format!("producer: {}", clip(&t, 80)))
                }
                (6, At::Bytes(b)) => {
                    let t = self.text(b);
                    self.metadata_text("doc_string", &t)
                }
                (7, At::Bytes(b)) => {
                    has_graph = true;
                    self.graph(b, 1)?;
                }
                (14, At::Bytes(b)) => {
                    let (mut k, mut val) = (String::new(), String::new());
                    for f in self.src.fields(b) {
                        match f.map_err(|e| format!("metadata_props: {e}"))? {
                            (1, At::Bytes(x)) => k = self.text(x),
                            (2, At::Bytes(x)) => val = self.text(x),
                            _ => {}
                        }
                    }
                    self.metadata_text(&k, &val);
                }
                (20, At::Bytes(b)) => {
                    for f in self.src.fields(b) {
                        if let (1 | 2, At::Bytes(g)) =
                            f.map_err(|e| format!("training_info: {e}"))?
                        {
                            self.graph(g, 1)?;
                        }
                    }
                }
                (25, At::Bytes(b)) => self.function(b)?,
                _ => {}
            }
        }
        if !has_graph {
            self.r.note("ModelProto has no graph");
        }
        Ok(())
    }

    fn function(&mut self, b: Span) -> Result<(), String> {
        let mut name = String::new();
        let mut domain = String::new();
        let mut nodes = 0usize;
        for f in self.src.fields(b) {
            match f.map_err(|e| format!("FunctionProto: {e}"))? {
                (1, At::Bytes(x)) => name = self.text(x),
                (10, At::Bytes(x)) => domain = self.text(x),
                (7, At::Bytes(x)) => {
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

    fn graph(&mut self, b: Span, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("subgraphs nested too deeply".into());
        }
        for f in self.src.fields(b) {
            match f.map_err(|e| format!("GraphProto: {e}"))? {
                (1, At::Bytes(x)) => self.node(x, depth)?,
                (5, At::Bytes(x)) => self.tensor(x)?,
                (15, At::Bytes(x)) => self.sparse(x)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn node(&mut self, b: Span, depth: usize) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err("too many nodes".into());
        }
        let mut domain = String::new();
        for f in self.src.fields(b) {
            match f.map_err(|e| format!("NodeProto: {e}"))? {
                (7, At::Bytes(x)) => domain = self.text(x),
                (5, At::Bytes(x)) => self.attribute(x, depth)?,
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

    fn attribute(&mut self, b: Span, depth: usize) -> Result<(), String> {
        for f in self.src.fields(b) {
            match f.map_err(|e| format!("AttributeProto: {e}"))? {
                (5 | 10, At::Bytes(x)) => self.tensor(x)?,
                (6 | 11, At::Bytes(x)) => self.graph(x, depth + 1)?,
                (22 | 23, At::Bytes(x)) => self.sparse(x)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn sparse(&mut self, b: Span) -> Result<(), String> {
        for f in self.src.fields(b) {
            if let (1 | 2, At::Bytes(x)) = f.map_err(|e| format!("SparseTensorProto: {e}"))? {
                self.tensor(x)?;
            }
        }
        Ok(())
    }

    fn tensor(&mut self, b: Span) -> Result<(), String> {
        let mut name = String::new();
        let mut external = false;
        let mut location: Option<String> = None;
        for f in self.src.fields(b) {
            match f.map_err(|e| format!("TensorProto: {e}"))? {
                (8, At::Bytes(x)) => name = self.text(x),
                (14, At::Varint(1)) => external = true,
                (13, At::Bytes(x)) => {
                    let (mut k, mut v) = (Vec::new(), Vec::new());
                    for g in self.src.fields(x) {
                        match g.map_err(|e| format!("external_data: {e}"))? {
                            (1, At::Bytes(y)) => k = self.src.bytes(y).unwrap_or_default().to_vec(),
                            (2, At::Bytes(y)) => v = self.src.bytes(y).unwrap_or_default().to_vec(),
                            _ => {}
                        }
                    }
                    if k == b"location" {
                        location = Some(String::from_utf8_lossy(&v).into_owned());
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
    use crate::pb::Value;

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

    #[test]
    fn truncation_is_told_apart_from_noise() {
        let whole = fixture("onnx_benign.onnx");
        assert!(
            truncated_onnx(&whole).is_none(),
            "a whole model is not cut short"
        );
        let mut cut_at = Vec::new();
        for n in [3, 10, whole.len() / 2, whole.len() - 1] {
            let part = &whole[..n];
            assert!(!looks_like_onnx(part), "{n}: still detected as ONNX");
            let why =
                truncated_onnx(part).unwrap_or_else(|| panic!("{n} bytes not called truncated"));
            assert!(why.contains(&format!("{n}-byte file")), "{why}");
            cut_at.push(n);
        }
        assert_eq!(cut_at.len(), 4);
        // Not an ONNX start: text, a pickle header, a lone ir_version byte,
        // an ir_version too large, a field ModelProto does not have.
        for d in [
            &b"hello world, not a model"[..],
            &[0x80, 0x04, 0x95, 0x10, 0x00],
            &[0x08],
            &[0x08, 0x99, 0x01, 0x3a, 0x10],
            &[0x08, 0x08, 0x4a, 0x10, 0x00],
            &[],
        ] {
            assert!(truncated_onnx(d).is_none(), "{d:?}");
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(p).unwrap()
    }

    const FIXTURES: &[&str] = &[
        "onnx_benign.onnx",
        "onnx_custom_domain.onnx",
        "onnx_external_traversal.onnx",
        "onnx_subgraph_custom.onnx",
    ];

    fn ld(n: u32, b: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        pb::put_bytes_field(&mut v, n, b);
        v
    }

    /// An initializer `name` of `n` bytes of float32 raw data.
    fn initializer(name: &str, n: usize) -> Vec<u8> {
        let mut t = Vec::new();
        pb::put_int_field(&mut t, 1, (n / 4) as i64);
        pb::put_int_field(&mut t, 2, 1);
        pb::put_bytes_field(&mut t, 8, name.as_bytes());
        let raw: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        pb::put_bytes_field(&mut t, 9, &raw);
        ld(5, &t)
    }

    /// `d` with initializers of `sizes` bytes added to its graph, before
    /// its nodes (`before`) or after them.
    fn grow(d: &[u8], sizes: &[usize], before: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for f in pb::fields(d).with_raw() {
            let (n, v, raw) = f.unwrap();
            match (n, v) {
                (7, Value::Bytes(g)) => {
                    let mut inits = Vec::new();
                    for (i, &n) in sizes.iter().enumerate() {
                        inits.extend(initializer(&format!("w{i}"), n));
                        // A small tensor between the large ones.
                        inits.extend(initializer(&format!("b{i}"), 64));
                    }
                    let g = if before {
                        [inits, g.to_vec()].concat()
                    } else {
                        [g.to_vec(), inits].concat()
                    };
                    out.extend(ld(7, &g));
                }
                _ => out.extend(raw),
            }
        }
        out
    }

    /// What a reader following [`plan_metadata`] holds in the end, as the
    /// image it would scan (zeros where it read nothing), with the bytes it
    /// held. Starts from the first `head` bytes; fetches `block` bytes from
    /// each missing key (within its message) and missing payloads exactly.
    fn fetched_image(d: &[u8], head: u64, block: u64) -> (Vec<u8>, u64) {
        let size = d.len() as u64;
        let mut held = vec![(0, head.min(size))];
        let mut walks = 0;
        loop {
            walks += 1;
            assert!(walks < 100_000, "the walk never settles");
            let pieces = held
                .iter()
                .map(|&(s, e)| (s, &d[s as usize..e as usize]))
                .collect();
            let m = plan_metadata(&Source::pieces(size, pieces)).missing;
            if m.is_empty() {
                break;
            }
            let want: Vec<(u64, u64)> = m
                .keys
                .iter()
                .map(|&(s, e)| (s, e.min(s + block)))
                .chain(m.bytes.iter().copied())
                .collect();
            for w in &want {
                assert!(w.0 < w.1 && w.1 <= size, "{w:?}");
                // Progress: a miss is never a range held already.
                assert!(!held.iter().any(|h| h.0 <= w.0 && w.1 <= h.1), "{w:?}");
            }
            held.extend(want);
            held = merge(held);
        }
        let mut img = vec![0u8; d.len()];
        for &(s, e) in &held {
            img[s as usize..e as usize].copy_from_slice(&d[s as usize..e as usize]);
        }
        (img, held.iter().map(|h| h.1 - h.0).sum())
    }

    fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        v.retain(|r| r.0 < r.1);
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (s, e) in v {
            match out.last_mut() {
                Some(l) if s <= l.1 => l.1 = l.1.max(e),
                _ => out.push((s, e)),
            }
        }
        out
    }

    /// The slice-based sniff [`looks_like_onnx`] replaced.
    fn sniff_over_slices(data: &[u8]) -> bool {
        if data.len() < 4 {
            return false;
        }
        let Some(seen) = pb::shallow_check(data, MODEL_FIELDS, DETECT_FIELDS) else {
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

    /// Scan and detection over the fetched image equal the original's;
    /// returns the bytes held.
    fn assert_scans_alike(d: &[u8], what: &str, heads: &[u64], blocks: &[u64]) -> u64 {
        assert_eq!(looks_like_onnx(d), sniff_over_slices(d), "{what}");
        let loc = Location::path("x.onnx");
        let want = scan_onnx(d, &loc);
        let mut most = 0;
        for &head in heads {
            for &block in blocks {
                let (img, n) = fetched_image(d, head, block);
                assert_eq!(
                    scan_onnx(&img, &loc),
                    want,
                    "{what}, head {head}, block {block}"
                );
                assert_eq!(
                    looks_like_onnx(&img),
                    looks_like_onnx(d),
                    "{what}, head {head}, block {block}"
                );
                most = most.max(n);
            }
        }
        most
    }

    #[test]
    fn a_metadata_fetch_scans_like_the_whole_file() {
        for f in FIXTURES {
            let d = fixture(f);
            assert!(looks_like_onnx(&d), "{f}");
            assert_scans_alike(&d, f, &[0, 64, 16 << 10], &[1, 4 << 10]);
            for before in [false, true] {
                let g = grow(&d, &[1 << 20, 2 << 20, 1 << 20], before);
                let what = format!("{f} grown (before {before})");
                let n = assert_scans_alike(&g, &what, &[0, 16 << 10], &[16, 4 << 10]);
                // The metadata, the small tensors and a block per big one.
                assert!(n < 64 << 10, "{what}: {n} of {}", g.len());
            }
        }
    }

    #[test]
    fn raw_data_is_never_asked_for() {
        let g = grow(&fixture("onnx_external_traversal.onnx"), &[4 << 20], true);
        let (_, n) = fetched_image(&g, 0, 1);
        assert!(n < 4 << 10, "{n}");
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn hostile_files_scan_alike_from_a_metadata_fetch() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for f in FIXTURES {
            let base = grow(&fixture(f), &[200 << 10, 100 << 10], false);
            // Truncated anywhere: in the metadata, in a big payload.
            for cut in [
                1,
                5,
                40,
                97,
                base.len() / 3,
                base.len() - 70_000,
                base.len() - 1,
            ] {
                let d = &base[..cut.min(base.len())];
                assert_scans_alike(d, &format!("{f} cut at {cut}"), &[0, 64], &[4 << 10]);
            }
            // Bytes set to lengths past the end, huge varints, noise.
            for round in 0..40 {
                let mut d = base.clone();
                let meta = d.len().min(600);
                for _ in 0..1 + round % 4 {
                    let at = (rng.next() as usize) % meta;
                    d[at] = match rng.next() % 3 {
                        0 => 0xff,
                        1 => 0x7f,
                        _ => rng.next() as u8,
                    };
                }
                assert_scans_alike(&d, &format!("{f} mutation {round}"), &[0, 64], &[4 << 10]);
            }
        }
        // A varint of ten 0xff bytes as the graph's length; deep nesting.
        let mut d = vec![0x08, 0x07, 0x3a];
        d.extend([0xff; 10]);
        d.extend([0u8; 100]);
        assert_scans_alike(&d, "huge varint", &[0, 4], &[4 << 10]);
        let mut g = Vec::new();
        for _ in 0..200 {
            g = ld(1, &ld(5, &ld(6, &g)));
        }
        let mut d = vec![0x08, 0x07];
        d.extend(ld(7, &g));
        let r = scan_onnx(&d, &Location::path("x.onnx"));
        assert!(r.malformed.is_some());
        assert_scans_alike(&d, "deep nesting", &[0, 64], &[1, 4 << 10]);
    }

    /// Follows [`looks_like_onnx_held`] as a remote sniff does: from the
    /// first `head` bytes (and a piece elsewhere), fetching `block` bytes
    /// at each key it lacks, for at most `rounds` rounds. Checks that
    /// every verdict is the whole file's and that every lack is a byte not
    /// held; returns the verdict, if any.
    fn follow_held(
        d: &[u8],
        head: u64,
        other: (u64, u64),
        block: u64,
        rounds: usize,
    ) -> Option<bool> {
        let size = d.len() as u64;
        let mut held = merge(vec![
            (0, head.min(size)),
            (other.0.min(size), other.1.min(size)),
        ]);
        for _ in 0..rounds {
            let pieces = held
                .iter()
                .map(|&(s, e)| (s, &d[s as usize..e as usize]))
                .collect();
            match looks_like_onnx_held(size, pieces) {
                OnnxSniff::Lacks(at) => {
                    assert!(
                        at < size && !held.iter().any(|&(s, e)| s <= at && at < e),
                        "lacks {at}, held {held:?}"
                    );
                    held.push((at, (at + block).min(size)));
                    held = merge(held);
                }
                v => {
                    let yes = v == OnnxSniff::Onnx;
                    assert_eq!(yes, looks_like_onnx(d), "held {held:?}");
                    // Any bytes elsewhere (zeros here) give the same answer.
                    let mut img = vec![0u8; d.len()];
                    for &(s, e) in &held {
                        img[s as usize..e as usize].copy_from_slice(&d[s as usize..e as usize]);
                    }
                    assert_eq!(looks_like_onnx(&img), yes, "image, held {held:?}");
                    return Some(yes);
                }
            }
        }
        None
    }

    #[test]
    fn held_bytes_sniff_like_the_whole_file() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut corpus: Vec<Vec<u8>> = Vec::new();
        for f in FIXTURES {
            let base = fixture(f);
            let grown = grow(&base, &[200 << 10, 3000], true);
            for d in [&base, &grown] {
                for cut in [1, 4, 40, d.len() / 2, d.len() - 1, d.len()] {
                    corpus.push(d[..cut].to_vec());
                }
                // Mutated near the start: lengths past the end, bad keys.
                for _ in 0..20 {
                    let mut m = d.clone();
                    let at = (rng.next() as usize) % m.len().min(64);
                    m[at] = rng.next() as u8;
                    corpus.push(m);
                }
            }
        }
        // Random blobs with each first byte, and valid-looking keys then
        // noise: a graph field of a random length, an ir_version then noise.
        for first in 0..=255u8 {
            let mut d: Vec<u8> = (0..6000).map(|_| rng.next() as u8).collect();
            d[0] = first;
            corpus.push(d);
        }
        for len in [3u64, 100, 5000, 5990, 7000] {
            let mut d = vec![0x08, 0x07, 0x3a];
            pb::put_varint(&mut d, len);
            d.extend((0..6000).map(|_| rng.next() as u8));
            corpus.push(d);
        }
        let (mut decided, mut undecided) = (0, 0);
        for d in &corpus {
            let size = d.len() as u64;
            for head in [0, 2, 64, 4096] {
                for other in [
                    (0, 0),
                    (size / 2, size / 2 + 100),
                    (size.saturating_sub(50), size),
                ] {
                    for block in [1, 16, 4096] {
                        match follow_held(d, head, other, block, 64) {
                            Some(_) => decided += 1,
                            None => undecided += 1,
                        }
                    }
                }
            }
        }
        assert!(decided > 0, "{decided} {undecided}");
        // Noise is ruled out from its first bytes, mostly by its first key.
        let mut quick = 0;
        for _ in 0..200 {
            let d: Vec<u8> = (0..64 << 10).map(|_| rng.next() as u8).collect();
            if follow_held(&d, 16 << 10, (0, 0), 16 << 10, 1) == Some(false) {
                quick += 1;
            }
        }
        assert!(quick >= 190, "{quick} of 200 decided from 16 KiB");
    }
}
