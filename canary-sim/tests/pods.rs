//! Per-pod series: production's many pods and the canary's few, a broken pod, pods that join,
//! leave and restart; the arm's sum is what a reset-corrected sum over its pods shows.

use std::time::Duration;

use canary_core::observation::{names, reset_corrected, Observation};
use canary_core::source::Arm;
use canary_sim::{
    simulate, MetricNames, PodChange, PodEvent, PodFault, PodSeries, Pods, Scenario, Simulation,
};

/// Production 9 pods, canary 3, 30 minutes at 44 req/s, with every kind of change.
fn layout() -> Scenario {
    let mut s = Scenario::aa_guide(3);
    s.duration = Duration::from_secs(1800);
    s.instance_offset_sigma = 0.10;
    s.baseline.error_rate = 0.01;
    s.canary.error_rate = 0.01;
    let event = |arm, pod, change, at| PodEvent {
        arm,
        pod,
        change,
        at: Duration::from_secs(at),
    };
    s.pods = Some(Pods {
        baseline: 9,
        canary: 3,
        faults: vec![PodFault {
            arm: Arm::Canary,
            pod: 2,
            latency_factor: 1.0,
            error_factor: 10.0,
        }],
        changes: vec![
            event(Arm::Baseline, 8, PodChange::Join, 600),
            event(Arm::Baseline, 0, PodChange::Leave, 1200),
            event(Arm::Baseline, 3, PodChange::Restart, 907),
            event(Arm::Canary, 1, PodChange::Restart, 300),
        ],
    });
    s
}

/// The arm's counter at `o`'s instant from its pods: each pod reset-corrected, a pod that has
/// left counted at its last value.
fn from_pods(pods: &[PodSeries], o: &Observation, counter: &str) -> f64 {
    let at = o.at.timestamp_millis();
    pods.iter()
        .map(|p| {
            let points: Vec<(i64, f64)> = p
                .observations
                .iter()
                .map(|o| (o.at.timestamp_millis(), o.counters[counter]))
                .collect();
            reset_corrected(&points)
                .iter()
                .rev()
                .find(|(t, _)| *t <= at)
                .map_or(0.0, |&(_, v)| v)
        })
        .sum()
}

fn run() -> Simulation {
    simulate(&layout()).unwrap()
}

#[test]
fn the_sum_is_the_reset_corrected_sum_over_pods() {
    let run = run();
    assert_eq!(run.pods.baseline.len(), 9);
    assert_eq!(run.pods.canary.len(), 3);
    for (arm, pods) in [
        (&run.baseline, &run.pods.baseline),
        (&run.canary, &run.pods.canary),
    ] {
        for o in arm {
            for counter in [names::REQUESTS, names::ERRORS] {
                assert_eq!(
                    from_pods(pods, o, counter),
                    o.counters[counter],
                    "{counter} at {}",
                    o.at
                );
            }
        }
    }
}

#[test]
fn pods_join_leave_and_restart() {
    let run = run();
    let start = canary_sim::epoch();
    let seconds = |o: &Observation| (o.at - start).num_seconds();
    let joined = &run.pods.baseline[8];
    assert_eq!(joined.pod, "production-8");
    assert!(joined.observations.iter().all(|o| seconds(o) >= 600));
    assert_eq!(
        seconds(&joined.observations[0]),
        600,
        "its first scrape is when it starts"
    );
    let left = &run.pods.baseline[0];
    assert!(left.observations.iter().all(|o| seconds(o) <= 1200));
    assert_eq!(
        seconds(left.observations.last().unwrap()),
        1200,
        "scraped as it stops"
    );
    // A restart is a counter going down in the pod's own series, and nowhere else.
    let drops = |p: &PodSeries| {
        p.observations
            .windows(2)
            .filter(|w| w[1].counters[names::REQUESTS] < w[0].counters[names::REQUESTS])
            .map(|w| seconds(&w[1]))
            .collect::<Vec<_>>()
    };
    assert_eq!(drops(&run.pods.baseline[3]), vec![915]);
    assert_eq!(drops(&run.pods.canary[1]), vec![300]);
    assert!(drops(&run.pods.baseline[4]).is_empty());
    // The arm's traffic is spread over the pods that run: one more pod, less each.
    let rate = |p: &PodSeries, from: i64, to: i64| {
        let at = |s: i64| {
            p.observations
                .iter()
                .find(|o| seconds(o) == s)
                .map(|o| o.counters[names::REQUESTS])
                .unwrap()
        };
        (at(to) - at(from)) / (to - from) as f64
    };
    let before = rate(&run.pods.baseline[5], 0, 600);
    let after = rate(&run.pods.baseline[5], 600, 1200);
    let total = 44.0 * 0.9;
    assert!((before - total / 8.0).abs() < 0.35, "{before}");
    assert!((after - total / 9.0).abs() < 0.35, "{after}");
    // The arm's total rate stays the scenario's.
    let last = run.baseline.last().unwrap().counters[names::REQUESTS];
    assert!((last / 1800.0 - total).abs() < 0.6, "{}", last / 1800.0);
}

