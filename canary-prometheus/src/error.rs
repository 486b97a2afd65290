//! The one error type of `canary-prometheus`.

use std::time::Duration;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to Prometheus (or Thanos, Mimir, Cortex).
///
/// Every query error names the metric, the query, and how many attempts were made. Secrets
/// (tokens, passwords, credentials in URLs) never appear in messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid Prometheus configuration of {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A query template does not parse, or puts a placeholder where it cannot be escaped.
    #[error("invalid query template for {metric}: {reason} (template: {template})")]
    InvalidTemplate {
        /// The metric.
        metric: String,
        /// The template.
        template: String,
        /// The parse error or misuse.
        reason: String,
    },
    /// Prometheus answered with an HTTP error status (400, 422, 503, ...).
    #[error("Prometheus answered {status} for {metric} (query: {query}){}{}", detail(.error_type, .message), attempts_text(*.attempts, *.elapsed))]
    Status {
        /// The metric.
        metric: String,
        /// The query sent.
        query: String,
        /// The HTTP status.
        status: u16,
        /// Prometheus' `errorType`, if the body had one.
        error_type: Option<String>,
        /// Prometheus' `error`, or the start of the body.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent over all attempts.
        elapsed: Duration,
    },
    /// Prometheus answered `status: error` with a success code.
    #[error("Prometheus reported an error for {metric} (query: {query}){}", detail(.error_type, .message))]
    QueryFailed {
        /// The metric.
        metric: String,
        /// The query sent.
        query: String,
        /// Prometheus' `errorType`.
        error_type: Option<String>,
        /// Prometheus' `error`.
        message: String,
    },
    /// No answer within the timeout.
    #[error("Prometheus did not answer within {timeout:?} for {metric} (query: {query}){}", attempts_text(*.attempts, *.elapsed))]
    Timeout {
        /// The metric.
        metric: String,
        /// The query sent.
        query: String,
        /// The per-request timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
        /// Time spent over all attempts.
        elapsed: Duration,
    },
    /// The connection failed (refused, reset, DNS, TLS).
    #[error("cannot reach Prometheus for {metric} (query: {query}){}", attempts_text(*.attempts, *.elapsed))]
    Unreachable {
        /// The metric.
        metric: String,
        /// The query sent.
        query: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent over all attempts.
        elapsed: Duration,
        /// The transport error, with any URL credentials removed.
        #[source]
        source: TransportError,
    },
    /// Prometheus (or a proxy) redirected to another origin, or too often. The other server's
    /// answer is never read: only same-origin redirects are followed.
    #[error("refused to follow a redirect for {metric}: {reason} (query: {query})")]
    Redirect {
        /// The metric.
        metric: String,
        /// The query sent.
        query: String,
        /// Where it pointed (scheme, host and port only) and why it was refused.
        reason: String,
    },
    /// The body is not a Prometheus API response: invalid or truncated JSON, a wrong shape.
    #[error("Prometheus sent an invalid response for {metric} (query: {query}): {reason}")]
    InvalidResponse {
        /// The metric.
        metric: String,
        /// The query sent.
        query: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The body is larger than the configured limit.
    #[error("Prometheus' response for {metric} exceeds {limit_bytes} bytes (query: {query})")]
    BodyTooLarge {
        /// The metric.
        metric: String,
        /// The query sent.
        query: String,
        /// The limit.
        limit_bytes: usize,
    },
    /// More than one series came back where one was expected: the query does not aggregate.
    #[error("query for {metric} returned {} series where one was expected; aggregate it (e.g. sum or avg) (query: {query}; series: {})", .series.len(), .series.join(", "))]
    MultipleSeries {
        /// The metric.
        metric: String,
        /// The query sent.
        query: String,
        /// The label sets found.
        series: Vec<String>,
    },
    /// A push to the Pushgateway failed.
    #[error("Pushgateway answered {status} for job {job}: {message}")]
    Push {
        /// The job.
        job: String,
        /// The HTTP status, 0 if there was no answer.
        status: u16,
        /// The body or transport error.
        message: String,
    },
}

