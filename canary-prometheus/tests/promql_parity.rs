//! canary-core's in-process `rate`, `increase` and `histogram_quantile` against a real
//! Prometheus, on the same backfilled data: three instances, jittered scrapes (millisecond
//! timestamps), a counter reset when one instance restarts, noisy traffic. The answers must
//! agree to a relative 1e-9 at every evaluation time, including ones between scrapes and
//! windows that span the reset.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use canary_core::promql::{self, Sample};
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use chrono::{TimeZone, Utc};
use testkit::traffic::now_secs;

mod common;

use common::{assert_close, Lcg};

const LES: [&str; 8] = ["0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];
const INSTANCES: [&str; 3] = ["a", "b", "c"];
const SPAN_S: i64 = 1200;

/// Cumulative bucket series by (instance, le), and the request counter by instance.
struct Data {
    buckets: BTreeMap<(String, String), Vec<Sample>>,
    requests: BTreeMap<String, Vec<Sample>>,
    restart_ms: i64,
    gap_ms: i64,
    text: String,
}

fn generate(end_s: i64) -> Data {
    let mut rng = Lcg(42);
    let start_ms = (end_s - SPAN_S) * 1000;
    let restart_ms = start_ms + SPAN_S * 600; // instance b restarts at 60 % of the span
    let mut buckets: BTreeMap<(String, String), Vec<Sample>> = BTreeMap::new();
    let mut requests: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for instance in INSTANCES {
        let mut cumulative = [0.0f64; 8];
        let mut scrape = 0;
        loop {
            // Every 15 s, up to 2 s late.
            let t = start_ms + scrape * 15_000 + (rng.next() * 2000.0) as i64;
            if t > end_s * 1000 {
                break;
            }
            // Instance c misses four scrapes (a minute-long gap), as a busy target does.
            if instance == "c" && (40..44).contains(&scrape) {
                scrape += 1;
                continue;
            }
            if instance == "b" && t >= restart_ms && t - 15_000 < restart_ms {
                cumulative = [0.0; 8];
            }
            let arrived = (100.0 + rng.next() * 200.0).round();
            // Split the new requests over the buckets, most of them fast.
            let mut left = arrived;
            for (i, share) in [0.45, 0.25, 0.15, 0.08, 0.04, 0.02, 0.007]
                .iter()
                .enumerate()
            {
                let n = (left * share * (0.5 + rng.next())).round().min(left);
                left -= n;
                for c in cumulative.iter_mut().skip(i) {
                    *c += n;
                }
            }
            cumulative[7] += left;
            for (i, le) in LES.iter().enumerate() {
                buckets
                    .entry((instance.to_owned(), (*le).to_owned()))
                    .or_default()
                    .push((t, cumulative[i]));
            }
            requests
                .entry(instance.to_owned())
                .or_default()
                .push((t, cumulative[7]));
            scrape += 1;
        }
    }
    let stamp = |t: i64| format!("{}.{:03}", t / 1000, t % 1000);
    let mut text = String::from("# TYPE parity_request_seconds histogram\n");
    for ((instance, le), samples) in &buckets {
        for &(t, v) in samples {
            let _ = writeln!(
                text,
                "parity_request_seconds_bucket{{instance=\"{instance}\",le=\"{le}\"}} {v} {}",
                stamp(t)
            );
        }
    }
    text.push_str("# TYPE parity_requests_total counter\n");
    for (instance, samples) in &requests {
        for &(t, v) in samples {
            let _ = writeln!(
                text,
                "parity_requests_total{{instance=\"{instance}\"}} {v} {}",
                stamp(t)
            );
        }
    }
    text.push_str("# EOF\n");
    Data {
        buckets,
        requests,
        restart_ms,
        gap_ms: start_ms + 40 * 15_000,
        text,
    }
}

fn in_process_quantile(data: &Data, q: f64, at_ms: i64, window: Duration) -> f64 {
    let mut by_le: BTreeMap<&str, f64> = BTreeMap::new();
    for ((_, le), samples) in &data.buckets {
        if let Some(r) = promql::rate(samples, at_ms, window) {
            *by_le.entry(le.as_str()).or_default() += r;
        }
    }
    let buckets: Vec<(f64, f64)> = by_le
        .into_iter()
        .map(|(le, v)| (le.parse::<f64>().unwrap(), v))
        .collect();
    promql::histogram_quantile(q, &buckets)
}

#[tokio::test(flavor = "multi_thread")]
async fn in_process_promql_matches_prometheus() {
    let end_s = now_secs() - 3;
    let data = generate(end_s);
    let prometheus = testkit::services::prometheus(&data.text);
    let source = PrometheusSource::new(PrometheusConfig::new(&prometheus.url)).unwrap();
    let end_ms = end_s * 1000;
    // Evaluation times: between scrapes, on the restart, and with windows spanning it.
    let times = [
        end_ms - 7_321,
        end_ms - 300_000 + 1_234,
        data.restart_ms + 4_567,
        data.restart_ms + 120_000,
        end_ms - 600_000 - 11,
    ];
    let mut compared = 0;
    for at_ms in times {
        let at = Utc.timestamp_millis_opt(at_ms).unwrap();
        for window_s in [60u64, 120, 300] {
            let window = Duration::from_secs(window_s);
            for q in [0.5, 0.95, 0.99] {
                let query = format!(
                    "histogram_quantile({q}, sum by (le) (rate(parity_request_seconds_bucket[{window_s}s])))"
                );
                let theirs = source
                    .instant("p", &query, at)
                    .await
                    .unwrap()
                    .value
                    .expect("Prometheus has a value");
                let ours = in_process_quantile(&data, q, at_ms, window);
                assert_close(&format!("{query} at {at_ms}"), theirs, ours);
                compared += 1;
            }
            let query = format!("sum(increase(parity_requests_total[{window_s}s]))");
            let theirs = source
                .instant("n", &query, at)
                .await
                .unwrap()
                .value
                .unwrap();
            let ours: f64 = data
                .requests
                .values()
                .filter_map(|s| promql::increase(s, at_ms, window))
                .sum();
            assert_close(&format!("{query} at {at_ms}"), theirs, ours);
            // The restarted instance alone: the reset must be counted the same way.
            let query = format!("increase(parity_requests_total{{instance=\"b\"}}[{window_s}s])");
            let theirs = source.instant("b", &query, at).await.unwrap().value;
            let ours = promql::increase(&data.requests["b"], at_ms, window);
            match (theirs, ours) {
                (Some(t), Some(o)) => assert_close(&format!("{query} at {at_ms}"), t, o),
                (t, o) => assert_eq!(t.is_some(), o.is_some(), "{query} at {at_ms}"),
            }
            compared += 2;
        }
    }
    assert_eq!(compared, 5 * 3 * 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn range_edges_and_scrape_gaps_are_handled_as_prometheus_does() {
    let end_s = now_secs() - 3;
    let data = generate(end_s);
    let prometheus = testkit::services::prometheus(&data.text);
    let source = PrometheusSource::new(PrometheusConfig::new(&prometheus.url)).unwrap();
    let window = Duration::from_secs(60);
    let mut times = Vec::new();
    // Ranges that start or end exactly on a sample: both ends are included in 2.42.
    for &(t, _) in data.requests["a"].iter().skip(10).step_by(7).take(12) {
        times.extend([t, t + 60_000]);
    }
    // A sweep across instance c's gap, every 0.7 s: the distance to the range's start passes
    // the 1.1-average-interval threshold on the way.
    let mut t = data.gap_ms - 20_000;
    while t < data.gap_ms + 140_000 {
        times.push(t);
        t += 700;
    }
    for at_ms in times {
        let at = Utc.timestamp_millis_opt(at_ms).unwrap();
        for instance in ["a", "c"] {
            let query = format!("increase(parity_requests_total{{instance=\"{instance}\"}}[60s])");
            let theirs = source.instant("n", &query, at).await.unwrap().value;
            let ours = promql::increase(&data.requests[instance], at_ms, window);
            match (theirs, ours) {
                (Some(t), Some(o)) => assert_close(&format!("{query} at {at_ms}"), t, o),
                (t, o) => assert_eq!(t, o, "{query} at {at_ms}"),
            }
        }
    }
}
