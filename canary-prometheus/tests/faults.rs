//! Every bad answer a Prometheus-compatible server can give, from a loopback fault server.
//! The only acceptable outcomes are a typed error or "no data" — never a number.

mod common;

use common::{config, vector};

use std::time::Duration;

use canary_core::{Arm, MetricsQuery, MetricsSource, Version};
use canary_prometheus::{Error, PrometheusConfig, PrometheusSource, QueryMethod, RetryPolicy};
use chrono::Utc;
use testkit::http::{Reply, Server};

async fn one(server: &Server) -> Result<canary_prometheus::response::Answer, Error> {
    let source = PrometheusSource::new(config(&server.url)).unwrap();
    source.instant("latency_p99", "up", Utc::now()).await
}

/// Through the MetricsSource trait: an error, or metrics with no value at all.
async fn never_a_number(server: &Server) {
    let source = PrometheusSource::new(config(&server.url)).unwrap();
    let q = MetricsQuery::new(
        Version::new("v2").unwrap(),
        Arm::Canary,
        Duration::from_secs(300),
    );
    match source.fetch(&q).await {
        Err(e) => assert!(matches!(e, canary_core::Error::Source { .. }), "{e:?}"),
        Ok(m) => {
            for name in canary_core::metrics::names::ALL {
                assert_eq!(m.value(name), None, "{name} became a number");
            }
        }
    }
}

#[tokio::test]
async fn empty_result_is_no_data() {
    let s = Server::start(|_| {
        Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
    })
    .await;
    let a = one(&s).await.unwrap();
    assert_eq!(
        (a.value, a.no_data.as_deref()),
        (None, Some("no series matched"))
    );
    never_a_number(&s).await;
}

#[tokio::test]
async fn nan_is_no_data() {
    let s = Server::start(|_| Reply::json(200, &vector("NaN"))).await;
    assert_eq!(one(&s).await.unwrap().value, None);
    never_a_number(&s).await;
}

#[tokio::test]
async fn plus_infinity_is_no_data() {
    let s = Server::start(|_| Reply::json(200, &vector("+Inf"))).await;
    assert_eq!(one(&s).await.unwrap().value, None);
    never_a_number(&s).await;
}

#[tokio::test]
async fn minus_infinity_is_no_data() {
    let s = Server::start(|_| Reply::json(200, &vector("-Inf"))).await;
    assert_eq!(one(&s).await.unwrap().value, None);
    never_a_number(&s).await;
}

