use super::*;
use crate::metrics::CanaryMetrics;

/// The guide's baseline: healthy, with plenty of samples.
fn baseline() -> CanaryMetrics {
    CanaryMetrics::new("v1.0.0")
        .with_latency_p50_ms(120.0)
        .with_latency_p95_ms(600.0)
        .with_latency_p99_ms(1000.0)
        .with_error_rate_percent(1.0)
        .with_model_confidence(0.90)
        .with_request_rate_rps(200.0)
        .with_sample_count(12_000.0)
}

fn canary() -> CanaryMetrics {
    CanaryMetrics {
        version: "v1.1.0".into(),
        ..baseline()
    }
}

fn decide(c: CanaryMetrics) -> Evaluation {
    RollbackPolicy::default().evaluate(&baseline(), &c)
}

#[test]
fn p99_from_1000_to_1600_rolls_back_automatically() {
    let e = decide(canary().with_latency_p99_ms(1600.0));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert!(
        e.primary_reason.contains("latency_p99"),
        "{}",
        e.primary_reason
    );
    let c = e.comparison("latency_p99").unwrap();
    assert_eq!(
        (c.baseline, c.canary, c.ratio),
        (Some(1000.0), Some(1600.0), Some(1.6))
    );
    assert_eq!(c.rollback_threshold, Some(1.5));
    assert!((c.change_percent.unwrap() - 60.0).abs() < 1e-9);
    assert_eq!(c.status, ComparisonStatus::Degraded);
    assert_eq!(e.triggered_conditions[0].rule, Rule::RollbackThreshold);
}

#[test]
fn error_rate_from_1_to_2_5_rolls_back_automatically() {
    let e = decide(canary().with_error_rate_percent(2.5));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert_eq!(
        e.triggered_conditions[0].metric.as_deref(),
        Some("error_rate")
    );
}

#[test]
fn confidence_from_0_90_to_0_70_rolls_back_automatically() {
    let e = decide(canary().with_model_confidence(0.70));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert_eq!(
        e.triggered_conditions[0].metric.as_deref(),
        Some("model_confidence")
    );
}

#[test]
fn everything_within_ten_percent_proceeds() {
    let e = decide(
        canary()
            .with_latency_p50_ms(130.0)
            .with_latency_p95_ms(650.0)
            .with_latency_p99_ms(1090.0)
            .with_error_rate_percent(1.05)
            .with_model_confidence(0.85)
            .with_request_rate_rps(20.0),
    );
    assert_eq!(e.decision, RollbackDecision::Proceed, "{e:#?}");
    assert!(e.triggered_conditions.is_empty());
    assert!(e.recommendation.contains("Promote v1.1.0"));
}

#[test]
fn p99_up_20_with_error_rate_up_80_needs_manual_review() {
    let e = decide(
        canary()
            .with_latency_p99_ms(1200.0)
            .with_error_rate_percent(1.8),
    );
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(e.fired(Rule::ProceedTolerance));
    assert!(
        e.fired(Rule::WarningThreshold),
        "error rate 1.8x crosses the 1.5x warning"
    );
    assert!(!e.fired(Rule::RollbackThreshold));
}

#[test]
fn custom_threshold_1_3_rolls_back_p99_up_40() {
    let t = RollbackThresholds {
        latency_p99_threshold: 1.3,
        error_rate_threshold: 1.5,
        confidence_threshold: 0.85,
        proceed_tolerance: 1.05,
        ..Default::default()
    };
    let policy = RollbackPolicy::new(t).unwrap();
    let e = policy.evaluate(&baseline(), &canary().with_latency_p99_ms(1400.0));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    // The default policy would only ask for review.
    assert_eq!(
        decide(canary().with_latency_p99_ms(1400.0)).decision,
        RollbackDecision::RollbackManual
    );
}

#[test]
fn mixed_results_name_what_improved() {
    let e = decide(
        canary()
            .with_latency_p99_ms(1200.0)
            .with_latency_p50_ms(60.0),
    );
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(
        e.primary_reason
            .starts_with("mixed results: latency_p50 improved"),
        "{}",
        e.primary_reason
    );
}

#[test]
fn non_critical_regression_beyond_warning_needs_review_and_below_it_proceeds() {
    let e = decide(canary().with_latency_p95_ms(800.0)); // 1.33x > 1.3 warning
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(e.fired(Rule::WarningThreshold));
    let e = decide(canary().with_latency_p95_ms(720.0)); // 1.2x: degraded, under the warning
    assert_eq!(e.decision, RollbackDecision::Proceed);
    assert_eq!(
        e.comparison("latency_p95").unwrap().status,
        ComparisonStatus::Degraded
    );
}

