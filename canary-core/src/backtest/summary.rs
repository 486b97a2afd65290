//! From the runs' outcomes to each judge's report.

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::runs::Outcome;
use super::{BacktestConfig, FailedRun, Healthy, History, Injected, JudgeBacktest, PlannedRun};
use super::{Rate, Slot, Times};
use crate::policy::RollbackDecision;

pub(super) fn healthy(outcomes: &[&Outcome]) -> Healthy {
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
pub(super) fn summarise(
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
    // The same start and pods is the same run (the plan may draw it more than once): listed
    // once, with how many times it failed.
    let mut failures: Vec<FailedRun> = Vec::new();
    for (run, o) in runs
        .iter()
        .zip(&aa)
        .filter(|(_, o)| o.decision != RollbackDecision::Proceed)
    {
        let start = history.at(run.from);
        let canary_pods: Vec<String> = run
            .canary
            .iter()
            .map(|&p| history.pods[p].name.clone())
            .collect();
        if let Some(same) = failures
            .iter_mut()
            .find(|f| f.start == start && f.canary_pods == canary_pods)
        {
            same.times += 1;
            continue;
        }
        if failures.len() >= config.keep_failures {
            continue;
        }
        failures.push(FailedRun {
            start,
            decided_at: start + chrono::Duration::milliseconds((o.seconds * 1000.0) as i64),
            canary_pods,
            decision: o.decision,
            reason: o.reason.clone(),
            metric: o.metric.clone(),
            times: 1,
            link: None,
        });
    }
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

pub(super) fn notes(
    history: &History,
    config: &BacktestConfig,
    planned: usize,
    runs: usize,
) -> Vec<String> {
    let mut notes = history.notes.clone();
    if runs < planned {
        notes.push(format!(
            "{} of {planned} planned runs could not be replayed (reading their history failed) \
             and are left out",
            planned - runs
        ));
    }
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