#[test]
fn a_broken_pod_stands_out_and_pods_are_offset() {
    let run = run();
    let error_share = |p: &PodSeries| {
        let last = p.observations.last().unwrap();
        last.counters[names::ERRORS] / last.counters[names::REQUESTS]
    };
    let broken = error_share(&run.pods.canary[2]);
    let healthy = error_share(&run.pods.canary[0]);
    assert!(
        broken > 0.07 && healthy < 0.02,
        "broken {broken}, healthy {healthy}"
    );
    // σ 10 % offsets: the pods' medians differ, and each pod keeps its own.
    let median = |p: &PodSeries| {
        let h = &p.observations.last().unwrap().histograms[names::LATENCY];
        h.quantile(0.5).unwrap()
    };
    let medians: Vec<f64> = run.pods.baseline[1..8].iter().map(median).collect();
    let (lo, hi) = medians
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    assert!(hi > lo, "{medians:?}");
}

#[test]
fn the_openmetrics_text_has_a_series_per_pod() {
    let run = run();
    let text = run.to_openmetrics(&MetricNames::default());
    for pod in run.pods.baseline.iter().chain(&run.pods.canary) {
        let samples = text
            .lines()
            .filter(|l| {
                l.starts_with("http_requests_total{") && l.contains(&format!("pod=\"{}\"", pod.pod))
            })
            .count();
        // status="500" from the pod's first failure on, as a client creates it.
        let failed = pod
            .observations
            .iter()
            .filter(|o| o.counters["errors"] > 0.0)
            .count();
        assert_eq!(samples, pod.observations.len() + failed, "{}", pod.pod);
    }
    assert!(!text.contains("instance=\"sim\""));
}

#[test]
fn a_layout_that_cannot_run_is_refused_by_name() {
    let mut none_left = layout();
    let pods = none_left.pods.as_mut().unwrap();
    pods.canary = 1;
    pods.faults.clear();
    pods.changes = vec![PodEvent {
        arm: Arm::Canary,
        pod: 0,
        change: PodChange::Leave,
        at: Duration::from_secs(60),
    }];
    let err = simulate(&none_left).unwrap_err().to_string();
    assert!(err.contains("no canary pod runs at 60 s"), "{err}");

    let mut unknown = layout();
    unknown.pods.as_mut().unwrap().faults[0].pod = 3;
    let err = simulate(&unknown).unwrap_err().to_string();
    assert!(err.contains("pods.faults"), "{err}");

    let mut empty = layout();
    empty.pods.as_mut().unwrap().baseline = 0;
    assert!(simulate(&empty).is_err());

    let mut huge = layout();
    huge.pods.as_mut().unwrap().baseline = canary_sim::MAX_PODS + 1;
    assert!(simulate(&huge).is_err());
}

#[test]
fn without_a_layout_each_arm_has_its_instances() {
    let run = simulate(&Scenario::aa_guide(5)).unwrap();
    assert_eq!(run.pods.baseline.len(), 2);
    assert_eq!(run.pods.canary.len(), 2);
    for o in &run.canary {
        assert_eq!(
            from_pods(&run.pods.canary, o, names::REQUESTS),
            o.counters[names::REQUESTS]
        );
    }
    // A scenario file without `pods` still reads.
    let json = serde_json::to_value(Scenario::aa_guide(5)).unwrap();
    let mut map = json.as_object().unwrap().clone();
    map.remove("pods");
    let back: Scenario = serde_json::from_value(map.into()).unwrap();
    assert_eq!(back, Scenario::aa_guide(5));
}
