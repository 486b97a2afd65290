//! The validation flow, branch by branch, on the in-memory fakes. Every test asserts which
//! deployer calls were made, and in what order.

use std::sync::Arc;
use std::time::Duration;

use canary_core::test_util::{
    healthy_metrics, DeployerCall, DeployerOp, ManualClock, MockDeployer, RecordingDeployer,
    RecordingNotifier, ScriptedSource,
};
use canary_core::{
    business_check_fn, Arm, BusinessVerdict, CanaryValidator, Error, ManualReviewAction,
    MetricsQuery, MetricsSource, Outcome, Region, RollbackDecision, RollbackTarget, Rule,
    SystemClock, ValidationMetrics, ValidationRequest, ValidatorConfig, Version,
};
use chrono::Duration as ChronoDuration;
use DeployerCall::*;

const WARMUP: Duration = Duration::from_secs(600);

fn v(s: &str) -> Version {
    Version::new(s).unwrap()
}

fn deploy(version: &str) -> DeployerCall {
    DeployCanary {
        version: version.into(),
        values_file: Some("values-canary.yaml".into()),
    }
}

struct Rig {
    source: Arc<ScriptedSource>,
    deployer: Arc<RecordingDeployer>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<ManualClock>,
}

impl Rig {
    fn new() -> Self {
        let source = Arc::new(ScriptedSource::new());
        source.set("v1", healthy_metrics("v1"));
        Rig {
            source,
            deployer: Arc::new(RecordingDeployer::with_production("v1")),
            notifier: Arc::new(RecordingNotifier::new("recorder")),
            clock: Arc::new(ManualClock::default()),
        }
    }

    fn validator(&self) -> CanaryValidator {
        CanaryValidator::new(self.source.clone(), self.deployer.clone())
            .with_notifier(self.notifier.clone())
            .with_clock(self.clock.clone())
    }
}

fn request() -> ValidationRequest {
    ValidationRequest::new(v("v2")).with_values_file("values-canary.yaml")
}

#[tokio::test]
async fn healthy_canary_is_promoted() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let report = rig.validator().validate(request()).await;

    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert!(report.success);
    assert_eq!(report.decision, Some(RollbackDecision::Proceed));
    assert_eq!(
        rig.deployer.calls(),
        vec![ProductionVersion, deploy("v2"), Promote("v2".into())]
    );
    assert_eq!(rig.deployer.production(), Some(v("v2")));
    assert_eq!(report.baseline_version.as_deref(), Some("v1"));
    // One warm-up, then both arms fetched at the same time over the configured window.
    assert_eq!(rig.clock.sleeps(), vec![WARMUP]);
    let calls = rig.source.calls();
    assert_eq!(calls.len(), 2);
    let at = rig.clock.now() - ChronoDuration::seconds(0);
    assert!(calls
        .iter()
        .all(|q| q.at == Some(at) && q.window == Duration::from_secs(300)));
    assert_eq!(
        calls
            .iter()
            .map(|q| (q.version.as_str(), q.arm))
            .collect::<Vec<_>>(),
        vec![("v1", Arm::Baseline), ("v2", Arm::Canary)]
    );
    let events = rig.notifier.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome(), Outcome::Promoted);
    assert_eq!(report.timings.waited_seconds, 600.0);
    assert_eq!(report.timings.analysis_seconds, Some(600.0));
}

use canary_core::Clock as _;

#[tokio::test]
async fn regressing_canary_is_rolled_back_automatically() {
    let rig = Rig::new();
    rig.source
        .set("v2", healthy_metrics("v2").with_latency_p99_ms(320.0 * 1.6));
    let report = rig.validator().validate(request()).await;

    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(report.decision, Some(RollbackDecision::RollbackAuto));
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            Rollback(RollbackTarget::Canary)
        ]
    );
    assert_eq!(rig.deployer.production(), Some(v("v1")));
    assert!(report.reason.contains("latency_p99"), "{}", report.reason);
    let event = &rig.notifier.events()[0];
    assert_eq!(event.outcome(), Outcome::RolledBack);
    assert!(event.evaluation().unwrap().fired(Rule::RollbackThreshold));
    assert_eq!(
        event.action_lines().last().unwrap(),
        "rolled back the canary"
    );
}

#[tokio::test]
async fn manual_review_holds_the_canary_by_default() {
    let rig = Rig::new();
    rig.source
        .set("v2", healthy_metrics("v2").with_latency_p99_ms(320.0 * 1.2));
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::HeldForReview);
    assert_eq!(report.decision, Some(RollbackDecision::RollbackManual));
    assert_eq!(rig.deployer.calls(), vec![ProductionVersion, deploy("v2")]);
    assert_eq!(
        rig.deployer.canary(),
        Some(v("v2")),
        "the canary is left as it is"
    );
    assert_eq!(rig.notifier.events()[0].outcome(), Outcome::HeldForReview);
}

#[tokio::test]
async fn manual_review_rolls_back_when_configured() {
    let rig = Rig::new();
    rig.source
        .set("v2", healthy_metrics("v2").with_latency_p99_ms(320.0 * 1.2));
    let config = ValidatorConfig {
        on_manual_review: ManualReviewAction::Rollback,
        ..Default::default()
    };
    let report = rig
        .validator()
        .with_config(config)
        .unwrap()
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(report.decision, Some(RollbackDecision::RollbackManual));
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            Rollback(RollbackTarget::Canary)
        ]
    );
}

#[tokio::test]
async fn missing_canary_series_never_proceeds() {
    let rig = Rig::new(); // no script for v2: every metric is no data
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.decision, Some(RollbackDecision::RollbackManual));
    assert!(
        report.reason.starts_with("insufficient data"),
        "{}",
        report.reason
    );
    assert!(!rig.deployer.calls().iter().any(|c| matches!(c, Promote(_))));
}

