//! Evidence over time: what Prometheus holds about one arm at one instant.
//!
//! A judge that works on distributions needs more than a point estimate per metric: an
//! [`Observation`] carries, for one arm at one instant, each latency histogram's cumulative
//! bucket counts, each counter's cumulative count and each gauge's value, summed (or, for
//! gauges, averaged) over the arm's instances. Counters are reset-corrected per series before
//! they are summed, as Prometheus's `increase` treats a restarting pod, so the difference of
//! two observations is what happened between them.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::promql::{self, Sample};
use crate::source::Arm;
use crate::version::Version;

/// The guide's latency histogram buckets, in seconds (`+Inf` comes after them).
pub const GUIDE_BUCKETS: [f64; 7] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Names of the built-in series of an observation.
pub mod names {
    /// Request latency, a histogram in seconds (the guide's `http_request_duration_seconds`).
    pub const LATENCY: &str = "latency";
    /// Requests, a counter (`http_requests_total`).
    pub const REQUESTS: &str = "requests";
    /// Failed requests, a counter (`http_requests_total{status=~"5.."}`).
    pub const ERRORS: &str = "errors";
    /// Mean model confidence, a gauge (`model_prediction_confidence`).
    pub const MODEL_CONFIDENCE: &str = "model_confidence";
}

/// A histogram's cumulative counts by upper bound, the last bound `+Inf`.
///
/// ```
/// use canary_core::observation::Histogram;
/// let h = Histogram::new(vec![(0.1, 50.0), (0.5, 90.0), (f64::INFINITY, 100.0)])?;
/// assert_eq!(h.total(), 100.0);
/// assert_eq!(h.quantile(0.25), Some(0.05));
/// # Ok::<_, canary_core::Error>(())
/// ```
///
/// It serializes as `[["0.1", 50.0], ..., ["+Inf", 100.0]]`: bounds as Prometheus writes its
/// `le` labels, since JSON has no infinity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<(String, f64)>", into = "Vec<(String, f64)>")]
pub struct Histogram {
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Checks and wraps `(upper bound, cumulative count)` buckets: bounds strictly increasing
    /// and ending with `+Inf`, counts finite and not negative.
    pub fn new(buckets: Vec<(f64, f64)>) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidConfig {
            field: "histogram".into(),
            reason: reason.to_owned(),
        };
        if buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
            return Err(invalid("the last bucket's bound must be +Inf"));
        }
        // `partial_cmp` so that a NaN bound counts as out of order.
        let increasing =
            |w: &[(f64, f64)]| w[0].0.partial_cmp(&w[1].0) == Some(std::cmp::Ordering::Less);
        if !buckets.windows(2).all(increasing) {
            return Err(invalid("bucket bounds must increase strictly"));
        }
        if buckets.iter().any(|&(_, c)| !c.is_finite() || c < 0.0) {
            return Err(invalid("bucket counts must be finite and not negative"));
        }
        Ok(Histogram { buckets })
    }

    /// The buckets, `(upper bound, cumulative count)`, in bound order.
    pub fn buckets(&self) -> &[(f64, f64)] {
        &self.buckets
    }

    /// Observations in all (the `+Inf` bucket).
    pub fn total(&self) -> f64 {
        self.buckets.last().map(|b| b.1).unwrap_or(0.0)
    }

    /// What was observed after `earlier`: the bucket-wise difference. `None` if the bounds
    /// differ or a count went down (observations are reset-corrected, so that is bad data).
    pub fn since(&self, earlier: &Histogram) -> Option<Histogram> {
        if self.buckets.len() != earlier.buckets.len() {
            return None;
        }
        let mut out = Vec::with_capacity(self.buckets.len());
        for (&(bound, now), &(then_bound, then)) in self.buckets.iter().zip(&earlier.buckets) {
            if bound != then_bound || now < then {
                return None;
            }
            out.push((bound, now - then));
        }
        Some(Histogram { buckets: out })
    }

    /// The `q`-quantile exactly as Prometheus's `histogram_quantile` interpolates it, in the
    /// histogram's unit; `None` where Prometheus would answer NaN (no observations).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let v = promql::histogram_quantile(q, &self.buckets);
        (!v.is_nan()).then_some(v)
    }
}

