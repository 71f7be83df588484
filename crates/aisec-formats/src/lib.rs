//! `aisec-formats`: leaf parsers for the non-pickle model formats that
//! `aisec scan` inspects.
//!
//! Every parser is a pure function over a byte slice that the scanner driver
//! (`aisec-scan`) has already read or memory-mapped; containers (zip, tar,
//! compressed streams) are opened by the driver, which hands this crate the
//! bytes of the relevant member. Nothing here executes, imports or
//! deserialises the artifact into live objects: the parsers are hand-written
//! (no protoc, no HDF5 C library), every loop, allocation and recursion is
//! bounded, and hostile input yields a [`FormatReport`] with `malformed` set,
//! never a panic.
//!
//! Formats and what is looked for:
//! - [`h5`]: HDF5 / legacy Keras `.h5` files: a minimal read-only HDF5 reader
//!   (superblocks v0–v3, object headers v1/v2, attributes, global heap
//!   strings, v1 symbol-table and v2 link-message groups) that extracts the
//!   Keras `model_config` root attribute for [`keras`] analysis, plus HDF5
//!   external links and external raw-data files.
//! - [`keras`]: Keras model configuration JSON (Keras 2 `model_config`, Keras 3
//!   `config.json`, `keras_metadata.pb` entries): `Lambda` layers carrying
//!   marshalled Python bytecode (CVE-2024-3660), function and module
//!   references that load arbitrary callables (CVE-2025-1550, CVE-2025-9906),
//!   custom objects and dangerous `TFOpLambda` calls.
//! - [`savedmodel`]: TensorFlow SavedModel / frozen GraphDef protobufs: Python
//!   callback ops, file-system ops, debug ops that write to URLs, and so on;
//!   plus `keras_metadata.pb`, whose per-layer JSON goes through [`keras`].
//! - [`onnx`]: ONNX `ModelProto`: external-data path traversal, custom operator
//!   domains, model-local functions, suspicious metadata.
//! - [`gguf`]: GGUF headers and metadata: Jinja chat-template server-side
//!   template injection (CVE-2024-34359) and malformed counts/offsets.
//! - [`safetensors`]: header validation (bounds, dtypes, shapes, overlaps, gaps).
//!
//! [`pb`] is `aisec_core::protobuf`, the workspace's one protobuf
//! wire-format reader (re-exported under its old name).

use aisec_core::Finding;

pub use aisec_core::protobuf as pb;

pub mod gguf;
pub mod h5;
pub mod jinja;
pub mod keras;
pub mod onnx;
pub mod pbtxt;
pub mod rules;
pub mod safetensors;
pub mod savedmodel;

pub use rules::RULES;

/// What one leaf parser found in one file or archive member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormatReport {
    /// Security findings.
    pub findings: Vec<Finding>,
    /// Set when the input could not be parsed completely; the text says where
    /// and why. Findings made before the problem are still reported.
    pub malformed: Option<String>,
    /// Informational notes (format version, producer, parts not inspected).
    pub notes: Vec<String>,
    /// Artifacts embedded in this one that a loader deserialises (a base64
    /// torch checkpoint inside a Keras `TorchModuleWrapper`): the driver
    /// scans them as artifacts of their own.
    pub embedded: Vec<Embedded>,
}

/// An artifact carried inside another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Embedded {
    /// Where it sits, for the finding's member path.
    pub name: String,
    /// Its decoded bytes.
    pub bytes: Vec<u8>,
}

/// Most embedded artifacts kept per report, and their total size.
pub const MAX_EMBEDDED: usize = 16;
/// Total bytes of embedded artifacts kept per report.
pub const MAX_EMBEDDED_BYTES: usize = 256 << 20;

impl FormatReport {
    /// Records a parse failure, keeping the first one.
    pub(crate) fn set_malformed(&mut self, why: impl Into<String>) {
        if self.malformed.is_none() {
            self.malformed = Some(why.into());
        }
    }

    /// Adds a note, capping the number of notes.
    pub(crate) fn note(&mut self, note: impl Into<String>) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note.into());
        }
    }

    /// Keeps an embedded artifact for the driver (bounded in count and size).
    pub(crate) fn embed(&mut self, name: String, bytes: Vec<u8>) {
        let used: usize = self.embedded.iter().map(|e| e.bytes.len()).sum();
        if self.embedded.len() < MAX_EMBEDDED && used + bytes.len() <= MAX_EMBEDDED_BYTES {
            self.embedded.push(Embedded { name, bytes });
        } else {
            self.note(format!("{name}: not scanned (embedded artifact limit)"));
        }
    }

    /// Adds a finding, capping the number of findings per report.
    pub(crate) fn push(&mut self, finding: Finding) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding);
        }
    }

    /// Appends another report's findings and notes (and its malformed text
    /// when this one has none).
    pub fn merge(&mut self, other: FormatReport) {
        for f in other.findings {
            self.push(f);
        }
        for n in other.notes {
            self.note(n);
        }
        for e in other.embedded {
            self.embed(e.name, e.bytes);
        }
        if let Some(m) = other.malformed {
            self.set_malformed(m);
        }
    }

    /// The highest severity among the findings, if any.
    pub fn max_severity(&self) -> Option<aisec_core::Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Most findings one report keeps (hostile files could otherwise produce
/// millions).
pub const MAX_FINDINGS: usize = 500;
/// Most notes one report keeps.
pub const MAX_NOTES: usize = 200;

/// Shortens untrusted text for evidence strings: at most `max` characters,
/// control characters escaped.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