#[tokio::test]
async fn deploy_failure_rolls_back_and_alerts_with_the_cause() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    rig.deployer.fail_on(
        DeployerOp::DeployCanary,
        "UPGRADE FAILED: timed out waiting for the condition",
    );
    let report = rig.validator().validate(request()).await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.decision, None);
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            Rollback(RollbackTarget::Canary)
        ]
    );
    let failure = report.failure.as_ref().unwrap();
    assert_eq!(failure.step, "deploy the canary");
    assert!(
        failure.error.contains("timed out waiting"),
        "{}",
        failure.error
    );
    assert!(
        rig.source.calls().is_empty(),
        "no analysis after a failed deploy"
    );
    let event = &rig.notifier.events()[0];
    assert_eq!(event.outcome(), Outcome::Failed);
    assert!(
        event.reason().contains("timed out waiting"),
        "{}",
        event.reason()
    );
}

#[tokio::test]
async fn source_error_mid_analysis_rolls_back() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    // Prometheus goes away after the first progressive step.
    let step2 = rig.clock.now() + ChronoDuration::seconds(1000);
    rig.source.fail_from("v2", step2, "Prometheus answered 503");
    let config = ValidatorConfig::progressive();
    let report = rig
        .validator()
        .with_config(config)
        .unwrap()
        .validate(request())
        .await;

    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            SetCanaryWeight(5),
            SetCanaryWeight(10),
            Rollback(RollbackTarget::Canary)
        ]
    );
    assert_eq!(report.steps.len(), 1);
    let failure = report.failure.unwrap();
    assert_eq!(failure.step, "fetch canary metrics");
    assert!(failure.retryable);
    assert!(failure.error.contains("503"));
}

#[tokio::test]
async fn impossible_metrics_from_a_source_fail_the_validation() {
    let rig = Rig::new();
    let mut bad = healthy_metrics("v2");
    bad.error_rate_percent = Some(150.0);
    rig.source.set("v2", bad);
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.reason.contains("error_rate"), "{}", report.reason);
    assert_eq!(
        rig.deployer.calls().last(),
        Some(&Rollback(RollbackTarget::Canary))
    );
}

#[tokio::test]
async fn notifier_down_never_blocks_the_rollback() {
    let rig = Rig::new();
    rig.source
        .set("v2", healthy_metrics("v2").with_error_rate_percent(5.0));
    let down = Arc::new(RecordingNotifier::failing("slack", "connection refused"));
    let report = rig
        .validator()
        .with_notifier(down.clone())
        .validate(request())
        .await;

    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(
        rig.deployer.calls().last(),
        Some(&Rollback(RollbackTarget::Canary))
    );
    assert_eq!(report.notifications.len(), 2);
    let slack = report
        .notifications
        .iter()
        .find(|n| n.notifier == "slack")
        .unwrap();
    assert!(!slack.delivered);
    assert!(slack.error.as_ref().unwrap().contains("connection refused"));
    assert_eq!(
        rig.notifier.events().len(),
        1,
        "the working notifier still got the event"
    );
    assert_eq!(down.events().len(), 1);
}

#[tokio::test]
async fn progressive_canary_walks_every_weight_then_promotes() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let report = rig
        .validator()
        .with_config(ValidatorConfig::progressive())
        .unwrap()
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            SetCanaryWeight(5),
            SetCanaryWeight(10),
            SetCanaryWeight(25),
            SetCanaryWeight(50),
            Promote("v2".into())
        ]
    );
    assert_eq!(rig.clock.sleeps(), vec![WARMUP; 4]);
    let weights: Vec<_> = report.steps.iter().map(|s| s.weight).collect();
    assert_eq!(weights, vec![Some(5), Some(10), Some(25), Some(50)]);
    assert_eq!(report.timings.waited_seconds, 2400.0);
}

#[tokio::test]
async fn progressive_canary_stops_at_the_first_step_that_does_not_proceed() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    // From step 3 on (after 3 warm-ups), the canary's errors spike.
    let step3 = rig.clock.now() + ChronoDuration::seconds(3 * 600);
    rig.source.set_from(
        "v2",
        step3,
        healthy_metrics("v2").with_error_rate_percent(3.0),
    );
    let report = rig
        .validator()
        .with_config(ValidatorConfig::progressive())
        .unwrap()
        .validate(request().with_warmup(WARMUP))
        .await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            SetCanaryWeight(5),
            SetCanaryWeight(10),
            SetCanaryWeight(25),
            Rollback(RollbackTarget::Canary)
        ]
    );
    let decisions: Vec<_> = report.steps.iter().map(|s| s.evaluation.decision).collect();
    assert_eq!(
        decisions,
        vec![
            RollbackDecision::Proceed,
            RollbackDecision::Proceed,
            RollbackDecision::RollbackAuto
        ]
    );
}

#[tokio::test]
async fn the_request_warmup_overrides_the_configured_one() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    rig.validator()
        .validate(request().with_warmup(Duration::from_secs(60)))
        .await;
    assert_eq!(rig.clock.sleeps(), vec![Duration::from_secs(60)]);
}

struct RegionRig {
    sources: Vec<Arc<ScriptedSource>>,
    deployers: Vec<Arc<RecordingDeployer>>,
}

