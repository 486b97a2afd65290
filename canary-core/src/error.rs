//! The one error type of `canary-core`.

/// A boxed cause from an adapter (Prometheus, helm, a notifier), kept whole under `#[source]`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in canary-core, and in the adapters as seen through its traits.
///
/// Messages are written for the person on call; the cause of an adapter failure stays under
/// [`std::error::Error::source`], so `{:#}`-style reporters (and [`chain`]) show it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A metric value is impossible: a negative latency, an error rate outside 0..100, NaN, ...
    #[error("invalid value for metric {metric}{}: {} ({requirement})", of_version(.version), crate::format::num(*.value))]
    InvalidMetric {
        /// The metric's name, e.g. `latency_p99`.
        metric: String,
        /// The version the metrics belong to.
        version: String,
        /// The rejected value.
        value: f64,
        /// What the value must satisfy, with the bound.
        requirement: String,
    },
    /// A threshold is outside its valid range.
    #[error("invalid threshold {field} = {}: {requirement}", crate::format::num(*.value))]
    InvalidThreshold {
        /// The field, e.g. `latency_p99_threshold`.
        field: String,
        /// The rejected value.
        value: f64,
        /// What the value must satisfy, e.g. "must be > 1.0".
        requirement: &'static str,
    },
    /// A version is not a valid container image tag, so it must not reach helm or PromQL.
    #[error("invalid version {version:?}: {reason}")]
    InvalidVersion {
        /// The rejected input.
        version: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The validator or a policy was configured inconsistently.
    #[error("invalid configuration of {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The metrics source could not produce metrics for a version.
    #[error("could not fetch metrics of version {version:?}")]
    Source {
        /// The version whose metrics were requested.
        version: String,
        /// Whether trying again later may succeed (timeouts, 5xx, refused connections).
        retryable: bool,
        /// The adapter's error.
        #[source]
        source: BoxError,
    },
    /// The deployer could not carry out an operation.
    #[error("deployer could not {operation}")]
    Deploy {
        /// What was attempted, e.g. "deploy canary v1.3.0".
        operation: String,
        /// Whether trying again later may succeed (e.g. another operation in progress).
        retryable: bool,
        /// The adapter's error.
        #[source]
        source: BoxError,
    },
    /// A notifier could not deliver an event. Never blocks or reverses a rollback.
    #[error("notifier {notifier} could not deliver the event")]
    Notify {
        /// The notifier's name, never its URL.
        notifier: String,
        /// Whether trying again later may succeed.
        retryable: bool,
        /// The adapter's error.
        #[source]
        source: BoxError,
    },
    /// The user's business (A/B) check failed to run.
    #[error("business check {check} could not run")]
    BusinessCheck {
        /// The check's name.
        check: String,
        /// The user's error.
        #[source]
        source: BoxError,
    },
    /// There is no production version to compare with, and none was given.
    #[error("no production (baseline) version is deployed{}; pass one explicitly", region_suffix(.region))]
    NoBaseline {
        /// The region, for multi-region validation.
        region: Option<String>,
    },
    /// The validation was cancelled before a decision was acted on.
    #[error("validation cancelled during {step}")]
    Cancelled {
        /// The step that was running.
        step: String,
    },
}

fn region_suffix(region: &Option<String>) -> String {
    region
        .as_ref()
        .map(|r| format!(" in region {r}"))
        .unwrap_or_default()
}

impl Error {
    /// Whether the same call may succeed if tried again later.
    ///
    /// Input and configuration errors are permanent; adapters decide for their own failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Source { retryable, .. }
            | Error::Deploy { retryable, .. }
            | Error::Notify { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Wraps an adapter error as a metrics-source failure.
    pub fn source_failed(
        version: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Source {
            version: version.into(),
            retryable,
            source: source.into(),
        }
    }

    /// Wraps an adapter error as a deployer failure.
    pub fn deploy_failed(
        operation: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Deploy {
            operation: operation.into(),
            retryable,
            source: source.into(),
        }
    }

    /// Wraps an adapter error as a notifier failure.
    pub fn notify_failed(
        notifier: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Notify {
            notifier: notifier.into(),
            retryable,
            source: source.into(),
        }
    }
}

fn of_version(version: &str) -> String {
    if version.is_empty() {
        String::new()
    } else {
        format!(" of version {version:?}")
    }
}

/// Renders an error and all its causes as one line: `outer: cause: root cause`.
///
/// Reports use this so that no cause is lost when an error is stored as text.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_keeps_every_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err = Error::source_failed("v2", true, io);
        assert_eq!(
            chain(&err),
            "could not fetch metrics of version \"v2\": connection refused"
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn input_errors_are_permanent() {
        let err = Error::InvalidVersion {
            version: "a,b".into(),
            reason: "x",
        };
        assert!(!err.is_retryable());
        assert!(!Error::NoBaseline { region: None }.is_retryable());
        assert!(Error::NoBaseline {
            region: Some("eu".into())
        }
        .to_string()
        .contains("in region eu"));
    }
}
