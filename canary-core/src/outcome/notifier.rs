//! How people hear about decisions: the [`Notifier`] trait.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::policy::{Evaluation, RollbackDecision};
use crate::report::{Outcome, ValidationReport};

/// One message for people: a validation's report, which holds the decision, its reason and
/// evidence, and what was done. The accessors read the report; nothing is copied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// The whole report of the validation (without its notifications, which are being made).
    pub report: ValidationReport,
    /// The region, for an event about one region of a multi-region validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl DecisionEvent {
    /// The event of a whole validation.
    pub fn new(report: ValidationReport) -> Self {
        DecisionEvent {
            report,
            region: None,
        }
    }

    /// What happened to the canary.
    pub fn outcome(&self) -> Outcome {
        self.report.outcome
    }

    /// The decision of the analysis, if it got that far.
    pub fn decision(&self) -> Option<RollbackDecision> {
        self.report.decision
    }

    /// The canary's version.
    pub fn version(&self) -> &str {
        &self.report.version
    }

    /// The baseline's version, if known.
    pub fn baseline_version(&self) -> Option<&str> {
        self.report.baseline_version.as_deref()
    }

    /// The main reason, for people.
    pub fn reason(&self) -> &str {
        &self.report.reason
    }

    /// The deciding evaluation, with its evidence.
    pub fn evaluation(&self) -> Option<&Evaluation> {
        self.report.evaluation.as_ref()
    }

    /// The actions taken, in order, as short sentences (`[eu] rolled back the canary`).
    pub fn action_lines(&self) -> Vec<String> {
        self.report
            .actions
            .iter()
            .map(|a| {
                let region = a
                    .region
                    .as_deref()
                    .map(|r| format!("[{r}] "))
                    .unwrap_or_default();
                let status = if a.ok { "" } else { " (FAILED)" };
                format!("{region}{}{status}", a.action.describe())
            })
            .collect()
    }
}

/// Sends decision events to people: Slack, a webhook, Alertmanager.
///
/// # Contract
///
/// - **What a call promises.** `Ok` means the receiving system accepted the event (e.g. an
///   HTTP 2xx). A notifier may retry internally but returns within its own timeout.
/// - **Errors.** [`crate::Error::Notify`], named by [`Notifier::name`] and never by URL or
///   token. The validator records the error in the report and carries on: a failing notifier
///   never blocks or reverses a rollback.
/// - **Idempotence.** Not idempotent: a retried call may deliver the event twice.
/// - **Cancellation.** Safe to cancel; the event may or may not have been delivered.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// A name for reports and logs, e.g. `slack`. Never a URL.
    fn name(&self) -> String;
    /// Delivers one event.
    async fn notify(&self, event: &DecisionEvent) -> Result<()>;
}
