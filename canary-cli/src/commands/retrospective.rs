//! `canary analyze --judge NAME [--since T] [--until U]`: any judge over a past (or running)
//! canary's run, replayed from its start exactly as `canary serve` and the validator judge it.
//! The outputs and exit codes are `analyze`'s.

use std::time::Duration;

use canary_core::judge::replay::{run_start, MinTraffic, ReplayBounds, Replayed, Run};
use canary_core::judge::SequencePoint;
use canary_core::observation::{ObservationQuery, ObservationSource};
use canary_core::report::SeriesPair;
use canary_core::{Arm, Evaluation, MetricsQuery, RollbackDecision, ValidatorConfig, Version};
use canary_prometheus::PrometheusSource;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{config, JudgeName};

/// What a retrospective found.
#[derive(Debug, Serialize)]
pub struct Retrospective {
    /// The judge.
    pub judge: String,
    /// The run's start (given, or where the canary's series begin).
    pub start: DateTime<Utc>,
    /// The last instant judged.
    pub end: DateTime<Utc>,
    /// Observation pairs fed to the judge.
    pub looks: u64,
    /// The end asked for (`--until`, or now): `end` is earlier when the run's maximum
    /// duration ends first or the store has nothing later.
    pub until: DateTime<Utc>,
    /// The observations' step.
    #[serde(skip)]
    pub step: Duration,
    /// When the decision was made: the instant of the look the judge decided on, or the end
    /// where it was made to decide. `None` without a decision.
    pub decided_at: Option<DateTime<Utc>>,
    /// The decision and its evidence; `None` when the judge had not decided by `end`
    /// (`undecided`) or had nothing to judge (a person decides: exit 2).
    pub evaluation: Option<Evaluation>,
    /// The judge is still collecting evidence: ask again later (exit 4), not a person's call.
    pub undecided: bool,
    /// Why there is no evaluation.
    pub reason: Option<String>,
    /// While undecided: each metric as it stands, an open one saying what it still needs.
    pub progress: Vec<canary_core::MetricComparison>,
    /// The judge's evidence over time (the sequential judge's intervals at each look).
    pub sequence: Vec<SequencePoint>,
}

impl Retrospective {
    /// The decision it stands for, `None` while the judge is still collecting evidence;
    /// nothing to judge is a person's call.
    pub fn decision(&self) -> Option<RollbackDecision> {
        match &self.evaluation {
            Some(e) => Some(e.decision),
            None if self.undecided => None,
            None => Some(RollbackDecision::RollbackManual),
        }
    }

    /// The decision's word: `continue` while undecided.
    pub fn word(&self) -> &'static str {
        self.decision().map_or("continue", RollbackDecision::as_str)
    }

    /// One line on what was judged when, for every rendering.
    pub fn heading(&self) -> String {
        let time = canary_core::format::instant;
        let into = |t: DateTime<Utc>| {
            canary_core::format::duration(
                (t - self.start).num_milliseconds().max(0) as f64 / 1000.0,
            )
        };
        let mut h = match self.decided_at {
            Some(at) => format!(
                "{} judge: decided at {}, {} into the run that started at {} ({} observations of each arm)",
                self.judge,
                time(at),
                into(at),
                time(self.start),
                self.looks
            ),
            None => format!(
                "{} judge over {} to {}, {} ({} observations of each arm){}",
                self.judge,
                time(self.start),
                time(self.end),
                into(self.end),
                self.looks,
                if self.undecided {
                    ": not decided yet"
                } else {
                    ""
                }
            ),
        };
        // An end more than a step before the one asked for: the maximum duration, or a store
        // with nothing later.
        if self.until - self.end > chrono::Duration::from_std(self.step).unwrap_or_default()
            && self.decided_at.is_none_or(|d| d >= self.end)
        {
            h.push_str(&format!(
                "; the evidence ends at {}, before the {} asked for",
                time(self.end),
                time(self.until)
            ));
        }
        h
    }
}

