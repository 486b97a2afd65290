//! SlackNotifier against a loopback receiver: the payload, escaping, limits, retries and
//! redaction.

mod common;

use std::sync::Arc;
use std::time::Duration;

use canary_core::test_util::conformance;
use canary_core::{Notifier, Outcome, RetryPolicy};
use canary_notify::{DeliveryPolicy, Error, SlackNotifier};
use serde_json::Value;
use testkit::http::{Reply, Server};

fn fast() -> DeliveryPolicy {
    DeliveryPolicy {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            deadline: Duration::from_secs(10),
        },
        timeout: Duration::from_secs(2),
    }
}

fn hook(server: &Server) -> String {
    format!("{}/services/T000/B000/XXXXSECRET", server.url)
}

fn body(server: &Server, i: usize) -> Value {
    serde_json::from_slice(&server.requests()[i].body).unwrap()
}

#[tokio::test]
async fn a_rollback_message_has_the_decision_versions_regressions_reason_and_dashboard() {
    let server = Server::receiver().await;
    let slack = SlackNotifier::with_policy(hook(&server), fast())
        .unwrap()
        .with_dashboard("https://grafana.example/d/canary");
    let event = common::rollback_event().await;
    slack.notify(&event).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one message per decision");
    assert_eq!(requests[0].path, "/services/T000/B000/XXXXSECRET");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    let msg = body(&server, 0);
    let text = msg["text"].as_str().unwrap();
    assert!(
        text.starts_with("🚨 Automatic rollback triggered for v1.1.0"),
        "{text}"
    );
    assert!(
        text.contains("latency_p99: 512 ms (was 320 ms, 1.6×)"),
        "{text}"
    );
    let blocks = msg["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    assert_eq!(blocks[0]["type"], "header");
    let all = serde_json::to_string(blocks).unwrap();
    assert!(
        all.contains("*Version:*\\nv1.1.0") && all.contains("*Baseline:*\\nv1.0.0"),
        "{all}"
    );
    assert!(all.contains("rollback_auto"));
    assert!(all.contains("*Metrics that regressed:*"), "{all}");
    assert!(
        all.contains("• *latency_p99*: 512 ms (was 320 ms, 1.6×)"),
        "{all}"
    );
    assert!(
        all.contains("*Reason:* latency_p99 went from 320 ms to 512 ms"),
        "{all}"
    );
    assert!(all.contains("rolled back the canary"));
    let button = blocks.iter().find(|b| b["type"] == "actions").unwrap();
    assert_eq!(
        button["elements"][0]["url"],
        "https://grafana.example/d/canary"
    );
}

#[tokio::test]
async fn promotion_and_review_read_differently() {
    let server = Server::receiver().await;
    let slack = SlackNotifier::with_policy(hook(&server), fast()).unwrap();
    slack
        .notify(&common::promotion_event().await)
        .await
        .unwrap();
    slack.notify(&common::review_event().await).await.unwrap();
    let promoted = body(&server, 0);
    assert!(promoted["text"]
        .as_str()
        .unwrap()
        .starts_with("✅ Canary v1.1.0 promoted"));
    assert!(serde_json::to_string(&promoted)
        .unwrap()
        .contains("no metric regressed"));
    let review = body(&server, 1);
    assert!(review["text"]
        .as_str()
        .unwrap()
        .starts_with("⚠️ Canary v1.1.0 needs manual review"));
}

#[tokio::test]
async fn text_is_escaped_and_kept_within_slacks_limits() {
    let server = Server::receiver().await;
    let slack = SlackNotifier::with_policy(hook(&server), fast()).unwrap();
    let mut event = common::rollback_event().await;
    event.report.reason = format!("<!channel> p99 & errors > limit {}", "x".repeat(10_000));
    slack.notify(&event).await.unwrap();
    let msg = body(&server, 0);
    let reason = msg["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("*Reason:*"))
        })
        .unwrap();
    let text = reason["text"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("*Reason:* &lt;!channel&gt; p99 &amp; errors &gt; limit"),
        "{}",
        &text[..80]
    );
    assert!(text.chars().count() <= 3000);
    assert!(msg["text"].as_str().unwrap().chars().count() <= 4000);
}

#[tokio::test]
async fn many_regressed_metrics_stay_within_one_section() {
    let mut event = common::rollback_event().await;
    let template = event.report.evaluation.as_ref().unwrap().comparisons[2].clone();
    for i in 0..500 {
        let mut c = template.clone();
        c.metric = format!("kpi_{i}");
        event
            .report
            .evaluation
            .as_mut()
            .unwrap()
            .comparisons
            .push(c);
    }
    let msg = canary_notify::slack::message(&event, None);
    let blocks = msg["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000);
        }
    }
    assert!(serde_json::to_string(blocks).unwrap().contains("more"));
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let server = Server::receiver().await;
    server.push(Reply::text(503, "busy"));
    let slack = SlackNotifier::with_policy(hook(&server), fast()).unwrap();
    slack.notify(&common::rollback_event().await).await.unwrap();
    assert_eq!(server.requests().len(), 2, "retried once, then delivered");

    let server = Server::start(|_| Reply::text(404, "no_service")).await;
    let slack = SlackNotifier::with_policy(hook(&server), fast()).unwrap();
    let e = slack.send_alert("hello", "danger").await.unwrap_err();
    assert!(matches!(e, Error::Rejected { status: 404, .. }), "{e}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn the_guides_send_alert_posts_a_coloured_attachment() {
    let server = Server::receiver().await;
    let slack = SlackNotifier::with_policy(hook(&server), fast()).unwrap();
    slack
        .send_alert("Rollback of v2 <fast>", "danger")
        .await
        .unwrap();
    let msg = body(&server, 0);
    assert_eq!(msg["attachments"][0]["color"], "danger");
    assert_eq!(msg["attachments"][0]["text"], "Rollback of v2 &lt;fast&gt;");
    assert_eq!(msg["text"], "Rollback of v2 <fast>");
}

