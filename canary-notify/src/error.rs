//! The one error type of `canary-notify`.

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an event was not delivered. Never contains a webhook URL or token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The notifier is configured wrongly.
    #[error("invalid {notifier} configuration of {field}: {reason}")]
    InvalidConfig {
        /// The notifier.
        notifier: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The receiver refused the event (4xx other than 429): retrying will not help.
    #[error("{notifier} refused the event with HTTP {status}: {body}")]
    Rejected {
        /// The notifier.
        notifier: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer.
        body: String,
    },
    /// The receiver kept failing (5xx or 429).
    #[error("{notifier} answered HTTP {status} after {attempts} attempts: {body}")]
    Unavailable {
        /// The notifier.
        notifier: String,
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The start of the last answer.
        body: String,
    },
    /// The receiver could not be reached (refused, timed out, TLS).
    #[error("{notifier} could not be reached after {attempts} attempts")]
    Unreachable {
        /// The notifier.
        notifier: String,
        /// Attempts made.
        attempts: u32,
        /// The transport error, with the URL removed.
        #[source]
        source: TransportError,
    },
}

/// A transport failure as text, with URLs and secrets removed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

impl Error {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Unreachable { .. })
    }

    fn notifier(&self) -> &str {
        match self {
            Error::InvalidConfig { notifier, .. }
            | Error::Rejected { notifier, .. }
            | Error::Unavailable { notifier, .. }
            | Error::Unreachable { notifier, .. } => notifier,
        }
    }
}

impl From<Error> for canary_core::Error {
    fn from(e: Error) -> Self {
        let (notifier, retryable) = (e.notifier().to_owned(), e.is_retryable());
        canary_core::Error::notify_failed(notifier, retryable, e)
    }
}
