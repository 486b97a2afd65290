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

#[tokio::test(flavor = "multi_thread")]
async fn pods_that_come_and_go_leave_the_sums_as_they_were() {
    use canary_sim::{PodChange, PodEvent, Pods};
    // Production 9 pods, canary 1: a production pod joins (a scale-up), another leaves (a
    // scale-down, early enough that its series goes stale within the run) and a third restarts;
    // Prometheus holds one series per pod.
    let mut scenario = Scenario::aa_guide(8);
    scenario.instance_offset_sigma = 0.1;
    let event = |pod, change, at| PodEvent {
        arm: Arm::Baseline,
        pod,
        change,
        at: Duration::from_secs(at),
    };
    scenario.pods = Some(Pods {
        baseline: 9,
        canary: 1,
        faults: Vec::new(),
        changes: vec![
            event(8, PodChange::Join, 180),
            event(0, PodChange::Leave, 60),
            event(4, PodChange::Restart, 420),
        ],
    });
    let start_ms = (now_secs() - 3 - 600) * 1000;
    let start = Utc.timestamp_millis_opt(start_ms).unwrap();
    let run = simulate(&scenario).unwrap().starting_at(start);
    let text = run.to_openmetrics(&MetricNames::default());
    assert!(text.contains("pod=\"production-8\""), "one series per pod");
    let prometheus = testkit::services::prometheus(&text);
    let source = PrometheusSource::new(PrometheusConfig::new(&prometheus.url)).unwrap();
    let end = start + chrono::Duration::seconds(600);
    for (arm, version, simulated) in [
        (Arm::Baseline, "v1", &run.baseline),
        (Arm::Canary, "v2", &run.canary),
    ] {
        let query = ObservationQuery::new(
            Version::new(version).unwrap(),
            arm,
            start,
            end,
            Duration::from_secs(15),
        );
        let got = source.observe(&query).await.unwrap();
        assert_eq!(got.len(), simulated.len(), "{version}: every scrape");
        for (o, s) in got.iter().zip(simulated) {
            assert_eq!(o.at, s.at);
            for name in [names::REQUESTS, names::ERRORS] {
                assert_close(
                    &format!("{version} {name} at {}", o.at),
                    o.counters[name],
                    s.counters[name],
                );
            }
            assert_close(
                &format!("{version} requests in the histogram at {}", o.at),
                o.histograms[names::LATENCY].total(),
                s.histograms[names::LATENCY].total(),
            );
        }
    }
}
