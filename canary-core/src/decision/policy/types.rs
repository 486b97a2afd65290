//! The policy's data: decisions, metric specs, comparisons, conditions and evaluations.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::{names, Plausible};
use crate::thresholds::{
    check, is_floor, is_fraction, is_ratio, FRACTION_REQUIREMENT, RATIO_REQUIREMENT,
};

/// What to do with the canary.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Latency, error rate: an increase is a regression.
    LowerIsBetter,
    /// Confidence, conversion: a decrease is a regression.
    HigherIsBetter,
}

/// How much a metric counts in the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MetricSpec {
    /// The metric's name: a built-in name or a key of [`CanaryMetrics::custom`](crate::CanaryMetrics::custom).
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
    /// Values outside this range are faults, not data: [`RollbackPolicy::check`](crate::RollbackPolicy::check) refuses them
    /// and [`RollbackPolicy::evaluate`](crate::RollbackPolicy::evaluate) never judges them. Built-ins have fixed ranges (see
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
    pub(super) fn beyond(&self, ratio: f64, limit: f64) -> bool {
        match self.direction {
            Direction::LowerIsBetter => ratio > limit,
            Direction::HigherIsBetter => ratio < limit,
        }
    }
}

/// How a metric moved.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// Measured, but a judge that decides over time cannot tell yet whether it is within its
    /// margin or worse (or has not started judging it: a warm-up).
    Open,
}

/// The evidence for one metric.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// Why there is no data, when `status` is `no_data`; why it is not decided yet, when it
    /// is `open`.
    pub no_data_reason: Option<String>,
    /// The query that produced the baseline value.
    pub baseline_query: Option<String>,
    /// The query that produced the canary value.
    pub canary_query: Option<String>,
    /// The anytime-valid interval the sequential judge decided on, if it judged this metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<AnytimeInterval>,
    /// The rule this row was judged by, in its judge's own terms, when it is not the policy's
    /// ratios (`rollback_threshold` and `proceed_tolerance` are then unset or not ratios): the
    /// sequential judge's margin and confidence, a peer's absolute limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// A confidence-sequence interval for one statistic at one instant: valid at every look, so a
/// judge may stop the first time it excludes the margin.
///
/// For a ratio statistic (`canary / baseline`) the margin is the ratio beyond which the canary
/// is worse; for a difference (`canary − baseline`) it is the difference. An end is `None` where
/// the evidence does not bound it yet.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnytimeInterval {
    /// What is estimated, for people: `error rate ratio (canary / baseline)`.
    pub statistic: String,
    /// The point estimate, if there is evidence.
    pub estimate: Option<f64>,
    /// The lower end.
    pub lower: Option<f64>,
    /// The upper end.
    pub upper: Option<f64>,
    /// The practical margin δ, on the statistic's scale.
    pub margin: f64,
    /// Its confidence level, `1 − α` for the α this test was given.
    pub confidence: f64,
    /// What the arms' pods said, when the source tells pods apart: the spread between
    /// production's pods and the allowance it adds to the margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodEvidence>,
    /// The smallest regression (a ratio on the row's own scale, in the worse direction) the
    /// test would have caught with 95 % power at the traffic seen when the judge decided: a
    /// power statement, not a proof that nothing smaller is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught: Option<f64>,
}

impl AnytimeInterval {
    /// Whether the statistic is a difference (`canary − baseline`, a gauge's) rather than a
    /// ratio: its margin is then signed, not a factor.
    pub fn is_difference(&self) -> bool {
        self.statistic.contains('−') || self.statistic.contains("difference")
    }
}

/// The pods behind one test: how far apart production's pods are, and how much of the canary's
/// difference that can explain (see the sequential judge's model).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodEvidence {
    /// The between-pod spread: the estimated standard deviation of a pod's effect on the
    /// statistic's log (0.09: pods about ±9 % apart).
    pub spread: f64,
    /// The estimate's degrees of freedom (0: the spread could not be estimated).
    pub degrees_of_freedom: u32,
    /// Production's pods the spread and the baseline were taken from.
    pub production_pods: usize,
    /// The canary's pods with traffic.
    pub canary_pods: usize,
    /// Production's pods set aside as outliers: not in the baseline, not in the spread.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// The factor the margin is widened by for where the pods landed (1: none).
    pub allowance: f64,
    /// The canary pod this test is about, when it tests one pod alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The smallest change of the statistic (a ratio) that can be told from where the pods
    /// landed with 95 % power, however long the run: `exp((t + z₀.₉₅) · spread · √(1/k +
    /// 1/n))`; `None` when the spread is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub design_limit: Option<f64>,
    /// The level the placement was allowed for (`t` above is Student's at `1 − alpha`).
    pub alpha: f64,
    /// For a latency bound: the spread of the pods' latency itself (the sd of a pod's log
    /// latency), which `spread` was carried from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_spread: Option<f64>,
    /// Whether production's pods differ beyond their sampling noise (Cochran's Q at 5 %).
    #[serde(default)]
    pub significant: bool,
    /// For the canary's whole arm: the smallest regression this test would catch with 95 %
    /// power within 30 minutes of the run, at the traffic seen so far, with the canary's own
    /// pod count first and then other counts. Unlike `design_limit` it includes the margin and
    /// the sampling noise; for a latency bound it is a ratio of latency itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detectable: Vec<Detectable>,
}

/// One power statement of [`PodEvidence::detectable`].
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detectable {
    /// Canary pods (equal in traffic) the statement is for.
    pub canary_pods: usize,
    /// The smallest regression caught with 95 % power, as a ratio (1.5: + 50 %).
    pub ratio: f64,
}

/// The rule behind a condition.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// The store marked an answer as possibly incomplete (Prometheus's `warnings`, e.g. a
    /// partial response): never promoted on.
    IncompleteAnswer,
    /// An arm stopped reporting (its series ended, or had a hole) for longer than the
    /// silence bound, or did not report at all.
    StoppedEvidence,
}

/// One rule that fired, with its metric.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

impl MetricComparison {
    /// The baseline's value with its unit, for people: `1000 ms`, `0.5%`, `no data`.
    pub fn baseline_text(&self) -> String {
        crate::format::value_text(self.baseline, &self.unit)
    }

    /// The canary's value with its unit, for people.
    pub fn canary_text(&self) -> String {
        crate::format::value_text(self.canary, &self.unit)
    }

    /// The ratio for people (`1.6×`; `2.4× of floor 0.5%` when it was taken against the
    /// floor, which a bare ratio beside the baseline would misstate), if there is one.
    pub fn ratio_text(&self) -> Option<String> {
        self.ratio.map(|r| {
            if self.floor_applied {
                format!(
                    "{}× of floor {}",
                    crate::format::Num(r),
                    crate::format::value_text(Some(self.floor), &self.unit)
                )
            } else {
                format!("{}×", crate::format::Num(r))
            }
        })
    }
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
