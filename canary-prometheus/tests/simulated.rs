//! A simulated scenario, rendered as OpenMetrics by canary-sim, backfilled into the real
//! Prometheus and judged end to end through the default queries: what Prometheus hands back is
//! what the simulator produced, and the threshold judge decides the same on both.

use std::time::Duration;

use canary_core::judge::{Judge, ThresholdJudge, ThresholdParameters, Verdict};
use canary_core::observation::{names, Observation, ObservationQuery, ObservationSource};
use canary_core::{Arm, Evaluation, Version};
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use canary_sim::{simulate, Effect, MetricNames, Scenario};
use chrono::{TimeZone, Utc};
use testkit::traffic::now_secs;

mod common;

use common::assert_close;

fn judge(baseline: &[Observation], canary: &[Observation]) -> Evaluation {
    let mut judge = ThresholdJudge::new(ThresholdParameters::default()).unwrap();
    for (b, c) in baseline.iter().zip(canary) {
        if let Verdict::Decided(e) = judge.observe(b, c) {
            return *e;
        }
    }
    judge.finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_regression_is_judged_the_same_through_prometheus() {
    // Latency 60 % worse and three times the errors; two scrapes go missing in the run.
    let mut scenario = Scenario::aa_guide(21);
    scenario.canary.effect = Effect {
        latency_factor: 1.6,
        error_factor: 3.0,
        ..Effect::default()
    };
    scenario.gaps.missing = 0.05;
    let start_ms = (now_secs() - 3 - 600) * 1000;
    let start = Utc.timestamp_millis_opt(start_ms).unwrap();
    let run = simulate(&scenario).unwrap().starting_at(start);
    assert!(run.canary.len() < 41, "the scenario lost some scrapes");
    let prometheus = testkit::services::prometheus(&run.to_openmetrics(&MetricNames::default()));
    let source = PrometheusSource::new(PrometheusConfig::new(&prometheus.url)).unwrap();

    let end = start + chrono::Duration::seconds(600);
    let step = Duration::from_secs(15);
    let mut fetched = Vec::new();
    for (arm, version, simulated) in [
        (Arm::Baseline, "v1", &run.baseline),
        (Arm::Canary, "v2", &run.canary),
    ] {
        let query = ObservationQuery::new(Version::new(version).unwrap(), arm, start, end, step);
        let got = source.observe(&query).await.unwrap();
        // Prometheus fills a missing scrape with the previous sample (its lookback); at the
        // instants the simulator kept, the two agree.
        let kept: Vec<Observation> = got
            .into_iter()
            .filter(|o| simulated.iter().any(|s| s.at == o.at))
            .collect();
        assert_eq!(kept.len(), simulated.len(), "{version}");
        for (o, s) in kept.iter().zip(simulated.iter()) {
            for (&(b1, c1), &(b2, c2)) in o.histograms[names::LATENCY]
                .buckets()
                .iter()
                .zip(s.histograms[names::LATENCY].buckets())
            {
                assert_eq!(b1, b2);
                assert_close(&format!("{version} bucket {b1} at {}", o.at), c1, c2);
            }
            for name in [names::REQUESTS, names::ERRORS] {
                assert_close(name, o.counters[name], s.counters[name]);
            }
            assert_close(
                "confidence",
                o.gauges[names::MODEL_CONFIDENCE],
                s.gauges[names::MODEL_CONFIDENCE],
            );
        }
        fetched.push(kept);
    }
    let ours = judge(&run.baseline, &run.canary);
    let theirs = judge(&fetched[0], &fetched[1]);
    assert_eq!(
        ours.decision,
        canary_core::RollbackDecision::RollbackAuto,
        "{ours:?}"
    );
    assert_eq!(theirs.decision, ours.decision);
    assert_eq!(theirs.primary_reason, ours.primary_reason);
    assert_eq!(theirs.comparisons, ours.comparisons);
}
