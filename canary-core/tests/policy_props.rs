//! Invariants of the rollback policy, checked with proptest.

use canary_core::test_util::strategies::{
    judged_metric, raw_thresholds, scenario, sufficient_metrics, thresholds, worsen,
};
use canary_core::{
    CanaryMetrics, Error, Plausible, RollbackDecision, RollbackPolicy, RollbackThresholds,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Invariant: making the canary worse on any judged metric never moves the decision towards Proceed.
    #[test]
    fn worse_canary_never_gets_a_better_decision(
        (policy, baseline, canary) in scenario(),
        metric in judged_metric(),
        factor in 1.0..4.0f64,
        step in 0.0..50.0f64,
    ) {
        let before = policy.evaluate(&baseline, &canary);
        let worse = worsen(&canary, &policy, metric, factor, step);
        let after = policy.evaluate(&baseline, &worse);
        prop_assert!(
            after.decision.rank() <= before.decision.rank(),
            "{metric}: {} -> {} ({:?} -> {:?})",
            before.decision, after.decision, canary.value(metric), worse.value(metric)
        );
    }

    /// Invariant: identical baseline and canary with enough samples proceed, under any valid thresholds.
    #[test]
    fn identical_arms_with_enough_samples_proceed(t in thresholds(), m in sufficient_metrics("v1")) {
        let m = m.clone().with_sample_count(m.sample_count.unwrap().max(t.min_sample_count));
        let policy = RollbackPolicy::new(t).unwrap();
        let e = policy.evaluate(&m, &CanaryMetrics { version: "v2".into(), ..m.clone() });
        prop_assert_eq!(e.decision, RollbackDecision::Proceed, "{}", e.primary_reason);
        prop_assert!(e.triggered_conditions.is_empty());
    }

    /// Invariant: a value beyond its plausible range, on either side, is refused by
    /// `try_evaluate` and never proceeds through `evaluate`.
    #[test]
    fn implausible_values_are_errors_and_never_proceed(
        (policy, baseline, canary) in scenario(),
        metric in prop_oneof![judged_metric(), Just("sample_count")],
        excess in prop_oneof![Just(1e308), 1.0001..1e6f64],
        on_canary in any::<bool>(),
    ) {
        let (mut b, mut c) = (baseline, canary);
        let range = policy
            .metric(metric)
            .map(|s| s.plausible_range)
            .or_else(|| Plausible::of_builtin(metric))
            .unwrap();
        let value = if excess == 1e308 { 1e308 } else { range.max.max(1.0) * excess };
        let target = if on_canary { &mut c } else { &mut b };
        target.set_value(metric, Some(value));
        let e = policy.evaluate(&b, &c);
        prop_assert_ne!(e.decision, RollbackDecision::Proceed, "{}", e.primary_reason);
        let refused = policy.try_evaluate(&b, &c).unwrap_err();
        prop_assert!(matches!(refused, Error::InvalidMetric { .. }), "{refused:?}");
        let text = refused.to_string();
        prop_assert!(text.contains(metric) && text.len() < 300, "{text}");
    }

    /// Invariant: a missing or NaN judged metric on either side never gives Proceed.
    #[test]
    fn missing_or_nan_data_never_proceeds(
        (policy, baseline, canary) in scenario(),
        metric in judged_metric(),
        nan in any::<bool>(),
        on_canary in any::<bool>(),
    ) {
        let (mut b, mut c) = (baseline, canary);
        let target = if on_canary { &mut c } else { &mut b };
        target.set_value(metric, if nan { Some(f64::NAN) } else { None });
        let e = policy.evaluate(&b, &c);
        prop_assert_ne!(e.decision, RollbackDecision::Proceed);
    }

    /// Invariant: fewer samples than the minimum in either arm never gives Proceed (or an automatic rollback).
    #[test]
    fn too_little_data_never_proceeds(
        (policy, baseline, canary) in scenario(),
        fraction in 0.0..1.0f64,
        on_canary in any::<bool>(),
    ) {
        let min = policy.thresholds().min_sample_count;
        prop_assume!(min > 0.0);
        let (mut b, mut c) = (baseline, canary);
        let target = if on_canary { &mut c } else { &mut b };
        target.sample_count = Some(min * fraction);
        let e = policy.evaluate(&b, &c);
        prop_assert_eq!(e.decision, RollbackDecision::RollbackManual);
        prop_assert!(e.primary_reason.starts_with("insufficient data"));
    }

    /// Invariant: threshold validation accepts exactly the valid space.
    #[test]
    fn threshold_validation_accepts_exactly_the_valid_space(t in raw_thresholds()) {
        // A ratio in (1, 100]; a floor above 0 and within its metric's plausible range.
        let ratio = |v: f64| v.is_finite() && v > 1.0 && v <= 100.0;
        let floor = |v: f64, max: f64| v.is_finite() && v > 0.0 && v <= max;
        let valid = ratio(t.latency_p99_threshold)
            && ratio(t.error_rate_threshold)
            && ratio(t.proceed_tolerance)
            && ratio(t.latency_p95_warning)
            && ratio(t.latency_p50_warning)
            && ratio(t.error_rate_warning)
            && t.confidence_threshold > 0.0 && t.confidence_threshold <= 1.0
            && t.min_sample_count.is_finite() && (0.0..=1e12).contains(&t.min_sample_count)
            && floor(t.latency_floor_ms, 3_600_000.0)
            && floor(t.error_rate_floor_percent, 100.0)
            && floor(t.confidence_floor, 1.0);
        prop_assert_eq!(t.validate().is_ok(), valid, "{:?}", t);
        prop_assert_eq!(RollbackPolicy::new(t).is_ok(), valid);
    }

    /// Invariant: metrics, thresholds, evaluations and policies survive a JSON round trip.
    #[test]
    fn serde_round_trips((policy, baseline, canary) in scenario()) {
        let back: CanaryMetrics = serde_json::from_str(&serde_json::to_string(&canary).unwrap()).unwrap();
        prop_assert_eq!(&back, &canary);
        let t: RollbackThresholds = serde_json::from_str(&serde_json::to_string(policy.thresholds()).unwrap()).unwrap();
        prop_assert_eq!(&t, policy.thresholds());
        let p: RollbackPolicy = serde_json::from_str(&serde_json::to_string(&policy).unwrap()).unwrap();
        prop_assert_eq!(&p, &policy);
        let e = policy.evaluate(&baseline, &canary);
        let back: canary_core::Evaluation = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        prop_assert_eq!(back, e);
    }

    /// Invariant: every decision explains itself: a reason, a recommendation, one comparison per metric.
    #[test]
    fn every_decision_carries_its_evidence((policy, baseline, canary) in scenario()) {
        let e = policy.evaluate(&baseline, &canary);
        prop_assert!(!e.primary_reason.is_empty() && !e.recommendation.is_empty());
        prop_assert_eq!(e.comparisons.len(), policy.metrics().len());
        if e.decision != RollbackDecision::Proceed {
            prop_assert!(!e.triggered_conditions.is_empty());
        }
        for c in &e.comparisons {
            prop_assert!(c.ratio.is_some_and(f64::is_finite));
        }
    }
}
