//! WebhookNotifier against a loopback receiver.

mod common;

use canary_core::test_util::conformance;
use canary_core::Notifier;
use canary_notify::{WebhookNotifier, WebhookPayload};
use serde_json::Value;
use testkit::http::Server;

#[tokio::test]
async fn posts_the_validation_report_with_secret_headers() {
    let server = Server::receiver().await;
    let hook = WebhookNotifier::new(
        "deploy-bot",
        format!("{}/hooks/canary?token=abc123", server.url),
    )
    .unwrap()
    .with_header("Authorization", "Bearer hook-secret");
    let event = common::rollback_event().await;
    hook.notify(&event).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer hook-secret"));
    assert_eq!(r.path, "/hooks/canary?token=abc123");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["kind"], "canary_report");
    assert_eq!(body["report"]["outcome"], "rolled_back");
    assert_eq!(body["report"]["decision"], "rollback_auto");
    let report: canary_core::ValidationReport =
        serde_json::from_value(body["report"].clone()).unwrap();
    assert_eq!(report.version, "v1.1.0");
    let debug = format!("{hook:?}");
    assert!(
        !debug.contains("abc123") && !debug.contains("hook-secret"),
        "{debug}"
    );
}

#[tokio::test]
async fn can_post_the_evaluation_instead_of_the_report() {
    let server = Server::receiver().await;
    let event = common::rollback_event().await;
    let eval = WebhookNotifier::new("w", server.url.clone())
        .unwrap()
        .with_payload(WebhookPayload::Evaluation);
    eval.notify(&event).await.unwrap();
    let body: Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
    assert_eq!(body["kind"], "canary_evaluation");
    assert_eq!(body["evaluation"]["decision"], "rollback_auto");
    assert!(body["evaluation"]["comparisons"].as_array().unwrap().len() >= 6);

    // The event carries the report once: no field is repeated beside it.
    let report = WebhookNotifier::new("w", server.url.clone()).unwrap();
    report.notify(&event).await.unwrap();
    let body: Value = serde_json::from_slice(&server.requests()[1].body).unwrap();
    assert_eq!(body["kind"], "canary_report");
    assert_eq!(body["report"]["outcome"], "rolled_back");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["kind", "region", "report"]
    );
}

#[tokio::test]
async fn webhook_passes_the_notifier_conformance_suite() {
    let server = Server::receiver().await;
    let hook = WebhookNotifier::new("deploy-bot", server.url.clone()).unwrap();
    conformance::notifier(&hook, &common::promotion_event().await).await;
    assert_eq!(server.requests().len(), 1);
}