/// A transport failure, as text with any URL credentials removed (reqwest errors echo URLs).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

fn detail(error_type: &Option<String>, message: &str) -> String {
    match (error_type, message.is_empty()) {
        (Some(t), false) => format!(": {t}: {message}"),
        (Some(t), true) => format!(": {t}"),
        (None, false) => format!(": {message}"),
        (None, true) => String::new(),
    }
}

fn attempts_text(attempts: u32, elapsed: Duration) -> String {
    if attempts > 1 {
        format!(
            "; tried {attempts} times over {:.1} s",
            elapsed.as_secs_f64()
        )
    } else {
        String::new()
    }
}

impl Error {
    /// Whether the same query may succeed later: timeouts, refused connections and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Unreachable { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            Error::Push { status, .. } => *status == 0 || *status >= 500,
            _ => false,
        }
    }

    /// The same error with every secret that `redactor` knows removed from its text: servers
    /// and proxies may echo a request's `Authorization` or tenant header in their answers.
    pub fn scrub(self, redactor: &canary_core::Redactor) -> Self {
        if redactor.is_empty() {
            return self;
        }
        let s = |text: String| redactor.scrub(&text);
        match self {
            Error::InvalidConfig { field, reason } => Error::InvalidConfig {
                field,
                reason: s(reason),
            },
            Error::InvalidTemplate {
                metric,
                template,
                reason,
            } => Error::InvalidTemplate {
                metric,
                template: s(template),
                reason: s(reason),
            },
            Error::Status {
                metric,
                query,
                status,
                error_type,
                message,
                attempts,
                elapsed,
            } => Error::Status {
                metric,
                query: s(query),
                status,
                error_type: error_type.map(s),
                message: s(message),
                attempts,
                elapsed,
            },
            Error::QueryFailed {
                metric,
                query,
                error_type,
                message,
            } => Error::QueryFailed {
                metric,
                query: s(query),
                error_type: error_type.map(s),
                message: s(message),
            },
            Error::Timeout {
                metric,
                query,
                timeout,
                attempts,
                elapsed,
            } => Error::Timeout {
                metric,
                query: s(query),
                timeout,
                attempts,
                elapsed,
            },
            Error::Unreachable {
                metric,
                query,
                attempts,
                elapsed,
                source,
            } => Error::Unreachable {
                metric,
                query: s(query),
                attempts,
                elapsed,
                source: TransportError(s(source.0)),
            },
            Error::Redirect {
                metric,
                query,
                reason,
            } => Error::Redirect {
                metric,
                query: s(query),
                reason: s(reason),
            },
            Error::InvalidResponse {
                metric,
                query,
                reason,
            } => Error::InvalidResponse {
                metric,
                query: s(query),
                reason: s(reason),
            },
            Error::BodyTooLarge {
                metric,
                query,
                limit_bytes,
            } => Error::BodyTooLarge {
                metric,
                query: s(query),
                limit_bytes,
            },
            Error::MultipleSeries {
                metric,
                query,
                series,
            } => Error::MultipleSeries {
                metric,
                query: s(query),
                series: series.into_iter().map(s).collect(),
            },
            Error::Push {
                job,
                status,
                message,
            } => Error::Push {
                job,
                status,
                message: s(message),
            },
        }
    }

    /// Records the number of attempts and the time they took.
    pub(crate) fn with_attempts(mut self, n: u32, spent: Duration) -> Self {
        match &mut self {
            Error::Status {
                attempts, elapsed, ..
            }
            | Error::Timeout {
                attempts, elapsed, ..
            }
            | Error::Unreachable {
                attempts, elapsed, ..
            } => {
                *attempts = n;
                *elapsed = spent;
            }
            _ => {}
        }
        self
    }
}
