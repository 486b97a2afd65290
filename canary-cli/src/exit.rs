//! Exit codes: what each outcome of a subcommand tells a CI job.

use canary_core::{Outcome, RollbackDecision};

use crate::signals::Signal;

/// Exit code: promote.
pub const EXIT_PROCEED: i32 = 0;
/// Exit code: roll back.
pub const EXIT_ROLLBACK: i32 = 1;
/// Exit code: a person decides.
pub const EXIT_MANUAL: i32 = 2;
/// Exit code: something went wrong before a decision.
pub const EXIT_ERROR: i32 = 3;
/// Exit code: the judge has not decided yet (`canary analyze --judge` on a run still
/// collecting evidence): ask again later. Nobody needs to look.
pub const EXIT_UNDECIDED: i32 = 4;

/// The exit code a decision maps to.
pub fn exit_code(decision: RollbackDecision) -> i32 {
    match decision {
        RollbackDecision::Proceed => EXIT_PROCEED,
        RollbackDecision::RollbackAuto => EXIT_ROLLBACK,
        RollbackDecision::RollbackManual => EXIT_MANUAL,
    }
}

/// The exit code of `canary run`: its outcome, or the signal that cancelled it.
pub(crate) fn run_code(outcome: Outcome, signal: Option<Signal>) -> i32 {
    match (outcome, signal) {
        (Outcome::Cancelled, Some(Signal::Terminate)) => 143,
        (Outcome::Cancelled, _) => 130,
        (Outcome::Promoted, _) => EXIT_PROCEED,
        (Outcome::RolledBack, _) => EXIT_ROLLBACK,
        (Outcome::HeldForReview, _) => EXIT_MANUAL,
        (_, _) => EXIT_ERROR,
    }
}