#[test]
fn request_rate_is_reported_but_not_judged() {
    // 10% traffic split: a ratio of 0.1 is expected, not a regression.
    let e = decide(canary().with_request_rate_rps(20.0));
    assert_eq!(e.decision, RollbackDecision::Proceed);
    let mut c = canary();
    c.request_rate_rps = None;
    assert_eq!(decide(c).decision, RollbackDecision::Proceed);
}

#[test]
fn zero_baseline_error_rate_uses_the_floor() {
    let b = CanaryMetrics {
        error_rate_percent: Some(0.0),
        ..baseline()
    };
    let policy = RollbackPolicy::default();
    let small = policy.evaluate(&b, &canary().with_error_rate_percent(0.3));
    assert_eq!(
        small.decision,
        RollbackDecision::Proceed,
        "{:#?}",
        small.triggered_conditions
    );
    let c = small.comparison("error_rate").unwrap();
    assert!(c.floor_applied);
    assert_eq!(c.change_percent, None, "a change from 0 has no percentage");
    assert_eq!(c.status, ComparisonStatus::Stable);

    let big = policy.evaluate(&b, &canary().with_error_rate_percent(1.2));
    assert_eq!(big.decision, RollbackDecision::RollbackAuto);
    assert!((big.comparison("error_rate").unwrap().ratio.unwrap() - 2.4).abs() < 1e-9);
    // The ratio is against the floor, and every rendering says so: "2.4× baseline" beside a
    // baseline of 0 % would be false.
    let rule = &big.triggered_conditions[0].message;
    assert!(
        rule.contains("2.4× the 0.5% floor, production's value being below it"),
        "{rule}"
    );
    assert!(!rule.contains("× baseline"), "{rule}");
    let cells = crate::report::comparison_cells(big.comparison("error_rate").unwrap());
    assert_eq!(cells[3], "2.4× of floor 0.5%");

    let both_zero = policy.evaluate(&b, &canary().with_error_rate_percent(0.0));
    assert_eq!(both_zero.decision, RollbackDecision::Proceed);
}

#[test]
fn zero_traffic_is_insufficient_data() {
    let mut c = canary().with_sample_count(0.0);
    c.latency_p99_ms = Some(f64::NAN);
    c.latency_p95_ms = None;
    let e = decide(c);
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(
        e.primary_reason.starts_with("insufficient data"),
        "{}",
        e.primary_reason
    );
    assert!(e.primary_reason.contains("0 requests"));
    assert_eq!(
        e.comparison("latency_p99").unwrap().status,
        ComparisonStatus::NoData
    );
}

#[test]
fn too_few_samples_in_either_arm_is_insufficient_even_with_a_regression() {
    let e = decide(canary().with_sample_count(99.0).with_latency_p99_ms(5000.0));
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert_eq!(e.triggered_conditions[0].rule, Rule::InsufficientSamples);
    assert!(
        e.fired(Rule::RollbackThreshold),
        "the regression is still reported"
    );

    let b = CanaryMetrics {
        sample_count: Some(10.0),
        ..baseline()
    };
    let e = RollbackPolicy::default().evaluate(&b, &canary());
    assert!(
        e.primary_reason.contains("baseline v1.0.0 has 10 requests"),
        "{}",
        e.primary_reason
    );

    let b = CanaryMetrics {
        sample_count: None,
        ..baseline()
    };
    let e = RollbackPolicy::default().evaluate(&b, &canary());
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(e.primary_reason.contains("no sample count"));
}

#[test]
fn missing_critical_metric_never_proceeds() {
    for name in [
        "latency_p99",
        "error_rate",
        "model_confidence",
        "latency_p95",
    ] {
        let mut c = canary();
        c.set_value(name, None);
        let e = decide(c);
        assert_eq!(e.decision, RollbackDecision::RollbackManual, "{name}");
        assert!(e.fired(Rule::MissingData));
        assert!(e.primary_reason.contains(name));
        assert!(
            e.primary_reason.contains("canary v1.1.0 has no value"),
            "{}",
            e.primary_reason
        );
    }
}

#[test]
fn a_crossed_rollback_threshold_wins_over_missing_data() {
    let mut c = canary().with_error_rate_percent(5.0);
    c.model_confidence = None;
    assert_eq!(decide(c).decision, RollbackDecision::RollbackAuto);
}

#[test]
fn nan_anywhere_is_no_data() {
    for name in ["latency_p99", "error_rate", "model_confidence"] {
        let mut c = canary();
        c.set_value(name, Some(f64::NAN));
        let e = decide(c);
        assert_eq!(e.decision, RollbackDecision::RollbackManual, "{name}");
        assert!(e
            .comparison(name)
            .unwrap()
            .no_data_reason
            .as_ref()
            .unwrap()
            .contains("NaN"));
    }
    let c = canary().with_sample_count(f64::NAN);
    assert_eq!(decide(c).decision, RollbackDecision::RollbackManual);
    let b = CanaryMetrics {
        latency_p99_ms: Some(f64::INFINITY),
        ..baseline()
    };
    assert_eq!(
        RollbackPolicy::default().evaluate(&b, &canary()).decision,
        RollbackDecision::RollbackManual
    );
}