fn regions(n: usize) -> (RegionRig, CanaryValidator) {
    let mut rig = RegionRig {
        sources: vec![],
        deployers: vec![],
    };
    let mut regions = vec![];
    for i in 0..n {
        let source = Arc::new(ScriptedSource::new());
        source.set("v1", healthy_metrics("v1"));
        source.set("v2", healthy_metrics("v2"));
        let deployer = Arc::new(RecordingDeployer::with_production("v1"));
        regions.push(Region::new(
            format!("region-{i}"),
            source.clone(),
            deployer.clone(),
        ));
        rig.sources.push(source);
        rig.deployers.push(deployer);
    }
    let validator = CanaryValidator::multi_region(regions)
        .unwrap()
        .with_clock(Arc::new(ManualClock::default()));
    (rig, validator)
}

#[tokio::test]
async fn every_region_must_proceed_to_promote() {
    let (rig, validator) = regions(3);
    let report = validator.validate(request()).await;
    assert_eq!(report.outcome, Outcome::Promoted);
    for d in &rig.deployers {
        assert_eq!(
            d.calls(),
            vec![ProductionVersion, deploy("v2"), Promote("v2".into())]
        );
    }
    assert_eq!(report.steps.len(), 3);
}

#[tokio::test]
async fn a_regressing_region_rolls_back_every_region() {
    let (rig, validator) = regions(3);
    rig.sources[1].set("v2", healthy_metrics("v2").with_model_confidence(0.5));
    let report = validator.validate(request()).await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(report.decision, Some(RollbackDecision::RollbackAuto));
    for d in &rig.deployers {
        assert_eq!(
            d.calls(),
            vec![
                ProductionVersion,
                deploy("v2"),
                Rollback(RollbackTarget::Canary)
            ]
        );
    }
    assert!(report.reason.contains("model_confidence"));
}

#[tokio::test]
async fn a_failing_region_fails_the_validation_and_rolls_back_everywhere() {
    let (rig, validator) = regions(2);
    rig.deployers[1].fail_on(
        DeployerOp::DeployCanary,
        "Error: another operation (install/upgrade/rollback) is in progress",
    );
    let report = validator.validate(request()).await;
    assert_eq!(report.outcome, Outcome::Failed);
    let failure = report.failure.unwrap();
    assert_eq!(failure.region.as_deref(), Some("region-1"));
    assert!(
        report.reason.contains("in region region-1"),
        "{}",
        report.reason
    );
    for d in &rig.deployers {
        assert_eq!(d.calls().last(), Some(&Rollback(RollbackTarget::Canary)));
        assert!(!d.calls().iter().any(|c| matches!(c, Promote(_))));
    }
}

#[test]
fn regions_need_unique_names() {
    let s = Arc::new(ScriptedSource::new());
    let d = Arc::new(RecordingDeployer::new());
    let r = |n: &str| Region::new(n, s.clone(), d.clone());
    assert!(CanaryValidator::multi_region(vec![r("eu"), r("eu")]).is_err());
    assert!(CanaryValidator::multi_region(vec![]).is_err());
    assert!(CanaryValidator::multi_region(vec![r("eu"), r("us")]).is_ok());
}

#[tokio::test(start_paused = true)]
async fn cancellation_during_warmup_rolls_back() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let validator = CanaryValidator::new(rig.source.clone(), rig.deployer.clone())
        .with_notifier(rig.notifier.clone())
        .with_clock(Arc::new(SystemClock));
    // Tokio's paused clock jumps ahead: the cancel at 5 min fires inside the 10 min warm-up.
    let cancel = tokio::time::sleep(Duration::from_secs(300));
    let report = validator.validate_until(request(), cancel).await;

    assert_eq!(report.outcome, Outcome::Cancelled, "{}", report.reason);
    assert!(report.reason.contains("warm-up"), "{}", report.reason);
    assert_eq!(
        rig.deployer.calls(),
        vec![
            ProductionVersion,
            deploy("v2"),
            Rollback(RollbackTarget::Canary)
        ]
    );
    assert!(
        rig.source.calls().is_empty(),
        "no analysis after cancellation"
    );
    assert_eq!(rig.notifier.events()[0].outcome(), Outcome::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn cancellation_before_the_deadline_does_not_interrupt() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let validator = CanaryValidator::new(rig.source.clone(), rig.deployer.clone())
        .with_clock(Arc::new(SystemClock));
    let cancel = tokio::time::sleep(Duration::from_secs(3600));
    let report = validator.validate_until(request(), cancel).await;
    assert_eq!(report.outcome, Outcome::Promoted);
}

#[tokio::test]
async fn dropping_the_future_mid_flow_abandons_it_without_acting() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let validator = CanaryValidator::new(rig.source.clone(), rig.deployer.clone())
        .with_clock(Arc::new(SystemClock));
    let result =
        tokio::time::timeout(Duration::from_millis(20), validator.validate(request())).await;
    assert!(result.is_err(), "the 10 min warm-up cannot finish in 20 ms");
    assert_eq!(rig.deployer.calls(), vec![ProductionVersion, deploy("v2")]);
}

#[tokio::test]
async fn no_production_version_fails_before_deploying() {
    let rig = Rig {
        deployer: Arc::new(RecordingDeployer::new()),
        ..Rig::new()
    };
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.contains("pass one explicitly"),
        "{}",
        report.reason
    );
    assert_eq!(
        rig.deployer.calls(),
        vec![ProductionVersion],
        "nothing to roll back"
    );
}

#[tokio::test]
async fn an_explicit_baseline_skips_the_lookup() {
    let rig = Rig::new();
    rig.source.set("v0", healthy_metrics("v0"));
    rig.source.set("v2", healthy_metrics("v2"));
    let report = rig
        .validator()
        .validate(request().with_baseline(v("v0")))
        .await;
    assert_eq!(report.outcome, Outcome::Promoted);
    assert_eq!(
        rig.deployer.calls(),
        vec![deploy("v2"), Promote("v2".into())]
    );
    assert_eq!(rig.source.calls()[0].version.as_str(), "v0");
}

