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

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::format::{num, value_text};
use crate::format::{Num, ValueText};
use crate::metrics::{names, CanaryMetrics, Plausible};
use crate::thresholds::{
    check, is_floor, is_fraction, is_ratio, RollbackThresholds, FRACTION_REQUIREMENT,
    RATIO_REQUIREMENT,
};

/// What to do with the canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackDecision {
    /// Promote the canary.
    Proceed,
    /// Roll the canary back without asking.
    RollbackAuto,
    /// A person must decide.
    RollbackManual,
}

impl RollbackDecision {
    /// The serialized name: `proceed`, `rollback_auto` or `rollback_manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackDecision::Proceed => "proceed",
            RollbackDecision::RollbackAuto => "rollback_auto",
            RollbackDecision::RollbackManual => "rollback_manual",
        }
    }

    /// How close the decision is to promotion: 0 for `RollbackAuto`, 1 for `RollbackManual`, 2
    /// for `Proceed`. A worse canary never has a higher rank.
    pub fn rank(self) -> u8 {
        match self {
            RollbackDecision::RollbackAuto => 0,
            RollbackDecision::RollbackManual => 1,
            RollbackDecision::Proceed => 2,
        }
    }

    /// The more cautious of two decisions.
    pub fn most_cautious(self, other: RollbackDecision) -> RollbackDecision {
        if other.rank() < self.rank() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for RollbackDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way is better for a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Latency, error rate: an increase is a regression.
    LowerIsBetter,
    /// Confidence, conversion: a decrease is a regression.
    HigherIsBetter,
}

/// How much a metric counts in the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// Can roll back on its own; must be within tolerance to proceed.
    Critical,
    /// Needs manual review beyond its warning ratio; otherwise does not block.
    NonCritical,
    /// Reported as evidence only.
    Informational,
}

/// How one metric is judged. Built-in and user metrics are judged by the same code.
///
/// Ratios are canary / baseline. For a lower-is-better metric the rollback and warning ratios
/// are > 1 (an increase); for a higher-is-better metric they are in (0, 1] (a decrease). Ratios
/// assume non-negative values; a negative value counts as no data.
///
/// ```
/// use canary_core::{Direction, MetricSpec, RollbackPolicy};
/// let conversion = MetricSpec::new("conversion_rate", Direction::HigherIsBetter)
///     .critical()
///     .with_rollback_ratio(0.9)
///     .with_floor(0.001);
/// let policy = RollbackPolicy::default().with_metric(conversion).unwrap();
/// assert!(policy.metric("conversion_rate").is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    /// The metric's name: a built-in name or a key of [`CanaryMetrics::custom`].
    pub name: String,
    /// Unit shown in reports (`ms`, `%`, ...).
    #[serde(default)]
    pub unit: String,
    /// Which way is better.
    pub direction: Direction,
    /// How much it counts.
    pub criticality: Criticality,
    /// Crossing this ratio rolls back automatically. Critical metrics only.
    #[serde(default)]
    pub rollback_ratio: Option<f64>,
    /// Crossing this ratio needs manual review.
    #[serde(default)]
    pub warning_ratio: Option<f64>,
    /// Overrides the policy's proceed tolerance for this metric. Must be > 1.
    #[serde(default)]
    pub proceed_tolerance: Option<f64>,
    /// Ratios are taken against at least this baseline. Must be > 0.
    pub floor: f64,
    /// Values outside this range are faults, not data: [`RollbackPolicy::check`] refuses them
    /// and [`RollbackPolicy::evaluate`] never judges them. Built-ins have fixed ranges (see
    /// [`Plausible`]); a user metric defaults to ±1e15.
    #[serde(default = "user_default_range")]
    pub plausible_range: Plausible,
}

fn user_default_range() -> Plausible {
    Plausible::USER_DEFAULT
}

impl MetricSpec {
    /// The default floor of a user metric: tiny, so only a true zero baseline is affected.
    pub const DEFAULT_FLOOR: f64 = 1e-9;

    /// A non-critical metric with no thresholds of its own.
    pub fn new(name: impl Into<String>, direction: Direction) -> Self {
        let name = name.into();
        MetricSpec {
            unit: String::new(),
            direction,
            criticality: Criticality::NonCritical,
            rollback_ratio: None,
            warning_ratio: None,
            proceed_tolerance: None,
            floor: Self::DEFAULT_FLOOR,
            plausible_range: Plausible::of_builtin(&name).unwrap_or(Plausible::USER_DEFAULT),
            name,
        }
    }