#[tokio::test]
async fn several_series_are_an_error_naming_their_labels() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"1"]},{"metric":{"pod":"b"},"value":[1,"2"]}]}}"#;
    let s = Server::start(move |_| Reply::json(200, body)).await;
    let e = one(&s).await.unwrap_err();
    assert!(
        matches!(&e, Error::MultipleSeries { series, .. } if series.len() == 2),
        "{e}"
    );
    assert!(e.to_string().contains(r#"pod="a""#));
    never_a_number(&s).await;
}

#[tokio::test]
async fn status_error_keeps_error_type_and_message() {
    let s = Server::start(|_| Reply::json(200, r#"{"status":"error","errorType":"execution","error":"query timed out in expression evaluation"}"#)).await;
    let e = one(&s).await.unwrap_err();
    assert!(
        matches!(&e, Error::QueryFailed { error_type: Some(t), .. } if t == "execution"),
        "{e}"
    );
    assert!(e
        .to_string()
        .contains("query timed out in expression evaluation"));
    never_a_number(&s).await;
}

#[tokio::test]
async fn http_400_is_permanent_and_not_retried() {
    let s = Server::start(|_| Reply::json(400, r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#)).await;
    let e = one(&s).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Status {
                status: 400,
                attempts: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_retryable());
    assert_eq!(s.requests().len(), 1);
    assert!(e.to_string().contains("bad_data: 1:5: parse error"), "{e}");
    never_a_number(&s).await;
}

#[tokio::test]
async fn http_422_is_permanent_and_not_retried() {
    let s = Server::start(|_| Reply::json(422, r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#)).await;
    let e = one(&s).await.unwrap_err();
    assert!(matches!(&e, Error::Status { status: 422, .. }), "{e}");
    assert_eq!(s.requests().len(), 1);
    never_a_number(&s).await;
}

#[tokio::test]
async fn http_503_is_retried_then_reported_with_the_attempts() {
    let s = Server::start(|_| Reply::text(503, "Service Unavailable")).await;
    let e = one(&s).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Status {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_retryable());
    assert_eq!(s.requests().len(), 3);
    let text = e.to_string();
    assert!(
        text.contains("Prometheus answered 503 for latency_p99 (query: up)")
            && text.contains("tried 3 times"),
        "{text}"
    );
    never_a_number(&s).await;
}

#[tokio::test]
async fn a_503_then_success_recovers() {
    let s = Server::start(|_| Reply::json(200, &vector("42"))).await;
    s.push(Reply::text(503, "busy"));
    assert_eq!(one(&s).await.unwrap().value, Some(42.0));
    assert_eq!(s.requests().len(), 2);
}

#[tokio::test]
async fn timeout_is_retried_then_reported() {
    let s = Server::start(|_| Reply::json(200, &vector("1")).delayed(Duration::from_secs(3))).await;
    let e = one(&s).await.unwrap_err();
    assert!(matches!(&e, Error::Timeout { attempts: 3, .. }), "{e}");
    assert!(e.is_retryable());
    never_a_number(&s).await;
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let port = testkit::free_port(); // nothing listens there
    let source = PrometheusSource::new(config(&format!("http://127.0.0.1:{port}"))).unwrap();
    let e = source
        .instant("latency_p99", "up", Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Unreachable { attempts: 3, .. }), "{e}");
    assert!(e.is_retryable());
    let chain = canary_core::error::chain(&e);
    assert!(chain.to_lowercase().contains("connect"), "{chain}");
}

#[tokio::test]
async fn truncated_body_is_an_error() {
    let body = vector("12.5");
    let s = Server::start(move |_| Reply::json(200, &body).truncated(30)).await;
    let e = one(&s).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Unreachable { .. } | Error::InvalidResponse { .. }
        ),
        "{e}"
    );
    never_a_number(&s).await;
}

#[tokio::test]
async fn truncated_json_is_an_invalid_response() {
    let s = Server::start(|_| Reply::json(200, r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12"#)).await;
    let e = one(&s).await.unwrap_err();
    assert!(matches!(&e, Error::InvalidResponse { .. }), "{e}");
    assert!(!e.is_retryable());
    never_a_number(&s).await;
}

#[tokio::test]
async fn invalid_json_is_an_invalid_response() {
    let s = Server::start(|_| Reply::text(200, "<html>Welcome to nginx!</html>")).await;
    let e = one(&s).await.unwrap_err();
    assert!(matches!(&e, Error::InvalidResponse { .. }), "{e}");
    never_a_number(&s).await;
}

#[tokio::test]
async fn body_over_the_limit_is_refused() {
    let big = format!(
        r#"{{"status":"success","warnings":["{}"],"data":{{"resultType":"vector","result":[]}}}}"#,
        "x".repeat(64 * 1024)
    );
    let s = Server::start(move |_| Reply::json(200, &big)).await;
    let source = PrometheusSource::new(PrometheusConfig {
        max_body_bytes: 16 * 1024,
        ..config(&s.url)
    })
    .unwrap();
    let e = source
        .instant("latency_p99", "up", Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::BodyTooLarge {
                limit_bytes: 16384,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn warnings_are_kept_as_evidence_and_only_harmless_ones_are_dropped() {
    let s = Server::start(|_| {
        let now = chrono::Utc::now().timestamp();
        Reply::json(200, &format!(r#"{{"status":"success","warnings":["PromQL info: metric might not be a counter","partial response: store 10.0.0.7:10901 unavailable"],"data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{now},"0.5"]}}]}}}}"#))
    })
    .await;
    let ask = |config: canary_prometheus::PrometheusConfig| async move {
        let source = PrometheusSource::new(config).unwrap();
        source
            .fetch(&MetricsQuery::new(
                Version::new("v2").unwrap(),
                Arm::Canary,
                Duration::from_secs(300),
            ))
            .await
            .unwrap()
    };
    // By default an info annotation is harmless; a partial response counts, per metric.
    let m = ask(config(&s.url)).await;
    let partial = |w: &String| w.contains("partial response: store 10.0.0.7:10901");
    assert!(
        m.store_warnings.iter().all(partial),
        "{:?}",
        m.store_warnings
    );
    assert_eq!(
        m.store_warnings.len(),
        m.queries.len(),
        "{:?}",
        m.store_warnings
    );
    assert!(m.warnings.iter().any(partial), "{:?}", m.warnings);
    assert!(!m.warnings.iter().any(|w| w.contains("PromQL info")));
    // The policy never promotes on it.
    let e = canary_core::RollbackPolicy::default().evaluate(&m, &m);
    assert_ne!(e.decision, canary_core::RollbackDecision::Proceed);
    assert!(
        e.fired(canary_core::policy::Rule::IncompleteAnswer),
        "{e:?}"
    );
    // A team that knows its partial responses never matter names them.
    let mut told = config(&s.url);
    told.harmless_warnings.push("partial response".into());
    let m = ask(told).await;
    assert!(m.store_warnings.is_empty(), "{:?}", m.store_warnings);
}

#[tokio::test]
async fn an_impossible_value_is_an_error_not_a_metric() {
    // 150 is a valid p99 but an impossible error rate (and confidence).
    let s = Server::start(|_| Reply::json(200, &vector("150"))).await;
    let source = PrometheusSource::new(config(&s.url)).unwrap();
    let e = source
        .fetch(&MetricsQuery::new(
            Version::new("v2").unwrap(),
            Arm::Canary,
            Duration::from_secs(300),
        ))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("error_rate") && e.to_string().contains("between 0 and 100"),
        "{e}"
    );
}

#[tokio::test]
async fn auth_headers_and_method_are_sent() {
    let s = Server::start(|_| Reply::json(200, &vector("1"))).await;
    let mut c = config(&s.url);
    c.bearer_token = Some("tok-secret".into());
    c.headers.insert("X-Scope-OrgID".into(), "tenant-a".into());
    let source = PrometheusSource::new(c.clone()).unwrap();
    source.instant("m", "sum(up)", Utc::now()).await.unwrap();
    let r = &s.requests()[0];
    assert_eq!(r.method, "POST");
    assert!(r.path.starts_with("/api/v1/query"));
    assert_eq!(r.header("authorization"), Some("Bearer tok-secret"));
    assert_eq!(r.header("x-scope-orgid"), Some("tenant-a"));
    assert!(r.text().contains("query=sum%28up%29"), "{}", r.text());
    assert!(r.text().contains("time="), "{}", r.text());

    c.bearer_token = None;
    c.basic_auth = Some(canary_prometheus::BasicAuth {
        username: "u".into(),
        password: "pw".into(),
    });
    c.method = QueryMethod::Get;
    let source = PrometheusSource::new(c).unwrap();
    source.instant("m", "sum(up)", Utc::now()).await.unwrap();
    let r = &s.requests()[1];
    assert_eq!(r.method, "GET");
    assert!(r.path.contains("query=sum%28up%29"), "{}", r.path);
    assert_eq!(r.header("authorization"), Some("Basic dTpwdw=="));
}

#[tokio::test]
async fn a_base_path_is_kept() {
    let s = Server::start(|_| Reply::json(200, &vector("1"))).await;
    let source = PrometheusSource::new(config(&format!("{}/prometheus/", s.url))).unwrap();
    source.instant("m", "up", Utc::now()).await.unwrap();
    assert!(
        s.requests()[0].path.starts_with("/prometheus/api/v1/query"),
        "{}",
        s.requests()[0].path
    );
}

#[tokio::test]
async fn secrets_never_appear_in_errors() {
    let port = testkit::free_port();
    let mut c = config(&format!("http://admin:url-pass@127.0.0.1:{port}"));
    c.headers
        .insert("X-Scope-OrgID".into(), "tok-secret".into());
    c.retry.max_attempts = 1;
    let source = PrometheusSource::new(c).unwrap();
    let e = source.instant("m", "up", Utc::now()).await.unwrap_err();
    let text = format!("{} | {:?} | {}", e, e, canary_core::error::chain(&e));
    assert!(
        !text.contains("url-pass") && !text.contains("tok-secret"),
        "{text}"
    );
    assert!(!format!("{source:?}").contains("url-pass"));
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let s = Server::start(|_| Reply::text(503, "down")).await;
    let mut c = config(&s.url);
    c.retry = RetryPolicy {
        max_attempts: 100,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(50),
        deadline: Duration::from_millis(300),
    };
    let source = PrometheusSource::new(c).unwrap();
    let e = source.instant("m", "up", Utc::now()).await.unwrap_err();
    let n = s.requests().len();
    assert!((2..=12).contains(&n), "{n} attempts");
    assert!(matches!(e, Error::Status { attempts, .. } if attempts as usize == n));
}

#[test]
fn bad_configuration_is_refused_with_its_field() {
    let cases: Vec<(PrometheusConfig, &str)> = vec![
        (PrometheusConfig::new("not a url"), "url"),
        (PrometheusConfig::new("ftp://x"), "url"),
        (
            PrometheusConfig {
                max_concurrency: 0,
                ..PrometheusConfig::new("http://x")
            },
            "max_concurrency",
        ),
        (
            PrometheusConfig {
                canary_label_template: "canary".into(),
                ..PrometheusConfig::new("http://x")
            },
            "canary_label_template",
        ),
        (
            PrometheusConfig {
                ca_cert_file: Some("/nonexistent.pem".into()),
                ..PrometheusConfig::new("http://x")
            },
            "ca_cert_file",
        ),
        (
            PrometheusConfig {
                queries: [(
                    "latency_p99".to_owned(),
                    "histogram_quantile(0.99,".to_owned(),
                )]
                .into(),
                ..PrometheusConfig::new("http://x")
            },
            "latency_p99",
        ),
    ];
    for (c, needle) in cases {
        let e = PrometheusSource::new(c).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
}
