//! A Prometheus (or proxy) that echoes the request's credentials in its error body: the whole
//! validation runs, and no secret reaches the report (JSON or Markdown), the logs, or the Slack
//! message.

use std::sync::Arc;

use base64::Engine as _;
use canary::notify::SlackNotifier;
use canary::prometheus::{BasicAuth, PrometheusConfig, PrometheusSource};
use canary::test_util::{ManualClock, RecordingDeployer};
use canary::{CanaryValidator, Outcome, RetryPolicy, ValidationRequest, Version};
use testkit::http::{Reply, Server};

#[tokio::test(flavor = "multi_thread")]
async fn echoed_credentials_reach_no_report_log_or_notification() {
    let (logs, _guard) = testkit::logs::capture();
    // Every answer is a 503 carrying back all the request's headers.
    let prometheus = Server::start(|r| {
        let headers: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        Reply::text(503, &format!("upstream refused: {}", headers.join("; ")))
    })
    .await;
    let mut config = PrometheusConfig::new(&prometheus.url);
    config.basic_auth = Some(BasicAuth {
        username: "ops".into(),
        password: "pw-flow-1".into(),
    });
    config
        .headers
        .insert("X-Scope-OrgID".into(), "tenant-flow-2".into());
    config.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: std::time::Duration::from_millis(5),
        max_backoff: std::time::Duration::from_millis(10),
        deadline: std::time::Duration::from_secs(5),
    };
    let slack = Server::receiver().await;
    let validator = CanaryValidator::new(
        Arc::new(PrometheusSource::new(config).unwrap()),
        Arc::new(RecordingDeployer::with_production("v1")),
    )
    .with_clock(Arc::new(ManualClock::default()))
    .with_notifier(Arc::new(
        SlackNotifier::new(format!("{}/services/T0/B0/XXXX", slack.url)).unwrap(),
    ));
    let report = validator
        .validate(ValidationRequest::new(Version::new("v2").unwrap()))
        .await;
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.reason);

    let basic = base64::engine::general_purpose::STANDARD.encode("ops:pw-flow-1");
    let slack_bodies: Vec<String> = slack.requests().iter().map(|r| r.text()).collect();
    assert_eq!(slack_bodies.len(), 1);
    for (place, text) in [
        ("report JSON", report.to_json()),
        ("report Markdown", report.to_markdown()),
        ("Slack message", slack_bodies.join("\n")),
        ("logs", logs.text()),
    ] {
        for secret in ["pw-flow-1", "tenant-flow-2", basic.as_str()] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into the {place}:\n{text}"
            );
        }
    }
    // The echo itself is kept, redacted, so the cause is still visible.
    assert!(
        report.to_json().contains("upstream refused"),
        "{}",
        report.to_json()
    );
    assert!(report.to_json().contains("[redacted]"));
}