#[tokio::test]
async fn the_webhook_url_never_appears_in_errors_debug_or_logs() {
    let (logs, _guard) = testkit::logs::capture();

    let port = testkit::free_port(); // nothing listens: connection refused
    let url = format!("http://127.0.0.1:{port}/services/T000/B000/XXXXSECRET");
    let slack = SlackNotifier::with_policy(url, fast()).unwrap();
    let e = slack
        .notify(&common::rollback_event().await)
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    let text = format!(
        "{e} | {e:?} | {} | {slack:?}",
        canary_core::error::chain(&e)
    );
    assert!(
        text.contains("slack could not deliver the event") || text.contains("slack"),
        "{text}"
    );
    let logs = logs.text();
    assert!(logs.contains("retrying"), "{logs}");
    for place in [&text, &logs] {
        assert!(!place.contains("XXXXSECRET"), "the webhook leaked: {place}");
    }
}

#[tokio::test]
async fn a_receiver_that_echoes_the_webhook_url_and_headers_leaks_nothing() {
    // A proxy that answers 400 with the request line and headers it got.
    let s = Server::start(|r| {
        let headers: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        Reply::text(
            400,
            &format!("bad request {} {}", r.path, headers.join("; ")),
        )
    })
    .await;
    let hook = hook(&s);
    let slack = SlackNotifier::with_policy(hook.clone(), fast()).unwrap();
    let e = slack
        .notify(&common::rollback_event().await)
        .await
        .unwrap_err();
    let text = format!("{} | {e:?}", canary_core::error::chain(&e));
    assert!(!text.contains("XXXXSECRET"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");

    let webhook = canary_notify::WebhookNotifier::new("ci", format!("{}/hook", s.url))
        .unwrap()
        .with_header("Authorization", "Bearer hook-token-3")
        .with_policy(fast())
        .unwrap();
    let e = webhook
        .notify(&common::rollback_event().await)
        .await
        .unwrap_err();
    let text = canary_core::error::chain(&e);
    assert!(!text.contains("hook-token-3"), "{text}");
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    let elsewhere = Server::receiver().await;
    let target = format!("{}/services/T000/B000/XXXXSECRET", elsewhere.url);
    let s = Server::start(move |_| Reply::redirect(307, &target)).await;
    let slack = SlackNotifier::with_policy(hook(&s), fast()).unwrap();
    let e = slack
        .notify(&common::rollback_event().await)
        .await
        .unwrap_err();
    assert!(
        canary_core::error::chain(&e).contains("another origin"),
        "{e:?}"
    );
    assert!(elsewhere.requests().is_empty());
    assert_eq!(s.requests().len(), 1, "a refused redirect is not retried");
}

#[tokio::test]
async fn a_down_slack_never_blocks_the_rollback() {
    let port = testkit::free_port();
    let slack = Arc::new(
        SlackNotifier::with_policy(format!("http://127.0.0.1:{port}/hook"), fast()).unwrap(),
    );
    let source = Arc::new(canary_core::test_util::ScriptedSource::new());
    source.set("v1", canary_core::test_util::healthy_metrics("v1"));
    source.set(
        "v2",
        canary_core::test_util::healthy_metrics("v2").with_error_rate_percent(9.0),
    );
    let deployer = Arc::new(canary_core::test_util::RecordingDeployer::with_production(
        "v1",
    ));
    let validator = canary_core::CanaryValidator::new(source, deployer.clone())
        .with_clock(Arc::new(canary_core::test_util::ManualClock::default()))
        .with_notifier(slack);
    let report = validator
        .validate(canary_core::ValidationRequest::new(
            canary_core::Version::new("v2").unwrap(),
        ))
        .await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(deployer.canary(), None, "the canary is gone");
    assert!(!report.notifications[0].delivered);
    assert!(report.notifications[0]
        .error
        .as_ref()
        .unwrap()
        .contains("slack"));
}

#[tokio::test]
async fn slack_passes_the_notifier_conformance_suite() {
    let server = Server::receiver().await;
    let slack = SlackNotifier::with_policy(hook(&server), fast()).unwrap();
    conformance::notifier(&slack, &common::rollback_event().await).await;
    assert_eq!(server.requests().len(), 1);

    let port = testkit::free_port(); // nothing listens
    let down = SlackNotifier::with_policy(format!("http://127.0.0.1:{port}/hook"), fast()).unwrap();
    conformance::failing_notifier(&down, &common::rollback_event().await).await;
}