#[test]
fn user_metrics_are_judged_like_built_ins() {
    let conversion = MetricSpec::new("conversion_rate", Direction::HigherIsBetter)
        .critical()
        .with_unit("%")
        .with_rollback_ratio(0.9)
        .with_floor(0.01);
    let policy = RollbackPolicy::default().with_metric(conversion).unwrap();
    let b = baseline().with_custom("conversion_rate", 3.0);
    assert_eq!(
        policy
            .evaluate(&b, &canary().with_custom("conversion_rate", 3.0))
            .decision,
        RollbackDecision::Proceed
    );
    let e = policy.evaluate(&b, &canary().with_custom("conversion_rate", 2.5));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert_eq!(
        e.triggered_conditions[0].metric.as_deref(),
        Some("conversion_rate")
    );
    // Not measured: never proceeds.
    assert_eq!(
        policy.evaluate(&b, &canary()).decision,
        RollbackDecision::RollbackManual
    );
}

#[test]
fn metric_specs_are_validated() {
    let bad = [
        MetricSpec::new("", Direction::LowerIsBetter),
        MetricSpec::new("x", Direction::LowerIsBetter).with_rollback_ratio(2.0),
        MetricSpec::new("x", Direction::LowerIsBetter)
            .critical()
            .with_rollback_ratio(0.9),
        MetricSpec::new("x", Direction::HigherIsBetter)
            .critical()
            .with_rollback_ratio(1.2),
        MetricSpec::new("x", Direction::LowerIsBetter).with_floor(0.0),
        MetricSpec::new("x", Direction::LowerIsBetter)
            .informational()
            .with_warning_ratio(1.2),
        MetricSpec::new("sample_count", Direction::HigherIsBetter),
    ];
    for spec in bad {
        assert!(
            RollbackPolicy::default().with_metric(spec.clone()).is_err(),
            "{spec:?}"
        );
    }
}

#[test]
fn a_policy_without_confidence_ignores_it() {
    let policy = RollbackPolicy::default().without_metric("model_confidence");
    let mut c = canary();
    c.model_confidence = None;
    assert_eq!(
        policy.evaluate(&baseline(), &c).decision,
        RollbackDecision::Proceed
    );
}

#[test]
fn evidence_carries_queries_and_warnings() {
    let mut b = baseline();
    b.queries.insert("latency_p99".into(), "q_base".into());
    b.warnings.push("partial response".into());
    let mut c = canary();
    c.queries.insert("latency_p99".into(), "q_canary".into());
    let e = RollbackPolicy::default().evaluate(&b, &c);
    let p99 = e.comparison("latency_p99").unwrap();
    assert_eq!(p99.baseline_query.as_deref(), Some("q_base"));
    assert_eq!(p99.canary_query.as_deref(), Some("q_canary"));
    assert_eq!(e.warnings, vec!["baseline: partial response".to_owned()]);
}

#[test]
fn decisions_serialize_as_the_guides_values() {
    for (d, s) in [
        (RollbackDecision::Proceed, "\"proceed\""),
        (RollbackDecision::RollbackAuto, "\"rollback_auto\""),
        (RollbackDecision::RollbackManual, "\"rollback_manual\""),
    ] {
        assert_eq!(serde_json::to_string(&d).unwrap(), s);
        assert_eq!(format!("\"{d}\""), s);
    }
    assert_eq!(
        RollbackDecision::Proceed.most_cautious(RollbackDecision::RollbackManual),
        RollbackDecision::RollbackManual
    );
}

#[test]
fn a_huge_baseline_latency_is_refused_not_read_as_an_improvement() {
    let baseline = baseline().with_latency_p99_ms(1e308);
    let canary = canary();
    let policy = RollbackPolicy::default();
    // Judged as a number, the canary would look 1e305 times faster and proceed.
    assert_ne!(
        policy.evaluate(&baseline, &canary).decision,
        RollbackDecision::Proceed
    );
    let e = policy.try_evaluate(&baseline, &canary).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("latency_p99") && text.contains("1e308") && text.contains("3600000"),
        "{text}"
    );
}

