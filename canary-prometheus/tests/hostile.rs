//! A hostile network: redirects to other servers, servers that echo credentials back, absurd
//! values, `Retry-After`. None of them may lead to a judged number or a leaked secret.

mod common;

use common::{config, vector};

use std::time::{Duration, Instant};

use base64::Engine as _;
use canary_core::{Arm, MetricsQuery, MetricsSource, Version};
use canary_prometheus::{BasicAuth, Error, PrometheusConfig, PrometheusSource};
use chrono::Utc;
use testkit::http::{Reply, Server};

fn query() -> MetricsQuery {
    MetricsQuery::new(
        Version::new("v2").unwrap(),
        Arm::Canary,
        Duration::from_secs(300),
    )
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused_and_never_read() {
    // The other server has perfectly healthy data: judging it would promote.
    let elsewhere = Server::start(|_| Reply::json(200, &vector("1"))).await;
    let target = format!("{}/api/v1/query", elsewhere.url);
    let s = Server::start(move |_| Reply::redirect(307, &target)).await;
    let source = PrometheusSource::new(config(&s.url)).unwrap();
    let e = refused_redirect(&source).await;
    let text = e.to_string();
    assert!(text.contains("another origin"), "{text}");
    assert!(!e.is_retryable());
    assert!(
        elsewhere.requests().is_empty(),
        "the other origin was contacted"
    );
    // Through the trait too: an error, never metrics.
    assert!(source.fetch(&query()).await.is_err());
}

#[tokio::test]
async fn a_redirect_to_another_port_or_scheme_is_refused() {
    let s = Server::start(|_| Reply::redirect(302, "https://127.0.0.1:1/api/v1/query")).await;
    refused_redirect(&PrometheusSource::new(config(&s.url)).unwrap()).await;
}

/// One query through `source`, which must end in a refused redirect.
async fn refused_redirect(source: &PrometheusSource) -> Error {
    let e = source
        .instant("latency_p99", "up", Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Redirect { .. }), "{e:?}");
    e
}

#[tokio::test]
async fn same_origin_redirects_are_followed_but_bounded() {
    let s = Server::start(|r| {
        if r.path.starts_with("/old") {
            Reply::redirect(307, "/api/v1/query")
        } else {
            Reply::json(200, &vector("42"))
        }
    })
    .await;
    let source = PrometheusSource::new(config(&format!("{}/old", s.url))).unwrap();
    let a = source
        .instant("latency_p99", "up", Utc::now())
        .await
        .unwrap();
    assert_eq!(a.value, Some(42.0));

    let looping = Server::start(|_| Reply::redirect(307, "/api/v1/query")).await;
    let source = PrometheusSource::new(config(&looping.url)).unwrap();
    let e = source
        .instant("latency_p99", "up", Utc::now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("redirects"), "{e}");
    assert!(
        looping.requests().len() <= 7,
        "{}",
        looping.requests().len()
    );
}

/// Answers with everything the request carried, as a hostile proxy might.
fn echo(status: u16) -> impl Fn(&testkit::http::Request) -> Reply + Send + Sync + 'static {
    move |r| {
        let headers: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        let echoed = headers.join("; ").replace('"', "'");
        Reply::json(
            status,
            &format!(
                r#"{{"status":"error","errorType":"bad_data","error":"{echoed}","warnings":["{echoed}"]}}"#
            ),
        )
    }
}

fn secret_config(url: &str) -> PrometheusConfig {
    let mut c = config(url);
    c.basic_auth = Some(BasicAuth {
        username: "admin".into(),
        password: "pw-basic-9".into(),
    });
    c.headers
        .insert("X-Scope-OrgID".into(), "tenant-secret-7".into());
    c
}

