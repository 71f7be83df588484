//! `aisec-core`: the bottom of the aisec workspace.
//!
//! Every capability crate (scan, model, attack, probe, guard) produces
//! [`Finding`]s that name a [`Rule`], a [`Severity`], a [`Confidence`], a
//! [`Location`] and the MITRE ATLAS / OWASP LLM identifiers of the threat.
//! A [`Report`] gathers findings, the rules they cite and any errors, and the
//! [`render`] module turns it into text, JSON, SARIF 2.1.0, HTML or an ATLAS
//! Navigator layer. [`run`] is the contract long-running work shares with
//! the CLI: a cancel flag and a progress sink. [`json`] reads untrusted
//! JSON within byte, depth and element bounds. Nothing here knows about file
//! formats, models or HTTP.

pub mod finding;
pub mod json;
pub mod render;
pub mod report;
pub mod rule;
pub mod run;
pub mod taxonomy;

pub use finding::{Confidence, Finding, Location, Severity};
pub use report::{ExitStatus, Report, ReportError, Summary};
pub use rule::Rule;
pub use run::{Cancel, NoProgress, Progress, RunContext};
pub use taxonomy::{atlas, owasp, AtlasTechnique, OwaspLlm};
