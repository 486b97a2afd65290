//! Pushing the validator's own metrics to a real Pushgateway, then scraping it back.

use std::sync::Arc;

use canary_core::test_util::{healthy_metrics, ManualClock, RecordingDeployer, ScriptedSource};
use canary_core::{CanaryValidator, ValidationMetrics, ValidationRequest, Version};
use canary_prometheus::Pushgateway;
use prometheus_client::registry::Registry;
use testkit::services;

#[tokio::test(flavor = "multi_thread")]
async fn validator_metrics_are_pushed_with_their_types() {
    let pg = services::pushgateway();
    let mut registry = Registry::default();
    let metrics = ValidationMetrics::register(&mut registry);

    // One real rollback through the flow, so the series carry real values.
    let source = Arc::new(ScriptedSource::new());
    source.set("v1", healthy_metrics("v1"));
    source.set("v2", healthy_metrics("v2").with_error_rate_percent(9.0));
    let validator =
        CanaryValidator::new(source, Arc::new(RecordingDeployer::with_production("v1")))
            .with_clock(Arc::new(ManualClock::default()))
            .with_metrics(metrics);
    validator
        .validate(ValidationRequest::new(Version::new("v2").unwrap()))
        .await;

    let pusher = Pushgateway::new(&pg.url, "canary")
        .unwrap()
        .with_grouping("service", "apex-inference")
        .unwrap();
    pusher.push(&registry).await.unwrap();

    let (status, text) = testkit::services::get(pg.port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE canary_rollback_total counter"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"canary_rollback_total{instance="",job="canary",service="apex-inference"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"canary_validation_success{instance="",job="canary",service="apex-inference"} 0"#
        ),
        "{text}"
    );
    assert!(
        text.contains("# TYPE canary_analysis_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.contains(r#"canary_analysis_duration_seconds_count{instance="",job="canary",service="apex-inference"} 1"#), "{text}");

    pusher.delete().await.unwrap();
    let (_, text) = testkit::services::get(pg.port, "/metrics").unwrap();
    assert!(
        !text.contains("canary_rollback_total{"),
        "the group is gone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_push_is_a_typed_error() {
    let port = testkit::free_port();
    let pusher = Pushgateway::new(&format!("http://127.0.0.1:{port}"), "canary").unwrap();
    let e = pusher.push(&Registry::default()).await.unwrap_err();
    assert!(
        matches!(e, canary_prometheus::Error::Push { status: 0, .. }),
        "{e}"
    );
    assert!(e.is_retryable());
}
