//! One module per subcommand.

pub mod assess;
pub mod attack;
pub mod defend;
pub mod demo;
pub mod explain;
pub mod extraction;
pub mod guard;
pub mod harden;
pub mod inversion;

pub mod membership;
pub mod poison;
pub mod probe;
pub mod provenance;
pub mod remote;
pub mod rules;
pub mod scan;
pub mod target;
pub mod train;

/// `aisec probe` with the shared report options.
#[derive(Debug, clap::Args)]
pub struct ProbeCommand {
    #[command(flatten)]
    pub probe: probe::ProbeArgs,

    #[command(flatten)]
    pub output: crate::output::OutputArgs,
}

/// An attempt as a JSON Lines record: which probe, whether it hit, the
/// detector's verdict or the error (the conversation stays in
/// `--transcripts`).
pub fn attempt_line(r: &aisec_probe::harness::AttemptRecord) -> serde_json::Value {
    serde_json::json!({
        "type": "attempt",
        "probe": r.probe,
        "family": r.family,
        "key": r.key,
        "repetition": r.repetition,
        "hit": r.is_hit(),
        "verdict": r.verdict,
        "error": r.error,
        "latency_ms": r.latency_ms,
    })
}
