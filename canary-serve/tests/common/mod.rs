//! A running service over a real Prometheus holding production (`v1`), a healthy canary (`v2`)
//! and one failing 8 % of its requests (`v3`); `v9` has no data.

// Each test crate uses its own part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use canary_core::judge::JudgeFactory;
use canary_core::RollbackPolicy;
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use canary_serve::{Judging, ServeConfig};
use testkit::services::Service;
use testkit::traffic::{now_secs, openmetrics, production_and_two_canaries};

pub(crate) fn prometheus() -> Service {
    let data = openmetrics(&production_and_two_canaries(), 1200, 15, now_secs() - 3);
    testkit::services::prometheus(&data)
}

/// The service's address and the task serving it; dropping `stop` shuts it down.
pub(crate) struct Running {
    pub(crate) base: String,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) task: tokio::task::JoinHandle<Result<(), String>>,
}

pub(crate) async fn start(
    prometheus_url: &str,
    tweak: impl FnOnce(&mut ServeConfig),
    judge: Option<Arc<dyn JudgeFactory>>,
) -> Running {
    start_with(
        PrometheusConfig::new(prometheus_url),
        Duration::from_secs(15),
        tweak,
        judge,
    )
    .await
}

/// [`start`] over a store configured as given, judging every `judge_step`.
pub(crate) async fn start_with(
    prometheus: PrometheusConfig,
    judge_step: Duration,
    tweak: impl FnOnce(&mut ServeConfig),
    judge: Option<Arc<dyn JudgeFactory>>,
) -> Running {
    let mut config = ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServeConfig::default()
    };
    tweak(&mut config);
    let tls = config.tls_cert_file.is_some();
    let source = Arc::new(PrometheusSource::new(prometheus).unwrap());
    let judging = Judging {
        source,
        policy: RollbackPolicy::default(),
        judge,
        judge_step,
        max_duration: Duration::from_secs(3600),
    };
    let server = canary_serve::serve(config, judging).await.unwrap();
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        base: format!("{}://{addr}", if tls { "https" } else { "http" }),
        stop: Some(tx),
        task,
    }
}

pub(crate) async fn get(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

pub(crate) async fn post(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// A Thanos-like querier in front of `prometheus_port`: it forwards every query and answers
/// 200 with what Prometheus said plus a partial-response warning, as a querier does when one
/// of its stores is down.
pub(crate) async fn partial_querier(prometheus_port: u16) -> testkit::http::Server {
    testkit::http::Server::start(move |r| {
        let query = if r.method == "POST" {
            format!("{}?{}", r.path, r.text())
        } else {
            r.path.clone()
        };
        let answered =
            tokio::task::block_in_place(|| testkit::services::get(prometheus_port, &query));
        match answered {
            Ok((200, body)) => {
                let mut json: serde_json::Value = serde_json::from_str(&body).unwrap();
                json["warnings"] = serde_json::json!([
                    "partial response: store 10.0.7.3:10901 (the canary's zone) unavailable"
                ]);
                testkit::http::Reply::json(200, &json.to_string())
            }
            Ok((status, body)) => testkit::http::Reply::json(status, &body),
            Err(e) => testkit::http::Reply::text(502, &e.to_string()),
        }
    })
    .await
}
