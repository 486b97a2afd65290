//! Observations from raw range answers: every counter and bucket series reset-corrected, summed
//! over the arm's instances at each instant, and kept per instance (pod) as well.

use std::collections::BTreeSet;
use std::time::Duration;

use canary_core::observation::{
    carried_sum_at, names as series, reset_corrected, Histogram, Observation, ObservationQuery,
};
use canary_core::promql::Sample;
use chrono::{TimeZone, Utc};

use crate::response::MatrixAnswer;

/// The label a series without the configured instance label is grouped by.
pub(crate) const FALLBACK_INSTANCE_LABEL: &str = "instance";

/// How instances are told apart and how many are kept.
pub(crate) struct Instances<'a> {
    pub(crate) label: &'a str,
    pub(crate) max: usize,
}

/// One reset-corrected series: its bucket bound (for buckets), its instance, its points.
struct Corrected {
    bound: Option<f64>,
    instance: Option<String>,
    points: Vec<Sample>,
}

/// One group's series (the arm, or one instance): bucket series by bound, counters by name.
struct Group<'a> {
    by_bound: Vec<(f64, Vec<&'a [Sample]>)>,
    requests: Vec<&'a [Sample]>,
    errors: Vec<&'a [Sample]>,
}

impl<'a> Group<'a> {
    fn of(
        buckets: &'a [Corrected],
        requests: &'a [Corrected],
        errors: &'a [Corrected],
        keep: impl Fn(&Corrected) -> bool,
    ) -> Self {
        let mut by_bound: Vec<(f64, Vec<&[Sample]>)> = Vec::new();
        for s in buckets.iter().filter(|s| keep(s)) {
            let Some(bound) = s.bound else { continue };
            match by_bound.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, group)) => group.push(&s.points),
                None => by_bound.push((bound, vec![&s.points])),
            }
        }
        by_bound.sort_by(|a, b| a.0.total_cmp(&b.0));
        let points = |all: &'a [Corrected]| -> Vec<&'a [Sample]> {
            all.iter()
                .filter(|s| keep(s))
                .map(|s| s.points.as_slice())
                .collect()
        };
        Group {
            by_bound,
            requests: points(requests),
            errors: points(errors),
        }
    }

    /// The group's histogram and counters at `at_ms` into `o`: each series at its last value
    /// (carried), present when some series of it has a sample within `lookback`.
    fn fill(&self, o: &mut Observation, at_ms: i64, lookback: Duration) {
        let counts: Option<Vec<(f64, f64)>> = self
            .by_bound
            .iter()
            .map(|(bound, group)| carried_sum_at(group, at_ms, lookback).map(|c| (*bound, c)))
            .collect();
        if let Some(h) = counts.and_then(|c| Histogram::new(c).ok()) {
            o.histograms.insert(series::LATENCY.into(), h);
        }
        let Some(requests) = carried_sum_at(&self.requests, at_ms, lookback) else {
            return;
        };
        o.counters.insert(series::REQUESTS.into(), requests);
        // A failed-requests series exists only from the first failure on (every official
        // client creates a label value on first use): where the same instances' requests are
        // there, a failure series not there yet counts zero, one that stopped its last value.
        // Without a requests series there is no count to fabricate a zero for.
        let errors = carried_sum_at(&self.errors, at_ms, Duration::MAX).unwrap_or(0.0);
        o.counters.insert(series::ERRORS.into(), errors);
    }

    /// When the group's latest sample at or before `at_ms` was taken, if it is older than
    /// `lookback`: the group stopped reporting. `None` while it reports (or before it starts).
    fn silent_since(&self, at_ms: i64, lookback: Duration) -> Option<i64> {
        let all = self
            .by_bound
            .iter()
            .flat_map(|(_, g)| g.iter())
            .chain(&self.requests)
            .chain(&self.errors);
        let latest = all
            .filter_map(|s| {
                let i = s.partition_point(|&(t, _)| t <= at_ms);
                i.checked_sub(1).map(|i| s[i].0)
            })
            .max()?;
        let oldest = at_ms.saturating_sub(i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX));
        (latest < oldest).then_some(latest)
    }
}

