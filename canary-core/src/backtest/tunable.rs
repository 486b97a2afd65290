//! Each judge's one calibration knob, shared by `canary backtest --calibrate` and the
//! judge-quality benchmark so both tune the same thing.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::judge::{
    ArgoParameters, FlaggerParameters, JudgeFactory, KayentaParameters, SequentialMetric,
    SequentialParameters, ThresholdParameters,
};
use crate::policy::RollbackPolicy;
use crate::thresholds::RollbackThresholds;

/// `x` to six significant digits (as printed and read back, exactly).
fn tidy(x: f64) -> f64 {
    format!("{x:.5e}").parse().unwrap_or(x)
}

/// A judge's parameters, with one knob: the sensitivity `s`, 1 for the parameters as given,
/// larger for more tolerant (fewer healthy canaries held), smaller for stricter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "judge", content = "parameters")]
pub enum Tunable {
    /// The threshold policy: its manual-review band (the proceed tolerance and the warning
    /// ratios) is what sends healthy canaries to a person; its rollback thresholds stay.
    Threshold(ThresholdParameters),
    /// Flagger: the success-rate floor's distance from 100 % and the p99 limit.
    Flagger(FlaggerParameters),
    /// Argo: both success-rate bounds' distance from 100 % and both p99 limits.
    Argo(ArgoParameters),
    /// Kayenta: the Mann-Whitney confidence level's distance from 1, divided by `s`.
    Kayenta(KayentaParameters),
    /// The sequential judge: its margins δ (its α stays).
    Sequential(SequentialParameters),
}

impl Tunable {
    /// The judge's name.
    pub fn name(&self) -> &'static str {
        match self {
            Tunable::Threshold(_) => "threshold",
            Tunable::Flagger(_) => "flagger",
            Tunable::Argo(_) => "argo",
            Tunable::Kayenta(_) => "kayenta",
            Tunable::Sequential(_) => "sequential",
        }
    }

    /// What the knob moves, for people.
    pub fn knob(&self) -> &'static str {
        match self {
            Tunable::Threshold(_) => "proceed tolerance and warning ratios (distance from 1)",
            Tunable::Flagger(_) => "success-rate floor (distance from 100 %) and p99 limit",
            Tunable::Argo(_) => "success-rate bounds (distance from 100 %) and p99 limits",
            Tunable::Kayenta(_) => "confidence level (1 - level, divided)",
            Tunable::Sequential(_) => "every metric's margin",
        }
    }

    /// The parameters at sensitivity `s` (clamped to stay valid), each moved value rounded to
    /// six significant digits so that the config written is the config measured.
    pub fn at(&self, s: f64) -> Tunable {
        let s = if s.is_finite() && s > 0.0 { s } else { 1.0 };
        match self {
            Tunable::Threshold(p) => {
                let d = p.policy.thresholds().clone();
                let ratio = |r: f64| tidy(1.0 + (r - 1.0) * s).min(100.0);
                let t = RollbackThresholds {
                    proceed_tolerance: ratio(d.proceed_tolerance),
                    latency_p95_warning: ratio(d.latency_p95_warning),
                    error_rate_warning: ratio(d.error_rate_warning),
                    latency_p50_warning: ratio(d.latency_p50_warning),
                    ..d
                };
                // A band scaled past a rollback threshold is not valid: keep the given one.
                let policy = RollbackPolicy::new(t).unwrap_or_else(|_| p.policy.clone());
                Tunable::Threshold(ThresholdParameters {
                    policy,
                    ..p.clone()
                })
            }
            Tunable::Flagger(p) => Tunable::Flagger(FlaggerParameters {
                min_success_rate_percent: tidy(100.0 - (100.0 - p.min_success_rate_percent) * s)
                    .max(0.0),
                max_p99_ms: tidy(p.max_p99_ms * s),
                ..p.clone()
            }),
            Tunable::Argo(p) => {
                let rate = |r: f64| tidy(100.0 - (100.0 - r) * s).max(0.0);
                Tunable::Argo(ArgoParameters {
                    success_rate_success_percent: rate(p.success_rate_success_percent),
                    success_rate_failure_percent: rate(p.success_rate_failure_percent),
                    p99_success_ms: tidy(p.p99_success_ms * s),
                    p99_failure_ms: tidy(p.p99_failure_ms * s),
                    ..p.clone()
                })
            }
            Tunable::Kayenta(p) => Tunable::Kayenta(KayentaParameters {
                confidence_level: tidy(1.0 - (1.0 - p.confidence_level) / s)
                    .clamp(0.51, 1.0 - 1e-9),
                ..p.clone()
            }),
            Tunable::Sequential(p) => {
                let mut p = p.clone();
                for m in &mut p.metrics {
                    match m {
                        SequentialMetric::Count { margin, .. }
                        | SequentialMetric::Latency { margin, .. }
                        | SequentialMetric::Gauge { margin, .. } => *margin = tidy(*margin * s),
                    }
                }
                Tunable::Sequential(p)
            }
        }
    }

    /// A factory for these parameters.
    pub fn factory(&self) -> Arc<dyn JudgeFactory> {
        match self {
            Tunable::Threshold(p) => Arc::new(p.clone()),
            Tunable::Flagger(p) => Arc::new(p.clone()),
            Tunable::Argo(p) => Arc::new(p.clone()),
            Tunable::Kayenta(p) => Arc::new(p.clone()),
            Tunable::Sequential(p) => Arc::new(p.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitivity_one_changes_nothing_and_larger_is_more_tolerant() {
        let all = [
            Tunable::Threshold(ThresholdParameters::default()),
            Tunable::Flagger(FlaggerParameters::default()),
            Tunable::Argo(ArgoParameters::default()),
            Tunable::Kayenta(KayentaParameters::default()),
            Tunable::Sequential(SequentialParameters::default()),
        ];
        for t in &all {
            assert_eq!(&t.at(1.0), t, "{}", t.name());
            assert!(t.at(2.0).factory().start().is_ok(), "{}", t.name());
            assert!(t.at(0.25).factory().start().is_ok(), "{}", t.name());
        }
        let Tunable::Kayenta(k) = all[3].at(2.0) else {
            unreachable!()
        };
        assert!(k.confidence_level > KayentaParameters::default().confidence_level);
        let Tunable::Threshold(t) = all[0].at(2.0) else {
            unreachable!()
        };
        let d = RollbackThresholds::default();
        assert!(t.policy.thresholds().proceed_tolerance > d.proceed_tolerance);
        assert_eq!(
            t.policy.thresholds().latency_p99_threshold,
            d.latency_p99_threshold
        );
    }
}