#[test]
fn user_metrics_have_configurable_plausible_ranges() {
    let spec = MetricSpec::new("conversion", Direction::HigherIsBetter)
        .critical()
        .with_rollback_ratio(0.9)
        .with_plausible_range(0.0, 1.0);
    let policy = RollbackPolicy::default().with_metric(spec).unwrap();
    let b = baseline().with_custom("conversion", 0.2);
    let c = canary().with_custom("conversion", 7.0);
    let text = policy.try_evaluate(&b, &c).unwrap_err().to_string();
    assert!(
        text.contains("conversion") && text.contains("between 0 and 1"),
        "{text}"
    );
    assert!(policy
        .try_evaluate(&b, &canary().with_custom("conversion", 0.21))
        .is_ok());
    let bad = MetricSpec::new("x", Direction::LowerIsBetter).with_plausible_range(2.0, 1.0);
    assert!(RollbackPolicy::default().with_metric(bad).is_err());
}

#[test]
fn a_non_critical_metric_measured_on_neither_side_does_not_block() {
    let mut b = baseline();
    let mut c = canary();
    for m in [&mut b, &mut c] {
        m.latency_p50_ms = None;
        m.latency_p95_ms = None;
    }
    let e = RollbackPolicy::default().evaluate(&b, &c);
    assert_eq!(
        e.decision,
        RollbackDecision::Proceed,
        "{}",
        e.primary_reason
    );
    let p50 = e.comparison("latency_p50").unwrap();
    assert_eq!(p50.status, ComparisonStatus::NoData);
    assert_eq!(
        p50.no_data_reason.as_deref(),
        Some("not measured on either side")
    );

    // Missing on one side only still blocks, and so does a critical metric missing on both.
    let mut one = canary();
    one.latency_p50_ms = None;
    let e = RollbackPolicy::default().evaluate(&baseline(), &one);
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    let (mut b, mut c) = (baseline(), canary());
    b.model_confidence = None;
    c.model_confidence = None;
    let e = RollbackPolicy::default().evaluate(&b, &c);
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(e.fired(Rule::MissingData));
}

#[test]
fn a_deserialized_policy_is_validated() {
    let good = serde_json::to_value(RollbackPolicy::default()).unwrap();
    let back: RollbackPolicy = serde_json::from_value(good.clone()).unwrap();
    assert_eq!(back, RollbackPolicy::default());
    let mut bad = good;
    bad["thresholds"]["latency_p99_threshold"] = serde_json::json!(0.5);
    let e = serde_json::from_value::<RollbackPolicy>(bad).unwrap_err();
    assert!(e.to_string().contains("latency_p99_threshold"), "{e}");
}

#[test]
fn metrics_without_a_version_read_without_double_spaces() {
    let mut b = baseline();
    let mut c = canary();
    b.version.clear();
    c.version.clear();
    c.latency_p99_ms = None;
    c.sample_count = Some(10.0);
    let e = RollbackPolicy::default().evaluate(&b, &c);
    for text in [&e.primary_reason, &e.recommendation]
        .into_iter()
        .chain(e.triggered_conditions.iter().map(|c| &c.message))
    {
        assert!(!text.contains("  "), "double space in {text:?}");
    }
    assert!(
        e.recommendation.contains("the canary"),
        "{}",
        e.recommendation
    );
    let err = CanaryMetrics::new("")
        .with_latency_p99_ms(-1.0)
        .validate()
        .unwrap_err();
    assert!(!err.to_string().contains("version \"\""), "{err}");
}

#[test]
fn an_answer_the_store_marked_incomplete_is_never_promoted_and_a_rollback_stands() {
    let mut partial = canary();
    partial
        .store_warnings
        .push("error_rate: partial response: store b unavailable".into());
    let e = decide(partial.clone());
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(
        e.primary_reason.contains("incomplete")
            && e.primary_reason
                .contains("partial response: store b unavailable"),
        "{}",
        e.primary_reason
    );
    assert_eq!(e.triggered_conditions[0].rule, Rule::IncompleteAnswer);
    assert!(e
        .warnings
        .iter()
        .any(|w| w == "canary: error_rate: partial response: store b unavailable"));
    // What the answer did show is still acted on.
    let e = decide(partial.with_error_rate_percent(9.0));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert!(e.fired(Rule::IncompleteAnswer));
    // The same answer unmarked is promoted: the warning alone made the difference.
    assert_eq!(decide(canary()).decision, RollbackDecision::Proceed);
}

#[test]
fn an_arm_that_stopped_reporting_is_never_promoted_and_a_rollback_stands() {
    let mut stopped = canary();
    stopped.stopped_reporting =
        Some("no series of its requests reports at the window's end".into());
    let e = decide(stopped.clone());
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(
        e.primary_reason
            .starts_with("the canary v1.1.0 stopped reporting: no series of its requests"),
        "{}",
        e.primary_reason
    );
    assert_eq!(e.triggered_conditions[0].rule, Rule::StoppedEvidence);
    let e = decide(stopped.with_error_rate_percent(9.0));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert!(e.fired(Rule::StoppedEvidence));
}
