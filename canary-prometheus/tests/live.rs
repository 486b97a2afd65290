//! Stores scraping as canary asks: pods exposing the guide's metrics through a real client
//! library (`prometheus-client`), scraped every second by a real Prometheus and a real
//! VictoriaMetrics, asked at instants that fall between steps. What only time shows: a canary
//! not scraped yet, a failure series that appears with the first failure, a pod that dies.

use std::time::{Duration, Instant};

use canary_core::observation::{names, Observation, ObservationQuery};
use canary_core::{Arm, Version};
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use chrono::{DateTime, Utc};
use testkit::live::{prometheus_scraping, victoria_metrics_scraping, Pod};

const SCRAPE: Duration = Duration::from_secs(1);

/// A store as canary is configured for it.
struct Store {
    name: &'static str,
    config: PrometheusConfig,
}

impl Store {
    async fn observe(&self, version: &str, start: DateTime<Utc>) -> Vec<Observation> {
        let source = PrometheusSource::new(self.config.clone()).unwrap();
        // Between two steps, as a controller asks.
        let end = Utc::now() - chrono::Duration::milliseconds(437);
        let q = ObservationQuery::new(
            Version::new(version).unwrap(),
            Arm::Canary,
            start,
            end,
            SCRAPE,
        );
        source.observations(&q).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn live_stores_answer_on_one_grid_count_late_failures_and_show_a_pod_that_died() {
    assert!(
        testkit::have("victoria-metrics"),
        "victoria-metrics is not installed: run ./scripts/test.sh, which installs it"
    );
    let production = Pod::start("prod-0", "v1");
    let steady = Pod::start("canary-0", "v2");
    let mut failing = Pod::start("canary-1", "v2");
    let never = Pod::start("typo-0", "v9");
    let pods = [&production, &steady, &failing, &never];
    let prometheus = prometheus_scraping(&pods, SCRAPE);
    let victoria = victoria_metrics_scraping(&pods, SCRAPE);
    let mut victoria_config = PrometheusConfig::new(&victoria.url);
    // Its default -search.latencyOffset: it hides its latest 30 s.
    victoria_config.query_delay = Duration::from_secs(30);
    let stores = [
        Store {
            name: "Prometheus",
            config: PrometheusConfig::new(&prometheus.url),
        },
        Store {
            name: "VictoriaMetrics",
            config: victoria_config,
        },
    ];
    let t0 = Utc::now();
    let began = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Before any scrape, neither store has the canary: no observation, never a zero.
    for store in &stores {
        assert!(store.observe("v2", t0).await.is_empty(), "{}", store.name);
    }
    // Traffic every 100 ms. Once Prometheus has scraped the canary, canary-1 fails from 3 s
    // on and dies at 10 s; the run goes on until VictoriaMetrics shows the death too.
    let mut scraped: Option<Instant> = None;
    loop {
        production.serve(5, "200", 0.05, 0.9);
        steady.serve(2, "200", 0.05, 0.9);
        match scraped.map(|s| s.elapsed()) {
            None => {
                failing.serve(2, "200", 0.05, 0.9);
                if !stores[0].observe("v2", t0).await.is_empty() {
                    scraped = Some(Instant::now());
                }
                assert!(
                    began.elapsed() < Duration::from_secs(60),
                    "no scrape in 60 s"
                );
            }
            Some(a) if a < Duration::from_secs(10) => {
                failing.serve(2, "200", 0.05, 0.9);
                if a > Duration::from_secs(3) {
                    failing.serve(1, "500", 0.05, 0.9);
                }
            }
            Some(a) if a < Duration::from_secs(48) => {
                if failing.port != 0 {
                    failing.kill();
                    failing.port = 0;
                }
            }
            Some(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let died_at = t0 + chrono::Duration::from_std(scraped.unwrap() + SCRAPE * 10 - began).unwrap();

    let mut answers = Vec::new();
    for store in &stores {
        let o = store.observe("v2", t0).await;
        let name = store.name;
        assert!(o.len() >= 10, "{name} answered {} instants", o.len());
        assert!(
            o.iter().all(|o| o.at.timestamp_subsec_millis() == 0),
            "{name}: instants on the step's multiples"
        );
        // The failure series appeared seconds after the pods' first samples: a zero before it,
        // counted from zero once it is there, at every instant that has requests.
        let errors: Vec<f64> = o.iter().map(|o| o.counters[names::ERRORS]).collect();
        assert_eq!(errors[0], 0.0, "{name}: {errors:?}");
        assert!(
            errors.windows(2).all(|w| w[1] >= w[0]),
            "{name}: {errors:?}"
        );
        assert!(*errors.last().unwrap() >= 20.0, "{name}: {errors:?}");
        let requests = o.last().unwrap().counters[names::REQUESTS];
        assert!(*errors.last().unwrap() < requests, "{name}");
        // A dead target's series are marked stale within a scrape: canary-1 stopped, and
        // says when (within a few scrapes: a loaded machine delays them); canary-0 goes on.
        let last = o.last().unwrap();
        let died = last.instances["canary-1"]
            .last_sample
            .unwrap_or_else(|| panic!("{name}: canary-1 stopped reporting: {:?}", last.instances));
        let off = (died - died_at).num_milliseconds();
        assert!(
            (-6_000..2_000).contains(&off),
            "{name}: its last sample {off} ms from its death"
        );
        assert_eq!(last.instances["canary-0"].last_sample, None, "{name}");
        answers.push(o);
    }
    // Both stores answer on the same instants (before the alignment VictoriaMetrics matched
    // none of an unaligned grid's instants), and agree within a few scrapes' worth of traffic.
    let grid = |o: &[Observation]| o.iter().map(|o| o.at).collect::<Vec<_>>();
    let (p, v) = (grid(&answers[0]), grid(&answers[1]));
    let common: Vec<_> = v.iter().filter(|t| p.contains(t)).copied().collect();
    assert!(common.len() >= 10, "{v:?} and {p:?}");
    let at = *common.last().unwrap();
    let requests =
        |o: &[Observation]| o.iter().find(|o| o.at == at).unwrap().counters[names::REQUESTS];
    let (rp, rv) = (requests(&answers[0]), requests(&answers[1]));
    assert!(
        (rp - rv).abs() <= 100.0,
        "Prometheus {rp}, VictoriaMetrics {rv} at {at}"
    );

    // A version nobody serves has no series in either store: never a fabricated zero.
    for store in &stores {
        assert!(store.observe("v9", t0).await.is_empty(), "{}", store.name);
    }
}
