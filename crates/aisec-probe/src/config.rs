//! The probe configuration file (`aisec probe --config FILE`), like scan's
//! `aisec.toml`: the target, the probes and buffs, concurrency and the
//! budgets of a run, so a run can be repeated and reviewed.
//!
//! ```toml
//! [target]
//! url = "http://127.0.0.1:8000/v1"
//! api = "openai-chat"            # openai-chat, openai-completion or rest
//! model = "default"
//! api_key_env = "OPENAI_API_KEY" # the variable holding the key, never the key
//! headers = ["X-Team: red"]
//! # system = "You are ..."
//! # request_template = '{"q": "{{prompt}}"}'   # api = "rest"
//! # response_path = "answer"                   # api = "rest"
//!
//! [probes]
//! families = ["injection", "leak"] # or ["all"]
//! ids = []                         # single probes by id (aisec probe --list)
//! buffs = ["base64"]
//! repeats = 1
//! secrets = []
//!
//! [run]
//! concurrency = 8
//! rate = 5.0          # requests per second
//! retries = 3
//! seed = 1
//!
//! [budgets]
//! timeout = 60.0              # seconds per request
//! max_response_bytes = 1048576
//! max_tokens = 256
//! max_asr = 0.1               # fail when any probe's success rate is above this
//! ```
//! Unknown keys are errors, so a typo never silently changes a run.
//! Flags given on the command line win over the file.

use std::path::Path;

use serde::Deserialize;

use crate::error::ProbeError;

/// The largest configuration file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A parsed probe configuration; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// `[target]`
    #[serde(default)]
    pub target: TargetConfig,
    /// `[probes]`
    #[serde(default)]
    pub probes: ProbesConfig,
    /// `[run]`
    #[serde(default)]
    pub run: RunSection,
    /// `[budgets]`
    #[serde(default)]
    pub budgets: BudgetsConfig,
}

/// `[target]`: where prompts go and how.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Base URL (OpenAI APIs) or endpoint URL (REST).
    pub url: Option<String>,
    /// `openai-chat`, `openai-completion` or `rest`.
    pub api: Option<String>,
    /// Model name sent in OpenAI requests.
    pub model: Option<String>,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Extra headers, `Name: value`.
    pub headers: Option<Vec<String>>,
    /// System prompt.
    pub system: Option<String>,
    /// REST request template with a `{{prompt}}` slot.
    pub request_template: Option<String>,
    /// REST response path.
    pub response_path: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
}

/// `[probes]`: what is sent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesConfig {
    /// Probe families (`all` or names).
    pub families: Option<Vec<String>>,
    /// Single probes by id.
    pub ids: Option<Vec<String>>,
    /// Buffs applied to every probe.
    pub buffs: Option<Vec<String>>,
    /// Repetitions of every probe.
    pub repeats: Option<u32>,
    /// Secrets planted in the target, looked for in replies.
    pub secrets: Option<Vec<String>>,
}

/// `[run]`: how fast.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Requests in flight at most.
    pub concurrency: Option<usize>,
    /// Requests per second at most.
    pub rate: Option<f64>,
    /// Retries per request.
    pub retries: Option<u32>,
    /// Seed for canaries.
    pub seed: Option<u64>,
}

/// `[budgets]`: limits of a run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetsConfig {
    /// Seconds per request.
    pub timeout: Option<f64>,
    /// Largest response body read.
    pub max_response_bytes: Option<usize>,
    /// Largest completion asked for.
    pub max_tokens: Option<u32>,
    /// Attack success rate above which a probe fails the run.
    pub max_asr: Option<f64>,
}

impl ProbeConfig {
    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ProbeError> {
        toml::from_str(text).map_err(|e| ProbeError::Config {
            path: origin.to_string(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a file (at most [`MAX_CONFIG_BYTES`]).
    pub fn load(path: &Path) -> Result<Self, ProbeError> {
        let text = crate::target::read_text_bounded(path, MAX_CONFIG_BYTES as usize)?;
        Self::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
            .collect::<Vec<_>>()
            .join("\n");
        let c = ProbeConfig::parse(&example, "example").unwrap();
        assert_eq!(c.target.api.as_deref(), Some("openai-chat"));
        assert_eq!(c.run.concurrency, Some(8));
        assert_eq!(c.budgets.max_asr, Some(0.1));
        assert_eq!(c.probes.buffs, Some(vec!["base64".to_string()]));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = ProbeConfig::parse("[run]\nconcurency = 4\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.toml") && e.contains("concurency"), "{e}");
        let e = ProbeConfig::parse("[targets]\nurl = 'x'\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("targets"), "{e}");
    }
}
