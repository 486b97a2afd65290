//! AlertmanagerNotifier against a real Alertmanager (Debian package): the alert is read back
//! through `GET /api/v2/alerts`, and a promotion resolves it.

mod common;

use canary_core::test_util::conformance;
use canary_core::Notifier;
use canary_notify::AlertmanagerNotifier;
use serde_json::Value;
use testkit::http::Server;

fn active_alerts(am: &testkit::services::Service) -> Vec<Value> {
    let (status, body) = testkit::services::get(
        am.port,
        "/api/v2/alerts?active=true&silenced=false&inhibited=false",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Vec<Value>>(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_fires_an_alert_and_a_promotion_resolves_it() {
    let am = testkit::services::alertmanager();
    let notifier = AlertmanagerNotifier::new(&am.url)
        .unwrap()
        .with_label("service", "apex-inference")
        .with_generator_url("https://ci.example/runs/42");

    notifier
        .notify(&common::rollback_event().await)
        .await
        .unwrap();
    let alerts = active_alerts(&am);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "CanaryValidationFailed");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["service"], "apex-inference");
    assert_eq!(a["annotations"]["version"], "v1.1.0");
    assert_eq!(a["annotations"]["decision"], "rollback_auto");
    assert!(a["annotations"]["description"]
        .as_str()
        .unwrap()
        .contains("latency_p99"));
    assert_eq!(a["generatorURL"], "https://ci.example/runs/42");
    assert_eq!(a["status"]["state"], "active");

    notifier
        .notify(&common::promotion_event().await)
        .await
        .unwrap();
    let alerts = active_alerts(&am);
    assert!(
        alerts.is_empty(),
        "the promotion resolved the alert: {alerts:?}"
    );
}

#[tokio::test]
async fn review_is_a_warning_and_the_payload_has_alertmanagers_shape() {
    let server = Server::receiver().await;
    let notifier = AlertmanagerNotifier::new(&server.url).unwrap();
    notifier
        .notify(&common::review_event().await)
        .await
        .unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v2/alerts")
    );
    let body: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body.len(), 1);
    assert_eq!(body[0]["labels"]["severity"], "warning");
    assert!(body[0]["startsAt"].as_str().is_some());
    assert!(body[0].get("endsAt").is_none(), "a firing alert has no end");

    notifier
        .notify(&common::promotion_event().await)
        .await
        .unwrap();
    let body: Vec<Value> = serde_json::from_slice(&server.requests()[1].body).unwrap();
    assert_eq!(body.len(), 2, "both severities are resolved");
    assert!(body.iter().all(|a| a["endsAt"].is_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_passes_the_notifier_conformance_suite() {
    let am = testkit::services::alertmanager();
    let notifier = AlertmanagerNotifier::new(&am.url).unwrap();
    conformance::notifier(&notifier, &common::review_event().await).await;
    assert_eq!(active_alerts(&am).len(), 1);
}