fn assert_clean(text: &str) {
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:pw-basic-9");
    for secret in [
        "pw-basic-9",
        "tenant-secret-7",
        basic.as_str(),
        "tok-bearer-5",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(text.contains("[redacted]"), "nothing was echoed: {text}");
}

#[tokio::test]
async fn credentials_echoed_in_an_error_body_never_reach_the_error() {
    for status in [400, 422, 503] {
        let s = Server::start(echo(status)).await;
        let source = PrometheusSource::new(secret_config(&s.url)).unwrap();
        let e = source.fetch(&query()).await.unwrap_err();
        assert_clean(&canary_core::error::chain(&e));
        assert_clean(&format!("{e:?}"));
    }
    // A bearer token, the other kind of Authorization.
    let s = Server::start(echo(400)).await;
    let mut c = config(&s.url);
    c.bearer_token = Some("tok-bearer-5".into());
    c.headers
        .insert("X-Scope-OrgID".into(), "tenant-secret-7".into());
    let e = PrometheusSource::new(c)
        .unwrap()
        .fetch(&query())
        .await
        .unwrap_err();
    assert_clean(&canary_core::error::chain(&e));
}

#[tokio::test]
async fn credentials_echoed_in_warnings_never_reach_the_metrics() {
    let s = Server::start(|r| {
        let echoed = r.header("x-scope-orgid").unwrap_or_default().to_owned();
        let now = Utc::now().timestamp();
        Reply::json(
            200,
            &format!(
                r#"{{"status":"success","warnings":["tenant {echoed} is throttled"],"data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{now},"0.5"]}}]}}}}"#
            ),
        )
    })
    .await;
    let m = PrometheusSource::new(secret_config(&s.url))
        .unwrap()
        .fetch(&query())
        .await
        .unwrap();
    let text = m.warnings.join("\n");
    assert_clean(&text);
}

#[tokio::test]
async fn url_credentials_are_percent_decoded() {
    let s = Server::start(|_| Reply::json(200, &vector("1"))).await;
    let url = s.url.replace("http://", "http://ops%20team:p%40ss%3Aw0rd@");
    let source = PrometheusSource::new(config(&url)).unwrap();
    source
        .instant("latency_p99", "up", Utc::now())
        .await
        .unwrap();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ops team:p@ss:w0rd")
    );
    assert_eq!(
        s.requests()[0].header("authorization"),
        Some(expected.as_str())
    );
    assert!(!format!("{source:?}").contains("p%40ss"));
}

#[tokio::test]
async fn retry_after_is_honoured_within_the_deadline() {
    let s = Server::start(|_| Reply::json(200, &vector("7"))).await;
    s.push(
        Reply::json(503, r#"{"status":"error","error":"busy"}"#).with_header("Retry-After", "1"),
    );
    let source = PrometheusSource::new(config(&s.url)).unwrap();
    let started = Instant::now();
    let a = source
        .instant("latency_p99", "up", Utc::now())
        .await
        .unwrap();
    assert_eq!(a.value, Some(7.0));
    // The backoff alone would have retried after at most 10 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // A Retry-After beyond the deadline ends the retries at once, with the server's error.
    let s = Server::start(|_| {
        Reply::json(429, r#"{"status":"error","error":"slow down"}"#)
            .with_header("Retry-After", "3600")
    })
    .await;
    let source = PrometheusSource::new(config(&s.url)).unwrap();
    let started = Instant::now();
    let e = source
        .instant("latency_p99", "up", Utc::now())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(s.requests().len(), 1);
    assert!(e.to_string().contains("slow down"), "{e}");
}

#[tokio::test]
async fn absurd_values_are_errors_that_name_the_metric_and_the_bound() {
    for (value, needle) in [("1e308", "1e308"), ("2e12", "2e12")] {
        let s = Server::start(move |_| Reply::json(200, &vector(value))).await;
        // Only latency and sample count, so the value is plausible for neither.
        let source = PrometheusSource::new(config(&s.url)).unwrap();
        for metric in [
            "latency_p50",
            "latency_p95",
            "error_rate",
            "model_confidence",
            "request_rate",
        ] {
            source.remove_query(metric);
        }
        let e = source.fetch(&query()).await.unwrap_err();
        let text = e.to_string();
        assert!(
            (text.contains("latency_p99") || text.contains("sample_count"))
                && text.contains(needle),
            "{text}"
        );
        assert!(text.contains("between 0 and"), "{text}");
        assert!(text.len() < 400, "a 309-digit number? {text}");
    }
}

#[tokio::test]
async fn a_pushgateway_that_echoes_credentials_or_redirects_away_leaks_nothing() {
    use canary_prometheus::Pushgateway;
    use prometheus_client::registry::Registry;

    let s = Server::start(echo(400)).await;
    let url = s.url.replace("http://", "http://pusher:pw-push-3@");
    let e = Pushgateway::new(&url, "canary")
        .unwrap()
        .push(&Registry::default())
        .await
        .unwrap_err();
    let text = format!("{e} | {e:?}");
    let basic = base64::engine::general_purpose::STANDARD.encode("pusher:pw-push-3");
    assert!(
        !text.contains("pw-push-3") && !text.contains(&basic),
        "{text}"
    );
    assert!(text.contains("[redacted]"), "nothing was echoed: {text}");

    let elsewhere = Server::receiver().await;
    let target = format!("{}/metrics/job/canary", elsewhere.url);
    let s = Server::start(move |_| Reply::redirect(307, &target)).await;
    let e = Pushgateway::new(&s.url, "canary")
        .unwrap()
        .push(&Registry::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("another origin"), "{e}");
    assert!(elsewhere.requests().is_empty());
}

/// An instant answer with one sample of `value` under `labels`, stamped `at` (unix seconds).
fn answer(labels: &str, at: i64, value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{labels},"value":[{at},"{value}"]}}]}}}}"#
    )
}