#[tokio::test]
async fn a_failing_business_check_sends_a_passing_canary_to_review() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let check = business_check_fn("conversion", |_, _| async {
        Ok(BusinessVerdict {
            passed: false,
            details: "conversion -3%".into(),
        })
    });
    let report = rig
        .validator()
        .with_business_check(Arc::new(check))
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::HeldForReview);
    assert_eq!(report.decision, Some(RollbackDecision::RollbackManual));
    assert!(report.reason.contains("conversion -3%"));
    assert!(report.evaluation.unwrap().fired(Rule::BusinessCheck));
    assert!(!report.business_check.unwrap().passed);
    assert_eq!(rig.deployer.calls(), vec![ProductionVersion, deploy("v2")]);
}

#[tokio::test]
async fn both_checks_passing_promotes_and_a_broken_check_rolls_back() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let ok = business_check_fn("ab", |version, evaluation| async move {
        assert_eq!(version.as_str(), "v2");
        assert_eq!(evaluation.decision, RollbackDecision::Proceed);
        Ok(BusinessVerdict {
            passed: true,
            details: "ok".into(),
        })
    });
    let report = rig
        .validator()
        .with_business_check(Arc::new(ok))
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::Promoted);

    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let broken = business_check_fn("ab", |_, _| async {
        Err(Error::InvalidConfig {
            field: "ab".into(),
            reason: "experiment not found".into(),
        })
    });
    let report = rig
        .validator()
        .with_business_check(Arc::new(broken))
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.contains("experiment not found"),
        "{}",
        report.reason
    );
    assert_eq!(
        rig.deployer.calls().last(),
        Some(&Rollback(RollbackTarget::Canary))
    );
}

#[tokio::test]
async fn a_business_check_never_softens_an_automatic_rollback() {
    let rig = Rig::new();
    rig.source
        .set("v2", healthy_metrics("v2").with_error_rate_percent(9.0));
    let check = business_check_fn("ab", |_, _| async {
        panic!("not consulted after a technical rollback")
    });
    let report = rig
        .validator()
        .with_business_check(Arc::new(check))
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert!(report.business_check.is_none());
}

#[tokio::test]
async fn the_flows_metrics_match_the_guides_alert_rules() {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = ValidationMetrics::register(&mut registry);
    let rig = Rig::new();
    rig.source
        .set("v2", healthy_metrics("v2").with_error_rate_percent(9.0));
    rig.source.set("v3", healthy_metrics("v3"));
    let validator = rig.validator().with_metrics(metrics);
    validator.validate(request()).await;
    let text = canary_core::telemetry::encode(&registry);
    assert!(text.contains("canary_rollback_total 1"), "{text}");
    assert!(text.contains("canary_validation_success 0"), "{text}");
    validator.validate(ValidationRequest::new(v("v3"))).await;
    let text = canary_core::telemetry::encode(&registry);
    assert!(text.contains("canary_promotion_total 1"), "{text}");
    assert!(text.contains("canary_validation_success 1"), "{text}");
    assert!(
        text.contains("canary_analysis_duration_seconds_count 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_failed_rollback_is_reported_for_manual_action() {
    // A mock asserts the exact calls and their order.
    let mut deployer = MockDeployer::new();
    let mut seq = mockall::Sequence::new();
    deployer
        .expect_production_version()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| Ok(Some(v("v1"))));
    deployer
        .expect_deploy_canary()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    deployer
        .expect_rollback()
        .withf(|t| *t == RollbackTarget::Canary)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Err(Error::deploy_failed(
                "roll back the canary",
                false,
                "release: not found",
            ))
        });
    deployer.expect_promote().never();
    let source = Arc::new(ScriptedSource::new());
    source.set("v1", healthy_metrics("v1"));
    source.set("v2", healthy_metrics("v2").with_latency_p99_ms(5000.0));
    let validator = CanaryValidator::new(source, Arc::new(deployer))
        .with_clock(Arc::new(ManualClock::default()));
    let report = validator.validate(request()).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.decision, Some(RollbackDecision::RollbackAuto));
    assert!(
        report.reason.contains("roll it back by hand"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains("release: not found"),
        "{}",
        report.reason
    );
}

/// A source that only answers once both arms are being fetched at the same time.
struct Rendezvous {
    barrier: tokio::sync::Barrier,
    inner: ScriptedSource,
}

#[async_trait::async_trait]
impl MetricsSource for Rendezvous {
    async fn fetch(&self, query: &MetricsQuery) -> canary_core::Result<canary_core::CanaryMetrics> {
        self.barrier.wait().await;
        self.inner.fetch(query).await
    }
}

#[tokio::test]
async fn baseline_and_canary_are_fetched_concurrently() {
    let inner = ScriptedSource::new();
    inner.set("v1", healthy_metrics("v1"));
    inner.set("v2", healthy_metrics("v2"));
    let source = Arc::new(Rendezvous {
        barrier: tokio::sync::Barrier::new(2),
        inner,
    });
    let deployer = Arc::new(RecordingDeployer::with_production("v1"));
    let validator =
        CanaryValidator::new(source, deployer).with_clock(Arc::new(ManualClock::default()));
    let report = tokio::time::timeout(Duration::from_secs(10), validator.validate(request()))
        .await
        .expect("sequential fetches would wait at the barrier forever");
    assert_eq!(report.outcome, Outcome::Promoted);
}