/// The arm's observations at the query's instants (see [`crate::PrometheusSource::observations`]).
pub(crate) fn assemble(
    q: &ObservationQuery,
    step_ms: i64,
    [buckets, requests, errors]: [&MatrixAnswer; 3],
    confidence: &MatrixAnswer,
    instances: &Instances<'_>,
) -> Vec<Observation> {
    let correct = |m: &MatrixAnswer| -> Vec<Corrected> {
        m.series
            .iter()
            .map(|s| Corrected {
                bound: s.labels.get("le").and_then(|le| parse_bound(le)),
                instance: s
                    .labels
                    .get(instances.label)
                    .or_else(|| s.labels.get(FALLBACK_INSTANCE_LABEL))
                    .cloned(),
                points: reset_corrected(&s.points),
            })
            .collect()
    };
    // What the store said of any answer holds for every instant built from it.
    let mut store_warnings: Vec<String> = [buckets, requests, errors, confidence]
        .iter()
        .flat_map(|m| m.warnings.iter().cloned())
        .collect();
    store_warnings.sort();
    store_warnings.dedup();
    let (buckets, requests, errors) = (correct(buckets), correct(requests), correct(errors));
    let arm = Group::of(&buckets, &requests, &errors, |_| true);
    let names: BTreeSet<&str> = [&buckets, &requests, &errors]
        .into_iter()
        .flatten()
        .filter_map(|s| s.instance.as_deref())
        .collect();
    let kept = sample(names, instances.max);
    let pods: Vec<(&str, Group<'_>)> = kept
        .iter()
        .map(|&name| {
            let group = Group::of(&buckets, &requests, &errors, |s| {
                s.instance.as_deref() == Some(name)
            });
            (name, group)
        })
        .collect();
    // Points sit on the step grid; half a step finds each instant's own point.
    let lookback = Duration::from_millis(u64::try_from(step_ms).unwrap_or(u64::MAX) / 2);
    let mut out = Vec::new();
    let mut at_ms = q.start.timestamp_millis();
    while at_ms <= q.end.timestamp_millis() {
        let Some(at) = Utc.timestamp_millis_opt(at_ms).single() else {
            break;
        };
        let mut o = Observation::new(q.version.clone(), at);
        arm.fill(&mut o, at_ms, lookback);
        let gauge = confidence.series.first().and_then(|s| {
            s.points
                .iter()
                .rev()
                .find(|&&(t, _)| t <= at_ms && at_ms - t <= lookback.as_millis() as i64)
        });
        if let Some(&(_, v)) = gauge {
            o.gauges.insert(series::MODEL_CONFIDENCE.into(), v);
        }
        o.store_warnings.clone_from(&store_warnings);
        if !(o.histograms.is_empty() && o.counters.is_empty() && o.gauges.is_empty()) {
            // An instance is there once it has started, and stays at its last values after it
            // stops, exactly as it counts in the sum.
            for (name, group) in &pods {
                let mut p = Observation::new(q.version.clone(), at);
                group.fill(&mut p, at_ms, Duration::MAX);
                p.last_sample = group
                    .silent_since(at_ms, lookback)
                    .and_then(|t| Utc.timestamp_millis_opt(t).single());
                if !(p.histograms.is_empty() && p.counters.is_empty()) {
                    o.instances.insert((*name).to_owned(), p);
                }
            }
            out.push(o);
        }
        at_ms = at_ms.saturating_add(step_ms);
    }
    out
}

/// At most `max` of `names`: all of them if they fit, otherwise those whose names hash lowest
/// (FNV-1a, fixed across runs and releases), a sample that does not depend on the pods' age or
/// order and is the same at every look.
fn sample(names: BTreeSet<&str>, max: usize) -> Vec<&str> {
    if names.len() <= max {
        return names.into_iter().collect();
    }
    let fnv = |s: &str| {
        s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let mut hashed: Vec<(u64, &str)> = names.into_iter().map(|n| (fnv(n), n)).collect();
    hashed.sort_unstable();
    let mut kept: Vec<&str> = hashed.into_iter().take(max).map(|(_, n)| n).collect();
    kept.sort_unstable();
    kept
}

/// A bucket's `le` label as a bound: a number, or `+Inf`.
pub(crate) fn parse_bound(le: &str) -> Option<f64> {
    if le == "+Inf" {
        Some(f64::INFINITY)
    } else {
        le.parse().ok()
    }
}

/// Counts per instance, for tests: how many instances each observation holds.
#[cfg(test)]
fn instance_counts(o: &[Observation]) -> Vec<usize> {
    o.iter().map(|o| o.instances.len()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::LabelledSeries;
    use canary_core::{Arm, Version};
    use std::collections::BTreeMap;

    fn series(labels: &[(&str, &str)], points: Vec<Sample>) -> LabelledSeries {
        LabelledSeries {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            points,
        }
    }

    fn matrix(series: Vec<LabelledSeries>) -> MatrixAnswer {
        MatrixAnswer {
            series,
            warnings: Vec::new(),
        }
    }

    fn query(end_s: i64) -> ObservationQuery {
        ObservationQuery::new(
            Version::new("v1").unwrap(),
            Arm::Baseline,
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.timestamp_opt(end_s, 0).unwrap(),
            Duration::from_secs(15),
        )
    }

    #[test]
    fn instances_add_up_to_the_sum_and_come_and_go() {
        // Pod a runs throughout and restarts; pod b starts at 30 s; c (no pod label) is
        // grouped by its instance label; d stops after 15 s.
        let a = vec![(0, 10.0), (15_000, 20.0), (30_000, 2.0), (45_000, 6.0)];
        let b = vec![(30_000, 1.0), (45_000, 4.0)];
        let c = vec![(0, 5.0), (15_000, 6.0), (30_000, 7.0), (45_000, 8.0)];
        let d = vec![(0, 3.0), (15_000, 4.0)];
        let requests = matrix(vec![
            series(&[("pod", "a"), ("status", "200")], a.clone()),
            series(
                &[("pod", "a"), ("status", "500")],
                vec![(0, 1.0), (45_000, 2.0)],
            ),
            series(&[("pod", "b")], b),
            series(&[("instance", "10.0.0.3:80")], c),
            series(&[("pod", "d")], d),
        ]);
        let empty = matrix(Vec::new());
        let instances = Instances {
            label: "pod",
            max: 64,
        };
        let q = query(45);
        let out = assemble(&q, 15_000, [&empty, &requests, &empty], &empty, &instances);
        assert_eq!(out.len(), 4);
        for o in &out {
            let sum: f64 = o.instances.values().map(|p| p.counters["requests"]).sum();
            assert_eq!(sum, o.counters["requests"], "at {}", o.at);
        }
        assert_eq!(instance_counts(&out), vec![3, 3, 4, 4]);
        let last = &out[3].instances;
        assert_eq!(
            last["a"].counters["requests"], 28.0,
            "reset undone, both series"
        );
        assert_eq!(last["b"].counters["requests"], 4.0);
        assert_eq!(
            last["10.0.0.3:80"].counters["requests"], 8.0,
            "fallback label"
        );
        assert_eq!(
            last["d"].counters["requests"], 4.0,
            "stopped: its last value"
        );
        assert!(!out[0].instances.contains_key("b"), "not started yet");
    }

    #[test]
    fn failures_that_never_happened_count_zero_and_a_late_failure_series_counts_from_zero() {
        // As prometheus_client exports it: pod a's status="500" series appears with its first
        // failure, one scrape after its first sample; pod b never fails.
        let requests = matrix(vec![
            series(
                &[("pod", "a"), ("status", "200")],
                vec![(0, 10.0), (15_000, 20.0), (30_000, 30.0)],
            ),
            series(
                &[("pod", "a"), ("status", "500")],
                vec![(15_000, 2.0), (30_000, 3.0)],
            ),
            series(
                &[("pod", "b"), ("status", "200")],
                vec![(0, 5.0), (15_000, 9.0), (30_000, 14.0)],
            ),
        ]);
        let errors = matrix(vec![series(
            &[("pod", "a"), ("status", "500")],
            vec![(15_000, 2.0), (30_000, 3.0)],
        )]);
        let empty = matrix(Vec::new());
        let instances = Instances {
            label: "pod",
            max: 64,
        };
        let out = assemble(
            &query(30),
            15_000,
            [&empty, &requests, &errors],
            &empty,
            &instances,
        );
        let errors_at: Vec<f64> = out.iter().map(|o| o.counters["errors"]).collect();
        assert_eq!(
            errors_at,
            vec![0.0, 2.0, 3.0],
            "zero before the first failure, then counted from zero"
        );
        assert_eq!(
            out[2].instances["b"].counters["errors"], 0.0,
            "a pod that never failed"
        );
        // No requests series at all: nothing to count, no fabricated zero.
        let out = assemble(
            &query(30),
            15_000,
            [&empty, &empty, &empty],
            &empty,
            &instances,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_pod_that_stops_says_when_and_the_store_warnings_reach_every_instant() {
        let requests = matrix(vec![
            series(
                &[("pod", "a")],
                vec![(0, 1.0), (15_000, 2.0), (30_000, 3.0)],
            ),
            series(&[("pod", "b")], vec![(0, 1.0)]),
        ]);
        let mut warned = matrix(Vec::new());
        warned.warnings = vec!["partial response: store x unavailable".into()];
        let empty = matrix(Vec::new());
        let instances = Instances {
            label: "pod",
            max: 64,
        };
        let out = assemble(
            &query(30),
            15_000,
            [&empty, &requests, &warned],
            &empty,
            &instances,
        );
        assert_eq!(out[0].instances["b"].last_sample, None, "reporting");
        assert_eq!(
            out[2].instances["b"].last_sample,
            Some(Utc.timestamp_opt(0, 0).unwrap()),
            "stopped after its first sample"
        );
        assert_eq!(out[2].instances["a"].last_sample, None);
        assert!(out
            .iter()
            .all(|o| o.store_warnings == ["partial response: store x unavailable"]));
    }

    #[test]
    fn a_large_arm_keeps_a_fixed_sample_of_its_instances() {
        let pods: Vec<String> = (0..500).map(|i| format!("prod-{i}")).collect();
        let requests = matrix(
            pods.iter()
                .map(|p| series(&[("pod", p)], vec![(0, 1.0), (15_000, 2.0)]))
                .collect(),
        );
        let empty = matrix(Vec::new());
        let instances = Instances {
            label: "pod",
            max: 64,
        };
        let out = assemble(
            &query(15),
            15_000,
            [&empty, &requests, &empty],
            &empty,
            &instances,
        );
        assert_eq!(
            out[1].counters["requests"], 1000.0,
            "the sum is over all 500"
        );
        assert_eq!(instance_counts(&out), vec![64, 64]);
        let first: Vec<&String> = out[0].instances.keys().collect();
        let second: Vec<&String> = out[1].instances.keys().collect();
        assert_eq!(first, second, "the same sample at every instant");
        // The sample does not depend on the order the server lists series in.
        let reversed = matrix(requests.series.iter().rev().cloned().collect());
        let again = assemble(
            &query(15),
            15_000,
            [&empty, &reversed, &empty],
            &empty,
            &instances,
        );
        assert_eq!(
            again[1].instances.keys().collect::<Vec<_>>(),
            second,
            "order-independent"
        );
        let none = Instances {
            label: "pod",
            max: 0,
        };
        let out = assemble(
            &query(15),
            15_000,
            [&empty, &requests, &empty],
            &empty,
            &none,
        );
        assert_eq!(instance_counts(&out), vec![0, 0]);
    }
}
