//! The peer judges on steady traffic whose every value is known: when each decides, what, and
//! with which evidence.

use std::time::Duration;

use canary_core::judge::{
    ArgoJudge, ArgoParameters, FlaggerJudge, FlaggerParameters, Judge, JudgeFactory, KayentaJudge,
    KayentaParameters, Schedule, Verdict,
};
use canary_core::observation::{names, Observation};
use canary_core::policy::{ComparisonStatus, Rule};
use canary_core::test_util::steady_observations;
use canary_core::{Evaluation, RollbackDecision};
use chrono::{TimeZone, Utc};

/// p50 55.6 ms, p99 236 ms by the guide's buckets.
const FAST: [f64; 8] = [0.9, 0.999, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// Everything between 250 and 500 ms: p99 497.5 ms.
const SLOWER: [f64; 8] = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// p99 between 500 ms and 1 s.
const SLOW: [f64; 8] = [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0];

fn arm(version: &str, rps: f64, errors: f64, shares: [f64; 8], minutes: u64) -> Vec<Observation> {
    steady_observations(
        version,
        rps,
        errors,
        shares,
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
        Duration::from_secs(minutes * 60),
        Duration::from_secs(15),
    )
}

/// Feeds the pairs; the decision and the elapsed minutes when it came (None: `finish`).
fn run(judge: &mut dyn Judge, b: &[Observation], c: &[Observation]) -> (Evaluation, Option<f64>) {
    for (x, y) in b.iter().zip(c) {
        if let Verdict::Decided(e) = judge.observe(x, y) {
            let minutes = (y.at - c[0].at).num_seconds() as f64 / 60.0;
            // Decided stays decided.
            assert_eq!(judge.observe(x, y), Verdict::Decided(e.clone()));
            assert_eq!(judge.finish(), *e);
            return (*e, Some(minutes));
        }
    }
    (judge.finish(), None)
}

#[test]
fn flagger_promotes_after_its_iterations_and_rolls_back_at_its_threshold() {
    let base = arm("v1", 10.0, 0.0, FAST, 30);
    let mut j = FlaggerJudge::new(FlaggerParameters::default()).unwrap();
    let (e, at) = run(&mut j, &base, &arm("v2", 2.0, 0.001, FAST, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::Proceed, Some(5.0)),
        "{e:?}"
    );

    // 2 % errors: every check fails; the fifth failure rolls back.
    let mut j = FlaggerJudge::new(FlaggerParameters::default()).unwrap();
    let (e, at) = run(&mut j, &base, &arm("v2", 2.0, 0.02, FAST, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::RollbackAuto, Some(5.0))
    );
    assert!(
        e.primary_reason.contains("5 of 5 checks failed"),
        "{}",
        e.primary_reason
    );
    // The reason names the check that failed, and the condition its metric.
    assert!(
        e.primary_reason
            .contains("the last: request-success-rate 98.00% < 99%"),
        "{}",
        e.primary_reason
    );
    assert_eq!(e.triggered_conditions[0].rule, Rule::RollbackThreshold);
    assert_eq!(
        e.triggered_conditions[0].metric.as_deref(),
        Some("error_rate")
    );
    assert!(e.triggered_conditions[0]
        .message
        .contains("request-success-rate 98.00% < 99%"));
    let errors = e.comparison("error_rate").unwrap();
    assert_eq!(errors.status, ComparisonStatus::Degraded);
    // Flagger's limit is on the canary's own value: said as such, never as a ratio.
    assert_eq!(errors.rollback_threshold, None);
    assert_eq!(errors.rule.as_deref(), Some("a check fails above 1%"));
    assert!((errors.canary.unwrap() - 2.0).abs() < 1e-9);
    assert_eq!(errors.baseline, None, "Flagger does not read the baseline");

    // Flagger's own default threshold, 1: the first slow check rolls back.
    let p = FlaggerParameters {
        threshold: 1,
        ..FlaggerParameters::default()
    };
    let mut j = p.start().unwrap();
    let (e, at) = run(j.as_mut(), &base, &arm("v2", 2.0, 0.0, SLOW, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::RollbackAuto, Some(1.0))
    );
    assert!(
        e.triggered_conditions[0]
            .message
            .contains("request-duration"),
        "{e:?}"
    );

    // No traffic at all: no values, every check fails.
    let mut j = FlaggerJudge::new(FlaggerParameters::default()).unwrap();
    let (e, _) = run(&mut j, &base, &arm("v2", 0.0, 0.0, FAST, 30));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert!(e.triggered_conditions[0]
        .message
        .contains("no values found"));

    // The run ends first: manual review.
    let mut j = FlaggerJudge::new(FlaggerParameters::default()).unwrap();
    let (e, at) = run(&mut j, &base[..=12], &arm("v2", 2.0, 0.0, FAST, 3));
    assert_eq!((e.decision, at), (RollbackDecision::RollbackManual, None));
    assert_eq!(
        j.schedule(),
        Schedule::Continuous {
            first: Duration::from_secs(60)
        }
    );
    assert_eq!(j.parameters()["threshold"], 5);
}

#[test]
fn argo_maps_measurements_to_its_phases() {
    let base = arm("v1", 10.0, 0.0, FAST, 30);
    let argo = || ArgoJudge::new(ArgoParameters::default()).unwrap();
    let (e, at) = run(&mut argo(), &base, &arm("v2", 2.0, 0.04, FAST, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::Proceed, Some(10.0)),
        "{e:?}"
    );
    assert!(e.primary_reason.contains("Successful"));

    // 93 % success: neither condition holds, Inconclusive at the first measurement.
    let (e, at) = run(&mut argo(), &base, &arm("v2", 2.0, 0.07, FAST, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::RollbackManual, Some(1.0))
    );
    assert!(
        e.primary_reason.contains("Inconclusive"),
        "{}",
        e.primary_reason
    );

    // 85 % success fails at once (failureLimit 0).
    let (e, at) = run(&mut argo(), &base, &arm("v2", 2.0, 0.15, FAST, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::RollbackAuto, Some(1.0))
    );
    assert!(e.primary_reason.contains("Failed"));

    // p99 between the conditions: Inconclusive; beyond: Failed.
    let (e, _) = run(&mut argo(), &base, &arm("v2", 2.0, 0.0, SLOW, 30));
    assert_eq!(e.decision, RollbackDecision::RollbackManual, "{e:?}");
    assert!(e.primary_reason.contains("latency_p99"));
    let (e, _) = run(&mut argo(), &base, &arm("v2", 2.0, 0.0, SLOWER, 30));
    assert_eq!(
        e.decision,
        RollbackDecision::Proceed,
        "497.5 ms succeeds: {e:?}"
    );

    // No data: the fifth consecutive error exceeds consecutiveErrorLimit 4.
    let (e, at) = run(&mut argo(), &base, &arm("v2", 0.0, 0.0, FAST, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::RollbackAuto, Some(5.0))
    );
    assert!(e.primary_reason.contains("consecutive measurement errors"));
    assert_eq!(e.triggered_conditions[0].rule, Rule::MissingData);
}

#[test]
fn kayenta_scores_groups_over_growing_windows() {
    let kayenta = || KayentaJudge::new(KayentaParameters::default()).unwrap();
    let base = arm("v1", 10.0, 0.01, FAST, 30);
    // The same behaviour: identical per-minute values pass; the last judgement (30 min) proceeds.
    let (e, at) = run(&mut kayenta(), &base, &arm("v2", 10.0, 0.01, FAST, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::Proceed, Some(30.0)),
        "{e:?}"
    );
    assert!(
        e.primary_reason.contains("100.0, 100.0, 100.0"),
        "{}",
        e.primary_reason
    );

    // Slower (non-critical): one group of three fails, 66.7 <= 75, at the first judgement.
    let (e, at) = run(&mut kayenta(), &base, &arm("v2", 10.0, 0.01, SLOW, 30));
    assert_eq!(
        (e.decision, at),
        (RollbackDecision::RollbackAuto, Some(10.0)),
        "{e:?}"
    );
    assert!(e.primary_reason.contains("66.7"), "{}", e.primary_reason);
    let p99 = e.comparison("latency_p99").unwrap();
    assert_eq!(p99.status, ComparisonStatus::Degraded);
    assert!(p99
        .canary_query
        .as_deref()
        .unwrap()
        .contains("Hodges–Lehmann"));

    // Faster is not a failure for a metric that fails on increase.
    let slow_base = arm("v1", 10.0, 0.01, SLOW, 30);
    let (e, _) = run(&mut kayenta(), &slow_base, &arm("v2", 10.0, 0.01, FAST, 30));
    assert_eq!(e.decision, RollbackDecision::Proceed, "{e:?}");

    // The critical error rate fails: the score is 0.
    let (e, _) = run(&mut kayenta(), &base, &arm("v2", 10.0, 0.05, FAST, 30));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert!(
        e.primary_reason.contains("score 0.0"),
        "{}",
        e.primary_reason
    );

    // No canary traffic: two of three metrics NODATA scores 0.
    let (e, _) = run(&mut kayenta(), &base, &arm("v2", 0.0, 0.0, FAST, 30));
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert!(
        e.triggered_conditions
            .iter()
            .any(|c| c.rule == Rule::MissingData),
        "{e:?}"
    );
}

#[test]
fn kayenta_reads_the_confidence_gauge_and_refuses_bad_parameters() {
    let base = arm("v1", 10.0, 0.01, FAST, 30);
    let mut low = arm("v2", 10.0, 0.01, FAST, 30);
    for o in &mut low {
        o.gauges.insert(names::MODEL_CONFIDENCE.into(), 0.7);
    }
    let mut j = KayentaJudge::new(KayentaParameters::default()).unwrap();
    let (e, _) = run(&mut j, &base, &low);
    assert_eq!(e.decision, RollbackDecision::RollbackAuto, "{e:?}");
    assert_eq!(
        e.comparison("model_confidence").unwrap().status,
        ComparisonStatus::Degraded
    );

    let mut p = KayentaParameters::default();
    p.metrics[0].name = "cpu".into();
    assert!(KayentaJudge::new(p)
        .unwrap_err()
        .to_string()
        .contains("cpu"));
    // A NaN effect-size threshold would make the metric unable to fail: refused.
    let mut p = KayentaParameters::default();
    p.metrics[1].allowed_increase = f64::NAN;
    let e = KayentaJudge::new(p).unwrap_err().to_string();
    assert!(
        e.contains("error_rate") && e.contains("allowed_increase"),
        "{e}"
    );
    let p = KayentaParameters {
        pass: 50.0,
        ..KayentaParameters::default()
    };
    assert!(KayentaJudge::new(p).is_err(), "marginal above pass");
    let p = FlaggerParameters {
        iterations: 0,
        ..FlaggerParameters::default()
    };
    assert!(FlaggerJudge::new(p).is_err());
    let p = ArgoParameters {
        p99_failure_ms: 100.0,
        ..ArgoParameters::default()
    };
    assert!(ArgoJudge::new(p).is_err());
    // Parameters round-trip through their serialized form.
    let p = KayentaParameters::default();
    let back: KayentaParameters =
        serde_json::from_value(KayentaJudge::new(p.clone()).unwrap().parameters()).unwrap();
    assert_eq!(back, p);
}
