//! TensorFlow SavedModel, frozen GraphDef and `keras_metadata.pb` inspection.
//!
//! Field numbers follow tensorflow/core/protobuf/saved_model.proto and
//! meta_graph.proto (SavedModel: saved_model_schema_version=1,
//! meta_graphs=2; MetaGraphDef: meta_info_def=1, graph_def=2), graph.proto
//! (GraphDef: node=1, library=2), function.proto (FunctionDefLibrary:
//! function=1; FunctionDef: signature=1 (OpDef name=1), node_def=3),
//! node_def.proto (NodeDef: name=1, op=2, input=3, device=4, attr=5 as
//! map entries key=1/value=2) and attr_value.proto (AttrValue: list=1,
//! s=2, func=10; ListValue: s=2). `keras_metadata.pb` is
//! SavedMetadata{nodes=1 SavedObject{node_id=2, node_path=3, identifier=4,
//! metadata=5}} from tf_keras `saved_metadata.proto`; each metadata string is
//! a layer's JSON and goes through [`crate::keras::analyze`].
//!
//! Op classification draws on protectai/modelscan (`settings.py`:
//! `unsafe_tf_operators` lists ReadFile and WriteFile as high), the
//! TensorAbuse study of file/network-capable TF APIs (ZJU-SEC/TensorAbuse)
//! and TensorFlow's own `saved_model_cli scan` deny-list (PyFunc,
//! PyFuncStateless, EagerPyFunc...). SaveV2/RestoreV2/MergeV2Checkpoints
//! belong to every SavedModel's saver functions and are only reported when
//! they sit outside functions whose names mark them as save/restore code.

use aisec_core::{Confidence, Location, Severity};

use crate::pb::{self, Source, Span, SpanValue as At, Value};
use crate::rules::*;
use crate::{clip, FormatReport};

const MAX_NODES: usize = 5_000_000;

/// Cheap sniff for `saved_model.pb`: field 1 varint (schema version) and/or
/// field 2 meta graphs whose first field is a known MetaGraphDef field.
pub fn looks_like_saved_model(pb_bytes: &[u8]) -> bool {
    looks_like_saved_model_in(&Source::whole(pb_bytes))
}

/// Most top-level fields [`looks_like_saved_model`] reads.
const DETECT_FIELDS: usize = 64;

/// [`looks_like_saved_model`] over the bytes `src` holds (a hole ends a
/// message early; see [`plan_metadata`]).
pub fn looks_like_saved_model_in(src: &Source<'_>) -> bool {
    let mut seen_meta = false;
    for (i, f) in src.fields(src.all()).enumerate() {
        if i >= DETECT_FIELDS {
            return false;
        }
        match f {
            Ok((1, At::Varint(_))) => {}
            Ok((2, At::Bytes(_))) => seen_meta = true,
            _ => return false,
        }
    }
    seen_meta
        && src.fields(src.all()).flatten().any(|(n, v)| match v {
            At::Bytes(mg) if n == 2 => src
                .fields(mg)
                .next()
                .is_some_and(|f| matches!(f, Ok((1..=8, At::Bytes(_))))),
            _ => false,
        })
}

/// Scans a `saved_model.pb`.
pub fn scan_saved_model(pb_bytes: &[u8], loc: &Location) -> FormatReport {
    scan_saved_model_in(&Source::whole(pb_bytes), loc)
}

fn scan_saved_model_in(src: &Source<'_>, loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    let mut s = Scan::new(loc, &mut r);
    let res = (|| -> Result<(), String> {
        let mut metas = 0;
        for f in src.fields(src.all()) {
            match f.map_err(|e| format!("SavedModel: {e}"))? {
                (1, At::Varint(v)) => s.r.note(format!("saved_model_schema_version {v}")),
                (2, At::Bytes(mg)) => {
                    metas += 1;
                    for g in src.fields(mg) {
                        if let (2, At::Bytes(gd)) = g.map_err(|e| format!("MetaGraphDef: {e}"))? {
                            s.graph(src, gd)?;
                        }
                    }
                }
                _ => {}
            }
        }
        s.r.note(format!("{metas} meta graph(s), {} nodes", s.nodes));
        Ok(())
    })();
    if let Err(e) = res {
        r.set_malformed(e);
    }
    r
}

