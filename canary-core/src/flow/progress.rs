//! What the validator is doing, as it does it: for progress bars on a terminal and progress
//! lines in CI logs. The validator calls [`Progress::event`] before each wait and after each
//! analysis; a display decides how to show it.

use std::time::Duration;

use crate::policy::RollbackDecision;

/// Where in the flow an event happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepPlace<'a> {
    /// The region, for multi-region validation.
    pub region: Option<&'a str>,
    /// The 1-based step.
    pub step: usize,
    /// The steps in the region (more than one for a progressive canary).
    pub steps: usize,
    /// The canary's traffic weight, for a progressive canary.
    pub weight: Option<u8>,
}

impl std::fmt::Display for StepPlace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = self.region {
            write!(f, "{r}: ")?;
        }
        write!(f, "step {}/{}", self.step, self.steps)?;
        if let Some(w) = self.weight {
            write!(f, " at {w}%")?;
        }
        Ok(())
    }
}

/// One thing worth showing.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent<'a> {
    /// The warm-up before an analysis begins: `duration` of waiting (before any time scale).
    WarmUp {
        /// Where.
        place: StepPlace<'a>,
        /// How long.
        duration: Duration,
    },
    /// A judge waits for its next look; it decides at the latest after `remaining`.
    Judging {
        /// Where.
        place: StepPlace<'a>,
        /// The judge's name.
        judge: &'a str,
        /// The looks so far in this step.
        look: u64,
        /// The wait until the next look.
        next: Duration,
        /// The longest the step can still take.
        remaining: Duration,
    },
    /// A step's analysis decided.
    Decided {
        /// Where.
        place: StepPlace<'a>,
        /// The decision.
        decision: RollbackDecision,
    },
}

/// Receives [`ProgressEvent`]s. Called from the validator's tasks, concurrently for several
/// regions; it must return quickly and never fail the run.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// Shows `event`.
    fn event(&self, event: &ProgressEvent<'_>);
}