impl TryFrom<Vec<(String, f64)>> for Histogram {
    type Error = Error;
    fn try_from(buckets: Vec<(String, f64)>) -> Result<Self> {
        let parsed = buckets
            .into_iter()
            .map(|(le, count)| {
                let bound = if le == "+Inf" {
                    Ok(f64::INFINITY)
                } else {
                    le.parse::<f64>()
                };
                bound.map(|b| (b, count)).map_err(|_| Error::InvalidConfig {
                    field: "histogram".into(),
                    reason: format!("{le:?} is not a bucket bound"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Histogram::new(parsed)
    }
}

impl From<Histogram> for Vec<(String, f64)> {
    fn from(h: Histogram) -> Self {
        h.buckets
            .into_iter()
            .map(|(b, c)| {
                let le = if b == f64::INFINITY {
                    "+Inf".to_owned()
                } else {
                    b.to_string()
                };
                (le, c)
            })
            .collect()
    }
}

/// One arm's cumulative state at one instant.
///
/// ```
/// use canary_core::observation::{names, Histogram, Observation};
/// use canary_core::Version;
/// let o = Observation::new(Version::new("v2")?, chrono::Utc::now())
///     .with_counter(names::REQUESTS, 1200.0)
///     .with_counter(names::ERRORS, 12.0)
///     .with_gauge(names::MODEL_CONFIDENCE, 0.9)
///     .with_histogram(names::LATENCY, Histogram::new(vec![(0.5, 1100.0), (f64::INFINITY, 1200.0)])?);
/// o.validate()?;
/// # Ok::<_, canary_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The arm's version.
    pub version: Version,
    /// The instant.
    pub at: DateTime<Utc>,
    /// Histograms by name ([`names::LATENCY`] and your own), cumulative.
    #[serde(default)]
    pub histograms: BTreeMap<String, Histogram>,
    /// Counters by name ([`names::REQUESTS`], [`names::ERRORS`] and your own), cumulative
    /// and reset-corrected; only differences between observations mean anything.
    #[serde(default)]
    pub counters: BTreeMap<String, f64>,
    /// Gauges by name ([`names::MODEL_CONFIDENCE`] and your own), their value at `at`.
    #[serde(default)]
    pub gauges: BTreeMap<String, f64>,
    /// The arm's instances (pods) by name, each with its own histograms and counters, from
    /// the same series as the sums above: cumulative, reset-corrected, an instance that has
    /// stopped at its last value and one that has not started absent, so that the counters
    /// of all instances add up to the sum. Empty when the source does not tell instances
    /// apart; a source may hold a fixed sample of a large arm's instances (the sums stay
    /// over all of them). Instances have no instances of their own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instances: BTreeMap<String, Observation>,
    /// For an instance carried at its last values because it had no sample near `at` (it
    /// stopped: crashed, evicted, scaled down, or its target is down): when its latest sample
    /// was taken. `None` while it reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sample: Option<DateTime<Utc>>,
    /// What the store said with the answers this observation came from (Prometheus's
    /// `warnings`, e.g. Thanos's "partial response"): the answer may leave data out. Any of
    /// them keeps a run from being promoted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store_warnings: Vec<String>,
}

impl Observation {
    /// An observation of `version` at `at` with nothing in it yet.
    pub fn new(version: Version, at: DateTime<Utc>) -> Self {
        Observation {
            version,
            at,
            histograms: BTreeMap::new(),
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            instances: BTreeMap::new(),
            last_sample: None,
            store_warnings: Vec::new(),
        }
    }

    /// Adds an instance's observation (its own instances are dropped).
    pub fn with_instance(mut self, name: impl Into<String>, mut instance: Observation) -> Self {
        instance.instances.clear();
        self.instances.insert(name.into(), instance);
        self
    }

    /// Adds a histogram.
    pub fn with_histogram(mut self, name: impl Into<String>, h: Histogram) -> Self {
        self.histograms.insert(name.into(), h);
        self
    }

    /// Adds a counter's cumulative count.
    pub fn with_counter(mut self, name: impl Into<String>, count: f64) -> Self {
        self.counters.insert(name.into(), count);
        self
    }

    /// Adds a gauge's value.
    pub fn with_gauge(mut self, name: impl Into<String>, value: f64) -> Self {
        self.gauges.insert(name.into(), value);
        self
    }

    /// Checks that every counter is a finite count and every gauge a finite number (histograms
    /// are checked when made). The error names the series.
    pub fn validate(&self) -> Result<()> {
        let invalid = |name: &str, value: f64, requirement: &str| Error::InvalidMetric {
            metric: name.to_owned(),
            version: self.version.to_string(),
            value,
            requirement: requirement.to_owned(),
        };
        for (name, &c) in &self.counters {
            if !c.is_finite() || c < 0.0 {
                return Err(invalid(name, c, "a count is finite and not negative"));
            }
        }
        for (name, &g) in &self.gauges {
            if !g.is_finite() {
                return Err(invalid(name, g, "must be a finite number"));
            }
        }
        self.instances.values().try_for_each(Observation::validate)
    }
}

/// What to observe: one arm's version, at `start`, `start + step`, ... up to `end`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservationQuery {
    /// The version label to select series by.
    pub version: Version,
    /// Which arm; a source may select the canary by a different label template.
    pub arm: Arm,
    /// The first instant.
    pub start: DateTime<Utc>,
    /// The last instant (included when it falls on the step).
    pub end: DateTime<Utc>,
    /// Between instants; typically the scrape interval.
    #[serde(with = "crate::seconds")]
    pub step: Duration,
}

impl ObservationQuery {
    /// Observations of `version` in `arm` from `start` to `end`, every `step`.
    pub fn new(
        version: Version,
        arm: Arm,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Self {
        ObservationQuery {
            version,
            arm,
            start,
            end,
            step,
        }
    }
}

/// A source of [`Observation`]s: Prometheus, the in-memory fakes, the simulator.
///
/// # Contract
///
/// - **What a call promises.** The arm's observations at the query's instants, in time order,
///   each labelled with the query's version. The instants are `start + k·step`, or, for a
///   source whose store aligns its grid (the Prometheus source does, as VictoriaMetrics
///   does), the multiples of `step` within `[start, end]`; both arms of a source share them. An instant where nothing at all is known is left
///   out; a series that is missing at an instant is missing from that observation, never 0.
/// - **Counters never go down** from one observation to the next: resets are undone per
///   series before summing ([`reset_corrected`]). Histograms keep their bounds.
/// - **Errors.** [`Error::Source`] naming the version when the backend cannot answer.
/// - **Idempotence and cancellation** as for [`crate::MetricsSource`]: reads only, safe to drop.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait ObservationSource: Send + Sync {
    /// The observations the query asks for. See the trait's contract.
    async fn observe(&self, query: &ObservationQuery) -> Result<Vec<Observation>>;

    /// The queries behind `query`'s observations, by observation name ([`names`]), in the
    /// store's own language, so that a report can cite what anyone can run again. Empty by
    /// default.
    fn describe(&self, query: &ObservationQuery) -> Vec<(String, String)> {
        let _ = query;
        Vec::new()
    }
}

/// Each series reset-corrected as Prometheus's `increase` treats it (a decrease means the
/// counter restarted from 0, so the value before it is added to everything after), then summed
/// at `at_ms`: each series contributes its last sample at or before `at_ms` within `lookback`
/// (Prometheus's instant-vector lookback, 5 minutes by default). `None` if no series has one.
pub fn cumulative_sum(series: &[&[Sample]], at_ms: i64, lookback: Duration) -> Option<f64> {
    let corrected: Vec<Vec<Sample>> = series.iter().map(|s| reset_corrected(s)).collect();
    let corrected: Vec<&[Sample]> = corrected.iter().map(Vec::as_slice).collect();
    sum_at(&corrected, at_ms, lookback)
}

/// The sum, at `at_ms`, of each series' last sample at or before it within `lookback`; `None`
/// if no series has one. The series must already be reset-corrected ([`reset_corrected`]):
/// correct them once, then sum at as many instants as needed.
pub fn sum_at(series: &[&[Sample]], at_ms: i64, lookback: Duration) -> Option<f64> {
    let oldest = at_ms.saturating_sub(i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX));
    let mut total = None;
    for s in series {
        let last = s.iter().rev().find(|&&(t, _)| t <= at_ms && t >= oldest);
        if let Some(&(_, v)) = last {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// The total of counters spread over instances that come and go, at `at_ms`: each series
/// (already [`reset_corrected`]) contributes its last sample at or before `at_ms`, however
/// old, so a pod that stopped (scale-down, eviction, a finished rollout) keeps counting what it
/// served and the total never goes down; a series that has not started contributes nothing.
/// `None` unless some series has a sample within `lookback` of `at_ms` (an instant nobody was
/// scraped at is missing, not a copy of the last one).
pub fn carried_sum_at(series: &[&[Sample]], at_ms: i64, lookback: Duration) -> Option<f64> {
    let oldest = at_ms.saturating_sub(i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX));
    let mut total = 0.0;
    let mut fresh = false;
    for s in series {
        // Samples are in time order: the last one at or before `at_ms`.
        let i = s.partition_point(|&(t, _)| t <= at_ms);
        if let Some(&(t, v)) = i.checked_sub(1).and_then(|i| s.get(i)) {
            total += v;
            fresh |= t >= oldest;
        }
    }
    fresh.then_some(total)
}

/// A counter series with every reset undone: after a decrease, the value before it is added to
/// every later sample, so the series only grows.
pub fn reset_corrected(series: &[Sample]) -> Vec<Sample> {
    let mut offset = 0.0;
    let mut previous: Option<f64> = None;
    series
        .iter()
        .map(|&(t, v)| {
            if let Some(p) = previous {
                if v < p {
                    offset += p;
                }
            }
            previous = Some(v);
            (t, v + offset)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        conformance, steady_observations, ScriptedObservations, HEALTHY_SHARES,
    };
    use chrono::TimeZone;

    const INF: f64 = f64::INFINITY;

    #[tokio::test]
    async fn the_in_memory_source_passes_the_conformance_suite() {
        let start = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let step = Duration::from_secs(15);
        let source = ScriptedObservations::new();
        let ten_minutes = Duration::from_secs(600);
        source.set(
            "v1",
            steady_observations("v1", 10.0, 0.01, HEALTHY_SHARES, start, ten_minutes, step),
        );
        let end = start + chrono::Duration::minutes(5);
        conformance::observation_source(&source, "v1", "v9", start, end, step).await;
        let all = source
            .observe(&ObservationQuery::new(
                Version::new("v1").unwrap(),
                Arm::Canary,
                start,
                end,
                step,
            ))
            .await
            .unwrap();
        assert_eq!(all.len(), 21, "both ends of five minutes of 15 s steps");
        source.fail("v2", "backend down");
        conformance::failing_observation_source(&source, "v2").await;
    }

    #[test]
    fn a_pod_that_stops_keeps_counting_what_it_served() {
        let lookback = Duration::from_secs(5);
        // Pod a stops after 30 s; pod b starts at 30 s; pod c restarts at 45 s.
        let a = [(0, 10.0), (15_000, 20.0), (30_000, 30.0)];
        let b = [(30_000, 0.0), (45_000, 5.0), (60_000, 9.0)];
        let c = reset_corrected(&[
            (0, 1.0),
            (15_000, 2.0),
            (30_000, 3.0),
            (45_000, 1.0),
            (60_000, 2.0),
        ]);
        let all = [&a[..], &b[..], &c[..]];
        let totals: Vec<f64> = [0, 15_000, 30_000, 45_000, 60_000]
            .iter()
            .map(|&t| carried_sum_at(&all, t, lookback).unwrap())
            .collect();
        assert_eq!(totals, vec![11.0, 22.0, 33.0, 39.0, 44.0]);
        assert!(totals.windows(2).all(|w| w[1] >= w[0]), "never goes down");
        // The plain sum loses the stopped pod.
        assert_eq!(sum_at(&all, 45_000, lookback), Some(9.0));
        // Nobody scraped near the instant: missing.
        assert_eq!(carried_sum_at(&all, 52_000, lookback), None);
        assert_eq!(carried_sum_at(&all, -1, lookback), None);
    }

    #[test]
    fn histograms_are_checked() {
        assert!(
            Histogram::new(vec![(0.1, 1.0), (1.0, 2.0)]).is_err(),
            "no +Inf"
        );
        assert!(Histogram::new(vec![(1.0, 1.0), (0.1, 2.0), (INF, 3.0)]).is_err());
        assert!(Histogram::new(vec![(0.1, f64::NAN), (INF, 3.0)]).is_err());
        assert!(Histogram::new(vec![(0.1, -1.0), (INF, 3.0)]).is_err());
        assert!(
            Histogram::new(vec![(f64::NAN, 1.0), (INF, 3.0)]).is_err(),
            "NaN bound"
        );
        let h = Histogram::new(vec![(0.1, 1.0), (INF, 2.0)]).unwrap();
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"[["0.1",1.0],["+Inf",2.0]]"#);
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), h);
        assert!(serde_json::from_str::<Histogram>(r#"[["x",1.0],["+Inf",2.0]]"#).is_err());
    }

    #[test]
    fn differences_are_what_happened_in_between() {
        let then = Histogram::new(vec![(0.1, 10.0), (0.5, 18.0), (INF, 20.0)]).unwrap();
        let now = Histogram::new(vec![(0.1, 60.0), (0.5, 108.0), (INF, 120.0)]).unwrap();
        let d = now.since(&then).unwrap();
        assert_eq!(d.buckets(), &[(0.1, 50.0), (0.5, 90.0), (INF, 100.0)]);
        assert_eq!(d.quantile(0.25), Some(0.05));
        assert_eq!(then.since(&now), None, "counts do not go down");
        let other = Histogram::new(vec![(0.2, 1.0), (0.5, 2.0), (INF, 3.0)]).unwrap();
        assert_eq!(now.since(&other), None, "other bounds");
        let empty = now.since(&now).unwrap();
        assert_eq!(empty.quantile(0.5), None, "no observations: no quantile");
    }

    #[test]
    fn resets_are_undone_per_series_before_summing() {
        // Pod a restarts after 120; pod b runs on.
        let a: Vec<Sample> = vec![(0, 100.0), (15_000, 120.0), (30_000, 5.0), (45_000, 25.0)];
        let b: Vec<Sample> = vec![(0, 10.0), (15_000, 20.0), (30_000, 30.0), (45_000, 40.0)];
        assert_eq!(
            reset_corrected(&a),
            vec![
                (0, 100.0),
                (15_000, 120.0),
                (30_000, 125.0),
                (45_000, 145.0)
            ]
        );
        let lookback = std::time::Duration::from_secs(300);
        assert_eq!(cumulative_sum(&[&a, &b], 45_000, lookback), Some(185.0));
        assert_eq!(cumulative_sum(&[&a, &b], 20_000, lookback), Some(140.0));
        // The increase over [0, 45 s] is 45 + 30, as Prometheus's increase counts it.
        let start = cumulative_sum(&[&a, &b], 0, lookback).unwrap();
        assert_eq!(
            cumulative_sum(&[&a, &b], 45_000, lookback).unwrap() - start,
            75.0
        );
        assert_eq!(cumulative_sum(&[&a, &b], -1, lookback), None);
        let short = std::time::Duration::from_secs(10);
        assert_eq!(
            cumulative_sum(&[&a], 59_000, short),
            None,
            "outside the lookback"
        );
    }

    #[test]
    fn observations_refuse_impossible_values() {
        let v = Version::new("v1").unwrap();
        let o = Observation::new(v.clone(), Utc::now()).with_counter(names::REQUESTS, -1.0);
        assert!(o.validate().unwrap_err().to_string().contains("requests"));
        let o = Observation::new(v, Utc::now()).with_gauge(names::MODEL_CONFIDENCE, f64::NAN);
        assert!(o.validate().is_err());
    }
}
