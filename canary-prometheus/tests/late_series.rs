//! Series as official clients export them, backfilled into a real Prometheus: a
//! `status="500"` series exists only from a pod's first failure on. A canary that never fails
//! has none at all, and one pod's failures appear a scrape after its first sample. Every
//! judge sees the failures that happened and a zero where none did.

use std::time::Duration;

use canary_core::judge::replay::{replay, ReplayBounds, Replayed};
use canary_core::metrics::names as metric;
use canary_core::observation::{names, ObservationQuery};
use canary_core::test_util::every_judge;
use canary_core::{Arm, MetricsQuery, MetricsSource, RollbackDecision, Version};
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use chrono::{TimeZone, Utc};
use testkit::traffic::{now_secs, openmetrics_runs, Traffic};

const STEP: Duration = Duration::from_secs(15);

fn pod(version: &str, name: &str, rps: f64, error_ratio: f64) -> Traffic {
    Traffic {
        error_ratio,
        pod: Some(name.into()),
        ..Traffic::healthy(version, rps)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_that_never_happened_are_zero_and_late_ones_count_for_every_judge() {
    // On the step's multiples, so that the scrapes are the instants asked for.
    let end = (now_secs() - 3).div_euclid(15) * 15;
    let start = end - 65 * 60;
    let mut runs = Vec::new();
    for i in 0..3 {
        runs.push((pod("v1", &format!("prod-{i}"), 13.2, 0.01), end - 100 * 60));
    }
    // v2 never fails: no status="500" series at all.
    runs.push((pod("v2", "v2-0", 4.4, 0.0), start));
    // v3: one pod of three fails 10 % of its requests (the arm about × 3.3 production's 1 %);
    // its failure series appears a scrape after its first sample.
    runs.push((pod("v3", "v3-0", 1.5, 0.10), start));
    runs.push((pod("v3", "v3-1", 1.5, 0.0), start));
    runs.push((pod("v3", "v3-2", 1.5, 0.0), start));
    let text = openmetrics_runs(&runs, 15, end);
    assert!(!text.contains("status=\"500\",version=\"v2\""));
    let prometheus = testkit::services::prometheus(&text);
    let source = PrometheusSource::new(PrometheusConfig::new(&prometheus.url)).unwrap();
    let from = Utc.timestamp_opt(start, 0).unwrap();
    let at = Utc.timestamp_opt(end, 0).unwrap();
    let observe = |version: &str, arm| {
        let q = ObservationQuery::new(Version::new(version).unwrap(), arm, from, at, STEP);
        let source = &source;
        async move { source.observations(&q).await.unwrap() }
    };
    let baseline = observe("v1", Arm::Baseline).await;
    for version in ["v2", "v3"] {
        let canary = observe(version, Arm::Canary).await;
        assert!(
            canary
                .iter()
                .all(|o| o.counters.contains_key(names::ERRORS)),
            "{version}: a failure count at every instant"
        );
        for factory in every_judge() {
            let mut judge = factory.start().unwrap();
            let name = judge.name().to_owned();
            let bounds = ReplayBounds {
                start: from,
                at,
                max_duration: Duration::from_secs(3600),
                step: STEP,
            };
            let Replayed::Decided { evaluation, .. } =
                replay(judge.as_mut(), &baseline, &canary, bounds)
            else {
                panic!("{name} {version}: undecided at the maximum duration");
            };
            let text = format!("{evaluation:?}");
            assert!(
                !text.contains("no errors counter") && !text.contains("no data for error_rate"),
                "{name} {version}: the failures went untested: {}",
                evaluation.primary_reason
            );
            match version {
                "v2" if name == "threshold" || name == "sequential" => assert_eq!(
                    evaluation.decision,
                    RollbackDecision::Proceed,
                    "{name}: {}",
                    evaluation.primary_reason
                ),
                "v3" => assert_ne!(
                    evaluation.decision,
                    RollbackDecision::Proceed,
                    "{name}: {}",
                    evaluation.primary_reason
                ),
                _ => {}
            }
        }
    }
    // The guide's single look: a canary that never failed has 0 % errors, not "no data".
    let m = source
        .fetch(
            &MetricsQuery::new(
                Version::new("v2").unwrap(),
                Arm::Canary,
                Duration::from_secs(300),
            )
            .at(at),
        )
        .await
        .unwrap();
    assert_eq!(m.value(metric::ERROR_RATE), Some(0.0), "{m:?}");
    // And a version with no series at all is no data, never a zero.
    let m = source
        .fetch(
            &MetricsQuery::new(
                Version::new("v9").unwrap(),
                Arm::Canary,
                Duration::from_secs(300),
            )
            .at(at),
        )
        .await
        .unwrap();
    assert_eq!(m.value(metric::ERROR_RATE), None, "{m:?}");
}