    /// Makes the metric critical.
    pub fn critical(mut self) -> Self {
        self.criticality = Criticality::Critical;
        self
    }
    /// Makes the metric evidence only.
    pub fn informational(mut self) -> Self {
        self.criticality = Criticality::Informational;
        self
    }
    /// Sets the unit shown in reports.
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into();
        self
    }
    /// Sets the automatic-rollback ratio.
    pub fn with_rollback_ratio(mut self, ratio: f64) -> Self {
        self.rollback_ratio = Some(ratio);
        self
    }
    /// Sets the manual-review ratio.
    pub fn with_warning_ratio(mut self, ratio: f64) -> Self {
        self.warning_ratio = Some(ratio);
        self
    }
    /// Sets a proceed tolerance for this metric alone.
    pub fn with_proceed_tolerance(mut self, tolerance: f64) -> Self {
        self.proceed_tolerance = Some(tolerance);
        self
    }
    /// Sets the floor that ratios are taken against.
    pub fn with_floor(mut self, floor: f64) -> Self {
        self.floor = floor;
        self
    }
    /// Sets the range of plausible values; anything outside is refused, never judged.
    pub fn with_plausible_range(mut self, min: f64, max: f64) -> Self {
        self.plausible_range = Plausible::new(min, max);
        self
    }

    /// Checks the spec; the error names the metric and field.
    pub fn validate(&self) -> Result<()> {
        let config = |reason: &str| Error::InvalidConfig {
            field: format!("metric {:?}", self.name),
            reason: reason.to_owned(),
        };
        if self.name.trim().is_empty() {
            return Err(config("a metric needs a name"));
        }
        if self.name == names::SAMPLE_COUNT {
            return Err(config(
                "sample_count decides data sufficiency (min_sample_count); it is not judged as a metric",
            ));
        }
        let field = |f: &str| format!("{}.{f}", self.name);
        let (ok, requirement): (fn(f64) -> bool, _) = match self.direction {
            Direction::LowerIsBetter => (is_ratio, RATIO_REQUIREMENT),
            Direction::HigherIsBetter => (is_fraction, FRACTION_REQUIREMENT),
        };
        if let Some(r) = self.rollback_ratio {
            if self.criticality != Criticality::Critical {
                return Err(config("only a critical metric can roll back on its own"));
            }
            check(&field("rollback_ratio"), r, ok(r), requirement)?;
        }
        if let Some(w) = self.warning_ratio {
            if self.criticality == Criticality::Informational {
                return Err(config("an informational metric has no warning ratio"));
            }
            check(&field("warning_ratio"), w, ok(w), requirement)?;
        }
        if let Some(t) = self.proceed_tolerance {
            check(
                &field("proceed_tolerance"),
                t,
                is_ratio(t),
                RATIO_REQUIREMENT,
            )?;
        }
        check(
            &field("floor"),
            self.floor,
            is_floor(self.floor),
            "must be a finite number > 0",
        )?;
        if !self.plausible_range.is_valid() {
            return Err(config("plausible_range must be finite, with min <= max"));
        }
        Ok(())
    }

    /// Whether `ratio` is beyond `limit` in this metric's bad direction.
    fn beyond(&self, ratio: f64, limit: f64) -> bool {
        match self.direction {
            Direction::LowerIsBetter => ratio > limit,
            Direction::HigherIsBetter => ratio < limit,
        }
    }
}

/// How a metric moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonStatus {
    /// Better than baseline beyond the proceed tolerance.
    Improved,
    /// Worse than baseline beyond the proceed tolerance.
    Degraded,
    /// Within the proceed tolerance.
    Stable,
    /// Not measured on one side or both, or not a usable number.
    NoData,
}