#[tokio::test]
async fn the_report_reads_decision_first_then_evidence_then_actions() {
    let rig = Rig::new();
    rig.source
        .set("v2", healthy_metrics("v2").with_latency_p99_ms(600.0));
    let report = rig.validator().validate(request()).await;
    let md = report.to_markdown();
    let pos = |needle: &str| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from\n{md}"))
    };
    assert!(
        md.starts_with("## Canary v2 vs v1: ROLLED BACK (decision: rollback_auto)"),
        "{md}"
    );
    assert!(pos("**Reason:**") < pos("### Evidence"));
    assert!(pos("### Evidence") < pos("### Actions"));
    assert!(md.contains("| — | 1 | — | latency_p99 | 320 ms | 600 ms | 1.875× | +87.5% | rollback 1.5×, proceed 1.1× | **degraded** |"), "{md}");
    assert!(md.contains("`rollback_threshold`"), "{md}");
    assert!(md.contains("rolled back the canary — ok"), "{md}");
    let back: canary_core::ValidationReport = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(back, report);
}

#[test]
fn configs_are_validated() {
    let bad = [
        ValidatorConfig {
            progressive_weights: vec![10, 5],
            ..Default::default()
        },
        ValidatorConfig {
            progressive_weights: vec![0, 5],
            ..Default::default()
        },
        ValidatorConfig {
            progressive_weights: vec![50, 101],
            ..Default::default()
        },
        ValidatorConfig {
            analysis_window: Duration::ZERO,
            ..Default::default()
        },
    ];
    for c in bad {
        assert!(c.validate().is_err(), "{c:?}");
    }
    let c: ValidatorConfig =
        serde_json::from_str(r#"{"warmup": 30, "progressive_weights": [5, 50]}"#).unwrap();
    assert_eq!(c.warmup, Duration::from_secs(30));
    assert!(c.validate().is_ok());
}

#[tokio::test]
async fn the_fakes_pass_the_conformance_suites() {
    let source = ScriptedSource::new();
    source.set("v1", healthy_metrics("v1"));
    let at = chrono::Utc::now();
    canary_core::test_util::conformance::metrics_source(
        &source,
        "v1",
        "v9",
        Duration::from_secs(300),
        at,
    )
    .await;
    let deployer = RecordingDeployer::with_production("v1");
    canary_core::test_util::conformance::deployer(&deployer, &v("v2")).await;
    let notifier = RecordingNotifier::new("recorder");
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let report = rig.validator().validate(request()).await;
    let event = canary_core::DecisionEvent::new(report);
    canary_core::test_util::conformance::notifier(&notifier, &event).await;
    assert_eq!(notifier.events().len(), 1);

    // And the failure halves of the suites, with the error kinds each trait promises.
    let failing = ScriptedSource::new();
    failing.fail("v3", "backend down", true);
    canary_core::test_util::conformance::failing_metrics_source(&failing, "v3", true).await;
    let failing = RecordingDeployer::with_production("v1");
    for op in [
        DeployerOp::DeployCanary,
        DeployerOp::Promote,
        DeployerOp::Rollback,
    ] {
        failing.fail_on(op, "cluster unreachable");
    }
    canary_core::test_util::conformance::failing_deployer(&failing, &v("v2")).await;
    let failing = RecordingNotifier::failing("pager", "down");
    canary_core::test_util::conformance::failing_notifier(&failing, &event).await;
}

#[tokio::test]
async fn the_validator_asks_each_arm_once_for_the_configured_window_at_one_time() {
    // Call expectations are what a mock is for: the arm, the version, the window, one call each.
    let mut source = canary_core::test_util::MockMetricsSource::new();
    let window = Duration::from_secs(240);
    source
        .expect_fetch()
        .withf(move |q| q.version.as_str() == "v1" && q.arm == Arm::Baseline && q.window == window)
        .times(1)
        .returning(|q| Ok(healthy_metrics(q.version.as_str())));
    source
        .expect_fetch()
        .withf(move |q| q.version.as_str() == "v2" && q.arm == Arm::Canary && q.window == window)
        .times(1)
        .returning(|q| Ok(healthy_metrics(q.version.as_str())));
    // The charts' series: the same window, one point per scrape interval at most.
    source
        .expect_fetch_series()
        .withf(move |q, step| q.window == window && *step == Duration::from_secs(15))
        .times(2)
        .returning(|_, _| Ok(Vec::new()));
    let deployer = Arc::new(RecordingDeployer::with_production("v1"));
    let validator = CanaryValidator::new(Arc::new(source), deployer)
        .with_clock(Arc::new(ManualClock::default()))
        .with_config(ValidatorConfig {
            analysis_window: window,
            ..Default::default()
        })
        .unwrap();
    let report = validator.validate(request()).await;
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
}

#[tokio::test]
async fn the_report_charts_both_arms_and_a_failed_chart_changes_no_decision() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    let report = rig.validator().validate(request()).await;
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    let step = &report.steps[0];
    assert_eq!(step.series_error, None);
    let p99 = step
        .series
        .iter()
        .find(|s| s.metric == "latency_p99")
        .expect("a latency_p99 series");
    assert!(p99.baseline.len() > 10 && p99.canary.len() == p99.baseline.len());
    let end = p99.canary.last().unwrap()[0];
    let start = p99.canary[0][0];
    assert_eq!(end - start, 300.0, "the analysis window");
    assert_eq!(
        p99.canary[0][1],
        healthy_metrics("v2").latency_p99_ms.unwrap()
    );

    let mut source = canary_core::test_util::MockMetricsSource::new();
    source
        .expect_fetch()
        .returning(|q| Ok(healthy_metrics(q.version.as_str())));
    source.expect_fetch_series().returning(|q, _| {
        Err(canary_core::Error::source_failed(
            q.version.as_str(),
            true,
            "range query refused",
        ))
    });
    let validator = CanaryValidator::new(
        Arc::new(source),
        Arc::new(RecordingDeployer::with_production("v1")),
    )
    .with_clock(Arc::new(ManualClock::default()));
    let report = validator.validate(request()).await;
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert!(report.steps[0].series.is_empty());
    assert!(
        report.steps[0]
            .series_error
            .as_deref()
            .is_some_and(|e| e.contains("range query refused")),
        "{:?}",
        report.steps[0].series_error
    );
}

