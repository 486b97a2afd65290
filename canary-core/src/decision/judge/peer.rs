//! What the peer judges share: per-interval values from observations, and their evidence.

use std::time::Duration;

use crate::metrics::CanaryMetrics;
use crate::observation::{names, Observation};
use crate::policy::{
    ComparisonStatus, Condition, Criticality, Direction, Evaluation, MetricComparison,
    RollbackDecision, Rule,
};

use super::{derive_metrics, Verdict};

/// Both arms' observations so far, and when the next look is due.
#[derive(Debug, Default)]
pub(super) struct Looks {
    pub(super) baseline: Vec<Observation>,
    pub(super) canary: Vec<Observation>,
    /// Looks taken so far.
    pub(super) taken: u32,
}

impl Looks {
    /// Keeps the pair; true when a look is due at it: the first observation at least
    /// `(taken + 1) · every` into the run (a missing scrape delays a look, never skips it).
    fn push(&mut self, baseline: &Observation, canary: &Observation, every: Duration) -> bool {
        self.baseline.push(baseline.clone());
        self.canary.push(canary.clone());
        let due = every.saturating_mul(self.taken.saturating_add(1));
        if self.elapsed() >= due {
            self.taken += 1;
            true
        } else {
            false
        }
    }

    /// Keeps the pair and says what to answer without looking: the decision already made, or
    /// `Continue` while no look is due; `None` when a look is due now.
    pub(super) fn before_look(
        &mut self,
        decided: Option<&Evaluation>,
        baseline: &Observation,
        canary: &Observation,
        every: Duration,
    ) -> Option<Verdict> {
        if let Some(e) = decided {
            return Some(Verdict::Decided(Box::new(e.clone())));
        }
        (!self.push(baseline, canary, every)).then_some(Verdict::Continue)
    }

    /// Time since the first observation.
    pub(super) fn elapsed(&self) -> Duration {
        match (self.canary.first(), self.canary.last()) {
            (Some(a), Some(b)) => (b.at - a.at).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }
}

/// A value per `step` from the first observation to the last: what a `query_range` with that
/// step returns for `metric` (`p99` in ms, `error_rate` in %, `confidence`). Steps without a
/// value (no requests, a NaN gauge) are NaN, as Prometheus leaves them out.
pub(super) fn per_step(arm: &[Observation], step: Duration, metric: PeerMetric) -> Vec<f64> {
    let Some(first) = arm.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut due = first.at + chrono::Duration::from_std(step).unwrap_or_default();
    for (i, o) in arm.iter().enumerate() {
        if o.at >= due {
            out.push(metric.of(&derive_metrics(&arm[..=i], step)));
            due += chrono::Duration::from_std(step).unwrap_or_default();
        }
    }
    out
}

/// The metrics the peer judges read, as their users usually configure them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PeerMetric {
    /// p99 latency, ms.
    P99,
    /// Errors over requests, %.
    ErrorRate,
    /// Model confidence.
    Confidence,
}

impl PeerMetric {
    pub(super) fn of(self, m: &CanaryMetrics) -> f64 {
        match self {
            PeerMetric::P99 => m.latency_p99_ms,
            PeerMetric::ErrorRate => m.error_rate_percent,
            PeerMetric::Confidence => m.model_confidence,
        }
        .unwrap_or(f64::NAN)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            PeerMetric::P99 => "latency_p99",
            PeerMetric::ErrorRate => "error_rate",
            PeerMetric::Confidence => "model_confidence",
        }
    }

    pub(super) fn unit(self) -> &'static str {
        match self {
            PeerMetric::P99 => "ms",
            PeerMetric::ErrorRate => "%",
            PeerMetric::Confidence => "",
        }
    }

    pub(super) fn direction(self) -> Direction {
        match self {
            PeerMetric::Confidence => Direction::HigherIsBetter,
            _ => Direction::LowerIsBetter,
        }
    }
}

/// One metric's evidence as a comparison row.
pub(super) struct Row {
    pub(super) metric: PeerMetric,
    pub(super) baseline: Option<f64>,
    pub(super) canary: Option<f64>,
    pub(super) status: ComparisonStatus,
    pub(super) threshold: Option<f64>,
    pub(super) critical: bool,
    /// How the value was computed.
    pub(super) query: String,
    pub(super) no_data: Option<String>,
}

impl Row {
    fn comparison(self) -> MetricComparison {
        let ratio = match (self.baseline, self.canary) {
            (Some(b), Some(c)) if b != 0.0 && b.is_finite() && c.is_finite() => Some(c / b),
            _ => None,
        };
        MetricComparison {
            metric: self.metric.name().into(),
            unit: self.metric.unit().into(),
            direction: self.metric.direction(),
            criticality: if self.critical {
                Criticality::Critical
            } else {
                Criticality::NonCritical
            },
            baseline: self.baseline.filter(|v| v.is_finite()),
            canary: self.canary.filter(|v| v.is_finite()),
            ratio,
            change_percent: ratio.map(|r| (r - 1.0) * 100.0),
            status: self.status,
            rollback_threshold: None,
            warning_threshold: None,
            proceed_tolerance: 0.0,
            floor: 0.0,
            floor_applied: false,
            no_data_reason: self.no_data,
            baseline_query: self.baseline.map(|_| self.query.clone()),
            canary_query: Some(self.query),
            interval: None,
            // A peer's limit is on the canary's own value, not a ratio to production's.
            rule: self.threshold.map(|t| {
                let side = match self.metric.direction() {
                    Direction::HigherIsBetter => "below",
                    _ => "above",
                };
                format!(
                    "a check fails {side} {}",
                    crate::format::value_text(Some(t), self.metric.unit())
                )
            }),
        }
    }
}

/// A decision with its evidence. `conditions` are (rule, metric, message), most decisive first.
pub(super) fn evaluation(
    decision: RollbackDecision,
    reason: String,
    conditions: Vec<(Rule, Option<&str>, String)>,
    rows: Vec<Row>,
    looks: &Looks,
) -> Evaluation {
    let version = |arm: &[Observation]| {
        arm.last()
            .map(|o| o.version.as_str().to_owned())
            .unwrap_or_default()
    };
    let samples = |arm: &[Observation]| {
        let (a, b) = (arm.first()?, arm.last()?);
        let d = b.counters.get(names::REQUESTS)? - a.counters.get(names::REQUESTS)?;
        (d >= 0.0).then_some(d)
    };
    Evaluation {
        decision,
        primary_reason: reason,
        triggered_conditions: conditions
            .into_iter()
            .map(|(rule, metric, message)| Condition {
                rule,
                metric: metric.map(str::to_owned),
                message,
            })
            .collect(),
        comparisons: rows.into_iter().map(Row::comparison).collect(),
        recommendation: recommendation(decision).into(),
        baseline_version: version(&looks.baseline),
        canary_version: version(&looks.canary),
        baseline_samples: samples(&looks.baseline),
        canary_samples: samples(&looks.canary),
        min_sample_count: 0.0,
        warnings: Vec::new(),
    }
}

/// What a judge's decision asks the person on call to do.
pub(super) fn recommendation(decision: RollbackDecision) -> &'static str {
    match decision {
        RollbackDecision::Proceed => "Promote the canary.",
        RollbackDecision::RollbackAuto => "Roll the canary back.",
        RollbackDecision::RollbackManual => "Hold the canary and have a person review it.",
    }
}
