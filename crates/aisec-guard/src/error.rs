//! The error type of `aisec-guard`'s public API (starting, stopping and
//! demonstrating the gateway). Policy files have their own
//! [`PolicyError`](crate::policy::PolicyError); a single request's failure
//! is an HTTP response and an audit record, never an error here.

/// Why the guard could not start, stop or run its demo.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// `server.listen` is not a socket address.
    #[error("server.listen '{value}' is not an address like 127.0.0.1:8080")]
    ListenAddress {
        /// The configured value.
        value: String,
        /// The parse error.
        #[source]
        source: std::net::AddrParseError,
    },
    /// A socket or runtime operation failed.
    #[error("cannot {action}")]
    Io {
        /// What was being done, e.g. `bind 127.0.0.1:8080`.
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server task panicked or was cancelled.
    #[error("the guard's server task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl GuardError {
    /// A closure mapping an I/O error to [`GuardError::Io`].
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> GuardError {
        let action = action.into();
        move |source| GuardError::Io { action, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn io_errors_keep_their_source() {
        let e = GuardError::io("bind 127.0.0.1:1")(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "in use",
        ));
        assert_eq!(e.to_string(), "cannot bind 127.0.0.1:1");
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("in use"));
    }
}
