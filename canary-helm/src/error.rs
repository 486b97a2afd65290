//! The one error type of `canary-helm`.

use std::time::Duration;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong running helm. helm exits 1 for every error, so stderr is classified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid helm configuration of {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A release name breaks helm's rules.
    #[error("invalid release name {name:?}: {reason}")]
    InvalidReleaseName {
        /// The name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The helm binary could not be started.
    #[error("cannot run {binary}: is helm installed and on PATH?")]
    Spawn {
        /// The binary.
        binary: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// helm did not finish within the command timeout and was stopped.
    #[error("helm did not finish within {after:?} and was stopped: {command}")]
    Killed {
        /// The command, as an argument list.
        command: String,
        /// The timeout.
        after: Duration,
    },
    /// Another install, upgrade or rollback of the release is in progress.
    #[error("another helm operation is in progress on {release}; wait for it, or roll it back: {command}\n{stderr}")]
    OperationInProgress {
        /// The release.
        release: String,
        /// The command.
        command: String,
        /// helm's stderr.
        stderr: String,
    },
    /// helm's own wait timed out (resources did not become ready).
    #[error("helm timed out waiting for {release} to become ready: {command}\n{stderr}")]
    TimedOut {
        /// The release.
        release: String,
        /// The command.
        command: String,
        /// helm's stderr.
        stderr: String,
    },
    /// The release does not exist.
    #[error("release {release} not found: {command}\n{stderr}")]
    ReleaseNotFound {
        /// The release.
        release: String,
        /// The command.
        command: String,
        /// helm's stderr.
        stderr: String,
    },
    /// The chart could not be found or downloaded.
    #[error("chart {chart} not found: {command}\n{stderr}")]
    ChartNotFound {
        /// The chart reference.
        chart: String,
        /// The command.
        command: String,
        /// helm's stderr.
        stderr: String,
    },
    /// Any other failure, with helm's full stderr.
    #[error("helm failed ({}): {command}\n{stderr}", exit_text(*.exit_code))]
    Failed {
        /// The command.
        command: String,
        /// The exit code, if helm exited.
        exit_code: Option<i32>,
        /// helm's full stderr.
        stderr: String,
    },
    /// helm's output could not be parsed.
    #[error("unexpected output from {command}: {reason}")]
    InvalidOutput {
        /// The command.
        command: String,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// Whether the same command may succeed later: another operation in progress, a timeout.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::OperationInProgress { .. } | Error::TimedOut { .. } | Error::Killed { .. }
        )
    }

    /// Classifies a failed helm run by its stderr.
    pub fn classify(
        release: &str,
        chart: &str,
        command: String,
        exit_code: Option<i32>,
        stderr: String,
    ) -> Error {
        let lower = stderr.to_lowercase();
        if lower.contains("another operation (install/upgrade/rollback) is in progress") {
            Error::OperationInProgress {
                release: release.to_owned(),
                command,
                stderr,
            }
        } else if lower.contains("timed out waiting for the condition")
            || lower.contains("context deadline exceeded")
        {
            Error::TimedOut {
                release: release.to_owned(),
                command,
                stderr,
            }
        } else if lower.contains("release: not found") || lower.contains("has no deployed releases")
        {
            Error::ReleaseNotFound {
                release: release.to_owned(),
                command,
                stderr,
            }
        } else if (lower.contains("path") && lower.contains("not found"))
            || lower.contains("failed to download")
            || (lower.contains("chart") && lower.contains("not found"))
            || lower.contains("repo ") && lower.contains(" not found")
        {
            Error::ChartNotFound {
                chart: chart.to_owned(),
                command,
                stderr,
            }
        } else {
            Error::Failed {
                command,
                exit_code,
                stderr,
            }
        }
    }
}

/// `exit code 1`, or how helm ended without one.
fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(stderr: &str) -> Error {
        Error::classify(
            "app",
            "./chart",
            "helm upgrade".into(),
            Some(1),
            stderr.into(),
        )
    }

    #[test]
    fn the_exit_code_reads_as_a_number() {
        let text = kind("Error: something else").to_string();
        assert!(text.contains("(exit code 1)"), "{text}");
        assert!(!text.contains("Some("), "{text}");
        let killed = Error::classify("app", "./chart", "helm upgrade".into(), None, "".into());
        assert!(
            killed.to_string().contains("killed by a signal"),
            "{killed}"
        );
    }

    #[test]
    fn stderr_is_classified() {
        assert!(matches!(kind("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress"), Error::OperationInProgress { .. }));
        assert!(matches!(
            kind("Error: UPGRADE FAILED: timed out waiting for the condition"),
            Error::TimedOut { .. }
        ));
        assert!(matches!(
            kind("Error: INSTALLATION FAILED: context deadline exceeded"),
            Error::TimedOut { .. }
        ));
        assert!(matches!(
            kind("Error: release: not found"),
            Error::ReleaseNotFound { .. }
        ));
        assert!(matches!(
            kind("Error: UPGRADE FAILED: \"app\" has no deployed releases"),
            Error::ReleaseNotFound { .. }
        ));
        assert!(matches!(
            kind("Error: INSTALLATION FAILED: path \"./chart\" not found"),
            Error::ChartNotFound { .. }
        ));
        assert!(matches!(
            kind("Error: repo bitnami not found"),
            Error::ChartNotFound { .. }
        ));
        let other = kind(
            "Error: UPGRADE FAILED: cannot patch \"app\" with kind Deployment: field is immutable",
        );
        assert!(
            matches!(&other, Error::Failed { stderr, .. } if stderr.contains("field is immutable"))
        );
        assert!(
            kind("Error: another operation (install/upgrade/rollback) is in progress")
                .is_retryable()
        );
        assert!(!other.is_retryable());
    }
}