#[tokio::test]
async fn answers_that_contradict_the_question_are_errors_never_data() {
    let now = || Utc::now().timestamp();
    type Answerer = Box<dyn Fn() -> String + Send + Sync>;
    let cases: Vec<(&str, Answerer, &str)> = vec![
        (
            "another version's series",
            Box::new(move || answer(r#"{"version":"someone-else"}"#, now(), "0.5")),
            "labelled version=\"someone-else\"",
        ),
        (
            "a sample stamped 1970",
            Box::new(|| answer("{}", 0, "0.5")),
            "stamped 1970-01-01",
        ),
        (
            "a scalar to a series query",
            Box::new(move || {
                format!(
                    r#"{{"status":"success","data":{{"resultType":"scalar","result":[{},"0.5"]}}}}"#,
                    now()
                )
            }),
            "a scalar",
        ),
    ];
    for (what, reply, says) in cases {
        let s = Server::start(move |_| Reply::json(200, &reply())).await;
        let e = PrometheusSource::new(config(&s.url))
            .unwrap()
            .fetch(&query())
            .await
            .expect_err(what);
        let text = canary_core::error::chain(&e);
        assert!(text.contains(says), "{what}: {text}");
    }
    // The same answer, agreeing with its question, is data.
    let s = Server::start(move |_| Reply::json(200, &answer(r#"{"version":"v2"}"#, now(), "0.5")))
        .await;
    let m = PrometheusSource::new(config(&s.url))
        .unwrap()
        .fetch(&query())
        .await
        .unwrap();
    assert_eq!(m.error_rate_percent, Some(0.5));
}

#[tokio::test]
async fn a_range_answer_of_another_version_is_an_error() {
    use canary_core::observation::{ObservationQuery, ObservationSource};
    let end = Utc::now();
    let start = end - chrono::Duration::minutes(5);
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"version":"someone-else","status":"200"}},"values":[[{},"10"]]}}]}}}}"#,
        start.timestamp()
    );
    let s = Server::start(move |_| Reply::json(200, &body)).await;
    let q = ObservationQuery::new(
        Version::new("v2").unwrap(),
        Arm::Canary,
        start,
        end,
        Duration::from_secs(15),
    );
    let e = PrometheusSource::new(config(&s.url))
        .unwrap()
        .observe(&q)
        .await
        .unwrap_err();
    assert!(
        canary_core::error::chain(&e).contains("someone-else"),
        "{e}"
    );
}
