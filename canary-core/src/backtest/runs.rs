//! Every judge replayed on every run, with and without each injection, on every core.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{BacktestConfig, History, Injection, PlannedRun};
use crate::judge::replay::{replay, ReplayBounds, Replayed};
use crate::judge::JudgeFactory;
use crate::observation::{names, Observation};
use crate::policy::RollbackDecision;

/// One judge on one run.
#[derive(Clone, Debug)]
pub(super) struct Outcome {
    pub(super) decision: RollbackDecision,
    pub(super) seconds: f64,
    pub(super) reason: String,
    /// The metric of the first condition that fired, if any: what to look at.
    pub(super) metric: Option<String>,
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

/// One judge on one run. A judge that panics is held for a person, as the service would
/// never promote on a failed judge, and the other judges and runs go on.
fn judge(
    factory: &dyn JudgeFactory,
    history: &History,
    run: &PlannedRun,
    baseline: &[Observation],
    canary: &[Observation],
) -> Outcome {
    let judged = catch_unwind(AssertUnwindSafe(|| {
        judge_unguarded(factory, history, run, baseline, canary)
    }));
    judged.unwrap_or_else(|panic| Outcome {
        decision: RollbackDecision::RollbackManual,
        seconds: 0.0,
        reason: format!("the judge panicked: {}", panic_message(panic.as_ref())),
        metric: None,
    })
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

fn judge_unguarded(
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
        step: history.step,
    };
    let mut judge = match factory.start() {
        Ok(j) => j,
        Err(e) => {
            return Outcome {
                decision: RollbackDecision::RollbackManual,
                seconds: 0.0,
                reason: format!("the judge could not start: {e}"),
                metric: None,
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
            metric: evaluation
                .triggered_conditions
                .iter()
                .find_map(|c| c.metric.clone()),
            reason: evaluation.primary_reason,
        },
        Replayed::Continue { looks, .. } => Outcome {
            // The bounds end at the deadline, so this is not expected; never a promotion.
            decision: RollbackDecision::RollbackManual,
            seconds: seconds_at(looks),
            reason: "the judge had not decided at the maximum duration".into(),
            metric: None,
        },
        Replayed::Insufficient { reason, looks } => Outcome {
            decision: RollbackDecision::RollbackManual,
            seconds: seconds_at(looks),
            reason,
            metric: None,
        },
    }
}

/// One run's outcomes: per injection (0: none), then per judge.
type RunOutcomes = Vec<Vec<Outcome>>;

/// The runs replayed, with their outcomes in the same order.
pub(super) struct Replays {
    /// The runs that could be replayed (all, unless reading one's history panicked).
    pub(super) runs: Vec<PlannedRun>,
    /// `[run][injection (0: none)][judge]`, aligned with `runs`.
    pub(super) per: Vec<RunOutcomes>,
    /// The pseudo-canary's mean share of requests.
    pub(super) share: f64,
}

/// Every judge on `run`, without and with each injection.
fn run_outcomes(
    history: &History,
    run: &PlannedRun,
    factories: &[Arc<dyn JudgeFactory>],
    config: &BacktestConfig,
) -> (RunOutcomes, f64) {
    let plain = arms(history, run, None);
    let judges = |canary: &[Observation]| -> Vec<Outcome> {
        factories
            .iter()
            .map(|f| judge(f.as_ref(), history, run, &plain.baseline, canary))
            .collect()
    };
    let mut per = vec![judges(&plain.canary)];
    for inj in &config.injections {
        per.push(judges(&injected(history, run, &plain, inj)));
    }
    (per, plain.share)
}

/// Every contender's outcomes on every run, on every core.
pub(super) fn outcomes(
    history: &History,
    runs: &[PlannedRun],
    factories: &[Arc<dyn JudgeFactory>],
    config: &BacktestConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Replays {
    let threads = if config.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.threads
    }
    .clamp(1, runs.len().max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let mut results: Vec<Option<(RunOutcomes, f64)>> = vec![None; runs.len()];
    let chunks: Vec<Vec<(usize, (RunOutcomes, f64))>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(run) = runs.get(i) else { break };
                        // A run whose history cannot be read is left out, not guessed.
                        let replayed = catch_unwind(AssertUnwindSafe(|| {
                            run_outcomes(history, run, factories, config)
                        }));
                        if let Ok(r) = replayed {
                            mine.push((i, r));
                        }
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
    let mut replays = Replays {
        runs: Vec::with_capacity(runs.len()),
        per: Vec::with_capacity(runs.len()),
        share: 0.0,
    };
    for (run, result) in runs.iter().zip(results) {
        if let Some((per, share)) = result {
            replays.runs.push(run.clone());
            replays.per.push(per);
            replays.share += share;
        }
    }
    replays.share /= replays.per.len().max(1) as f64;
    replays
}
