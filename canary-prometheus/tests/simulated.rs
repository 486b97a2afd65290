//! A simulated scenario, rendered as OpenMetrics by canary-sim, backfilled into the real
//! Prometheus and judged end to end through the default queries: what Prometheus hands back is
//! what the simulator produced, and the threshold judge decides the same on both.

use std::time::Duration;

use canary_core::judge::{ThresholdJudge, ThresholdParameters};
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
    canary_core::test_util::judge_pairs(&mut judge, baseline, canary, true)
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
    let start_ms = on_the_step(now_secs() - 3 - 600);
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
    let start_ms = on_the_step(now_secs() - 3 - 600);
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
            // Each pod as the simulator has it: reset-corrected, a stopped pod at its last
            // value, a pod not yet started absent.
            assert_eq!(
                o.instances.keys().collect::<Vec<_>>(),
                s.instances.keys().collect::<Vec<_>>(),
                "{version}: the pods at {}",
                o.at
            );
            for (pod, p) in &o.instances {
                assert_close(
                    &format!("{version} {pod} requests at {}", o.at),
                    p.counters[names::REQUESTS],
                    s.instances[pod].counters[names::REQUESTS],
                );
                assert_eq!(
                    p.histograms[names::LATENCY],
                    s.instances[pod].histograms[names::LATENCY],
                    "{version} {pod} at {}",
                    o.at
                );
            }
        }
    }
}

/// The sequential judge over an hour of a healthy canary of one pod among production's nine,
/// pods ±15 % apart, through a real Prometheus: with the pods it proceeds; on the sums alone
/// (as every judge saw it before) the canary's slow node is a regression.
#[tokio::test(flavor = "multi_thread")]
async fn a_canary_pod_on_a_slow_node_is_not_rolled_back_through_prometheus() {
    use canary_core::judge::{SequentialJudge, SequentialParameters};
    use canary_core::RollbackDecision;
    let case = canary_sim::catalog()
        .into_iter()
        .find(|c| c.scenario == "aa-pods-9-1-spread-15")
        .unwrap();
    // A seed whose canary pod landed on a slow node (found once on the simulator's sums).
    let scenario = case.run(0);
    let minutes = 60;
    let start_ms = on_the_step(now_secs() - 3 - minutes * 60);
    let start = Utc.timestamp_millis_opt(start_ms).unwrap();
    let run = simulate(&scenario).unwrap().starting_at(start);
    let prometheus = testkit::services::prometheus(&run.to_openmetrics(&MetricNames::default()));
    let source = PrometheusSource::new(PrometheusConfig::new(&prometheus.url)).unwrap();
    let end = start + chrono::Duration::seconds(minutes * 60);
    let fetch = |arm, version: &str| {
        ObservationQuery::new(
            Version::new(version).unwrap(),
            arm,
            start,
            end,
            Duration::from_secs(15),
        )
    };
    let baseline = source.observe(&fetch(Arm::Baseline, "v1")).await.unwrap();
    let canary = source.observe(&fetch(Arm::Canary, "v2")).await.unwrap();
    assert_eq!(baseline.last().unwrap().instances.len(), 9);
    assert_eq!(canary.last().unwrap().instances.len(), 1);
    let judged = |pods: bool| {
        let mut j = SequentialJudge::new(SequentialParameters::default()).unwrap();
        canary_core::test_util::judge_pairs(&mut j, &baseline, &canary, pods)
    };
    let with_pods = judged(true);
    assert_eq!(
        with_pods.decision,
        RollbackDecision::Proceed,
        "{}",
        with_pods.primary_reason
    );
    assert!(
        with_pods
            .warnings
            .iter()
            .any(|w| w.contains("production's 9 pods")),
        "{:?}",
        with_pods.warnings
    );
    let on_sums = judged(false);
    assert_eq!(
        on_sums.decision,
        RollbackDecision::RollbackAuto,
        "{}",
        on_sums.primary_reason
    );
}

/// `baseline_matchers` narrow the baseline arm to a deployed baseline's pods: production's
/// version runs on nine pods, one of which is labelled `track="baseline"`; the baseline arm
/// sees that pod alone, the sum is its own, and a template that cannot be narrowed is refused.
#[tokio::test(flavor = "multi_thread")]
async fn baseline_matchers_select_the_deployed_baseline_s_pods_alone() {
    use canary_sim::Pods;
    use std::collections::BTreeMap;
    let mut scenario = Scenario::aa_guide(4);
    scenario.pods = Some(Pods {
        baseline: 9,
        canary: 1,
        faults: Vec::new(),
        changes: Vec::new(),
    });
    let start_ms = on_the_step(now_secs() - 3 - 300);
    let start = Utc.timestamp_millis_opt(start_ms).unwrap();
    scenario.duration = Duration::from_secs(300);
    let run = simulate(&scenario).unwrap().starting_at(start);
    let text = run.to_openmetrics(&MetricNames::default()).replace(
        "pod=\"production-8\"",
        "pod=\"production-8\",track=\"baseline\"",
    );
    let prometheus = testkit::services::prometheus(&text);
    let mut config = PrometheusConfig::new(&prometheus.url);
    config.baseline_matchers = BTreeMap::from([("track".to_owned(), "baseline".to_owned())]);
    let source = PrometheusSource::new(config.clone()).unwrap();
    let query = ObservationQuery::new(
        Version::new("v1").unwrap(),
        Arm::Baseline,
        start,
        start + chrono::Duration::seconds(300),
        Duration::from_secs(15),
    );
    let got = source.observe(&query).await.unwrap();
    let pod = &run.pods.baseline[8].observations;
    assert_eq!(got.len(), pod.len());
    for (o, p) in got.iter().zip(pod) {
        assert_eq!(o.instances.keys().collect::<Vec<_>>(), ["production-8"]);
        assert_close(
            "the baseline's requests",
            o.counters[names::REQUESTS],
            p.counters[names::REQUESTS],
        );
    }
    // The canary arm is not narrowed.
    let canary = ObservationQuery {
        version: Version::new("v2").unwrap(),
        arm: Arm::Canary,
        ..query
    };
    assert_eq!(source.observe(&canary).await.unwrap()[0].instances.len(), 1);
    // A query that has no version="{version}" matcher cannot be narrowed: refused, never run
    // against all of production.
    config.queries.insert(
        "odd".into(),
        r#"sum(rate(x{version=~"{version}"}[{window}]))"#.into(),
    );
    let e = PrometheusSource::new(config.clone()).expect_err("refused");
    assert!(e.to_string().contains("baseline_matchers"), "{e}");
    config.queries.clear();
    let source = PrometheusSource::new(config).unwrap();
    assert!(source
        .set_query("odd", r#"sum(rate(x{version=~"{version}"}[{window}]))"#)
        .is_err());
}

/// `secs` (since the epoch) moved back onto a 15 s step, in ms: the simulator's scrapes then
/// fall on the instants the source asks for (the step's multiples).
fn on_the_step(secs: i64) -> i64 {
    secs.div_euclid(15) * 15 * 1000
}
