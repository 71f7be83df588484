//! The scan configuration file (`aisec.toml` or `--config FILE`).
//!
//! ```toml
//! [pickle]
//! allow = ["mypkg.models.MyNet", "mypkg.layers.*"]  # extra globals that may be imported
//! deny = ["mypkg.unsafe.*"]                         # globals reported even if allowed
//! profiles = ["sklearn"]                            # opt-in allowlists
//!
//! [scan]
//! max_depth = 5          # containers followed inside containers
//! max_entry_mb = 512     # largest archive member decompressed
//! follow_links = false
//! ```
//! Unknown keys are rejected, so a typo never silently weakens a policy.

use serde::Deserialize;

use crate::ScanOptions;

/// Errors reading or applying a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// The parser's message.
        message: String,
    },
}

/// The parsed configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pickle allowlist changes.
    #[serde(default)]
    pub pickle: PickleConfig,
    /// Scan limits.
    #[serde(default)]
    pub scan: ScanConfig,
}

/// `[pickle]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickleConfig {
    /// Globals (`module.name`, `module.*`) allowed in addition to the defaults.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Globals always reported.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Named opt-in allowlists, such as `sklearn`.
    #[serde(default)]
    pub profiles: Vec<String>,
}

/// `[scan]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    /// Containers followed inside containers.
    pub max_depth: Option<u32>,
    /// Largest archive member decompressed, in MiB.
    pub max_entry_mb: Option<u64>,
    /// Follow symbolic links in directories.
    pub follow_links: Option<bool>,
}

impl Config {
    /// Parses TOML text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        Config::parse(&text, &p)
    }

    /// Applies the configuration to scan options.
    pub fn apply(&self, opts: &mut ScanOptions, path: &str) -> Result<(), ConfigError> {
        for name in &self.pickle.profiles {
            opts.policy = std::mem::take(&mut opts.policy)
                .with_profile(name)
                .map_err(|e| ConfigError::Invalid {
                    path: path.to_string(),
                    message: e.to_string(),
                })?;
        }
        for a in &self.pickle.allow {
            opts.policy.allow(a);
        }
        for d in &self.pickle.deny {
            opts.policy.deny(d);
        }
        if let Some(d) = self.scan.max_depth {
            opts.max_depth = d;
        }
        if let Some(mb) = self.scan.max_entry_mb {
            opts.archive_limits.max_entry_bytes = mb.saturating_mul(1 << 20);
        }
        if let Some(f) = self.scan.follow_links {
            opts.follow_links = f;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let e = Config::parse("[pickle]\nalow = []\n", "x.toml").unwrap_err();
        assert!(e.to_string().contains("alow"), "{e}");
    }

    #[test]
    fn limits_apply() {
        let c = Config::parse("[scan]\nmax_depth = 2\nmax_entry_mb = 1\n", "x").unwrap();
        let mut o = ScanOptions::default();
        c.apply(&mut o, "x").unwrap();
        assert_eq!(o.max_depth, 2);
        assert_eq!(o.archive_limits.max_entry_bytes, 1 << 20);
    }
}
