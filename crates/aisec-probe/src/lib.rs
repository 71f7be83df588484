//! `aisec-probe`: attacks LLM endpoints the way garak or PyRIT do, concurrently,
//! resumably, and with findings a security engineer can act on.
//!
//! What this crate owns:
//! - [`target`]: how a prompt reaches a model: OpenAI-compatible chat and
//!   completion APIs, or a generic REST endpoint described by a JSON request
//!   template with a `{{prompt}}` slot and a response path.
//! - [`harness`]: the runner: a semaphore for concurrency, a token-bucket
//!   rate limit, retries with exponential back-off and jitter (honouring
//!   `Retry-After`), per-request timeouts, a response size cap, and a JSONL
//!   journal that lets an interrupted run resume.
//! - [`probes`] and [`buffs`]: the attack prompts (written for aisec) in
//!   families mapped to OWASP LLM Top 10 2025 and MITRE ATLAS, and the
//!   transforms (encodings, unicode tricks, wrappers) that compose with them.
//! - [`detect`]: detectors that judge each response: canary matching after
//!   decoding, anchored refusal detection, output-handling regexes, package
//!   hallucination, and an optional judge model whose unparseable answers are
//!   counted as "could not score", never as pass or fail.
//! - [`stats`] and [`summary`]: per-probe attack success rates with Wilson 95%
//!   intervals and the [`aisec_core::Report`] built from them.
//! - [`demo`]: a deliberately weak in-process chat app for `aisec demo` and tests.
//! - [`error`]: [`ProbeError`], what every fallible public function returns.
//!
//! Ideas (not text) come from garak's probe/detector/buff split
//! (<https://github.com/NVIDIA/garak>), PyRIT's converters and scorers
//! (<https://github.com/Azure/PyRIT>) and the Crescendo multi-turn attack
//! (Russinovich et al., 2024, arXiv:2404.01833).

pub mod buffs;
pub mod config;
pub mod demo;
pub mod detect;
pub mod error;
pub mod harness;
pub mod probes;
pub mod rules;
pub mod stats;
pub mod summary;
pub mod target;

pub use error::ProbeError;
pub use harness::{run_probes, run_probes_with, Attempt, AttemptRecord, RunConfig, RunOutcome};
pub use probes::{Family, Probe};
pub use rules::RULES;
pub use target::{Target, TargetKind};
