//! The rollback rule: how an [`Evaluation`] is decided from baseline and canary metrics.
//!
//! # Rules, in order of precedence
//!
//! 1. **Insufficient data → `RollbackManual`.** Either arm has no sample count, a non-finite
//!    one, or fewer than `min_sample_count` requests. With too few samples every ratio is noise,
//!    in both directions, so a person decides. Zero traffic lands here.
//! 2. **A rollback threshold is crossed → `RollbackAuto`.** A critical metric beyond its
//!    rollback ratio: p99 > 150 % of baseline, error rate > 200 %, confidence < 80 %.
//! 3. **A judged metric has no data → `RollbackManual`.** A missing, NaN or infinite value on
//!    either side is never read as a good value, so it can never lead to `Proceed`. One
//!    exception: a non-critical metric measured on *neither* side (p50 left out of hand-built
//!    metrics) is reported as not measured and does not block on its own.
//! 4. **A critical metric is outside the proceed tolerance, or any metric crosses its warning
//!    ratio → `RollbackManual`.** This is the guide's "mixed performance" and "non-critical
//!    regression".
//! 5. **Otherwise → `Proceed`.**
//!
//! Ratios are `canary / max(baseline, floor)`. The floor decides the zero-baseline case (0 %
//! errors against 0.3 %), and values that are both at or under the floor compare as stable.
//! Informational metrics (request rate, whose ratio only reflects the traffic split) are
//! reported but never judged.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::{names, CanaryMetrics, Plausible};
use crate::thresholds::RollbackThresholds;

mod rules;
mod types;
pub use rules::{hold_incomplete, hold_stopped};

pub use types::{
    AnytimeInterval, ComparisonStatus, Condition, Criticality, Detectable, Direction, Evaluation,
    MetricComparison, MetricSpec, PodEvidence, RollbackDecision, Rule,
};

/// The guide's `RollbackPolicy`: thresholds plus the metrics they judge.
///
/// It deserializes from YAML or TOML and is validated on the way: an invalid policy never
/// exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedPolicy")]
pub struct RollbackPolicy {
    thresholds: RollbackThresholds,
    metrics: Vec<MetricSpec>,
}

/// A policy as read, before [`RollbackPolicy::validate`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UncheckedPolicy {
    thresholds: RollbackThresholds,
    metrics: Vec<MetricSpec>,
}

impl TryFrom<UncheckedPolicy> for RollbackPolicy {
    type Error = Error;
    fn try_from(p: UncheckedPolicy) -> Result<Self> {
        let policy = RollbackPolicy {
            thresholds: p.thresholds,
            metrics: p.metrics,
        };
        policy.validate()?;
        Ok(policy)
    }
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        let thresholds = RollbackThresholds::default();
        RollbackPolicy {
            metrics: default_metrics(&thresholds),
            thresholds,
        }
    }
}

/// The six built-in metrics, judged with `t`.
pub(crate) fn default_metrics(t: &RollbackThresholds) -> Vec<MetricSpec> {
    use Direction::*;
    let latency = |name| {
        MetricSpec::new(name, LowerIsBetter)
            .with_unit("ms")
            .with_floor(t.latency_floor_ms)
    };
    vec![
        latency(names::LATENCY_P50).with_warning_ratio(t.latency_p50_warning),
        latency(names::LATENCY_P95).with_warning_ratio(t.latency_p95_warning),
        latency(names::LATENCY_P99)
            .critical()
            .with_rollback_ratio(t.latency_p99_threshold),
        MetricSpec::new(names::ERROR_RATE, LowerIsBetter)
            .critical()
            .with_unit("%")
            .with_rollback_ratio(t.error_rate_threshold)
            .with_warning_ratio(t.error_rate_warning)
            .with_floor(t.error_rate_floor_percent),
        MetricSpec::new(names::MODEL_CONFIDENCE, HigherIsBetter)
            .critical()
            .with_rollback_ratio(t.confidence_threshold)
            .with_floor(t.confidence_floor),
        MetricSpec::new(names::REQUEST_RATE, HigherIsBetter)
            .informational()
            .with_unit("req/s"),
    ]
}

impl RollbackPolicy {
    /// The default metrics judged with `thresholds`, which are validated first.
    pub fn new(thresholds: RollbackThresholds) -> Result<Self> {
        thresholds.validate()?;
        Ok(RollbackPolicy {
            metrics: default_metrics(&thresholds),
            thresholds,
        })
    }

    /// Adds or replaces a metric; a replaced built-in keeps its place in reports.
    pub fn with_metric(mut self, spec: MetricSpec) -> Result<Self> {
        spec.validate()?;
        match self.metrics.iter_mut().find(|m| m.name == spec.name) {
            Some(slot) => *slot = spec,
            None => self.metrics.push(spec),
        }
        Ok(self)
    }

    /// Stops judging a metric, e.g. `model_confidence` for a service without a model.
    pub fn without_metric(mut self, name: &str) -> Self {
        self.metrics.retain(|m| m.name != name);
        self
    }

    /// The thresholds.
    pub fn thresholds(&self) -> &RollbackThresholds {
        &self.thresholds
    }

    /// The judged metrics, in report order.
    pub fn metrics(&self) -> &[MetricSpec] {
        &self.metrics
    }

    /// The spec of one metric.
    pub fn metric(&self, name: &str) -> Option<&MetricSpec> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Checks the thresholds and every metric spec.
    pub fn validate(&self) -> Result<()> {
        self.thresholds.validate()?;
        self.metrics.iter().try_for_each(MetricSpec::validate)
    }

    /// Checks that `metrics` holds only possible values: [`CanaryMetrics::validate`], then
    /// every judged metric against its spec's plausible range. The error names the metric,
    /// the value and the bound.
    pub fn check(&self, metrics: &CanaryMetrics) -> Result<()> {
        metrics.validate()?;
        for spec in &self.metrics {
            // Built-ins with their own range were just checked by `validate`.
            if Plausible::of_builtin(&spec.name) == Some(spec.plausible_range) {
                continue;
            }
            if let Some(v) = metrics.value(&spec.name) {
                if !spec.plausible_range.contains(v) {
                    return Err(metrics.invalid(
                        &spec.name,
                        v,
                        format!("implausible: must be {}", spec.plausible_range.describe()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks both arms with [`check`](Self::check), then judges them. An impossible or
    /// implausible value is an error, never a decision. Every entry point that takes metrics
    /// from outside (the validator, the bindings, the examples) calls this.
    pub fn try_evaluate(
        &self,
        baseline: &CanaryMetrics,
        canary: &CanaryMetrics,
    ) -> Result<Evaluation> {
        self.check(baseline)?;
        self.check(canary)?;
        Ok(self.evaluate(baseline, canary))
    }
}

#[cfg(test)]
mod tests;
