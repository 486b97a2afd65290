//! The threshold judge's point estimates, derived in process from observations, against
//! Prometheus's own queries on the same backfilled data: three instances scraped on one 15 s
//! grid, one of them restarting (a counter reset) inside the window, noisy traffic. At a scrape
//! instant, with a window that is a whole number of scrapes, Prometheus does not extrapolate,
//! so the two must agree to a relative 1e-9.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use canary_core::judge::derive_metrics;
use canary_core::judge::{Judge, ThresholdJudge, ThresholdParameters, Verdict};
use canary_core::observation::{cumulative_sum, names, Histogram, Observation};
use canary_core::observation::{ObservationQuery, ObservationSource};
use canary_core::promql::Sample;
use canary_core::test_util::conformance;
use canary_core::Version;
use canary_core::{Arm, RollbackDecision};
use canary_prometheus::{ObservationQueries, PrometheusConfig, PrometheusSource};
use chrono::{TimeZone, Utc};
use testkit::traffic::now_secs;

mod common;

use common::{assert_close, Lcg};

const LES: [&str; 8] = ["0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];
const INSTANCES: [&str; 3] = ["a", "b", "c"];
const STEP_MS: i64 = 15_000;
const SCRAPES: i64 = 80;

#[derive(Default)]
struct Series {
    buckets: BTreeMap<(String, usize), Vec<Sample>>,
    requests: BTreeMap<String, Vec<Sample>>,
    errors: BTreeMap<String, Vec<Sample>>,
    confidence: BTreeMap<String, Vec<Sample>>,
}

fn generate(start_ms: i64) -> (Series, String) {
    let mut rng = Lcg(7);
    let mut s = Series::default();
    for instance in INSTANCES {
        let (mut cumulative, mut requests, mut errors) = ([0.0f64; 8], 0.0, 0.0);
        for k in 0..=SCRAPES {
            let t = start_ms + k * STEP_MS;
            if instance == "b" && k == 60 {
                // The pod restarts: every counter starts again from 0.
                (cumulative, requests, errors) = ([0.0; 8], 0.0, 0.0);
            }
            let arrived = (50.0 + rng.next() * 150.0).round();
            let mut left = arrived;
            for (i, share) in [0.4, 0.3, 0.15, 0.08, 0.04, 0.02, 0.007].iter().enumerate() {
                let n = (left * share * (0.5 + rng.next())).round().min(left);
                left -= n;
                for c in cumulative.iter_mut().skip(i) {
                    *c += n;
                }
            }
            cumulative[7] += left;
            requests += arrived;
            errors += (arrived * 0.02 * rng.next()).round();
            for (i, &c) in cumulative.iter().enumerate() {
                s.buckets
                    .entry((instance.into(), i))
                    .or_default()
                    .push((t, c));
            }
            s.requests
                .entry(instance.into())
                .or_default()
                .push((t, requests));
            s.errors
                .entry(instance.into())
                .or_default()
                .push((t, errors));
            let confidence = 0.85 + rng.next() * 0.1;
            s.confidence
                .entry(instance.into())
                .or_default()
                .push((t, confidence));
        }
    }
    let stamp = |t: i64| format!("{}.{:03}", t / 1000, t % 1000);
    let mut text = String::from("# TYPE judge_request_seconds histogram\n");
    for ((instance, i), samples) in &s.buckets {
        for &(t, v) in samples {
            let le = LES[*i];
            let _ = writeln!(
                text,
                "judge_request_seconds_bucket{{instance=\"{instance}\",le=\"{le}\",version=\"v1\"}} {v} {}",
                stamp(t)
            );
        }
    }
    for (family, series) in [
        ("judge_requests_total", &s.requests),
        ("judge_errors_total", &s.errors),
    ] {
        let _ = writeln!(text, "# TYPE {family} counter");
        for (instance, samples) in series {
            for &(t, v) in samples {
                let _ = writeln!(
                    text,
                    "{family}{{instance=\"{instance}\",version=\"v1\"}} {v} {}",
                    stamp(t)
                );
            }
        }
    }
    text.push_str("# TYPE judge_confidence gauge\n");
    for (instance, samples) in &s.confidence {
        for &(t, v) in samples {
            let _ = writeln!(
                text,
                "judge_confidence{{instance=\"{instance}\",version=\"v1\"}} {v} {}",
                stamp(t)
            );
        }
    }
    text.push_str("# EOF\n");
    (s, text)
}

/// The arm's observation at a scrape instant: reset-corrected sums over instances, and the
/// gauge's mean over instances.
fn observe(s: &Series, at_ms: i64) -> Observation {
    let lookback = Duration::from_secs(300);
    let sum = |series: &BTreeMap<String, Vec<Sample>>| {
        let all: Vec<&[Sample]> = series.values().map(Vec::as_slice).collect();
        cumulative_sum(&all, at_ms, lookback).unwrap()
    };
    let buckets = (0..8)
        .map(|i| {
            let all: Vec<&[Sample]> = INSTANCES
                .iter()
                .map(|inst| s.buckets[&((*inst).to_owned(), i)].as_slice())
                .collect();
            let bound = if i == 7 {
                f64::INFINITY
            } else {
                LES[i].parse().unwrap()
            };
            (bound, cumulative_sum(&all, at_ms, lookback).unwrap())
        })
        .collect();
    let confidence: Vec<f64> = s
        .confidence
        .values()
        .map(|v| v.iter().find(|&&(t, _)| t == at_ms).unwrap().1)
        .collect();
    Observation::new(
        Version::new("v1").unwrap(),
        Utc.timestamp_millis_opt(at_ms).unwrap(),
    )
    .with_histogram(names::LATENCY, Histogram::new(buckets).unwrap())
    .with_counter(names::REQUESTS, sum(&s.requests))
    .with_counter(names::ERRORS, sum(&s.errors))
    .with_gauge(
        names::MODEL_CONFIDENCE,
        confidence.iter().sum::<f64>() / confidence.len() as f64,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn derived_point_estimates_match_prometheus_at_scrape_instants() {
    let start_ms = (now_secs() - 3 - SCRAPES * 15) * 1000;
    let (series, text) = generate(start_ms);
    let prometheus = testkit::services::prometheus(&text);
    let source = PrometheusSource::new(PrometheusConfig::new(&prometheus.url)).unwrap();
    let observations: Vec<Observation> = (0..=SCRAPES)
        .map(|k| observe(&series, start_ms + k * STEP_MS))
        .collect();
    let mut compared = 0;
    // Windows of 2 and 5 minutes, ending before, on and after instance b's restart (scrape 60).
    for (end, window_s) in [(40, 300i64), (64, 300), (72, 120), (SCRAPES, 300)] {
        let at_ms = start_ms + end * STEP_MS;
        let at = Utc.timestamp_millis_opt(at_ms).unwrap();
        let m = derive_metrics(
            &observations[..=end as usize],
            Duration::from_secs(window_s as u64),
        );
        let ask = |query: String| {
            let source = &source;
            async move {
                source
                    .instant("x", &query, at)
                    .await
                    .unwrap()
                    .value
                    .unwrap()
            }
        };
        let w = format!("[{window_s}s]");
        for (q, ours) in [
            (0.5, m.latency_p50_ms),
            (0.95, m.latency_p95_ms),
            (0.99, m.latency_p99_ms),
        ] {
            let theirs = ask(format!(
                "histogram_quantile({q}, sum by (le) (increase(judge_request_seconds_bucket{w}))) * 1000"
            ))
            .await;
            assert_close(&format!("p{q} at scrape {end}"), theirs, ours.unwrap());
        }
        let requests = ask(format!("sum(increase(judge_requests_total{w}))")).await;
        assert_close("sample count", requests, m.sample_count.unwrap());
        let rate = ask(format!("sum(rate(judge_requests_total{w}))")).await;
        assert_close("request rate", rate, m.request_rate_rps.unwrap());
        let errors = ask(format!(
            "sum(increase(judge_errors_total{w})) / sum(increase(judge_requests_total{w})) * 100"
        ))
        .await;
        assert_close("error rate", errors, m.error_rate_percent.unwrap());
        let confidence = ask(format!("avg(avg_over_time(judge_confidence{w}))")).await;
        assert_close("confidence", confidence, m.model_confidence.unwrap());
        compared += 1;
    }
    assert_eq!(compared, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_observations_are_the_in_process_ones() {
    // Scrapes on the step's multiples: the instants the source asks for.
    let start_ms = ((now_secs() - 3 - SCRAPES * 15) * 1000).div_euclid(STEP_MS) * STEP_MS;
    let (series, text) = generate(start_ms);
    let prometheus = testkit::services::prometheus(&text);
    let mut config = PrometheusConfig::new(&prometheus.url);
    config.observation_queries = ObservationQueries {
        latency_buckets: r#"judge_request_seconds_bucket{version="{version}"}"#.into(),
        requests: r#"judge_requests_total{version="{version}"}"#.into(),
        errors: r#"judge_errors_total{version="{version}"}"#.into(),
        model_confidence: r#"avg(judge_confidence{version="{version}"})"#.into(),
        ..ObservationQueries::default()
    };
    let source = PrometheusSource::new(config).unwrap();
    let start = Utc.timestamp_millis_opt(start_ms).unwrap();
    let end = Utc
        .timestamp_millis_opt(start_ms + SCRAPES * STEP_MS)
        .unwrap();
    let step = Duration::from_millis(STEP_MS as u64);
    let query = ObservationQuery::new(Version::new("v1").unwrap(), Arm::Baseline, start, end, step);
    let fetched = source.observe(&query).await.unwrap();
    assert_eq!(fetched.len() as i64, SCRAPES + 1);
    for (k, o) in fetched.iter().enumerate() {
        let expected = observe(&series, start_ms + k as i64 * STEP_MS);
        assert_eq!(o.at, expected.at);
        let (h, e) = (
            &o.histograms[names::LATENCY],
            &expected.histograms[names::LATENCY],
        );
        for (&(b1, c1), &(b2, c2)) in h.buckets().iter().zip(e.buckets()) {
            assert_eq!(b1, b2);
            assert_close(&format!("bucket {b1} at scrape {k}"), c1, c2);
        }
        for name in [names::REQUESTS, names::ERRORS] {
            assert_close(
                &format!("{name} at scrape {k}"),
                o.counters[name],
                expected.counters[name],
            );
        }
        assert_close(
            &format!("confidence at scrape {k}"),
            o.gauges[names::MODEL_CONFIDENCE],
            expected.gauges[names::MODEL_CONFIDENCE],
        );
    }
    conformance::observation_source(&source, "v1", "v9", start, end, step).await;

    // Judged end to end through Prometheus: identical arms proceed, at the first look.
    let mut judge = ThresholdJudge::new(ThresholdParameters::default()).unwrap();
    let mut verdicts = fetched.iter().map(|o| judge.observe(o, o));
    let first = verdicts.position(|v| v != Verdict::Continue);
    assert_eq!(first, Some(40), "ten minutes of 15 s scrapes");
    assert_eq!(judge.finish().decision, RollbackDecision::Proceed);
}