/// The evidence for one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// The metric's name.
    pub metric: String,
    /// Its unit.
    pub unit: String,
    /// Which way is better.
    pub direction: Direction,
    /// How much it counts.
    pub criticality: Criticality,
    /// The baseline's value, if measured.
    pub baseline: Option<f64>,
    /// The canary's value, if measured.
    pub canary: Option<f64>,
    /// `canary / max(baseline, floor)`; `None` without data.
    pub ratio: Option<f64>,
    /// `(canary - baseline) / baseline × 100`; `None` without data or with a zero baseline.
    pub change_percent: Option<f64>,
    /// How it moved.
    pub status: ComparisonStatus,
    /// The automatic-rollback ratio, if any.
    pub rollback_threshold: Option<f64>,
    /// The manual-review ratio, if any.
    pub warning_threshold: Option<f64>,
    /// The proceed tolerance applied.
    pub proceed_tolerance: f64,
    /// The floor applied to the baseline.
    pub floor: f64,
    /// Whether the baseline was below the floor, so the floor was the denominator.
    pub floor_applied: bool,
    /// Why there is no data, when `status` is `no_data`.
    pub no_data_reason: Option<String>,
    /// The query that produced the baseline value.
    pub baseline_query: Option<String>,
    /// The query that produced the canary value.
    pub canary_query: Option<String>,
}

/// The rule behind a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Too few samples, or no sample count, in an arm.
    InsufficientSamples,
    /// A rollback threshold was crossed.
    RollbackThreshold,
    /// A judged metric had no usable value.
    MissingData,
    /// A critical metric was outside the proceed tolerance.
    ProceedTolerance,
    /// A warning ratio was crossed.
    WarningThreshold,
    /// The user's business (A/B) check did not pass.
    BusinessCheck,
}

/// One rule that fired, with its metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// The rule.
    pub rule: Rule,
    /// The metric it fired on, if any.
    pub metric: Option<String>,
    /// What happened, for people.
    pub message: String,
}

/// The result of judging a canary against its baseline, with all its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// What to do.
    pub decision: RollbackDecision,
    /// The main reason, for people.
    pub primary_reason: String,
    /// Every rule that fired, most decisive first.
    pub triggered_conditions: Vec<Condition>,
    /// One comparison per metric of the policy.
    pub comparisons: Vec<MetricComparison>,
    /// What the person on call should do.
    pub recommendation: String,
    /// The baseline's version label.
    pub baseline_version: String,
    /// The canary's version label.
    pub canary_version: String,
    /// Requests seen in the baseline arm.
    pub baseline_samples: Option<f64>,
    /// Requests seen in the canary arm.
    pub canary_samples: Option<f64>,
    /// The minimum per arm.
    pub min_sample_count: f64,
    /// Warnings from the sources (e.g. Prometheus), prefixed with the arm.
    pub warnings: Vec<String>,
}

impl Evaluation {
    /// The comparison of one metric.
    pub fn comparison(&self, metric: &str) -> Option<&MetricComparison> {
        self.comparisons.iter().find(|c| c.metric == metric)
    }

