//! `aisec-guard`: a runtime gateway teams put in front of a model server.
//!
//! It owns the reverse proxy for OpenAI-compatible APIs (chat and text
//! completions, streaming included) and KServe v2 inference
//! ([`proxy`]), the TOML policy and its validation ([`policy`]), the
//! input and output scanners ([`scan`]) with their unicode normalisation
//! ([`text`]) and the in-process learned injection classifier
//! ([`classifier`]) with its sentence-encoder second stage (built in, on by default)
//! ([`stage2`], [`wordpiece`]), screening of tool and retrieved content for indirect
//! injection ([`scan::Pipeline::scan_indirect`]), rendering-exfiltration payloads
//! planted in requests and tool content ([`payload`]), cross-request behaviour
//! monitoring ([`monitor`]), drift, out-of-distribution and adversarial-input
//! monitoring of classic models run by `aisec-model` ([`modelmon`]),
//! Prometheus metrics ([`metrics`]), the JSON audit log ([`audit`]), and the
//! `aisec demo` session ([`demo`]); starting, stopping and the demo fail with
//! a [`GuardError`] ([`error`]). Every decision becomes an [`aisec_core::Finding`] of one of
//! the [`RULES`], carrying MITRE ATLAS and OWASP LLM ids.

pub mod audit;
pub mod classifier;
pub mod decode;
pub mod demo;
pub mod deobf;
pub mod error;
pub mod metrics;
pub mod modelmon;
pub mod monitor;
pub mod payload;
pub mod policy;
pub mod proxy;
pub mod rules;
pub mod scan;
pub mod serve;
pub mod stage2;
pub mod structured;
pub mod template;
pub mod text;
pub mod upstream;
pub mod wordpiece;

pub use demo::run_demo;
pub use error::GuardError;
pub use policy::{Action, Policy, PolicyError};
pub use proxy::{start, GuardState, RunningGuard, StartOptions};
pub use rules::RULES;
pub use scan::Pipeline;

/// Installs a JSON `tracing` subscriber on stderr (the audit log), filtered
/// by `AISEC_LOG` (as every other aisec command), else `RUST_LOG`, else
/// `info`. Returns false if one was already installed.
pub fn init_json_logging() -> bool {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AISEC_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok()
}
