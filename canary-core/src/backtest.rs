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

mod history;
mod inject;
mod render;
mod tunable;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

pub use history::{History, PodHistory};
pub use inject::{Change, Injection, Transfer};
pub use tunable::Tunable;

use crate::error::{Error, Result};
use crate::judge::replay::{replay, ReplayBounds, Replayed};
use crate::judge::JudgeFactory;
use crate::observation::{names, Observation};
use crate::policy::RollbackDecision;
use crate::stats::wilson_interval;

const Z95: f64 = 1.959_963_984_540_054;

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

/// One pseudo-canary run: where it is in the history and which pods are which.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Grid index of its start.
    pub from: usize,
    /// Grid index of its last instant.
    pub to: usize,
    /// The pseudo-canary's pods (indices into [`History::pods`]).
    pub canary: Vec<usize>,
    /// The baseline's pods.
    pub baseline: Vec<usize>,
}

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
    fn of(mut v: Vec<f64>) -> Self {
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
    /// Time to roll back (or hold), over the caught runs.
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
    /// Failed healthy runs (the first [`BacktestConfig::keep_failures`]).
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

/// The runs over `history`: `config.runs` start times spread evenly over the period (the last
/// one a maximum duration before its end), each with `config.canary_pods` of the pods running
/// then, chosen by the seed, as the canary and the others as the baseline. Errors say what is
/// missing: too short a period, or too few pods.
pub fn plan(history: &History, config: &BacktestConfig) -> Result<(Vec<PlannedRun>, usize)> {
    history.validate()?;
    let need = |reason: String| Error::InvalidConfig {
        field: "backtest".into(),
        reason,
    };
    if config.runs == 0 || config.canary_pods == 0 {
        return Err(need("runs and canary pods must be at least 1".into()));
    }
    let step = history.step.as_secs_f64();
    let steps = (config.max_duration.as_secs_f64() / step).ceil() as usize;
    if history.len <= steps {
        return Err(need(format!(
            "too little history of {}: the period holds {} on the judge's {} step, and one run \
             needs its maximum duration, {}; give a longer --since",
            history.version,
            crate::format::duration(history.len.saturating_sub(1) as f64 * step),
            crate::format::duration(step),
            crate::format::duration(config.max_duration.as_secs_f64()),
        )));
    }
    let last_start = history.len - 1 - steps;
    let mut runs = Vec::new();
    let mut skipped = 0;
    let mut most = 0;
    for k in 0..config.runs {
        let from = if config.runs == 1 {
            0
        } else {
            k * last_start / (config.runs - 1)
        };
        let mut running = history.pods_at(from);
        most = most.max(running.len());
        if running.len() <= config.canary_pods {
            skipped += 1;
            continue;
        }
        let mut rng =
            fastrand::Rng::with_seed(config.seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.shuffle(&mut running);
        let (canary, baseline) = running.split_at(config.canary_pods);
        let (mut canary, mut baseline) = (canary.to_vec(), baseline.to_vec());
        canary.sort_unstable();
        baseline.sort_unstable();
        runs.push(PlannedRun {
            from,
            to: from + steps,
            canary,
            baseline,
        });
    }
    if runs.is_empty() {
        return Err(need(format!(
            "too few pods of {}: a split of {} canary pod(s) needs at least {} running at once, \
             and at most {most} were; use --canary-pods {} or a version with more replicas",
            history.version,
            config.canary_pods,
            config.canary_pods + 1,
            most.saturating_sub(1).max(1),
        )));
    }
    Ok((runs, skipped))
}

/// One judge on one run.
#[derive(Clone, Debug)]
struct Outcome {
    decision: RollbackDecision,
    seconds: f64,
    reason: String,
}

/// Both arms of a run, at the instants where both were scraped.
struct Arms {
    baseline: Vec<Observation>,
    canary: Vec<Observation>,
    share: f64,
}

fn arms(history: &History, run: &PlannedRun, injection: Option<&Injection>) -> Arms {
    let b = history.arm(&run.baseline, run.from, run.to, None);
    let c = history.arm(&run.canary, run.from, run.to, injection);
    let (mut baseline, mut canary) = (Vec::new(), Vec::new());
    for (b, c) in b.into_iter().zip(c) {
        if let (Some(b), Some(c)) = (b, c) {
            baseline.push(b);
            canary.push(c);
        }
    }
    let requests = |o: &[Observation]| -> f64 {
        let at = |o: Option<&Observation>| {
            o.and_then(|o| o.counters.get(names::REQUESTS).copied())
                .unwrap_or(0.0)
        };
        at(o.last()) - at(o.first())
    };
    let (rb, rc) = (requests(&baseline), requests(&canary));
    Arms {
        share: if rb + rc > 0.0 { rc / (rb + rc) } else { 0.0 },
        baseline,
        canary,
    }
}

/// The run's arms with `injection` in the canary's evidence, at `plain`'s instants.
fn injected(
    history: &History,
    run: &PlannedRun,
    plain: &Arms,
    injection: &Injection,
) -> Vec<Observation> {
    let mut wanted = plain.canary.iter().map(|o| o.at).peekable();
    let mut canary = Vec::with_capacity(plain.canary.len());
    for o in history
        .arm(&run.canary, run.from, run.to, Some(injection))
        .into_iter()
        .flatten()
    {
        if wanted.peek() == Some(&o.at) {
            wanted.next();
            canary.push(o);
        }
    }
    canary
}

fn judge(
    factory: &dyn JudgeFactory,
    history: &History,
    run: &PlannedRun,
    baseline: &[Observation],
    canary: &[Observation],
) -> Outcome {
    let start = history.at(run.from);
    let bounds = ReplayBounds {
        start,
        at: history.at(run.to),
        max_duration: Duration::from_secs_f64(
            (run.to - run.from) as f64 * history.step.as_secs_f64(),
        ),
    };
    let mut judge = match factory.start() {
        Ok(j) => j,
        Err(e) => {
            return Outcome {
                decision: RollbackDecision::RollbackManual,
                seconds: 0.0,
                reason: format!("the judge could not start: {e}"),
            }
        }
    };
    let seconds_at = |looks: u64| {
        let i = (looks as usize).clamp(1, canary.len().max(1)) - 1;
        canary
            .get(i)
            .map_or(0.0, |o| (o.at - start).num_milliseconds() as f64 / 1000.0)
    };
    match replay(judge.as_mut(), baseline, canary, bounds) {
        Replayed::Decided { evaluation, looks } => Outcome {
            decision: evaluation.decision,
            seconds: seconds_at(looks),
            reason: evaluation.primary_reason,
        },
        Replayed::Continue { looks, .. } => Outcome {
            // The bounds end at the deadline, so this is not expected; never a promotion.
            decision: RollbackDecision::RollbackManual,
            seconds: seconds_at(looks),
            reason: "the judge had not decided at the maximum duration".into(),
        },
        Replayed::Insufficient { reason, looks } => Outcome {
            decision: RollbackDecision::RollbackManual,
            seconds: seconds_at(looks),
            reason,
        },
    }
}

/// One run's outcomes (per injection, then per judge) and its canary's traffic share.
type RunOutcomes = (Vec<Vec<Outcome>>, f64);

/// Every contender's outcomes on every run: `[run][injection (0: none)][judge]`.
fn outcomes(
    history: &History,
    runs: &[PlannedRun],
    factories: &[Arc<dyn JudgeFactory>],
    config: &BacktestConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Vec<Vec<Outcome>>>, f64) {
    let threads = if config.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.threads
    }
    .clamp(1, runs.len().max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let mut results: Vec<Option<RunOutcomes>> = vec![None; runs.len()];
    let chunks: Vec<Vec<(usize, RunOutcomes)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(run) = runs.get(i) else { break };
                        let plain = arms(history, run, None);
                        let mut per = vec![factories
                            .iter()
                            .map(|f| {
                                judge(f.as_ref(), history, run, &plain.baseline, &plain.canary)
                            })
                            .collect::<Vec<_>>()];
                        for inj in &config.injections {
                            let c = injected(history, run, &plain, inj);
                            per.push(
                                factories
                                    .iter()
                                    .map(|f| judge(f.as_ref(), history, run, &plain.baseline, &c))
                                    .collect(),
                            );
                        }
                        mine.push((i, (per, plain.share)));
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1, runs.len());
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (i, r) in chunks.into_iter().flatten() {
        results[i] = Some(r);
    }
    let mut share = 0.0;
    let mut all = Vec::with_capacity(runs.len());
    // A worker that panicked leaves its runs out rather than guessing them.
    for (per, s) in results.into_iter().flatten() {
        share += s;
        all.push(per);
    }
    let n = all.len().max(1) as f64;
    (all, share / n)
}

fn healthy(outcomes: &[&Outcome]) -> Healthy {
    let n = outcomes.len() as u64;
    let count =
        |pred: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| pred(o)).count() as u64;
    Healthy {
        runs: n,
        false_rollback: Rate::of(count(&|o| o.decision != RollbackDecision::Proceed), n),
        rollback_auto: Rate::of(count(&|o| o.decision == RollbackDecision::RollbackAuto), n),
        manual_review: Rate::of(
            count(&|o| o.decision == RollbackDecision::RollbackManual),
            n,
        ),
        promote: Times::of(
            outcomes
                .iter()
                .filter(|o| o.decision == RollbackDecision::Proceed)
                .map(|o| o.seconds)
                .collect(),
        ),
    }
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// One judge's report from its outcomes on `runs` (`per[run][injection][judge]`).
fn summarise(
    history: &History,
    runs: &[PlannedRun],
    per: &[Vec<Vec<Outcome>>],
    j: usize,
    contender: (&str, bool),
    config: &BacktestConfig,
) -> JudgeBacktest {
    let aa: Vec<&Outcome> = per.iter().map(|r| &r[0][j]).collect();
    let slots = |key: &dyn Fn(DateTime<Utc>) -> usize, labels: Vec<String>| -> Vec<Slot> {
        let mut counts = vec![(0u64, 0u64); labels.len()];
        for (run, o) in runs.iter().zip(&aa) {
            let c = &mut counts[key(history.at(run.from))];
            c.1 += 1;
            c.0 += u64::from(o.decision != RollbackDecision::Proceed);
        }
        labels
            .into_iter()
            .zip(counts)
            .map(|(label, (k, n))| Slot {
                label,
                false_rollback: Rate::of(k, n),
            })
            .collect()
    };
    let by_hour = slots(
        &|t| t.hour() as usize,
        (0..24).map(|h| format!("{h:02}:00 UTC")).collect(),
    );
    let by_weekday = slots(
        &|t| t.weekday().num_days_from_monday() as usize,
        WEEKDAYS.iter().map(|d| (*d).to_owned()).collect(),
    );
    let mut worst: Vec<Slot> = by_hour
        .iter()
        .filter(|s| s.false_rollback.count > 0)
        .cloned()
        .collect();
    worst.sort_by(|a, b| {
        b.false_rollback
            .rate
            .total_cmp(&a.false_rollback.rate)
            .then(b.false_rollback.count.cmp(&a.false_rollback.count))
    });
    worst.truncate(3);
    let failures = runs
        .iter()
        .zip(&aa)
        .filter(|(_, o)| o.decision != RollbackDecision::Proceed)
        .take(config.keep_failures)
        .map(|(run, o)| {
            let start = history.at(run.from);
            FailedRun {
                start,
                decided_at: start + chrono::Duration::milliseconds((o.seconds * 1000.0) as i64),
                canary_pods: run
                    .canary
                    .iter()
                    .map(|&p| history.pods[p].name.clone())
                    .collect(),
                decision: o.decision,
                reason: o.reason.clone(),
                link: None,
            }
        })
        .collect();
    let injected = config
        .injections
        .iter()
        .enumerate()
        .map(|(k, inj)| {
            let o: Vec<&Outcome> = per.iter().map(|r| &r[k + 1][j]).collect();
            let n = o.len() as u64;
            let caught: Vec<&&Outcome> = o
                .iter()
                .filter(|o| o.decision != RollbackDecision::Proceed)
                .collect();
            Injected {
                injection: inj.label.clone(),
                caught: Rate::of(caught.len() as u64, n),
                rollback_auto: Rate::of(
                    o.iter()
                        .filter(|o| o.decision == RollbackDecision::RollbackAuto)
                        .count() as u64,
                    n,
                ),
                rollback: Times::of(caught.iter().map(|o| o.seconds).collect()),
            }
        })
        .collect();
    JudgeBacktest {
        judge: contender.0.to_owned(),
        configured: contender.1,
        healthy: healthy(&aa),
        by_hour,
        by_weekday,
        worst_hours: worst,
        failures,
        injected,
    }
}

fn notes(history: &History, config: &BacktestConfig, runs: usize) -> Vec<String> {
    let mut notes = history.notes.clone();
    let step = history.step.as_secs_f64();
    let period = history.len as f64 * step;
    let independent = (period / config.max_duration.as_secs_f64()).floor() as usize;
    if runs > independent.max(1) {
        notes.push(format!(
            "{runs} runs over a period that holds {independent} non-overlapping maximum durations: \
             runs share traffic, so the intervals are narrower than the truth"
        ));
    }
    notes.push("both arms run the same version: every run not promoted is a false rollback".into());
    notes
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
    let (per, share) = outcomes(history, &runs, &factories, config, progress);
    let judges = contenders
        .iter()
        .enumerate()
        .map(|(j, c)| summarise(history, &runs, &per, j, (&c.name, c.configured), config))
        .collect();
    Ok(BacktestReport {
        version: history.version.to_string(),
        since: history.start,
        until: history.at(history.len.saturating_sub(1)),
        step_seconds: history.step.as_secs_f64(),
        max_duration_seconds: config.max_duration.as_secs_f64(),
        pods: history.pods.iter().map(|p| p.name.clone()).collect(),
        canary_pods: config.canary_pods,
        canary_share: share,
        runs_requested: config.runs,
        runs: per.len(),
        skipped,
        seed: config.seed,
        judges,
        calibrations: Vec::new(),
        notes: notes(history, config, per.len()),
    })
}

/// Calibrates `tunable` to a false-rollback rate of at most `target`: the runs that end in the
/// history's first half choose the most sensitive setting (bisection on log₂ s in [−4, 4])
/// whose rate there is at most `target`; the runs that start in the second half, never used to
/// choose, measure it, and the judge as given, with the injections.
pub fn calibrate(
    history: &History,
    tunable: &Tunable,
    target: f64,
    config: &BacktestConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Calibration> {
    if !(target > 0.0 && target < 1.0) {
        return Err(Error::InvalidConfig {
            field: "calibrate".into(),
            reason: format!("{target} is not a rate in (0, 1), e.g. 0.01"),
        });
    }
    let (runs, _) = plan(history, config)?;
    let split = history.len / 2;
    let (early, late): (Vec<PlannedRun>, Vec<PlannedRun>) = (
        runs.iter().filter(|r| r.to < split).cloned().collect(),
        runs.iter().filter(|r| r.from >= split).cloned().collect(),
    );
    if early.is_empty() || late.is_empty() {
        return Err(Error::InvalidConfig {
            field: "calibrate".into(),
            reason: format!(
                "too little history to hold part out: each half needs at least one run of {}; \
                 give a longer --since",
                crate::format::duration(config.max_duration.as_secs_f64())
            ),
        });
    }
    let aa_only = BacktestConfig {
        injections: Vec::new(),
        ..config.clone()
    };
    let steps = 12;
    let step_done = AtomicUsize::new(0);
    let rate = |s: f64| -> Healthy {
        let f = vec![tunable.at(s).factory()];
        let (per, _) = outcomes(history, &early, &f, &aa_only, &|_, _| {});
        progress(step_done.fetch_add(1, Ordering::Relaxed) + 1, steps);
        let o: Vec<&Outcome> = per.iter().map(|r| &r[0][0]).collect();
        healthy(&o)
    };
    let (mut lo, mut hi) = (-4.0f64, 4.0f64);
    let mut found = rate(lo.exp2());
    let s = if found.false_rollback.rate <= target {
        lo.exp2()
    } else {
        found = rate(hi.exp2());
        for _ in 0..8 {
            let mid = (lo + hi) / 2.0;
            let r = rate(mid.exp2());
            if r.false_rollback.rate <= target {
                hi = mid;
                found = r;
            } else {
                lo = mid;
            }
        }
        hi.exp2()
    };
    let held = |t: &Tunable| {
        let f = vec![t.factory()];
        let (per, _) = outcomes(history, &late, &f, config, &|_, _| {});
        progress(step_done.fetch_add(1, Ordering::Relaxed) + 1, steps);
        summarise(history, &late, &per, 0, (t.name(), false), config)
    };
    let parameters = tunable.at(s);
    let calibrated = held(&parameters);
    let native = held(tunable);
    Ok(Calibration {
        judge: tunable.name().into(),
        target,
        knob: tunable.knob().into(),
        sensitivity: s,
        calibration: found,
        held_out_from: history.at(split),
        met: calibrated.healthy.false_rollback.rate <= target,
        native,
        calibrated,
        parameters,
    })
}
