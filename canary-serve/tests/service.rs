//! `canary serve` over a real Prometheus: analyses and their decisions, bad input as 4xx,
//! auth, metrics, probes, limits, the deadline, TLS and graceful shutdown.

mod common;

use std::time::Duration;

use common::{get, post, prometheus, start};
use serde_json::json;
use testkit::http::{Reply, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyses_answer_each_decision_with_its_evidence() {
    let p = prometheus();
    let s = start(&p.url, |_| {}, None).await;
    let ask = |canary: &str| {
        format!(
            "{}/v1/analysis?baseline=v1&canary={canary}&window=5m",
            s.base
        )
    };
    let (code, ok) = get(&ask("v2")).await;
    assert_eq!(code, 200, "{ok}");
    assert_eq!(ok["decision"], "proceed");
    assert_eq!(ok["judge"], "threshold");
    assert!(ok["queries"]["error_rate"]["canary"]
        .as_str()
        .unwrap()
        .contains("version=\"v2\""));
    let comparisons = ok["evaluation"]["comparisons"].as_array().unwrap();
    assert!(comparisons
        .iter()
        .any(|c| c["metric"] == "latency_p99" && c["ratio"].is_number()));
    let (_, bad) = get(&ask("v3")).await;
    assert_eq!(bad["decision"], "rollback_auto");
    assert!(
        bad["reason"].as_str().unwrap().contains("error_rate"),
        "{bad}"
    );
    let (_, none) = get(&ask("v9")).await;
    assert_eq!(none["decision"], "rollback_manual");
    assert!(
        none["reason"]
            .as_str()
            .unwrap()
            .starts_with("insufficient data"),
        "{none}"
    );
    // The same as a POST with a JSON body, numbers allowed.
    let (code, posted) = post(
        &format!("{}/v1/analysis", s.base),
        &json!({"baseline": "v1", "canary": "v3", "window": 300}),
    )
    .await;
    assert_eq!(
        (code, posted["decision"].as_str()),
        (200, Some("rollback_auto"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_with_the_reason_never_a_decision() {
    let p = prometheus();
    let s = start(&p.url, |_| {}, None).await;
    for (query, names) in [
        ("baseline=v1&canary=", "canary"),
        ("baseline=v1&canary=%20", "canary"),
        ("baseline=v1&canary=v2%22%7D%20or%20vector(1)", "canary"),
        ("baseline=v1", "canary is required"),
        ("canary=v2", "baseline is required"),
        ("baseline=v1&canary=v2&window=5%20minutes", "window"),
        ("baseline=v1&canary=v2&window=999d", "window"),
        ("baseline=v1&canary=v2&at=yesterday", "at"),
        ("baseline=v1&canary=v2&canaryy=v3", "unknown field"),
        ("baseline=v1&canary=v2&canary=v3", "duplicate field"),
        ("baseline=v1&canary=v2&window=0s", "window"),
        (
            &format!("baseline=v1&canary={}", "v".repeat(200)),
            "at most 128",
        ),
    ] {
        let (code, body) = get(&format!("{}/v1/analysis?{query}", s.base)).await;
        assert_eq!(code, 400, "{query}: {body}");
        assert!(body.get("decision").is_none(), "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(names),
            "{query}: {body}"
        );
    }
    let (code, body) = post(
        &format!("{}/v1/analysis", s.base),
        &json!({"baseline": "v1"}),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    // Not JSON, or JSON of the wrong shape: 4xx too.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/analysis", s.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Absurd numbers are refused, and the error quotes them briefly.
    for (field, value) in [
        ("window", json!(1e308)),
        ("at", json!(-1e300)),
        ("window", json!(0.5)),
    ] {
        let body = json!({"baseline": "v1", "canary": "v2", field: value});
        let (code, answer) = post(&format!("{}/v1/analysis", s.base), &body).await;
        assert_eq!(code, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(field) && error.len() < 120, "{error}");
    }
    let wrong_shape = json!({"baseline": 1, "canary": []});
    let (code, _) = post(&format!("{}/v1/analysis", s.base), &wrong_shape).await;
    assert!((400..500).contains(&code), "{code}");
    let (code, _) = get(&format!("{}/v2/nothing", s.base)).await;
    assert_eq!(code, 404);
    // A body beyond the limit.
    let big = json!({"baseline": "v1", "canary": "v2", "window": "x".repeat(100_000)});
    let (code, _) = post(&format!("{}/v1/analysis", s.base), &big).await;
    assert_eq!(code, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_api_and_the_probes_and_metrics_stay_open() {
    let p = prometheus();
    let s = start(
        &p.url,
        |c| c.auth_token = Some(canary_core::Secret::new("s3cret-token")),
        None,
    )
    .await;
    let url = format!("{}/v1/analysis?baseline=v1&canary=v2", s.base);
    let client = reqwest::Client::new();
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Bearer s3cret-toke"),
        Some("s3cret-token"),
    ] {
        let mut r = client.get(&url);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        assert!(!r.text().await.unwrap().contains("s3cret"));
    }
    let ok = client
        .get(&url)
        .header("authorization", "Bearer s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    for open in ["/healthz", "/readyz", "/metrics"] {
        let r = client
            .get(format!("{}{open}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{open}");
    }
    let metrics = client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The service answers questions; it never validates, so it has no validation's success
    // to report: no `canary_validation_success` sample for the `== 0` alert to fire on.
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("canary_validation_success")),
        "{metrics}"
    );
    for series in [
        "canary_http_requests_total{route=\"/v1/analysis\",code=\"401\"} 4",
        "canary_http_requests_total{route=\"/v1/analysis\",code=\"200\"} 1",
        "canary_analyses_total{decision=\"proceed\"} 1",
        "canary_http_requests_in_flight",
        "canary_http_request_duration_seconds_bucket",
        "canary_promotion_total 1",
    ] {
        assert!(metrics.contains(series), "no {series} in\n{metrics}");
    }
    let sent = metrics
        .lines()
        .find_map(|l| l.strip_prefix("canary_prometheus_queries_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap();
    assert!(
        sent >= 14.0,
        "both arms' seven queries, and the readiness probe: {sent}"
    );
    assert!(!metrics.contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_prometheus() {
    let s = start("http://127.0.0.1:9", |_| {}, None).await;
    let (code, body) = get(&format!("{}/readyz", s.base)).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Prometheus"),
        "{body}"
    );
    let (code, _) = get(&format!("{}/healthz", s.base)).await;
    assert_eq!(code, 200);
    // An analysis that cannot reach Prometheus is a gateway error, not a decision.
    let (code, body) = get(&format!("{}/v1/analysis?baseline=v1&canary=v2", s.base)).await;
    assert_eq!(code, 502, "{body}");
    assert!(body.get("decision").is_none());
}

/// A Prometheus that answers every query slowly.
async fn slow_prometheus(delay: Duration) -> Server {
    Server::start(move |_| {
        Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .delayed(delay)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_analyses_wait_then_get_503_and_slow_ones_hit_the_deadline() {
    let slow = slow_prometheus(Duration::from_millis(800)).await;
    let s = start(
        &slow.url,
        |c| {
            c.max_concurrent_analyses = 1;
            c.queue_timeout = Duration::from_millis(200);
        },
        None,
    )
    .await;
    let url = format!("{}/v1/analysis?baseline=v1&canary=v2", s.base);
    let first = tokio::spawn({
        let url = url.clone();
        async move { get(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().get("retry-after").is_some());
    // The first one was judged: no data anywhere is manual review.
    let (code, body) = first.await.unwrap();
    assert_eq!(
        (code, body["decision"].as_str()),
        (200, Some("rollback_manual")),
        "{body}"
    );

    let s = start(&slow.url, |c| c.deadline = Duration::from_millis(300), None).await;
    let (code, body) = get(&format!("{}/v1/analysis?baseline=v1&canary=v2", s.base)).await;
    assert_eq!(code, 504, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_and_refuses_new_ones() {
    let slow = slow_prometheus(Duration::from_millis(600)).await;
    let mut s = start(&slow.url, |_| {}, None).await;
    let url = format!("{}/v1/analysis?baseline=v1&canary=v2", s.base);
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move { get(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(s.stop.take());
    let (code, body) = in_flight.await.unwrap();
    assert_eq!(code, 200, "{body}");
    s.task.await.unwrap().unwrap();
    assert!(reqwest::get(&url).await.is_err(), "the listener is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_speaks_tls_when_given_a_certificate() {
    let p = prometheus();
    let ca = testkit::tls::TestCa::new();
    let s = start(
        &p.url,
        |c| {
            c.tls_cert_file = Some(ca.server_cert.clone());
            c.tls_key_file = Some(ca.server_key.clone());
        },
        None,
    )
    .await;
    let cert = reqwest::Certificate::from_pem(&std::fs::read(&ca.ca_cert).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(cert)
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/v1/analysis?baseline=v1&canary=v3", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["decision"], "rollback_auto");
    // Plain HTTP to the TLS port is not served.
    assert!(reqwest::get(s.base.replace("https", "http") + "/healthz")
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_judge_continues_until_it_is_sure() {
    let p = prometheus();
    let judge = std::sync::Arc::new(canary_core::judge::SequentialParameters::default());
    let s = start(&p.url, |_| {}, Some(judge)).await;
    let ask = |canary: &str| {
        format!(
            "{}/v1/analysis?baseline=v1&canary={canary}&window=15m",
            s.base
        )
    };
    let (code, bad) = get(&ask("v3")).await;
    assert_eq!(code, 200, "{bad}");
    assert_eq!(bad["judge"], "sequential");
    assert_eq!(bad["decision"], "rollback_auto", "{bad}");
    let (_, healthy) = get(&ask("v2")).await;
    assert_eq!(healthy["decision"], "continue", "{healthy}");
    assert!(healthy["evaluation"].is_null());
    assert!(healthy["reason"]
        .as_str()
        .unwrap()
        .contains("still collecting evidence"));
    // Judged since the canary's first sample (20 minutes of data), not over the window, and
    // `continue` says how long the judge may still take.
    assert!(
        healthy["start_source"]
            .as_str()
            .unwrap()
            .contains("first sample"),
        "{healthy}"
    );
    let remaining = healthy["remaining_seconds"].as_f64().unwrap();
    assert!((2000.0..=2500.0).contains(&remaining), "{healthy}");
    // A window the judge can never decide in is refused, naming the shortest usable one.
    let (code, short) = get(&format!(
        "{}/v1/analysis?baseline=v1&canary=v2&window=4m",
        s.base
    ))
    .await;
    assert_eq!(code, 400, "{short}");
    assert!(
        short["error"].as_str().unwrap().contains("5 min"),
        "{short}"
    );
    // `since` is the start when the caller knows it.
    let since = chrono::Utc::now() - chrono::Duration::minutes(10);
    let (code, given) = get(&format!(
        "{}/v1/analysis?baseline=v1&canary=v2&since={}",
        s.base,
        since.timestamp()
    ))
    .await;
    assert_eq!(code, 200, "{given}");
    assert_eq!(
        given["start"].as_str().map(|t| &t[..16]),
        Some(&since.to_rfc3339()[..16])
    );
    assert!(
        given["start_source"].as_str().unwrap().contains("since"),
        "{given}"
    );
    let (code, late) = get(&format!(
        "{}/v1/analysis?baseline=v1&canary=v2&since={}",
        s.base,
        (chrono::Utc::now() + chrono::Duration::minutes(10)).timestamp()
    ))
    .await;
    assert_eq!(code, 400, "{late}");
    // Asked live before its first scrape, a version with no series is awaited for the
    // first-scrape grace, and the answer says until when.
    let (code, first) = get(&ask("v9")).await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(first["decision"], "continue", "{first}");
    assert!(
        first["reason"].as_str().unwrap().contains("first scrape"),
        "{first}"
    );
    assert_eq!(first["remaining_seconds"], 120.0, "{first}");
    // Asked about a past instant, or past the grace, it is manual review that says so, never
    // "0 looks".
    let (code, none) = get(&format!(
        "{}&at={}",
        ask("v9"),
        chrono::Utc::now().timestamp()
    ))
    .await;
    assert_eq!(code, 200, "{none}");
    assert_eq!(none["decision"], "rollback_manual", "{none}");
    assert!(
        none["reason"].as_str().unwrap().contains("no series"),
        "{none}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_hostile_prometheus_echoes_never_reaches_the_answer() {
    // A proxy that answers 400 with the request's headers, the bearer token among them.
    let echo = Server::start(|r| {
        let auth = r.header("authorization").unwrap_or("").to_owned();
        Reply::text(400, &format!("bad request; you sent Authorization: {auth}"))
    })
    .await;
    let mut config = canary_prometheus::PrometheusConfig::new(&echo.url);
    config.bearer_token = Some(canary_core::Secret::new("prom-s3cret-token"));
    let judging = canary_serve::Judging {
        source: std::sync::Arc::new(canary_prometheus::PrometheusSource::new(config).unwrap()),
        policy: canary_core::RollbackPolicy::default(),
        judge: None,
        judge_step: Duration::from_secs(15),
        max_duration: Duration::from_secs(3600),
    };
    let settings = canary_serve::ServeConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        ..Default::default()
    };
    let server = canary_serve::serve(settings, judging).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let task = tokio::spawn(server.run(std::future::pending()));
    for path in ["/v1/analysis?baseline=v1&canary=v2", "/readyz"] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(status >= 500, "{path}: {status} {text}");
        assert!(text.contains("400"), "the cause is kept: {text}");
        assert!(!text.contains("prom-s3cret-token"), "{path}: {text}");
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("prom-s3cret-token"));
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_answers_every_documented_operation_as_documented_and_nothing_else() {
    use canary_serve::openapi::{Input, OPERATIONS};
    let prom = prometheus();
    let token = "a-token-of-twenty-chars";
    let running = start(
        &prom.url,
        |c| c.auth_token = Some(canary_core::Secret::new(token)),
        None,
    )
    .await;
    let client = reqwest::Client::new();
    let flagger = json!({"name": "app", "namespace": "prod",
        "metadata": {"baseline": "v1", "canary": "v2"}});
    for op in OPERATIONS {
        let url = format!("{}{}", running.base, op.path);
        let request = |authorized: bool| {
            let mut r = match (op.method, op.input) {
                ("get", Input::Query) => client.get(format!("{url}?baseline=v1&canary=v2")),
                ("get", _) => client.get(&url),
                ("post", Input::Json) => client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(json!({"baseline": "v1", "canary": "v2"}).to_string()),
                ("post", _) => client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(flagger.to_string()),
                (m, _) => panic!("a method the table should not have: {m}"),
            };
            if authorized {
                r = r.bearer_auth(token);
            }
            r
        };
        let documented: Vec<u16> = op.responses().iter().map(|r| r.0).collect();
        let status = request(true).send().await.unwrap().status().as_u16();
        assert!(
            documented.contains(&status) && status < 500,
            "{} {}: {status}, documented {documented:?}",
            op.method,
            op.path
        );
        if op.guarded {
            let status = request(false).send().await.unwrap().status().as_u16();
            assert_eq!(status, 401, "{} {} without the token", op.method, op.path);
        }
        // The other method on a documented path, unless the table has it too: 405.
        let other = if op.method == "get" { "post" } else { "get" };
        if !OPERATIONS
            .iter()
            .any(|o| o.path == op.path && o.method == other)
        {
            let r = if other == "get" {
                client.get(&url)
            } else {
                client.post(&url)
            };
            let status = r.bearer_auth(token).send().await.unwrap().status();
            assert_eq!(status.as_u16(), 405, "{other} {}", op.path);
        }
    }
    // A path the table does not list is a 404 with the error body.
    let (status, body) = get(&format!("{}/v1/analyses", running.base)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no such route");
    // The document the service serves is the table's.
    let (status, doc) = get(&format!("{}/openapi.json", running.base)).await;
    assert_eq!(status, 200);
    assert_eq!(doc, canary_serve::openapi::document());
    for op in OPERATIONS {
        let codes: Vec<String> = doc["paths"][op.path][op.method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let table: Vec<String> = op.responses().iter().map(|r| r.0.to_string()).collect();
        assert_eq!(codes, table, "{} {}", op.method, op.path);
    }
}
