//! The rules: how an [`Evaluation`] is decided from two arms, how regions combine, and what a
//! failed business check does. Every rule that changes a decision lives here.

use crate::business::BusinessVerdict;
use crate::format::{Num, ValueText};
use crate::metrics::{names, CanaryMetrics, Plausible};

use super::{
    ComparisonStatus, Condition, Criticality, Direction, Evaluation, MetricComparison, MetricSpec,
    RollbackDecision, RollbackPolicy, Rule,
};

impl RollbackPolicy {
    /// Combines the evaluations of several regions into the one that decides: the most
    /// cautious (a rollback anywhere beats a review, a review beats a promotion), the first
    /// region on a tie. `None` for no regions.
    pub fn combine_regions(&self, evaluations: Vec<Evaluation>) -> Option<Evaluation> {
        evaluations.into_iter().reduce(|a, b| {
            if b.decision.rank() < a.decision.rank() {
                b
            } else {
                a
            }
        })
    }

    /// What a business (A/B) check's verdict does: one that did not pass turns `Proceed` into
    /// `RollbackManual`, with the check as the primary reason; it never softens a rollback and
    /// never changes another decision.
    pub fn apply_business_verdict(
        &self,
        mut evaluation: Evaluation,
        check: &str,
        verdict: &BusinessVerdict,
    ) -> Evaluation {
        if verdict.passed || evaluation.decision != RollbackDecision::Proceed {
            return evaluation;
        }
        let message = format!("business check {check} did not pass: {}", verdict.details);
        evaluation.decision = RollbackDecision::RollbackManual;
        evaluation.primary_reason = message.clone();
        evaluation.recommendation = format!(
            "The technical analysis passed, but the business check did not: a person should review {} before promoting it.",
            evaluation.canary_version
        );
        evaluation.triggered_conditions.insert(
            0,
            Condition {
                rule: Rule::BusinessCheck,
                metric: None,
                message,
            },
        );
        evaluation
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
                        "{} went from {} to {} ({}× {}; rollback threshold {}×)",
                        c.metric,
                        ValueText(c.baseline, &c.unit),
                        ValueText(c.canary, &c.unit),
                        Num(ratio),
                        against(c),
                        Num(limit)
                    ),
                ));
            }
            if spec.criticality == Criticality::Critical && c.status == ComparisonStatus::Degraded {
                regressions.push(regression(
                    Rule::ProceedTolerance,
                    c,
                    ratio,
                    "outside",
                    c.proceed_tolerance,
                    "proceed tolerance",
                ));
            }
            if let Some(limit) = spec.warning_ratio.filter(|&w| spec.beyond(ratio, w)) {
                regressions.push(regression(
                    Rule::WarningThreshold,
                    c,
                    ratio,
                    "beyond",
                    limit,
                    "warning threshold",
                ));
            }
        }

        let improved: Vec<&str> = comparisons
            .iter()
            .filter(|c| c.status == ComparisonStatus::Improved)
            .map(|c| c.metric.as_str())
            .collect();
        // Hand-built metrics may have no version: say "the canary", never a double space.
        let canary_v = if canary.version.is_empty() {
            "the canary"
        } else {
            canary.version.as_str()
        };
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

        let evaluation = Evaluation {
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
        };
        let store_warnings: Vec<String> = [("baseline", baseline), ("canary", canary)]
            .iter()
            .flat_map(|(arm, m)| m.store_warnings.iter().map(move |w| format!("{arm}: {w}")))
            .collect();
        let evaluation = hold_incomplete(evaluation, &store_warnings);
        let stopped = [("production", baseline), ("the canary", canary)]
            .iter()
            .find_map(|(arm, m)| {
                m.stopped_reporting
                    .as_ref()
                    .map(|why| format!("{arm} {} stopped reporting: {why}", m.version))
            });
        match stopped {
            // The single look keeps a review's own reason; only a promotion is turned.
            Some(reason) if evaluation.decision == RollbackDecision::Proceed => {
                hold_stopped(evaluation, reason)
            }
            Some(reason) => {
                let mut evaluation = evaluation;
                evaluation.triggered_conditions.push(Condition {
                    rule: Rule::StoppedEvidence,
                    metric: None,
                    message: reason,
                });
                evaluation
            }
            None => evaluation,
        }
    }

    fn sample_problem(&self, arm: &str, m: &CanaryMetrics) -> Option<String> {
        let min = self.thresholds.min_sample_count;
        match m.sample_count {
            None => Some(format!("{} has no sample count", Labelled(arm, &m.version))),
            Some(n) if !Plausible::SAMPLE_COUNT.contains(n) => Some(format!(
                "{} has an unusable sample count ({}; must be {})",
                Labelled(arm, &m.version),
                Num(n),
                Plausible::SAMPLE_COUNT.describe()
            )),
            Some(n) if n < min => Some(format!(
                "{} has {} requests, fewer than the {} required",
                Labelled(arm, &m.version),
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
            interval: None,
            rule: None,
        };
        let problem = |arm: &str, m: &CanaryMetrics, v: Option<f64>| match v {
            None => Some(format!("{} has no value", Labelled(arm, &m.version))),
            Some(x) if !x.is_finite() => Some(format!("{} is {x}", Labelled(arm, &m.version))),
            Some(x) if x < 0.0 => Some(format!(
                "{} is negative ({}), which a ratio cannot judge",
                Labelled(arm, &m.version),
                Num(x)
            )),
            Some(x) if !spec.plausible_range.contains(x) => Some(format!(
                "{} is implausible ({}; must be {})",
                Labelled(arm, &m.version),
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

/// `baseline v1.2.0`, or just `baseline` when the metrics carry no version.
struct Labelled<'a>(&'a str, &'a str);

impl std::fmt::Display for Labelled<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.1.is_empty() {
            f.write_str(self.0)
        } else {
            write!(f, "{} {}", self.0, self.1)
        }
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

/// `p95 is 1.4× baseline (840 ms vs 600 ms), beyond the 1.3× warning threshold`.
fn regression(
    rule: Rule,
    c: &MetricComparison,
    ratio: f64,
    relation: &str,
    limit: f64,
    limit_name: &str,
) -> Condition {
    let message = format!(
        "{} is {}× {} ({} vs {}), {relation} the {}× {limit_name}",
        c.metric,
        Num(ratio),
        against(c),
        ValueText(c.canary, &c.unit),
        ValueText(c.baseline, &c.unit),
        Num(limit)
    );
    condition(rule, c, message)
}

/// What a ratio was taken against: the baseline, or the metric's floor when the baseline is
/// below it (so that `1.3% is 2.6× …` reads true next to a baseline of 0.38 %).
fn against(c: &MetricComparison) -> String {
    if c.floor_applied {
        format!(
            "the {} floor, production's value being below it",
            ValueText(Some(c.floor), &c.unit)
        )
    } else {
        "baseline".into()
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

/// A promotion on an answer the store marked incomplete (Prometheus's `warnings`, e.g. Thanos's
/// partial response) becomes a review naming the warning; any other decision keeps its
/// reason and gains the condition. The one place every judge's warnings are applied.
pub fn hold_incomplete(mut evaluation: Evaluation, store_warnings: &[String]) -> Evaluation {
    let Some(first) = store_warnings.first() else {
        return evaluation;
    };
    let more = match store_warnings.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let message = format!("the store marked its answer incomplete: {first}{more}");
    for w in store_warnings {
        if !evaluation
            .warnings
            .iter()
            .any(|have| have.ends_with(w.as_str()))
        {
            evaluation.warnings.push(w.clone());
        }
    }
    let condition = Condition {
        rule: Rule::IncompleteAnswer,
        metric: None,
        message: message.clone(),
    };
    if evaluation.decision == RollbackDecision::Proceed {
        evaluation.decision = RollbackDecision::RollbackManual;
        evaluation.primary_reason = format!("{message}; not promoted on it");
        evaluation.recommendation = format!(
            "Do not promote {} on this answer: find which store or shard was missing \
             (Thanos stores, Mimir ingesters), then analyse again. A warning that never means \
             missing data can be named in prometheus.harmless_warnings.",
            evaluation.canary_version
        );
        evaluation.triggered_conditions.insert(0, condition);
    } else {
        evaluation.triggered_conditions.push(condition);
    }
    evaluation
}

/// Evidence that stopped, or has a hole, never promotes: a promotion (or a judge's own review)
/// becomes a review naming it; a rollback stands with it as a condition. The one place both the
/// judges' runs and the single look hold a stopped arm.
pub fn hold_stopped(mut evaluation: Evaluation, reason: String) -> Evaluation {
    let condition = Condition {
        rule: Rule::StoppedEvidence,
        metric: None,
        message: reason.clone(),
    };
    if evaluation.decision == RollbackDecision::RollbackAuto {
        evaluation.triggered_conditions.push(condition);
        return evaluation;
    }
    if evaluation.decision == RollbackDecision::Proceed {
        evaluation.recommendation = format!(
            "Do not promote {}: find out why its evidence stopped (crashed or evicted pods, a \
             target that is down, a scale-down), then deploy and analyse it again.",
            evaluation.canary_version
        );
    }
    evaluation.decision = RollbackDecision::RollbackManual;
    evaluation.primary_reason = reason;
    evaluation.triggered_conditions.insert(0, condition);
    evaluation
}