/// Scans a frozen `GraphDef` (`.pb`).
pub fn scan_graph_def(pb_bytes: &[u8], loc: &Location) -> FormatReport {
    scan_graph_def_in(&Source::whole(pb_bytes), loc)
}

fn scan_graph_def_in(src: &Source<'_>, loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    let mut s = Scan::new(loc, &mut r);
    let res = s.graph(src, src.all());
    let nodes = s.nodes;
    if let Err(e) = res {
        r.set_malformed(e);
    }
    r.note(format!("GraphDef with {nodes} nodes"));
    r
}

/// What a remote fetch plan learns from one walk over the bytes it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataPlan {
    /// The ranges the walks lacked. Empty: they read only held bytes, and
    /// the scan's walks over the same bytes read the same.
    pub missing: pb::Misses,
    /// [`looks_like_saved_model_in`] over the held bytes (which parser the
    /// scanner picks for a `.pb` file); the original's answer when
    /// `missing` is empty.
    pub saved_model: bool,
}

/// Walks a binary TensorFlow `.pb` (not `keras_metadata.pb`) over the
/// bytes `src` holds, as the scanner does: the SavedModel sniff, then the
/// SavedModel or GraphDef walk it picks, and says what they lacked. A
/// remote plan fetches the misses and walks again; when nothing is
/// missing, the scanner over a file holding those bytes (anything, zeros,
/// elsewhere) gives the result it gives on the original. Payloads the
/// walks step over (constant tensors' `tensor_content` in `value` attrs,
/// node inputs, devices, non-string attr values) are never asked for.
pub fn plan_metadata(src: &Source<'_>) -> MetadataPlan {
    let saved_model = looks_like_saved_model_in(src);
    let loc = Location::path("plan");
    let _ = if saved_model {
        scan_saved_model_in(src, &loc)
    } else {
        scan_graph_def_in(src, &loc)
    };
    MetadataPlan {
        missing: src.misses(),
        saved_model,
    }
}

/// Largest `.pbtxt` parsed (text is several times larger than the binary).
pub const MAX_PBTXT_BYTES: usize = 256 * 1024 * 1024;

/// Scans a text-format `saved_model.pbtxt` or GraphDef `.pbtxt` with the
/// same op rules as the binary forms. TensorFlow's loader reads
/// `saved_model.pbtxt` when `saved_model.pb` is absent
/// (tensorflow/python/saved_model/loader_impl.py `parse_saved_model`).
///
/// Nodes are found structurally, so the layout does not have to be the
/// one TensorFlow writes: every message with an `op` field is a NodeDef,
/// and its function is the nearest enclosing message whose `signature`
/// carries a `name` (a FunctionDef).
pub fn scan_saved_model_text(text: &[u8], loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    if text.len() > MAX_PBTXT_BYTES {
        r.set_malformed(format!(
            "text-format protobuf of {} bytes exceeds the {MAX_PBTXT_BYTES}-byte limit",
            text.len()
        ));
        return r;
    }
    let tree = match crate::pbtxt::parse(text) {
        Ok(t) => t,
        Err(e) => {
            r.set_malformed(e.to_string());
            return r;
        }
    };
    let mut s = Scan::new(loc, &mut r);
    s.text_walk(&tree, None, 0);
    let n = s.nodes_judged;
    r.note(format!("text-format protobuf with {n} nodes"));
    r
}

/// Scans a `keras_metadata.pb` (SavedMetadata) by analysing each layer's JSON.
pub fn scan_keras_metadata(pb_bytes: &[u8], loc: &Location) -> FormatReport {
    let mut r = FormatReport::default();
    let mut n = 0usize;
    for f in pb::fields(pb_bytes) {
        match f {
            Err(e) => {
                r.set_malformed(format!("SavedMetadata: {e}"));
                break;
            }
            Ok((1, Value::Bytes(obj))) => {
                n += 1;
                for g in pb::fields(obj) {
                    match g {
                        Ok((5, Value::Bytes(meta))) => {
                            let what = format!("keras_metadata entry {n}");
                            if let Err(e) = crate::keras::analyze_bytes(
                                meta,
                                loc,
                                crate::keras::Origin::SavedModelMetadata,
                                &what,
                                &mut r,
                            ) {
                                r.push(
                                    TF_UNKNOWN_PB
                                        .finding(loc.clone(), format!("entry {n}: {e}"))
                                        .confidence(Confidence::Medium),
                                );
                            }
                        }
                        Err(e) => {
                            r.set_malformed(format!("SavedObject: {e}"));
                            break;
                        }
                        _ => {}
                    }
                }
            }
            Ok(_) => {}
        }
    }
    r.note(format!("keras_metadata.pb: {n} objects"));
    r
}

