//! A judge's sensitivity chosen on one part of the history and measured on the other.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::runs::{outcomes, Outcome};
use super::summary::{healthy, summarise};
use super::{plan, BacktestConfig, Calibration, Healthy, History, PlannedRun, Tunable};
use crate::error::{Error, Result};

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
        let replays = outcomes(history, &early, &f, &aa_only, &|_, _| {});
        progress(step_done.fetch_add(1, Ordering::Relaxed) + 1, steps);
        let o: Vec<&Outcome> = replays.per.iter().map(|r| &r[0][0]).collect();
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
        let replays = outcomes(history, &late, &f, config, &|_, _| {});
        progress(step_done.fetch_add(1, Ordering::Relaxed) + 1, steps);
        summarise(
            history,
            &replays.runs,
            &replays.per,
            0,
            (t.name(), false),
            config,
        )
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
