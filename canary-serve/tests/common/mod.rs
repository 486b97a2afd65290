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
    let mut config = ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..ServeConfig::default()
    };
    tweak(&mut config);
    let tls = config.tls_cert_file.is_some();
    let source = Arc::new(PrometheusSource::new(PrometheusConfig::new(prometheus_url)).unwrap());
    let judging = Judging {
        source,
        policy: RollbackPolicy::default(),
        judge,
        judge_step: Duration::from_secs(15),
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