struct Scan<'a> {
    loc: &'a Location,
    r: &'a mut FormatReport,
    nodes: usize,
    nodes_judged: usize,
    reported: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Class {
    PyFunc,
    Read,
    Write,
    Ckpt,
    Debug,
    Memmap,
    PrintV2,
}

fn classify(op: &str) -> Option<Class> {
    Some(match op {
        "PyFunc" | "PyFuncStateless" | "EagerPyFunc" => Class::PyFunc,
        "ReadFile"
        | "MatchingFiles"
        | "MatchingFilesDataset"
        | "ExperimentalMatchingFilesDataset"
        | "TextLineDataset"
        | "TextLineDatasetV2"
        | "TFRecordDataset"
        | "TFRecordDatasetV2"
        | "FixedLengthRecordDataset"
        | "FixedLengthRecordDatasetV2"
        | "ExperimentalCSVDataset"
        | "CSVDataset"
        | "CSVDatasetV2"
        | "LoadDataset"
        | "ExperimentalLMDBDataset"
        | "LMDBDataset"
        | "WholeFileReader"
        | "WholeFileReaderV2"
        | "TextLineReader"
        | "TextLineReaderV2"
        | "TFRecordReader"
        | "TFRecordReaderV2"
        | "FixedLengthRecordReader"
        | "FixedLengthRecordReaderV2"
        | "LMDBReader"
        | "DecodeCSV"
        | "ParseTensor"
        | "ReaderReadV2"
        | "ReaderRead"
        | "FileSystemSetConfiguration"
        | "ExperimentalSqlDataset"
        | "SqlDataset" => {
            if op == "DecodeCSV" || op == "ParseTensor" {
                return None;
            }
            Class::Read
        }
        "WriteFile"
        | "SaveDataset"
        | "SaveDatasetV2"
        | "WriteSummary"
        | "WriteRawProtoSummary"
        | "CreateSummaryFileWriter"
        | "WriteTextSummary"
        | "WriteScalarSummary"
        | "WriteAudioSummary"
        | "WriteImageSummary"
        | "WriteHistogramSummary"
        | "WriteGraphSummary"
        | "DatasetToTFRecord"
        | "ExperimentalDatasetToTFRecord"
        | "SaveSlices"
        | "Save" => Class::Write,
        "SaveV2" | "RestoreV2" | "Restore" | "RestoreSlice" | "MergeV2Checkpoints"
        | "ShardedFilename" => Class::Ckpt,
        "DebugIdentity"
        | "DebugIdentityV2"
        | "DebugIdentityV3"
        | "DebugNanCount"
        | "DebugNumericSummary"
        | "DebugNumericSummaryV2"
        | "Copy"
        | "CopyHost" => {
            if op == "Copy" || op == "CopyHost" {
                return None;
            }
            Class::Debug
        }
        "ImmutableConst" => Class::Memmap,
        "PrintV2" => Class::PrintV2,
        _ => return None,
    })
}

fn is_saver_fn(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.contains("save") || l.contains("restore") || l.contains("checkpoint")
}

impl<'a> Scan<'a> {
    fn new(loc: &'a Location, r: &'a mut FormatReport) -> Self {
        Scan {
            loc,
            r,
            nodes: 0,
            nodes_judged: 0,
            reported: Vec::new(),
        }
    }

