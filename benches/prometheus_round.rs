//! One analysis round (7 queries × 2 versions) against a real Prometheus on loopback, timed
//! three ways in the same run: concurrently (as the validator does), sequentially, and a
//! single query. Figures in the book (Performance) are ratios between them.
//!
//! Run with `cargo bench --bench prometheus_round` (needs the Debian prometheus package, which
//! ./scripts/test.sh installs).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use canary::prometheus::PrometheusSource;
use canary::{fetch_pair, Arm, MetricsQuery, Version};
use chrono::{DateTime, TimeZone, Utc};
use divan::Bencher;
use testkit::services::Service;
use testkit::traffic::{now_secs, openmetrics, Traffic};

struct World {
    source: PrometheusSource,
    at: DateTime<Utc>,
    runtime: tokio::runtime::Runtime,
}

static WORLD: OnceLock<World> = OnceLock::new();
static SERVER: Mutex<Option<Service>> = Mutex::new(None);

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        let end = now_secs() - 3;
        let data = openmetrics(
            &[Traffic::healthy("v1", 100.0), Traffic::healthy("v2", 10.0)],
            3600,
            15,
            end,
        );
        let server = testkit::services::prometheus(&data);
        let source = PrometheusSource::at_url(&server.url).unwrap();
        *SERVER.lock().unwrap() = Some(server);
        World {
            source,
            at: Utc.timestamp_opt(end, 0).unwrap(),
            runtime: tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    })
}

fn main() {
    divan::main();
    // Statics are never dropped: stop Prometheus explicitly.
    drop(SERVER.lock().unwrap().take());
}

const WINDOW: Duration = Duration::from_secs(300);

/// 14 queries at once (bounded by `max_concurrency`), as the validator runs them.
#[divan::bench(sample_count = 60)]
fn round_concurrent(bencher: Bencher) {
    let w = world();
    let b = MetricsQuery::new(Version::new("v1").unwrap(), Arm::Baseline, WINDOW).at(w.at);
    let c = MetricsQuery::new(Version::new("v2").unwrap(), Arm::Canary, WINDOW).at(w.at);
    bencher.bench(|| {
        w.runtime.block_on(async {
            let (x, y) = fetch_pair(&w.source, &b, &c).await;
            (x.unwrap(), y.unwrap())
        })
    });
}

/// The same 14 queries one after another.
#[divan::bench(sample_count = 60)]
fn round_sequential(bencher: Bencher) {
    let w = world();
    let queries: Vec<(String, String)> = ["v1", "v2"]
        .iter()
        .flat_map(|v| {
            w.source
                .queries()
                .iter()
                .map(|(m, t)| (m.to_owned(), t.render(v, WINDOW)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(queries.len(), 14);
    bencher.bench(|| {
        w.runtime.block_on(async {
            for (metric, q) in &queries {
                w.source.instant(metric, q, w.at).await.unwrap();
            }
        })
    });
}

/// One query: the p99 of one version.
#[divan::bench(sample_count = 60)]
fn single_query(bencher: Bencher) {
    let w = world();
    let q = w
        .source
        .queries()
        .get("latency_p99")
        .unwrap()
        .render("v2", WINDOW);
    bencher.bench(|| {
        w.runtime
            .block_on(async { w.source.instant("latency_p99", &q, w.at).await.unwrap() })
    });
}
