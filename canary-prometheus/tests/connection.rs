//! Connection options against real servers: TLS with a custom CA, insecure-skip-verify, a
//! proxy; and no secret in the logs.

use std::time::Duration;

use canary_core::{Arm, MetricsQuery, MetricsSource, Version};
use canary_prometheus::{Error, PrometheusConfig, PrometheusSource, RetryPolicy};
use chrono::{TimeZone, Utc};
use testkit::http::{Reply, Server};
use testkit::tls::TestCa;
use testkit::traffic::{now_secs, openmetrics, Traffic};

fn https_prometheus(ca: &TestCa) -> (testkit::services::Service, i64) {
    let end = now_secs() - 3;
    let data = openmetrics(&[Traffic::healthy("v1", 40.0)], 900, 15, end);
    (testkit::services::prometheus_tls(&data, ca), end)
}

fn query(end: i64) -> MetricsQuery {
    MetricsQuery::new(
        Version::new("v1").unwrap(),
        Arm::Baseline,
        Duration::from_secs(300),
    )
    .at(Utc.timestamp_opt(end, 0).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_custom_ca_is_trusted_and_without_it_refused() {
    let ca = TestCa::new();
    let (prometheus, end) = https_prometheus(&ca);

    let trusted = PrometheusSource::new(PrometheusConfig {
        ca_cert_file: Some(ca.ca_cert.clone()),
        ..PrometheusConfig::new(&prometheus.url)
    })
    .unwrap();
    let m = trusted.fetch(&query(end)).await.unwrap();
    assert!(
        m.request_rate_rps.is_some_and(|r| (r - 40.0).abs() < 1e-6),
        "{:?}",
        m.request_rate_rps
    );

    let untrusted = PrometheusSource::new(PrometheusConfig {
        retry: RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        },
        ..PrometheusConfig::new(&prometheus.url)
    })
    .unwrap();
    let e = untrusted.instant("m", "up", Utc::now()).await.unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    let chain = canary_core::error::chain(&e);
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_skip_verify_accepts_an_unknown_certificate() {
    let ca = TestCa::new();
    let (prometheus, end) = https_prometheus(&ca);
    let source = PrometheusSource::new(PrometheusConfig {
        insecure_skip_verify: true,
        ..PrometheusConfig::new(&prometheus.url)
    })
    .unwrap();
    assert!(source
        .fetch(&query(end))
        .await
        .unwrap()
        .request_rate_rps
        .is_some());
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy() {
    let proxy = Server::start(|_| {
        Reply::json(200, r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}}"#)
    })
    .await;
    let source = PrometheusSource::new(PrometheusConfig {
        proxy: Some(proxy.url.as_str().into()),
        ..PrometheusConfig::new("http://prometheus.invalid:9090")
    })
    .unwrap();
    let a = source.instant("m", "up", Utc::now()).await.unwrap();
    assert_eq!(a.value, Some(3.0));
    let r = &proxy.requests()[0];
    assert_eq!(
        r.path, "http://prometheus.invalid:9090/api/v1/query",
        "a forward-proxy request"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let (logs, _guard) = testkit::logs::capture();

    let failing = Server::start(|_| Reply::text(503, "down")).await;
    let q = MetricsQuery::new(
        Version::new("v1").unwrap(),
        Arm::Canary,
        Duration::from_secs(60),
    );
    let mut config = PrometheusConfig::new(&failing.url);
    config.bearer_token = Some("tok-secret".into());
    config
        .headers
        .insert("X-Scope-OrgID".into(), "tenant-secret".into());
    config.retry.initial_backoff = Duration::from_millis(5);
    let _ = PrometheusSource::new(config.clone())
        .unwrap()
        .fetch(&q)
        .await;
    let with_url_credentials = PrometheusConfig {
        url: failing.url.replace("http://", "http://admin:url-pass@"),
        bearer_token: None,
        ..config.clone()
    };
    let _ = PrometheusSource::new(with_url_credentials)
        .unwrap()
        .fetch(&q)
        .await;

    let text = logs.text();
    assert!(
        text.contains("retrying"),
        "the failures were logged: {text}"
    );
    for secret in ["url-pass", "tok-secret", "tenant-secret"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the logs:\n{text}"
        );
    }
    let sent: Vec<_> = failing
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert!(
        sent.contains(&"Bearer tok-secret".to_owned()),
        "but it was sent: {sent:?}"
    );
    assert!(
        sent.contains(&"Basic YWRtaW46dXJsLXBhc3M=".to_owned()),
        "URL credentials become basic auth: {sent:?}"
    );
}

#[test]
fn credentials_in_the_url_and_a_token_are_refused() {
    let mut config = PrometheusConfig::new("http://u:p@127.0.0.1:9");
    config.bearer_token = Some("t".into());
    let e = PrometheusSource::new(config).unwrap_err();
    assert!(e.to_string().contains("keep one"), "{e}");
    assert!(!e.to_string().contains("u:p"), "{e}");
}