#[tokio::test]
async fn a_broken_business_check_and_a_failed_rollback_are_both_reported() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    rig.deployer.fail_on(
        DeployerOp::Rollback,
        "Error: uninstall: timed out waiting for the condition",
    );
    let broken = business_check_fn("ab", |_, _| async {
        Err(Error::InvalidConfig {
            field: "ab".into(),
            reason: "experiment not found".into(),
        })
    });
    let report = rig
        .validator()
        .with_business_check(Arc::new(broken))
        .validate(request())
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.contains("experiment not found"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains("rolling back the canary failed too"),
        "{}",
        report.reason
    );
    assert!(
        report
            .reason
            .contains("timed out waiting for the condition"),
        "{}",
        report.reason
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_rollback_after_cancellation_keeps_its_cause() {
    let rig = Rig::new();
    rig.source.set("v2", healthy_metrics("v2"));
    rig.deployer.fail_on(
        DeployerOp::Rollback,
        "Error: uninstall: release: not found in storage",
    );
    let validator = CanaryValidator::new(rig.source.clone(), rig.deployer.clone())
        .with_clock(Arc::new(SystemClock));
    let report = validator
        .validate_until(request(), tokio::time::sleep(Duration::from_secs(300)))
        .await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason.starts_with("cancelled, and "),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains("release: not found in storage"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.ends_with("roll it back by hand"),
        "{}",
        report.reason
    );
}

#[tokio::test]
async fn metrics_of_another_version_than_asked_are_a_failed_fetch_not_a_decision() {
    // A confused source answers every query with the baseline's (healthy) metrics.
    let mut source = canary_core::test_util::MockMetricsSource::new();
    source
        .expect_fetch()
        .returning(|_| Ok(healthy_metrics("v1")));
    source
        .expect_fetch_series()
        .returning(|_, _| Ok(Vec::new()));
    let deployer = Arc::new(RecordingDeployer::with_production("v1"));
    let validator = CanaryValidator::new(Arc::new(source), deployer.clone())
        .with_clock(Arc::new(ManualClock::default()));
    let report = validator.validate(request()).await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);
    assert!(
        report.reason.contains("labelled \"v1\" for version v2"),
        "{}",
        report.reason
    );
    assert_eq!(deployer.production(), Some(v("v1")), "nothing was promoted");
    assert!(deployer.canary().is_none(), "the canary was rolled back");
}

mod judged {
    //! The validator running a judge fed observations over time.

    use super::*;
    use canary_core::judge::ThresholdParameters;
    use canary_core::test_util::{steady_observations, ScriptedObservations, HEALTHY_SHARES};

    /// Both arms' steady traffic from the manual clock's start, for 70 minutes.
    fn observations(canary_error_ratio: f64) -> Arc<ScriptedObservations> {
        let start = ManualClock::default().now();
        let (d, step) = (Duration::from_secs(70 * 60), Duration::from_secs(15));
        let source = ScriptedObservations::new();
        source.set(
            "v1",
            steady_observations("v1", 40.0, 0.01, HEALTHY_SHARES, start, d, step),
        );
        source.set(
            "v2",
            steady_observations(
                "v2",
                4.0,
                canary_error_ratio,
                HEALTHY_SHARES,
                start,
                d,
                step,
            ),
        );
        Arc::new(source)
    }

    fn validator(rig: &Rig, observations: Option<Arc<ScriptedObservations>>) -> CanaryValidator {
        let mut region = Region::new("eu", rig.source.clone(), rig.deployer.clone());
        if let Some(o) = observations {
            region = region.with_observations(o);
        }
        CanaryValidator::multi_region(vec![region])
            .unwrap()
            .with_notifier(rig.notifier.clone())
            .with_clock(rig.clock.clone())
            .with_judge(Arc::new(ThresholdParameters::default()))
    }

    #[tokio::test]
    async fn a_healthy_canary_is_promoted_at_the_judges_first_look() {
        let rig = Rig::new();
        let report = validator(&rig, Some(observations(0.01)))
            .validate(request())
            .await;
        assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
        assert_eq!(report.steps.len(), 1);
        // The threshold judge looks once, ten minutes in.
        assert_eq!(report.steps[0].waited_seconds, 600.0);
        assert_eq!(rig.deployer.production(), Some(v("v2")));
    }

