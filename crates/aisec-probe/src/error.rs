//! The error type of `aisec-probe`'s public API.

use std::path::PathBuf;

/// Why a probe run (or its set-up) could not go ahead. Failures of single
/// requests are not errors: they are recorded per attempt and reported.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A probe configuration file that is not valid TOML or has unknown keys.
    #[error("invalid probe config {path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A probe family name that is not in the catalogue.
    #[error("unknown probe family '{name}' (expected all or one of: {known})")]
    UnknownFamily {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A buff name that does not exist.
    #[error("unknown buff '{name}' (expected one of: {known})")]
    UnknownBuff {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The target URL is not http(s).
    #[error("target URL must start with http:// or https://: {0}")]
    BadUrl(String),
    /// A REST request template without a `{{prompt}}` slot.
    #[error("request template has no {{{{prompt}}}} slot")]
    TemplateWithoutSlot,
    /// A REST request template that is not JSON once the prompt is in.
    #[error("request template is not valid JSON once filled in")]
    TemplateNotJson(#[source] serde_json::Error),
    /// A REST target without a path to the reply text.
    #[error("response path is empty")]
    EmptyResponsePath,
    /// `--api-key-env` names an unset variable.
    #[error("environment variable {0} (named by --api-key-env) is not set")]
    MissingApiKey(String),
    /// Reading or writing a file (journal, transcripts, template).
    #[error("cannot {action} {}", path.display())]
    File {
        /// What was being done, e.g. `open journal`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `--resume` on an empty journal.
    #[error("journal {} is empty", .0.display())]
    EmptyJournal(PathBuf),
    /// `--resume` on a file that is not a probe journal.
    #[error("{} is not an aisec probe journal", path.display())]
    NotAJournal {
        /// The file.
        path: PathBuf,
        /// Why its header did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// `--resume` on a journal path that is not a regular file (a device or
    /// FIFO such as `/dev/zero` never ends).
    #[error("journal {} is not a regular file", .0.display())]
    JournalNotAFile(PathBuf),
    /// A journal whose first line is longer than any header aisec writes.
    #[error("{} is not an aisec probe journal (first line over 4096 bytes)", .0.display())]
    JournalHeaderTooLong(PathBuf),
    /// More attempts planned than can be held in memory.
    #[error(
        "{probes} probes x {repeats} repeats = {attempts} attempts; at most 1000000 can be planned \
         (each is held in memory with its transcript): lower --repeats or select fewer probes"
    )]
    TooManyAttempts {
        /// Probes selected.
        probes: usize,
        /// Repeats asked.
        repeats: u32,
        /// Their product.
        attempts: u64,
    },
    /// A text file (request template, allowlist) over its bound.
    #[error("{} is larger than {max} bytes", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        max: usize,
    },
    /// A text file that is not UTF-8.
    #[error("{} is not UTF-8 text", .0.display())]
    NotUtf8(PathBuf),
    /// A journal exists and `--resume` was not given.
    #[error("journal {} already exists: pass --resume to continue that run, or remove it", .0.display())]
    JournalExists(PathBuf),
    /// A record could not be serialised.
    #[error("cannot serialise a record")]
    Serialise(#[source] serde_json::Error),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// A probe task panicked or was cancelled by the runtime.
    #[error("probe task failed")]
    Task(#[from] tokio::task::JoinError),
    /// The async runtime or a loopback socket (demo) could not be set up.
    #[error("cannot {action}")]
    Runtime {
        /// What was being set up.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl ProbeError {
    /// A closure mapping an I/O error on `path` to [`ProbeError::File`].
    pub(crate) fn file(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ProbeError {
        let path = path.into();
        move |source| ProbeError::File {
            action,
            path,
            source,
        }
    }

    /// A closure mapping an I/O error to [`ProbeError::Runtime`].
    pub(crate) fn runtime(action: &'static str) -> impl FnOnce(std::io::Error) -> ProbeError {
        move |source| ProbeError::Runtime { action, source }
    }
}

/// `Result` with [`ProbeError`].
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn file_errors_keep_their_source() {
        let e = ProbeError::file("open journal", "/x/j.jsonl")(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "gone",
        ));
        assert_eq!(e.to_string(), "cannot open journal /x/j.jsonl");
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("gone"));
    }

    #[test]
    fn template_message_shows_the_slot() {
        assert_eq!(
            ProbeError::TemplateWithoutSlot.to_string(),
            "request template has no {{prompt}} slot"
        );
    }
}
