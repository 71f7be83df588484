//! `aisec-core`: the bottom of the aisec workspace.
//!
//! Every capability crate (scan, model, attack, probe, guard) produces
//! [`Finding`]s that name a [`Rule`], a [`Severity`], a [`Confidence`], a
//! [`Location`] and the MITRE ATLAS / OWASP LLM identifiers of the threat.
//! A [`Report`] gathers findings, the rules they cite and any errors, and the
//! [`render`] module (one file per format) turns it into text, JSON, SARIF
//! 2.1.0 (typed structs), HTML or an ATLAS Navigator layer; its
//! [`escape_terminal`](render::escape_terminal) is the one function every
//! text output uses to print untrusted names. [`run`] is the contract
//! long-running work shares with the CLI: a cancel flag and a progress sink.
//!
//! Three small, pure, bounded readers live here because crates that do
//! not depend on each other need them: [`protobuf`] (the wire format, read
//! by `aisec-formats` when scanning and by `aisec-model` when loading ONNX),
//! [`npy`] (`.npy` headers, read by `aisec-pickle` and `aisec-model`) and
//! [`json`] (untrusted JSON within byte, depth and element bounds, read by
//! the scan parsers and the guard). Nothing here does I/O, knows about
//! models or speaks HTTP.

pub mod finding;
pub mod json;
pub mod npy;
pub mod protobuf;
pub mod render;
pub mod report;
pub mod rule;
pub mod run;
pub mod taxonomy;

pub use finding::{Confidence, Finding, Location, Severity};
pub use report::{ExitStatus, Report, ReportError, Summary, ADDITIVE_DATA_KEYS, FLAG_DATA_KEYS};
pub use rule::Rule;
pub use run::{Cancel, NoProgress, Progress, RunContext};
pub use taxonomy::{atlas, owasp, AtlasTechnique, OwaspLlm};
