//! Where the pseudo-canary runs start and which pods each takes.

use serde::{Deserialize, Serialize};

use super::{BacktestConfig, History};
use crate::error::{Error, Result};

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
