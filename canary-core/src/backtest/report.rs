//! What a backtest found: rates with their intervals, times, and each judge's outcomes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Tunable;
use crate::policy::RollbackDecision;
use crate::stats::wilson_interval;

const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its 95 % Wilson interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// How many.
    pub count: u64,
    /// Out of.
    pub runs: u64,
    /// `count / runs` (0 with no runs).
    pub rate: f64,
    /// The interval's lower end.
    pub low: f64,
    /// Its upper end.
    pub high: f64,
}

impl Rate {
    /// `count` of `runs`.
    pub fn of(count: u64, runs: u64) -> Self {
        let (low, high) = wilson_interval(count, runs, Z95);
        Rate {
            count,
            runs,
            rate: if runs == 0 {
                0.0
            } else {
                count as f64 / runs as f64
            },
            low,
            high,
        }
    }
}

/// The median and 90th percentile of some durations, in seconds (`None`: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Times {
    /// The median.
    pub median_seconds: Option<f64>,
    /// The 90th percentile.
    pub p90_seconds: Option<f64>,
}

impl Times {
    pub(super) fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let q = |q: f64| (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * q).round() as usize]);
        Times {
            median_seconds: q(0.5),
            p90_seconds: q(0.9),
        }
    }
}

/// Healthy runs' outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Healthy {
    /// Runs judged.
    pub runs: u64,
    /// Not promoted (rolled back or held for a person): the false-rollback rate, as the
    /// judge-quality benchmark counts it.
    pub false_rollback: Rate,
    /// Rolled back automatically.
    pub rollback_auto: Rate,
    /// Held for manual review.
    pub manual_review: Rate,
    /// Time to promote, over the promoted runs.
    pub promote: Times,
}

/// The false-rollback rate of runs that started in one hour of the day or day of the week.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// `14:00 UTC` or `Tue`.
    pub label: String,
    /// Its runs' false rollbacks.
    pub false_rollback: Rate,
}

/// A healthy run the judge did not promote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedRun {
    /// The run's start.
    pub start: DateTime<Utc>,
    /// When the judge decided.
    pub decided_at: DateTime<Utc>,
    /// The pseudo-canary's pods.
    pub canary_pods: Vec<String>,
    /// The decision.
    pub decision: RollbackDecision,
    /// The judge's reason.
    pub reason: String,
    /// The metric of the first condition that fired, when one did: what the link graphs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// How many failed runs this one stands for: runs with the same start and pods decide
    /// alike, and are listed once.
    #[serde(default = "one")]
    pub times: u64,
    /// Where to see what it saw (e.g. a Prometheus graph of the run), when the source gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One injected regression's outcomes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Injected {
    /// The injection, as written.
    pub injection: String,
    /// Runs not promoted: the power.
    pub caught: Rate,
    /// Rolled back automatically.
    pub rollback_auto: Rate,
    /// Time to catch it (a rollback or a hold for review), over the caught runs.
    pub rollback: Times,
}

/// One judge's backtest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeBacktest {
    /// The judge.
    pub judge: String,
    /// Whether it is the configured one.
    pub configured: bool,
    /// Its healthy runs.
    pub healthy: Healthy,
    /// False rollbacks by the hour of the day the run started (UTC), all 24.
    pub by_hour: Vec<Slot>,
    /// By the day of the week, Monday first.
    pub by_weekday: Vec<Slot>,
    /// The worst three hours of the day with a false rollback.
    pub worst_hours: Vec<Slot>,
    /// Failed healthy runs (the first [`BacktestConfig::keep_failures`](super::BacktestConfig::keep_failures)).
    pub failures: Vec<FailedRun>,
    /// Each injection's outcomes.
    pub injected: Vec<Injected>,
}

/// A calibrated judge: the setting found on one part of the history, measured on the other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The judge.
    pub judge: String,
    /// The false-rollback rate aimed at.
    pub target: f64,
    /// What the knob moves.
    pub knob: String,
    /// The sensitivity found (1: the parameters as given; larger: more tolerant).
    pub sensitivity: f64,
    /// The calibration part: runs that end before `held_out_from`.
    pub calibration: Healthy,
    /// Where the held-out part starts: its runs start at or after it.
    pub held_out_from: DateTime<Utc>,
    /// The judge as given, on the held-out runs.
    pub native: JudgeBacktest,
    /// The calibrated judge on the held-out runs.
    pub calibrated: JudgeBacktest,
    /// Whether the held-out false-rollback rate is within the target.
    pub met: bool,
    /// The parameters to use.
    pub parameters: Tunable,
}

/// What a backtest found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// The production version whose history was replayed.
    pub version: String,
    /// The period's start.
    pub since: DateTime<Utc>,
    /// Its end.
    pub until: DateTime<Utc>,
    /// The judge's step, in seconds.
    pub step_seconds: f64,
    /// Each run's maximum duration, in seconds.
    pub max_duration_seconds: f64,
    /// Every pod seen.
    pub pods: Vec<String>,
    /// Pods per pseudo-canary.
    pub canary_pods: usize,
    /// The pseudo-canary's mean share of requests.
    pub canary_share: f64,
    /// Runs asked for.
    pub runs_requested: usize,
    /// Runs judged.
    pub runs: usize,
    /// Start times skipped: fewer pods than a split needs were running.
    pub skipped: usize,
    /// The seed.
    pub seed: u64,
    /// Per judge.
    pub judges: Vec<JudgeBacktest>,
    /// Calibrations, with `--calibrate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibrations: Vec<Calibration>,
    /// What the history could not show, and how the runs were made.
    pub notes: Vec<String>,
}

impl BacktestReport {
    /// The configured judge's backtest, if it was run.
    pub fn configured(&self) -> Option<&JudgeBacktest> {
        self.judges.iter().find(|j| j.configured)
    }
}

fn one() -> u64 {
    1
}
