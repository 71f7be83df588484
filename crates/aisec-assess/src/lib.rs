//! `aisec-assess`: from a description of an ML system to a threat model and
//! a report with evidence per control.
//!
//! This crate owns issue 16: the system description format ([`system`]),
//! the threat model derived from it ([`threats`]: STRIDE categories crossed
//! with MITRE ATLAS techniques and OWASP LLM ids, each with the aisec check
//! that tests it), its OWASP Threat Dragon export and import
//! ([`threatdragon`]), threat statuses from measured results ([`status`]),
//! group fairness ([`fairness`]), compliance views ([`compliance`]: ATLAS, OWASP LLM Top 10, NIST AI RMF,
//! EU AI Act Article 15, ISO/IEC 42001), the resumable run state
//! ([`state`]), baselines ([`baseline`]) and the HTML report ([`html`]).
//! Running the checks is the CLI's job (`aisec assess`); this crate turns
//! their results into threat statuses and evidence.

pub mod baseline;
pub mod compliance;
pub mod fairness;
pub mod html;
mod rules;
pub mod state;
pub mod status;
pub mod svg;
pub mod system;
pub mod threatdragon;
pub mod threats;

#[cfg(test)]
mod jsonschema;

pub use rules::{ASSESS_FAIRNESS_GAP, ASSESS_THREAT_OPEN, ASSESS_THREAT_UNTESTED, RULES};
pub use status::{AssessedThreat, CheckResult, Outcome, Status};
pub use system::SystemDescription;
pub use threats::{plan, CheckKind, CheckRef, Threat, ThreatModel};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum AssessError {
    /// The description is malformed or inconsistent.
    #[error("invalid system description: {0}")]
    Description(String),
    /// A Threat Dragon model could not be read.
    #[error("invalid Threat Dragon model: {0}")]
    ThreatDragon(String),
    /// A state or baseline file is malformed.
    #[error("invalid {what}: {message}")]
    File {
        /// Which file.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// I/O on a file.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
