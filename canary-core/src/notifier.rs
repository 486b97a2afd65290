//! How people hear about decisions: the [`Notifier`] trait.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::policy::{Evaluation, RollbackDecision};

/// What happened to the canary in the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The canary became production.
    Promoted,
    /// The canary was removed because the analysis said so.
    RolledBack,
    /// The canary was left as it is for a person to decide.
    HeldForReview,
    /// A step failed; the canary was rolled back where possible.
    Failed,
    /// The validation was cancelled; the canary was rolled back.
    Cancelled,
}

impl Outcome {
    /// `promoted`, `rolled_back`, `held_for_review`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled_back",
            Outcome::HeldForReview => "held_for_review",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One message for people: the decision, its reason and evidence, and what was done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// What happened.
    pub outcome: Outcome,
    /// The decision of the analysis, if it got that far.
    pub decision: Option<RollbackDecision>,
    /// The canary's version.
    pub version: String,
    /// The baseline's version, if known.
    pub baseline_version: Option<String>,
    /// The region, for multi-region validation.
    pub region: Option<String>,
    /// The main reason, for people.
    pub reason: String,
    /// The deciding evaluation, with its evidence.
    pub evaluation: Option<Evaluation>,
    /// The actions taken, in order, as short sentences.
    pub actions: Vec<String>,
    /// The whole report of the validation (without its notifications), when the validator
    /// sends the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<crate::report::ValidationReport>>,
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
