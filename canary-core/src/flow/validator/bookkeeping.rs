//! The validator's bookkeeping: what the flow has done (the journal), how the run ends (the
//! verdict), and the records, notifications and metrics made from them.

use std::sync::{Mutex, MutexGuard};

use futures::future;
use tracing::{info, warn};

use crate::error::{chain, Error, Result};
use crate::notifier::DecisionEvent;
use crate::policy::{Evaluation, RollbackDecision};
use crate::report::{
    Action, ActionRecord, BusinessCheckRecord, FailureRecord, NotificationRecord, Outcome,
    StepReport, ValidationReport,
};

use super::CanaryValidator;

impl CanaryValidator {
    pub(super) fn record<T>(
        &self,
        journal: &Mutex<Journal>,
        i: usize,
        action: Action,
        result: &Result<T>,
    ) {
        let region = self.regions[i].name.clone();
        match result {
            Ok(_) => {
                info!(region = region.as_deref().unwrap_or(""), action = %action.describe(), "action")
            }
            Err(e) => {
                warn!(region = region.as_deref().unwrap_or(""), action = %action.describe(), error = %chain(e), "action failed")
            }
        }
        lock(journal).actions.push(ActionRecord {
            at: self.clock.now(),
            region,
            action,
            ok: result.is_ok(),
            error: result.as_ref().err().map(|e| chain(e)),
        });
    }

    pub(super) async fn notify(&self, report: &ValidationReport) -> Vec<NotificationRecord> {
        let event = DecisionEvent::new(report.clone());
        future::join_all(self.notifiers.iter().map(|n| {
            let event = &event;
            async move {
                let result = n.notify(event).await;
                if let Err(e) = &result {
                    warn!(notifier = %n.name(), error = %chain(e), "notification failed");
                }
                NotificationRecord {
                    notifier: n.name(),
                    delivered: result.is_ok(),
                    error: result.err().map(|e| chain(&e)),
                }
            }
        }))
        .await
    }

    pub(super) fn record_metrics(&self, report: &ValidationReport) {
        let Some(m) = &self.metrics else { return };
        m.success.set(report.success);
        if report.outcome == Outcome::Promoted {
            m.promotions.inc();
        }
        let rolled_back = report
            .actions
            .iter()
            .any(|a| a.ok && matches!(a.action, Action::Rollback { .. }));
        if rolled_back {
            m.rollbacks.inc();
        }
        if report.decision == Some(RollbackDecision::RollbackManual) {
            m.manual_reviews.inc();
        }
        if let Some(s) = report.timings.analysis_seconds {
            m.analysis_duration.observe(s);
        }
    }
}

/// What the flow has done so far; shared by concurrent regions and kept when a step is
/// cancelled.
pub(super) struct Journal {
    pub(super) actions: Vec<ActionRecord>,
    pub(super) steps: Vec<StepReport>,
    pub(super) deployed: Vec<bool>,
    /// Regions where a baseline was (or may have been) deployed.
    pub(super) baseline_deployed: Vec<bool>,
    pub(super) baselines: Vec<Option<String>>,
    pub(super) step: Vec<String>,
}

impl Journal {
    pub(super) fn new(regions: usize) -> Self {
        Journal {
            actions: Vec::new(),
            steps: Vec::new(),
            deployed: vec![false; regions],
            baseline_deployed: vec![false; regions],
            baselines: vec![None; regions],
            step: vec!["start".into(); regions],
        }
    }

    pub(super) fn current_step(&self) -> String {
        let mut steps = self.step.clone();
        steps.dedup();
        steps.join(", ")
    }
}

pub(super) fn lock(journal: &Mutex<Journal>) -> MutexGuard<'_, Journal> {
    // No code panics while holding the lock, but a poisoned journal is still readable.
    journal.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) struct StepFailure {
    pub(super) region: Option<String>,
    pub(super) step: String,
    pub(super) error: Error,
}

impl StepFailure {
    pub(super) fn record(&self) -> FailureRecord {
        FailureRecord {
            region: self.region.clone(),
            step: self.step.clone(),
            error: chain(&self.error),
            retryable: self.error.is_retryable(),
        }
    }
}

/// The end state of a run, filled in as it goes.
pub(super) struct Verdict {
    pub(super) outcome: Outcome,
    pub(super) decision: Option<RollbackDecision>,
    pub(super) reason: String,
    pub(super) evaluation: Option<Evaluation>,
    pub(super) business: Option<BusinessCheckRecord>,
    pub(super) failure: Option<FailureRecord>,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict {
            outcome: Outcome::Failed,
            decision: None,
            reason: String::new(),
            evaluation: None,
            business: None,
            failure: None,
        }
    }
}

impl Verdict {
    pub(super) fn fail(&mut self, failure: StepFailure) {
        let record = failure.record();
        let region = record
            .region
            .as_deref()
            .map(|r| format!(" in region {r}"))
            .unwrap_or_default();
        self.outcome = Outcome::Failed;
        self.reason = format!("{} failed{region}: {}", record.step, record.error);
        self.failure = Some(record);
    }
}
