//! Backtests: a judge measured, and calibrated, on a service's own history.
//!
//! Production's pods are the experiment. At many start times over a period, some of a
//! version's pods are taken as a pseudo-canary and the others as the baseline, at the traffic
//! share that split gives, and every judge is [replayed](crate::judge::replay::replay) over the
//! run's whole maximum duration exactly as `canary serve` and the validator feed it. Both arms
//! run the same version, so every rollback is a false one: the rates are the judge's A/A rates on
//! this service's traffic. [`Injection`]s apply synthetic regressions to the pseudo-canary's
//! evidence to measure power and time to roll back on the same traffic.
//!
//! The history is fetched once ([`History`], e.g. by `canary-prometheus`) and every run is
//! replayed in memory, on every core.
//!
//! Runs that overlap in time share traffic, so they are not independent: with more runs than
//! the period holds maximum durations, the Wilson intervals are narrower than the truth.

mod calibrate;
mod history;
mod inject;
mod plan;
mod render;
mod report;
mod runs;
mod summary;
mod tunable;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use calibrate::calibrate;
pub use history::{History, PodHistory};
pub use inject::{Change, Injection, Transfer};
pub use plan::{plan, PlannedRun};
pub use report::{
    BacktestReport, Calibration, FailedRun, Healthy, Injected, JudgeBacktest, Rate, Slot, Times,
};
pub use tunable::Tunable;

use crate::error::Result;
use crate::judge::JudgeFactory;

/// How a backtest runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestConfig {
    /// Pseudo-canary runs per judge.
    pub runs: usize,
    /// Pods taken as the pseudo-canary in each run.
    pub canary_pods: usize,
    /// The seed of the pod choice (the same seed, the same runs).
    pub seed: u64,
    /// Each run's maximum duration: the judge must decide by then.
    #[serde(with = "crate::seconds")]
    pub max_duration: Duration,
    /// Synthetic regressions, each measured over the same runs.
    pub injections: Vec<Injection>,
    /// At most this many failed healthy runs are listed per judge.
    pub keep_failures: usize,
    /// Worker threads (0: one per core).
    pub threads: usize,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        BacktestConfig {
            runs: 500,
            canary_pods: 1,
            seed: 7,
            max_duration: Duration::from_secs(3600),
            injections: Vec::new(),
            keep_failures: 20,
            threads: 0,
        }
    }
}

/// A judge to backtest.
#[derive(Clone, Debug)]
pub struct Contender {
    /// Its name in the report.
    pub name: String,
    /// Its parameters.
    pub factory: Arc<dyn JudgeFactory>,
    /// Whether it is the one the configuration uses (the CI gate checks it).
    pub configured: bool,
}

/// Backtests `contenders` over `history`; `progress(done, total)` after each run.
pub fn backtest(
    history: &History,
    contenders: &[Contender],
    config: &BacktestConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BacktestReport> {
    let (runs, skipped) = plan(history, config)?;
    let factories: Vec<Arc<dyn JudgeFactory>> =
        contenders.iter().map(|c| c.factory.clone()).collect();
    for f in &factories {
        f.start()?;
    }
    let replays = runs::outcomes(history, &runs, &factories, config, progress);
    let judges = contenders
        .iter()
        .enumerate()
        .map(|(j, c)| {
            summary::summarise(
                history,
                &replays.runs,
                &replays.per,
                j,
                (&c.name, c.configured),
                config,
            )
        })
        .collect();
    Ok(BacktestReport {
        version: history.version.to_string(),
        since: history.start,
        until: history.at(history.len.saturating_sub(1)),
        step_seconds: history.step.as_secs_f64(),
        max_duration_seconds: config.max_duration.as_secs_f64(),
        pods: history.pods.iter().map(|p| p.name.clone()).collect(),
        canary_pods: config.canary_pods,
        canary_share: replays.share,
        runs_requested: config.runs,
        runs: replays.runs.len(),
        skipped,
        seed: config.seed,
        judges,
        calibrations: Vec::new(),
        notes: summary::notes(history, config, runs.len(), replays.runs.len()),
    })
}
