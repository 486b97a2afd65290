//! proptest strategies for metrics, thresholds and scenarios.
//!
//! ```
//! use canary_core::test_util::strategies;
//! use canary_core::{RollbackDecision, RollbackPolicy};
//! use proptest::prelude::*;
//!
//! proptest!(|(m in strategies::sufficient_metrics("v1"))| {
//!     // identical arms with enough samples always proceed
//!     let e = RollbackPolicy::default().evaluate(&m, &m);
//!     prop_assert_eq!(e.decision, RollbackDecision::Proceed);
//! });
//! ```

use proptest::prelude::*;

use crate::metrics::{names, CanaryMetrics};
use crate::policy::{Direction, RollbackPolicy};
use crate::thresholds::RollbackThresholds;

/// Complete, valid metrics of `version`, with any sample count (possibly too few).
pub fn metrics(version: &'static str) -> impl Strategy<Value = CanaryMetrics> {
    (0.0..1e6f64).prop_flat_map(move |samples| metrics_with_samples(version, Just(samples)))
}

/// Complete, valid metrics of `version` with at least the default 100 samples.
pub fn sufficient_metrics(version: &'static str) -> impl Strategy<Value = CanaryMetrics> {
    metrics_with_samples(version, 100.0..1e6f64)
}

fn metrics_with_samples(
    version: &'static str,
    samples: impl Strategy<Value = f64>,
) -> impl Strategy<Value = CanaryMetrics> {
    (
        0.0..5_000f64,
        0.0..5_000f64,
        0.0..5_000f64,
        0.0..=100f64,
        0.0..=1f64,
        0.0..10_000f64,
        samples,
    )
        .prop_map(move |(p50, p95, p99, err, conf, rps, n)| {
            CanaryMetrics::new(version)
                .with_latency_p50_ms(p50)
                .with_latency_p95_ms(p95)
                .with_latency_p99_ms(p99)
                .with_error_rate_percent(err)
                .with_model_confidence(conf)
                .with_request_rate_rps(rps)
                .with_sample_count(n)
        })
}

/// Valid thresholds: every field within its valid range.
pub fn thresholds() -> impl Strategy<Value = RollbackThresholds> {
    let ratio = || 1.0001..10.0f64;
    (
        (ratio(), ratio(), 0.0001..=1.0f64, ratio()),
        (ratio(), ratio(), ratio()),
        (0.0..10_000f64, 0.0001..100f64, 0.0001..100f64, 0.0001..1f64),
    )
        .prop_map(
            |((p99, err, conf, tol), (p95w, p50w, errw), (min, lf, ef, cf))| RollbackThresholds {
                latency_p99_threshold: p99,
                error_rate_threshold: err,
                confidence_threshold: conf,
                proceed_tolerance: tol,
                latency_p95_warning: p95w,
                latency_p50_warning: p50w,
                error_rate_warning: errw,
                min_sample_count: min,
                latency_floor_ms: lf,
                error_rate_floor_percent: ef,
                confidence_floor: cf,
            },
        )
}

/// Any `f64` that matters at a boundary: special values, values around 0 and 1, and the rest.
pub fn edgy_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(1.0),
        Just(f64::MIN_POSITIVE),
        Just(1.0 + f64::EPSILON),
        -10.0..10.0f64,
        any::<f64>(),
    ]
}

/// Thresholds with any field values, valid or not.
pub fn raw_thresholds() -> impl Strategy<Value = RollbackThresholds> {
    (
        (edgy_f64(), edgy_f64(), edgy_f64(), edgy_f64()),
        (edgy_f64(), edgy_f64(), edgy_f64()),
        (edgy_f64(), edgy_f64(), edgy_f64(), edgy_f64()),
    )
        .prop_map(
            |((p99, err, conf, tol), (p95w, p50w, errw), (min, lf, ef, cf))| RollbackThresholds {
                latency_p99_threshold: p99,
                error_rate_threshold: err,
                confidence_threshold: conf,
                proceed_tolerance: tol,
                latency_p95_warning: p95w,
                latency_p50_warning: p50w,
                error_rate_warning: errw,
                min_sample_count: min,
                latency_floor_ms: lf,
                error_rate_floor_percent: ef,
                confidence_floor: cf,
            },
        )
}

/// A judged built-in metric's name.
pub fn judged_metric() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        names::LATENCY_P50,
        names::LATENCY_P95,
        names::LATENCY_P99,
        names::ERROR_RATE,
        names::MODEL_CONFIDENCE,
    ])
}

/// A policy, a baseline and a canary, the canary near the baseline so every rule gets hit.
pub fn scenario() -> impl Strategy<Value = (RollbackPolicy, CanaryMetrics, CanaryMetrics)> {
    (
        thresholds(),
        sufficient_metrics("baseline"),
        prop::collection::vec(0.3..3.0f64, 7),
    )
        .prop_map(|(t, baseline, factors)| {
            let policy = RollbackPolicy::new(t).expect("valid thresholds");
            let mut canary = baseline.clone();
            canary.version = "canary".into();
            for (name, f) in names::ALL.iter().zip(factors) {
                let v = baseline.value(name).expect("complete metrics");
                let v = match *name {
                    names::ERROR_RATE => (v * f).min(100.0),
                    names::MODEL_CONFIDENCE => (v * f).min(1.0),
                    _ => v * f,
                };
                canary.set_value(name, Some(v));
            }
            (policy, baseline, canary)
        })
}

/// Makes `metric` of `m` worse by `factor` (>= 1) plus `step` in its bad direction, within the
/// metric's valid range. Used to check that a worse canary never gets a better decision.
pub fn worsen(
    m: &CanaryMetrics,
    policy: &RollbackPolicy,
    metric: &str,
    factor: f64,
    step: f64,
) -> CanaryMetrics {
    let mut out = m.clone();
    let Some(v) = m.value(metric) else { return out };
    let direction = policy
        .metric(metric)
        .map(|s| s.direction)
        .unwrap_or(Direction::LowerIsBetter);
    let worse = match direction {
        Direction::LowerIsBetter => v * factor + step,
        Direction::HigherIsBetter => (v / factor - step).max(0.0),
    };
    let worse = match metric {
        names::ERROR_RATE => worse.min(100.0),
        _ => worse,
    };
    out.set_value(metric, Some(worse));
    out
}