    /// Whether a rule fired.
    pub fn fired(&self, rule: Rule) -> bool {
        self.triggered_conditions.iter().any(|c| c.rule == rule)
    }
}

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
pub fn default_metrics(t: &RollbackThresholds) -> Vec<MetricSpec> {
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

    /// Judges `canary` against `baseline`. Never fails: bad data is a decision, with reasons;
    /// a value outside its plausible range counts as no data, so it can never lead to
    /// `Proceed`. Prefer [`try_evaluate`](Self::try_evaluate), which refuses such values.
    pub fn evaluate(&self, baseline: &CanaryMetrics, canary: &CanaryMetrics) -> Evaluation {
        let comparisons: Vec<MetricComparison> = self
            .metrics
            .iter()
            .map(|spec| self.compare(spec, baseline, canary))
            .collect();

        let mut insufficient = Vec::new();
        for (arm, m) in [("baseline", baseline), ("canary", canary)] {
            if let Some(message) = self.sample_problem(arm, m) {
                insufficient.push(Condition {
                    rule: Rule::InsufficientSamples,
                    metric: Some(names::SAMPLE_COUNT.to_owned()),
                    message,
                });
            }
        }

        let mut rollbacks = Vec::new();
        let mut missing = Vec::new();
        let mut regressions = Vec::new();
        for (spec, c) in self.metrics.iter().zip(&comparisons) {
            if spec.criticality == Criticality::Informational {
                continue;
            }
            let Some(ratio) = c.ratio else {
                // A non-critical metric measured on neither side (p50 left out of hand-built
                // metrics) is reported as not measured; it does not block on its own. A
                // critical one, or one missing on a single side, always does.
                if spec.criticality == Criticality::NonCritical
                    && c.baseline.is_none()
                    && c.canary.is_none()
                {
                    continue;
                }
                missing.push(condition(
                    Rule::MissingData,
                    c,
                    format!(
                        "no data for {}: {}",
                        c.metric,
                        c.no_data_reason.as_deref().unwrap_or("not measured")
                    ),
                ));
                continue;
            };
            let under_floor =
                c.baseline.unwrap_or(0.0) <= spec.floor && c.canary.unwrap_or(0.0) <= spec.floor;
            if under_floor {
                continue;
            }
            if let Some(limit) = spec.rollback_ratio.filter(|&r| spec.beyond(ratio, r)) {
                rollbacks.push(condition(
                    Rule::RollbackThreshold,
                    c,
                    format!(
                        "{} went from {} to {} ({}× baseline; rollback threshold {}×)",
                        c.metric,
                        ValueText(c.baseline, &c.unit),
                        ValueText(c.canary, &c.unit),
                        Num(ratio),
                        Num(limit)
                    ),
                ));
            }
            if spec.criticality == Criticality::Critical && c.status == ComparisonStatus::Degraded {
                regressions.push(condition(
                    Rule::ProceedTolerance,
                    c,
                    format!(
                        "{} is {}× baseline ({} vs {}), outside the {}× proceed tolerance",
                        c.metric,
                        Num(ratio),
                        ValueText(c.canary, &c.unit),
                        ValueText(c.baseline, &c.unit),
                        Num(c.proceed_tolerance)
                    ),
                ));
            }
            if let Some(limit) = spec.warning_ratio.filter(|&w| spec.beyond(ratio, w)) {
                regressions.push(condition(
                    Rule::WarningThreshold,
                    c,
                    format!(
                        "{} is {}× baseline ({} vs {}), beyond the {}× warning threshold",
                        c.metric,
                        Num(ratio),
                        ValueText(c.canary, &c.unit),
                        ValueText(c.baseline, &c.unit),
                        Num(limit)
                    ),
                ));
            }
        }

        let improved: Vec<&str> = comparisons
            .iter()
            .filter(|c| c.status == ComparisonStatus::Improved)
            .map(|c| c.metric.as_str())
            .collect();
        let canary_v = &canary.version;
        let (decision, primary_reason, recommendation) = if let Some(first) = insufficient.first() {
            (
                RollbackDecision::RollbackManual,
                format!("insufficient data: {}", first.message),
                format!(
                    "Do not promote {canary_v} yet. Wait longer or send more traffic to the canary, \
                     then analyse again; if a series is missing, check the version label and the queries."
                ),
            )
        } else if !rollbacks.is_empty() {
            (
                RollbackDecision::RollbackAuto,
                rollbacks[0].message.clone(),
                format!(
                    "Roll back {canary_v} now and investigate {}.",
                    metric_list(&rollbacks)
                ),
            )
        } else if let Some(first) = missing.first() {
            (
                RollbackDecision::RollbackManual,
                format!("insufficient data: {}", first.message),
                format!(
                    "Do not promote {canary_v}: {} could not be measured. Check that the metric \
                     is exported with the version label and that its query is right.",
                    metric_list(&missing)
                ),
            )
        } else if let Some(first) = regressions.first() {
            let reason = if improved.is_empty() {
                first.message.clone()
            } else {
                format!(
                    "mixed results: {} improved, but {}",
                    improved.join(", "),
                    first.message
                )
            };
            (
                RollbackDecision::RollbackManual,
                reason,
                format!(
                    "A person should review {} before {canary_v} is promoted or rolled back.",
                    metric_list(&regressions)
                ),
            )
        } else {
            (
                RollbackDecision::Proceed,
                format!(
                    "every critical metric is within {}× of baseline and no warning threshold was crossed",
                    Num(self.thresholds.proceed_tolerance)
                ),
                format!("Promote {canary_v}."),
            )
        };

        let mut warnings = Vec::new();
        for (arm, m) in [("baseline", baseline), ("canary", canary)] {
            warnings.extend(m.warnings.iter().map(|w| format!("{arm}: {w}")));
        }
        let mut triggered_conditions = insufficient;
        triggered_conditions.extend(rollbacks);
        triggered_conditions.extend(missing);
        triggered_conditions.extend(regressions);

        Evaluation {
            decision,
            primary_reason,
            triggered_conditions,
            comparisons,
            recommendation,
            baseline_version: baseline.version.clone(),
            canary_version: canary.version.clone(),
            baseline_samples: baseline.sample_count,
            canary_samples: canary.sample_count,
            min_sample_count: self.thresholds.min_sample_count,
            warnings,
        }
    }

    fn sample_problem(&self, arm: &str, m: &CanaryMetrics) -> Option<String> {
        let min = self.thresholds.min_sample_count;
        match m.sample_count {
            None => Some(format!("{arm} {} has no sample count", m.version)),
            Some(n) if !Plausible::SAMPLE_COUNT.contains(n) => Some(format!(
                "{arm} {} has an unusable sample count ({}; must be {})",
                m.version,
                Num(n),
                Plausible::SAMPLE_COUNT.describe()
            )),
            Some(n) if n < min => Some(format!(
                "{arm} {} has {} requests, fewer than the {} required",
                m.version,
                Num(n),
                Num(min)
            )),
            Some(_) => None,
        }
    }

    fn compare(
        &self,
        spec: &MetricSpec,
        baseline: &CanaryMetrics,
        canary: &CanaryMetrics,
    ) -> MetricComparison {
        let b = baseline.value(&spec.name);
        let c = canary.value(&spec.name);
        let tolerance = spec
            .proceed_tolerance
            .unwrap_or(self.thresholds.proceed_tolerance);
        let mut out = MetricComparison {
            metric: spec.name.clone(),
            unit: spec.unit.clone(),
            direction: spec.direction,
            criticality: spec.criticality,
            baseline: b,
            canary: c,
            ratio: None,
            change_percent: None,
            status: ComparisonStatus::NoData,
            rollback_threshold: spec.rollback_ratio,
            warning_threshold: spec.warning_ratio,
            proceed_tolerance: tolerance,
            floor: spec.floor,
            floor_applied: false,
            no_data_reason: None,
            baseline_query: baseline.queries.get(&spec.name).cloned(),
            canary_query: canary.queries.get(&spec.name).cloned(),
        };
        let problem = |arm: &str, m: &CanaryMetrics, v: Option<f64>| match v {
            None => Some(format!("{arm} {} has no value", m.version)),
            Some(x) if !x.is_finite() => Some(format!("{arm} {} is {x}", m.version)),
            Some(x) if x < 0.0 => Some(format!(
                "{arm} {} is negative ({}), which a ratio cannot judge",
                m.version,
                Num(x)
            )),
            Some(x) if !spec.plausible_range.contains(x) => Some(format!(
                "{arm} {} is implausible ({}; must be {})",
                m.version,
                Num(x),
                spec.plausible_range.describe()
            )),
            Some(_) => None,
        };
        let reasons: Vec<String> = [
            problem("baseline", baseline, b),
            problem("canary", canary, c),
        ]
        .into_iter()
        .flatten()
        .collect();
        let (Some(b), Some(c), true) = (b, c, reasons.is_empty()) else {
            out.no_data_reason = Some(if b.is_none() && c.is_none() {
                "not measured on either side".to_owned()
            } else {
                reasons.join("; ")
            });
            return out;
        };
        let ratio = c / b.max(spec.floor);
        out.ratio = Some(ratio);
        out.floor_applied = b < spec.floor;
        out.change_percent = (b != 0.0).then(|| (c - b) / b * 100.0);
        out.status = if b <= spec.floor && c <= spec.floor {
            ComparisonStatus::Stable
        } else if spec.beyond(ratio, bad_limit(spec.direction, tolerance)) {
            ComparisonStatus::Degraded
        } else if spec.beyond(ratio, good_limit(spec.direction, tolerance)) {
            ComparisonStatus::Stable
        } else {
            ComparisonStatus::Improved
        };
        out
    }
}

/// The ratio past which a metric is degraded.
fn bad_limit(direction: Direction, tolerance: f64) -> f64 {
    match direction {
        Direction::LowerIsBetter => tolerance,
        Direction::HigherIsBetter => 1.0 / tolerance,
    }
}

/// The ratio past which (in the bad direction) a metric is no longer improved.
fn good_limit(direction: Direction, tolerance: f64) -> f64 {
    match direction {
        Direction::LowerIsBetter => 1.0 / tolerance,
        Direction::HigherIsBetter => tolerance,
    }
}

fn condition(rule: Rule, c: &MetricComparison, message: String) -> Condition {
    Condition {
        rule,
        metric: Some(c.metric.clone()),
        message,
    }
}

fn metric_list(conditions: &[Condition]) -> String {
    let mut names: Vec<&str> = conditions
        .iter()
        .filter_map(|c| c.metric.as_deref())
        .collect();
    names.dedup();
    names.join(", ")
}

#[cfg(test)]
mod tests;