/// Replays `judge` over the canary's run from `since` (default: where its series begin in
/// the `serve.start_lookback` before `until`) to `until` or the maximum duration.
#[allow(clippy::too_many_arguments)]
pub async fn judge_run(
    source: &PrometheusSource,
    file: Option<&config::CanaryConfig>,
    judge: JudgeName,
    baseline: &Version,
    canary: &Version,
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
) -> canary_core::Result<Retrospective> {
    let invalid = |field: &str, reason: String| canary_core::Error::InvalidConfig {
        field: field.into(),
        reason,
    };
    let validator = file.map_or_else(ValidatorConfig::default, |f| f.validator.clone());
    let policy = config::policy(file).map_err(|e| invalid("thresholds", e))?;
    let tunable = crate::commands::backtest::tunable(judge, file, &policy, &validator);
    let mut judge = tunable.factory().start()?;
    let step = validator.judge_step;
    let lookback = file.map_or_else(
        || canary_serve::ServeConfig::default().start_lookback,
        |f| f.serve.start_lookback,
    );
    let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let start = match since {
        Some(s) if s >= until => {
            return Err(invalid(
                "since",
                format!("{s} is not before the end, {until}"),
            ));
        }
        Some(s) => s,
        None => {
            let from = until.checked_sub_signed(span(lookback)).unwrap_or(until);
            let q = ObservationQuery::new(canary.clone(), Arm::Canary, from, until, step);
            let c = source.observe(&q).await?;
            match run_start(&c, from, until, step) {
                Some(s) => s.at,
                None => {
                    return Ok(Retrospective {
                        judge: judge.name().to_owned(),
                        start: from,
                        end: until,
                        until,
                        step,
                        decided_at: None,
                        looks: 0,
                        evaluation: None,
                        undecided: false,
                        progress: Vec::new(),
                        reason: Some(format!(
                            "insufficient data: the canary {canary} has no series in the {} \
                             before {until}; give --since",
                            canary_core::format::duration(lookback.as_secs_f64())
                        )),
                        sequence: Vec::new(),
                    })
                }
            }
        }
    };
    let bounds = ReplayBounds {
        start,
        at: until,
        max_duration: validator.max_duration,
        step,
    };
    let end = bounds.end();
    let cq = ObservationQuery::new(canary.clone(), Arm::Canary, start, end, step);
    let bq = ObservationQuery::new(baseline.clone(), Arm::Baseline, start, end, step);
    let (c, b) = futures::join!(source.observe(&cq), source.observe(&bq));
    let (c, b) = (c?, b?);
    let mut run = Run::within(judge.as_mut(), &bounds)
        .with_min_traffic(MinTraffic::of(&policy, validator.analysis_window))
        .with_queries(source.describe(&bq), source.describe(&cq));
    let answered = run.advance(&b, &c, bounds.at);
    let (decided_at, progress) = (run.decided_at(), run.progress());
    let undecided = matches!(answered, Replayed::Continue { .. });
    // The evidence ends at the last instant either arm has, not at the end asked for.
    let end = c
        .iter()
        .chain(&b)
        .map(|o| o.at)
        .filter(|t| *t <= end)
        .max()
        .unwrap_or(end);
    let (evaluation, reason, looks) = match answered {
        Replayed::Decided { evaluation, looks } => (Some(*evaluation), None, looks),
        Replayed::Continue {
            looks,
            remaining,
            waiting_for,
        } => (
            None,
            Some(format!(
                "still collecting evidence: {looks} observations of each arm from {} to {}; {}the {} judge \
                 decides within another {} (analyse again later, or with a later --until)",
                canary_core::format::instant(start),
                canary_core::format::instant(end),
                waiting_for
                    .map(|w| format!("waiting for {w}; "))
                    .unwrap_or_default(),
                judge.name(),
                canary_core::format::duration(remaining.as_secs_f64())
            )),
            looks,
        ),
        Replayed::Insufficient { reason, looks } => (None, Some(reason), looks),
    };
    Ok(Retrospective {
        judge: judge.name().to_owned(),
        start,
        end,
        until,
        step,
        decided_at,
        looks,
        evaluation,
        undecided,
        reason,
        progress: if undecided { progress } else { Vec::new() },
        sequence: judge.sequence(),
    })
}

/// The JSON of `canary analyze --judge`: the evaluation's (as `analyze` prints it; a
/// `rollback_manual` with the reason when there is none) and a `retrospective` object.
pub fn to_json(r: &Retrospective) -> Result<serde_json::Value, String> {
    let mut v = match &r.evaluation {
        Some(e) => serde_json::to_value(e).map_err(|e| e.to_string())?,
        None => serde_json::json!({
            "decision": r.word(),
            "primary_reason": r.reason,
            "comparisons": r.progress,
        }),
    };
    v["retrospective"] = serde_json::json!({
        "judge": r.judge, "start": r.start, "end": r.end, "until": r.until,
        "decided_at": r.decided_at, "looks": r.looks,
        "heading": r.heading(), "reason": r.reason, "sequence": r.sequence,
    });
    Ok(v)
}

/// The charts' series over the judged run (a chart is never evidence: none on failure).
pub async fn series(
    source: &PrometheusSource,
    r: &Retrospective,
    baseline: &Version,
    canary: &Version,
) -> Vec<SeriesPair> {
    // The charts span what was judged: to the decision, not past it.
    let end = r.decided_at.unwrap_or(r.end);
    let window = (end - r.start).to_std().unwrap_or_default();
    if window < Duration::from_secs(1) {
        return Vec::new();
    }
    let b = MetricsQuery::new(baseline.clone(), Arm::Baseline, window).at(end);
    let c = MetricsQuery::new(canary.clone(), Arm::Canary, window).at(end);
    SeriesPair::fetch(source, &b, &c, ValidatorConfig::default().judge_step)
        .await
        .unwrap_or_else(|e| {
            eprintln!("warning: no charts: {}", canary_core::error::chain(&e));
            Vec::new()
        })
}