    fn graph(&mut self, src: &Source<'_>, gd: Span) -> Result<(), String> {
        for f in src.fields(gd) {
            match f.map_err(|e| format!("GraphDef: {e}"))? {
                (1, At::Bytes(n)) => self.node(src, n, None)?,
                (2, At::Bytes(lib)) => {
                    for g in src.fields(lib) {
                        if let (1, At::Bytes(fd)) =
                            g.map_err(|e| format!("FunctionDefLibrary: {e}"))?
                        {
                            self.function(src, fd)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn function(&mut self, src: &Source<'_>, fd: Span) -> Result<(), String> {
        let mut name = String::new();
        // The signature usually comes first; collect nodes then classify.
        let mut nodes = Vec::new();
        for f in src.fields(fd) {
            match f.map_err(|e| format!("FunctionDef: {e}"))? {
                (1, At::Bytes(sig)) => {
                    for g in src.fields(sig) {
                        if let (1, At::Bytes(n)) = g.map_err(|e| format!("OpDef: {e}"))? {
                            name = src.text(n);
                        }
                    }
                }
                (3, At::Bytes(n)) => nodes.push(n),
                _ => {}
            }
        }
        for n in nodes {
            self.node(src, n, Some(&name))?;
        }
        Ok(())
    }

    fn node(&mut self, src: &Source<'_>, nd: Span, func: Option<&str>) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err("too many nodes".into());
        }
        let (mut name, mut op) = (String::new(), String::new());
        let mut attrs: Vec<(String, Vec<String>)> = Vec::new();
        for f in src.fields(nd) {
            match f.map_err(|e| format!("NodeDef: {e}"))? {
                (1, At::Bytes(b)) => name = src.text(b),
                (2, At::Bytes(b)) => op = src.text(b),
                (5, At::Bytes(entry)) => {
                    let (mut k, mut strs) = (String::new(), Vec::new());
                    for g in src.fields(entry) {
                        match g.map_err(|e| format!("NodeDef.attr: {e}"))? {
                            (1, At::Bytes(b)) => k = src.text(b),
                            (2, At::Bytes(av)) => strs = attr_strings(src, av),
                            _ => {}
                        }
                    }
                    if attrs.len() < 64 {
                        attrs.push((k, strs));
                    }
                }
                _ => {}
            }
        }
        self.judge(&name, &op, &attrs, func);
        Ok(())
    }

    /// Walks a text-format tree: messages with `op` are nodes.
    fn text_walk(&mut self, m: &crate::pbtxt::TextValue, func: Option<&str>, depth: usize) {
        use crate::pbtxt::TextValue;
        if depth > crate::pbtxt::MAX_DEPTH {
            return;
        }
        // A FunctionDef: its signature names the function of its nodes.
        let own = m.messages("signature").find_map(|sig| sig.scalar("name"));
        let func = own.as_deref().or(func);
        if let Some(op) = m.scalar("op") {
            let name = m.scalar("name").unwrap_or_default();
            let mut attrs: Vec<(String, Vec<String>)> = Vec::new();
            for a in m.messages("attr").take(64) {
                let key = a.scalar("key").unwrap_or_default();
                let mut strs = Vec::new();
                for v in a.messages("value") {
                    if let Some(s) = v.scalar("s") {
                        strs.push(s);
                    }
                    for l in v.messages("list") {
                        for (k, x) in l.fields() {
                            if let (true, TextValue::Scalar(b)) = (k == "s", x) {
                                if strs.len() < 16 {
                                    strs.push(String::from_utf8_lossy(b).into_owned());
                                }
                            }
                        }
                    }
                }
                attrs.push((key, strs));
            }
            self.judge(&name, &op, &attrs, func);
        }
        for (_, v) in m.fields() {
            if let TextValue::Message(_) = v {
                self.text_walk(v, func, depth + 1);
            }
        }
    }

    /// Applies the op rules to one node, however it was encoded (binary
    /// protobuf or text format).
    fn judge(&mut self, name: &str, op: &str, attrs: &[(String, Vec<String>)], func: Option<&str>) {
        self.nodes_judged += 1;
        let Some(class) = classify(op) else {
            return;
        };
        let attr = |key: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.join(", "))
                .unwrap_or_default()
        };
        let wher = match func {
            Some(f) => format!("function '{}'", clip(f, 100)),
            None => "the main graph".to_string(),
        };
        let what = format!("op {op} (node '{}') in {wher}", clip(name, 100));
        let finding = match class {
            Class::PyFunc => {
                let token = attr("token");
                Some(TF_PYFUNC.finding(
                    self.loc.clone(),
                    format!(
                        "{what}{}",
                        if token.is_empty() {
                            String::new()
                        } else {
                            format!(", callback token '{}'", clip(&token, 80))
                        }
                    ),
                ))
            }
            Class::Read => Some(TF_FILE_READ.finding(self.loc.clone(), what)),
            Class::Write => Some(TF_FILE_WRITE.finding(self.loc.clone(), what)),
            Class::Ckpt => {
                if func.is_some_and(is_saver_fn) || func.is_none() {
                    // TF1 saver graphs keep SaveV2/RestoreV2 in the main graph under save/.
                    let benign_main = func.is_none() && (is_saver_fn(name) || name.is_empty());
                    if func.is_some() || benign_main {
                        self.r.note(format!(
                            "checkpoint op {op} in saver code ({})",
                            clip(name, 80)
                        ));
                        None
                    } else {
                        Some(TF_CKPT_IO.finding(self.loc.clone(), what))
                    }
                } else {
                    Some(TF_CKPT_IO.finding(self.loc.clone(), what))
                }
            }
            Class::Debug => {
                let urls = attr("debug_urls");
                Some(TF_DEBUG_OP.finding(
                    self.loc.clone(),
                    format!(
                        "{what}{}",
                        if urls.is_empty() {
                            String::new()
                        } else {
                            format!(", debug_urls: {}", clip(&urls, 200))
                        }
                    ),
                ))
            }
            Class::Memmap => Some(TF_MEMMAP.finding(
                self.loc.clone(),
                format!(
                    "{what}, memory_region_name '{}'",
                    clip(&attr("memory_region_name"), 200)
                ),
            )),
            Class::PrintV2 => {
                let stream = attr("output_stream");
                if stream.is_empty() || stream.starts_with("log(") || stream.starts_with("std") {
                    None
                } else {
                    Some(TF_FILE_WRITE.finding(
                        self.loc.clone(),
                        format!("{what} prints to '{}'", clip(&stream, 200)),
                    ))
                }
            }
        };
        if let Some(f) = finding {
            let key = (op.to_string(), func.unwrap_or("").to_string());
            if self.reported.contains(&key) {
                return;
            }
            if self.reported.len() < 1000 {
                self.reported.push(key);
            }
            let f = if class == Class::Read
                && matches!(
                    op,
                    "TFRecordDataset"
                        | "TFRecordDatasetV2"
                        | "TextLineDataset"
                        | "TextLineDatasetV2"
                ) {
                f.severity(Severity::Medium).confidence(Confidence::Medium)
            } else {
                f
            };
            self.r.push(f);
        }
    }
}

/// Extracts the string values of an AttrValue (`s` or `list.s`).
fn attr_strings(src: &Source<'_>, av: Span) -> Vec<String> {
    let mut out = Vec::new();
    for f in src.fields(av).flatten() {
        match f {
            (2, At::Bytes(s)) => out.push(src.text(s)),
            (1, At::Bytes(list)) => {
                for g in src.fields(list).flatten() {
                    if let (2, At::Bytes(s)) = g {
                        if out.len() < 16 {
                            out.push(src.text(s));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![((field << 3) | 2) as u8];
        let mut n = body.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v.push(b);
                break;
            }
            v.push(b | 0x80);
        }
        v.extend_from_slice(body);
        v
    }

    fn node(name: &str, op: &str) -> Vec<u8> {
        let mut n = ld(1, name.as_bytes());
        n.extend(ld(2, op.as_bytes()));
        n
    }

    #[test]
    fn pyfunc_in_main_graph_is_critical() {
        let gd = ld(1, &node("cb", "PyFunc"));
        let sm = [vec![0x08, 0x01], ld(2, &ld(2, &gd))].concat();
        assert!(looks_like_saved_model(&sm));
        let r = scan_saved_model(&sm, &Location::path("saved_model.pb"));
        assert!(r.malformed.is_none());
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].severity, Severity::Critical);
    }

    #[test]
    fn saver_ops_in_saver_function_are_quiet() {
        let sig = ld(1, b"__inference__traced_save_123");
        let fd = [ld(1, &sig), ld(3, &node("SaveV2", "SaveV2"))].concat();
        let gd = ld(2, &ld(1, &fd));
        let r = scan_graph_def(&gd, &Location::path("g.pb"));
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        let sig = ld(1, b"__inference_call_7");
        let fd = [ld(1, &sig), ld(3, &node("r", "RestoreV2"))].concat();
        let r = scan_graph_def(&ld(2, &ld(1, &fd)), &Location::path("g.pb"));
        assert_eq!(r.findings[0].rule_id, "AISEC-TF-004");
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(p).unwrap()
    }

    const PB_FIXTURES: &[&str] = &[
        "tf_benign_saved_model.pb",
        "tf_frozen_graph.pb",
        "tf_pyfunc_saved_model.pb",
        "tf_readfile_saved_model.pb",
    ];

    /// A `Const` node whose `value` holds `n` bytes of tensor content.
    fn constant(name: &str, n: usize) -> Vec<u8> {
        let content: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        let value = ld(2, &ld(8, &ld(4, &content)));
        let mut attr = ld(1, b"value");
        attr.extend(value);
        let mut nd = node(name, "Const");
        nd.extend(ld(5, &attr));
        ld(1, &nd)
    }

    /// `d` (a SavedModel or a GraphDef) with `Const` nodes of `sizes`
    /// bytes added before the nodes of its (first meta graph's) graph.
    fn grow(d: &[u8], sizes: &[usize]) -> Vec<u8> {
        let consts: Vec<u8> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, &n)| constant(&format!("w{i}"), n))
            .collect();
        if !looks_like_saved_model(d) {
            return [consts, d.to_vec()].concat();
        }
        let mut out = Vec::new();
        for f in pb::fields(d).with_raw() {
            let (n, v, raw) = f.unwrap();
            match (n, v) {
                (2, Value::Bytes(mg)) => {
                    let mut m = Vec::new();
                    for g in pb::fields(mg).with_raw() {
                        let (k, w, raw) = g.unwrap();
                        match (k, w) {
                            (2, Value::Bytes(gd)) => {
                                m.extend(ld(2, &[consts.clone(), gd.to_vec()].concat()))
                            }
                            _ => m.extend(raw),
                        }
                    }
                    out.extend(ld(2, &m));
                }
                _ => out.extend(raw),
            }
        }
        out
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

    /// The image a reader following [`plan_metadata`] scans (zeros where
    /// it fetched nothing) and the bytes it held.
    fn fetched_image(d: &[u8], head: u64, block: u64) -> (Vec<u8>, u64) {
        let size = d.len() as u64;
        let mut held = vec![(0, head.min(size))];
        for walks in 0.. {
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
                assert!(!held.iter().any(|h| h.0 <= w.0 && w.1 <= h.1), "{w:?}");
            }
            held = merge([held, want].concat());
        }
        let mut img = vec![0u8; d.len()];
        for &(s, e) in &held {
            img[s as usize..e as usize].copy_from_slice(&d[s as usize..e as usize]);
        }
        (img, held.iter().map(|h| h.1 - h.0).sum())
    }

    fn assert_scans_alike(d: &[u8], what: &str) -> u64 {
        let loc = Location::path("x.pb");
        let mut most = 0;
        for head in [0, 64, 16 << 10] {
            for block in [1, 4 << 10] {
                let (img, n) = fetched_image(d, head, block);
                let w = format!("{what}, head {head}, block {block}");
                assert_eq!(
                    looks_like_saved_model(&img),
                    looks_like_saved_model(d),
                    "{w}"
                );
                // The parser the scanner picks for a `.pb` file.
                let scan = if looks_like_saved_model(d) {
                    scan_saved_model
                } else {
                    scan_graph_def
                };
                assert_eq!(scan(&img, &loc), scan(d, &loc), "{w}");
                most = most.max(n);
            }
        }
        most
    }

    #[test]
    fn a_metadata_fetch_scans_like_the_whole_file() {
        for f in PB_FIXTURES {
            let d = fixture(f);
            assert_scans_alike(&d, f);
            let g = grow(&d, &[1 << 20, 64, 2 << 20]);
            assert_eq!(looks_like_saved_model(&g), looks_like_saved_model(&d));
            let n = assert_scans_alike(&g, &format!("{f} grown"));
            assert!(n < 32 << 10, "{f}: {n}");
        }
    }

    #[test]
    fn hostile_pb_files_scan_alike_from_a_metadata_fetch() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for f in PB_FIXTURES {
            let base = grow(&fixture(f), &[100 << 10, 64]);
            for cut in [1, 7, 60, base.len() / 2, base.len() - 1] {
                assert_scans_alike(&base[..cut], &format!("{f} cut at {cut}"));
            }
            for round in 0..30 {
                let mut d = base.clone();
                for _ in 0..1 + round % 3 {
                    let at = (rnd() as usize) % d.len().min(400);
                    d[at] = [0xff, 0x7f, rnd() as u8][(rnd() % 3) as usize];
                }
                assert_scans_alike(&d, &format!("{f} mutation {round}"));
            }
        }
    }
}
