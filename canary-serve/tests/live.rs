//! `canary serve` asked as the shipped Argo template asks (every minute here every few
//! seconds, no `since`, no `at`), over Prometheus and VictoriaMetrics scraping live pods that
//! expose the guide's metrics through `prometheus-client`: the first question before the
//! first scrape, a pod that restarts (its counters reset), a canary that dies, a version that
//! never appears, and a partial answer.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_core::judge::SequentialParameters;
use canary_prometheus::PrometheusConfig;
use common::{get, partial_querier, start_with, Running};
use testkit::live::{prometheus_scraping, victoria_metrics_scraping, Pod};

const STEP: Duration = Duration::from_secs(1);

/// The judge's answer about `canary` now: its decision and reason.
async fn ask(s: &Running, canary: &str, extra: &str) -> (String, String) {
    let (code, body) = get(&format!(
        "{}/v1/analysis?baseline=v1&canary={canary}{extra}",
        s.base
    ))
    .await;
    assert_eq!(code, 200, "{body}");
    (
        body["decision"].as_str().unwrap().to_owned(),
        body["reason"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stores_first_minute_restart_death_absence_and_partial_answers() {
    assert!(
        testkit::have("victoria-metrics"),
        "victoria-metrics is not installed: run ./scripts/test.sh, which installs it"
    );
    let production = Pod::start("prod-0", "v1");
    let healthy = Pod::start("healthy-0", "v2");
    let mut dies = Pod::start("dies-0", "v3");
    let mut restarts = Pod::start("restarts-0", "v4");
    let pods = [&production, &healthy, &dies, &restarts];
    let prometheus = prometheus_scraping(&pods, STEP);
    let victoria = victoria_metrics_scraping(&pods, STEP);
    let mut on_victoria = PrometheusConfig::new(&victoria.url);
    on_victoria.query_delay = Duration::from_secs(30);
    let sequential = || Some(Arc::new(SequentialParameters::default()) as _);
    let judges = [
        (
            "Prometheus",
            start_with(
                PrometheusConfig::new(&prometheus.url),
                STEP,
                |_| {},
                sequential(),
            )
            .await,
        ),
        (
            "VictoriaMetrics",
            start_with(on_victoria.clone(), STEP, |_| {}, sequential()).await,
        ),
    ];
    let began = Instant::now();
    // The first questions come before any pod has served a request: no series anywhere. A
    // healthy canary is awaited, never paused, failed or rolled back for being early.
    for (store, s) in &judges {
        for canary in ["v2", "v3", "v4", "v9"] {
            let (decision, reason) = ask(s, canary, "").await;
            assert_eq!(decision, "continue", "{store} {canary}: {reason}");
            assert!(
                reason.contains("first scrape"),
                "{store} {canary}: {reason}"
            );
        }
    }
    // Traffic every 100 ms; v4's pod restarts at 15 s (down 2 s, counters from zero); v3's
    // only pod dies at 20 s.
    let mut asked_early = false;
    // An instant while everything but v3 serves, for the single looks below.
    let mut busy_at = None;
    let mut dead_at = None;
    while began.elapsed() < Duration::from_secs(128) {
        let t = began.elapsed();
        if t > Duration::from_secs(100) && busy_at.is_none() {
            busy_at = Some(chrono::Utc::now().timestamp());
        }
        production.serve(10, "200", 0.05, 0.9);
        healthy.serve(2, "200", 0.05, 0.9);
        restarts.serve(2, "200", 0.05, 0.9);
        if t < Duration::from_secs(20) {
            dies.serve(2, "200", 0.05, 0.9);
        } else if dies.port != 0 {
            dies.kill();
            dies.port = 0;
            dead_at = Some(chrono::Utc::now().timestamp());
        }
        if t > Duration::from_secs(15) && !asked_early {
            restarts.restart(Duration::from_secs(2));
            asked_early = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (store, s) in &judges {
        // Asked at 128 s: v3 stopped 108 s ago (78 s as VictoriaMetrics shows it, 30 s late).
        let (decision, reason) = ask(s, "v3", "").await;
        assert_eq!(decision, "rollback_manual", "{store}: {reason}");
        assert!(
            reason.contains("the canary v3 stopped reporting"),
            "{store}: {reason}"
        );
        // The restart is a reset, not a hole nor a silence: still collecting evidence.
        for canary in ["v2", "v4"] {
            let (decision, reason) = ask(s, canary, "").await;
            assert_eq!(decision, "continue", "{store} {canary}: {reason}");
        }
        // Never appeared, first asked 128 s ago: past the 2-minute grace.
        let (decision, reason) = ask(s, "v9", "").await;
        assert_eq!(decision, "rollback_manual", "{store}: {reason}");
        assert!(
            reason.contains("no series") && reason.contains("first asked"),
            "{store}: {reason}"
        );
    }
    // The guide's single look over 30 s of traffic: a canary that never failed (no
    // status="500" series at all) is 0 % errors and promoted; the same answer marked partial
    // by a querier is held for a person.
    let single = format!("&window=30s&at={}", busy_at.unwrap());
    let querier = partial_querier(prometheus.port).await;
    for (via, url) in [
        ("Prometheus", &prometheus.url),
        ("the querier", &querier.url),
    ] {
        let s = start_with(PrometheusConfig::new(url), STEP, |_| {}, None).await;
        let (decision, reason) = ask(&s, "v2", &single).await;
        let expected = if via == "Prometheus" {
            "proceed"
        } else {
            "rollback_manual"
        };
        assert_eq!(decision, expected, "{via}: {reason}");
        if via != "Prometheus" {
            assert!(reason.contains("incomplete"), "{reason}");
        }
    }
    let s = start_with(on_victoria, STEP, |_| {}, None).await;
    let (decision, reason) = ask(&s, "v2", &single).await;
    assert_eq!(decision, "proceed", "VictoriaMetrics: {reason}");
    // The single look 15 s after v3's only pod died, over a minute that holds 45 s of its
    // traffic: what it sent looks healthy, but Prometheus marked its series stale, so a person
    // decides. (VictoriaMetrics's instant answers keep a stopped series for their lookback.)
    let after_death = format!("&window=60s&at={}", dead_at.unwrap() + 15);
    let s = start_with(PrometheusConfig::new(&prometheus.url), STEP, |_| {}, None).await;
    let (decision, reason) = ask(&s, "v3", &after_death).await;
    assert_eq!(decision, "rollback_manual", "{reason}");
    assert!(
        reason.contains("the canary v3 stopped reporting"),
        "{reason}"
    );
}