    /// The evidence rules hold on this path as on the service's, for every judge: a canary
    /// whose series stop is held for a person, and so is one the store answered about in part.
    #[tokio::test]
    async fn evidence_that_stops_or_comes_back_partial_never_promotes_with_any_judge() {
        let start = ManualClock::default().now();
        for factory in canary_core::test_util::every_judge() {
            let stops = observations(0.01);
            let four_minutes = Duration::from_secs(240);
            stops.set(
                "v2",
                steady_observations(
                    "v2",
                    4.0,
                    0.01,
                    HEALTHY_SHARES,
                    start,
                    four_minutes,
                    Duration::from_secs(15),
                ),
            );
            let partial = observations(0.01);
            let mut answered = steady_observations(
                "v2",
                4.0,
                0.01,
                HEALTHY_SHARES,
                start,
                Duration::from_secs(70 * 60),
                Duration::from_secs(15),
            );
            for o in &mut answered {
                o.store_warnings
                    .push("partial response: store b unavailable".into());
            }
            partial.set("v2", answered);
            for (case, source) in [("stops", stops), ("partial", partial)] {
                let rig = Rig::new();
                let report = validator(&rig, Some(source))
                    .with_judge(factory.clone())
                    .validate(request())
                    .await;
                let name = factory.start().unwrap().name().to_owned();
                assert_ne!(
                    report.outcome,
                    Outcome::Promoted,
                    "{name} {case}: {}",
                    report.reason
                );
                let evaluation = &report.steps.last().unwrap().evaluation;
                let rule = match case {
                    "stops" => canary_core::policy::Rule::StoppedEvidence,
                    _ => canary_core::policy::Rule::IncompleteAnswer,
                };
                // A judge may decide on the evidence before it stopped; after, only the rule.
                let before_the_stop =
                    case == "stops" && report.steps.last().unwrap().waited_seconds <= 300.0;
                assert!(
                    evaluation.fired(rule) || before_the_stop,
                    "{name} {case}: {evaluation:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_regressing_canary_is_rolled_back() {
        let rig = Rig::new();
        let report = validator(&rig, Some(observations(0.03)))
            .validate(request())
            .await;
        assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.reason);
        assert_eq!(report.decision, Some(RollbackDecision::RollbackAuto));
        assert!(report.reason.contains("error_rate"), "{}", report.reason);
    }

    #[tokio::test]
    async fn without_canary_evidence_a_person_decides_after_the_first_scrape_grace() {
        let rig = Rig::new();
        let source = observations(0.01);
        source.set("v2", Vec::new());
        let report = validator(&rig, Some(source)).validate(request()).await;
        assert_eq!(report.decision, Some(RollbackDecision::RollbackManual));
        assert_eq!(report.outcome, Outcome::HeldForReview);
        let grace = canary_core::judge::replay::first_scrape_grace(Duration::from_secs(15));
        let waited = report.steps[0].waited_seconds;
        assert!(
            waited >= grace.as_secs_f64() && waited < grace.as_secs_f64() + 60.0,
            "awaited for the grace, not the maximum duration: {waited}"
        );
        assert!(report.reason.contains("no series"), "{}", report.reason);
        // A run held before its judge decided renders like any other: the reason, the rule.
        let md = report.to_markdown();
        assert!(
            md.contains("the canary has no series since") && md.contains("rollback_manual"),
            "{md}"
        );
        assert!(
            report.reason.starts_with("insufficient data"),
            "{}",
            report.reason
        );
    }

    #[tokio::test]
    async fn a_judge_without_observations_is_a_clear_failure() {
        let rig = Rig::new();
        let report = validator(&rig, None).validate(request()).await;
        assert_eq!(report.outcome, Outcome::Failed);
        assert!(
            report.reason.contains("needs observations"),
            "{}",
            report.reason
        );
        assert!(
            rig.deployer.canary().is_none(),
            "the canary was rolled back"
        );
    }

    #[tokio::test]
    async fn a_failing_observation_source_fails_the_step_and_rolls_back() {
        let rig = Rig::new();
        let source = observations(0.01);
        source.fail("v2", "backend down");
        let report = validator(&rig, Some(source)).validate(request()).await;
        assert_eq!(report.outcome, Outcome::Failed);
        assert!(
            report.reason.contains("observe the canary"),
            "{}",
            report.reason
        );
        assert!(rig.deployer.canary().is_none());
    }

    mod sequential {
        //! The sequential judge in the validator's continuous mode.

        use super::*;
        use canary_core::judge::SequentialParameters;
        use canary_core::ValidatorConfig;

        fn sequential(
            rig: &Rig,
            source: Arc<ScriptedObservations>,
            progressive: bool,
        ) -> CanaryValidator {
            let region = Region::new("eu", rig.source.clone(), rig.deployer.clone())
                .with_observations(source);
            let config = if progressive {
                ValidatorConfig::progressive()
            } else {
                ValidatorConfig::default()
            };
            CanaryValidator::multi_region(vec![region])
                .unwrap()
                .with_config(config)
                .unwrap()
                .with_notifier(rig.notifier.clone())
                .with_clock(rig.clock.clone())
                .with_judge(Arc::new(SequentialParameters::default()))
        }

        #[tokio::test]
        async fn a_regression_stops_the_run_as_soon_as_it_is_certain() {
            let rig = Rig::new();
            let report = sequential(&rig, observations(0.03), false)
                .validate(request())
                .await;
            assert_eq!(
                report.decision,
                Some(RollbackDecision::RollbackAuto),
                "{}",
                report.reason
            );
            assert!(report.reason.contains("error_rate"), "{}", report.reason);
            // Sooner than the threshold judge's one look at 10 minutes.
            assert!(
                report.steps[0].waited_seconds < 600.0,
                "{}",
                report.steps[0].waited_seconds
            );
            let step = &report.steps[0];
            let errors = step
                .evaluation
                .comparisons
                .iter()
                .find(|c| c.metric == "error_rate")
                .and_then(|c| c.interval.clone())
                .expect("the error rate's interval");
            assert!(errors.lower.unwrap() > errors.margin, "{errors:?}");
            assert!(!step.sequence.is_empty(), "evidence over time");
            let md = report.to_markdown();
            assert!(md.contains("### Evidence over time"), "{md}");
        }

        /// Busy steady traffic (2,000 and 500 requests a second), both arms alike: enough
        /// errors to show within minutes that the canary's rate is within 10 % of the
        /// baseline's.
        fn busy() -> Arc<ScriptedObservations> {
            let start = ManualClock::default().now();
            let (d, step) = (Duration::from_secs(70 * 60), Duration::from_secs(15));
            let source = ScriptedObservations::new();
            for (v, rps) in [("v1", 2000.0), ("v2", 500.0)] {
                source.set(
                    v,
                    steady_observations(v, rps, 0.01, HEALTHY_SHARES, start, d, step),
                );
            }
            Arc::new(source)
        }

        #[tokio::test]
        async fn a_healthy_canary_is_promoted_without_waiting_for_the_maximum() {
            let rig = Rig::new();
            let report = sequential(&rig, busy(), false).validate(request()).await;
            assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
            let waited = report.steps[0].waited_seconds;
            assert!((300.0..3600.0).contains(&waited), "{waited}");
            // The report of a promotion says what the judge would have caught, and that it is
            // a power statement.
            let md = report.to_markdown();
            assert!(
                md.contains("with 95% power") && md.contains("a power statement, not a proof"),
                "{md}"
            );
        }

        #[tokio::test]
        async fn evidence_carries_across_progressive_steps() {
            let rig = Rig::new();
            let report = sequential(&rig, busy(), true).validate(request()).await;
            assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
            assert_eq!(report.steps.len(), 4);
            // The same judge went on: each step's requests include the steps before it, and
            // each step's evidence over time starts where the previous one's ended.
            let samples: Vec<f64> = report
                .steps
                .iter()
                .map(|s| s.evaluation.canary_samples.unwrap())
                .collect();
            assert!(samples.windows(2).all(|w| w[1] > w[0]), "{samples:?}");
            for w in report.steps.windows(2) {
                let (a, b) = (&w[0].sequence, &w[1].sequence);
                assert!(b.first().unwrap().seconds > a.last().unwrap().seconds);
            }
        }

        #[tokio::test]
        async fn missing_canary_latency_never_promotes() {
            let rig = Rig::new();
            let source = observations(0.01);
            let start = ManualClock::default().now();
            let mut canary = steady_observations(
                "v2",
                4.0,
                0.01,
                HEALTHY_SHARES,
                start,
                Duration::from_secs(70 * 60),
                Duration::from_secs(15),
            );
            for o in &mut canary {
                o.histograms.clear();
            }
            source.set("v2", canary);
            let report = sequential(&rig, source, false).validate(request()).await;
            assert_eq!(
                report.decision,
                Some(RollbackDecision::RollbackManual),
                "{}",
                report.reason
            );
            assert!(
                report.reason.contains("insufficient data"),
                "{}",
                report.reason
            );
            assert!(report.reason.contains("latency"), "{}", report.reason);
        }
    }
}

mod progress {
    //! What a progress display is told.

    use super::*;
    use canary_core::{Progress, ProgressEvent};
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl Progress for Recorded {
        fn event(&self, event: &ProgressEvent<'_>) {
            let line = match event {
                ProgressEvent::WarmUp { place, duration } => {
                    format!("{place}: warm-up {}s", duration.as_secs())
                }
                ProgressEvent::Judging {
                    place,
                    judge,
                    look,
                    remaining,
                    ..
                } => format!(
                    "{place}: {judge} look {look}, {}s left",
                    remaining.as_secs()
                ),
                ProgressEvent::Decided { place, decision } => format!("{place}: {decision}"),
                _ => "other".into(),
            };
            self.0.lock().unwrap().push(line);
        }
    }

    #[tokio::test]
    async fn each_warm_up_and_decision_of_a_progressive_canary_is_told() {
        let rig = Rig::new();
        rig.source.set("v2", healthy_metrics("v2"));
        let recorded = Arc::new(Recorded::default());
        let report = rig
            .validator()
            .with_config(ValidatorConfig {
                progressive_weights: vec![10, 50],
                ..Default::default()
            })
            .unwrap()
            .with_progress(recorded.clone())
            .validate(request())
            .await;
        assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
        assert_eq!(
            *recorded.0.lock().unwrap(),
            [
                "step 1/2 at 10%: warm-up 600s",
                "step 1/2 at 10%: proceed",
                "step 2/2 at 50%: warm-up 600s",
                "step 2/2 at 50%: proceed",
            ]
        );
    }

    #[tokio::test]
    async fn a_judge_tells_each_look_with_the_time_it_may_still_take() {
        let rig = Rig::new();
        // Nothing to observe: the judge looks until it must decide.
        let source = Arc::new(canary_core::test_util::ScriptedObservations::new());
        let recorded = Arc::new(Recorded::default());
        let region =
            Region::new("eu", rig.source.clone(), rig.deployer.clone()).with_observations(source);
        let report = CanaryValidator::multi_region(vec![region])
            .unwrap()
            .with_clock(rig.clock.clone())
            .with_config(ValidatorConfig {
                max_duration: Duration::from_secs(60),
                ..Default::default()
            })
            .unwrap()
            .with_judge(Arc::new(canary_core::judge::SequentialParameters::default()))
            .with_progress(recorded.clone())
            .validate(request())
            .await;
        assert_eq!(report.decision, Some(RollbackDecision::RollbackManual));
        let lines = recorded.0.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "eu: step 1/1: sequential look 1, 60s left",
                "eu: step 1/1: sequential look 2, 45s left",
                "eu: step 1/1: sequential look 3, 30s left",
                "eu: step 1/1: sequential look 4, 15s left",
                "eu: step 1/1: rollback_manual",
            ]
        );
    }
}
