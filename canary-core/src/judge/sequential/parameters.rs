//! What the sequential judge tests, and its parameters.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;
use crate::error::{Error, Result};
use crate::judge::{Judge, JudgeFactory};
use crate::observation::names;
use crate::policy::Direction;
use crate::stats::anytime::{RateRatio, Segment};

/// One metric the sequential judge tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum SequentialMetric {
    /// Events per unit of traffic, from two counters: errors per request. Worse means a
    /// higher rate; `margin` is relative (0.1: the canary's rate is more than 1.1 times the
    /// baseline's).
    Count {
        /// The name in reports, e.g. `error_rate`.
        name: String,
        /// The events' counter, e.g. `errors`.
        events: String,
        /// The traffic's counter, e.g. `requests`.
        per: String,
        /// The practical margin δ, relative.
        margin: f64,
        /// A critical metric rolls back on its own; another sends the canary to review.
        critical: bool,
    },
    /// A latency histogram, tested at the bucket bounds that bracket each quantile: worse means
    /// that more than `1 + margin` times as large a share of the canary's requests is slower
    /// than the bound (or, where most requests are slower, that its share of faster requests is
    /// below `1 / (1 + margin)` of the baseline's).
    Latency {
        /// The name in reports; rows are `<name>_p50` etc.
        name: String,
        /// The histogram, e.g. `latency`.
        histogram: String,
        /// The quantiles of interest, each in (0, 1).
        quantiles: Vec<f64>,
        /// The practical margin δ, relative.
        margin: f64,
        /// A critical metric rolls back on its own.
        critical: bool,
    },
    /// A gauge compared scrape by scrape: the mean of the paired difference (canary −
    /// baseline), worse beyond `margin` in the bad direction.
    Gauge {
        /// The name in reports.
        name: String,
        /// The gauge, e.g. `model_confidence`.
        gauge: String,
        /// Which way is better.
        direction: Direction,
        /// The practical margin δ, absolute (in the gauge's unit).
        margin: f64,
        /// A critical metric rolls back on its own.
        critical: bool,
    },
}

impl SequentialMetric {
    /// Its name in reports.
    pub fn name(&self) -> &str {
        match self {
            SequentialMetric::Count { name, .. }
            | SequentialMetric::Latency { name, .. }
            | SequentialMetric::Gauge { name, .. } => name,
        }
    }

    /// Whether it rolls back on its own.
    pub fn critical(&self) -> bool {
        match self {
            SequentialMetric::Count { critical, .. }
            | SequentialMetric::Latency { critical, .. }
            | SequentialMetric::Gauge { critical, .. } => *critical,
        }
    }

    pub(super) fn margin(&self) -> f64 {
        match self {
            SequentialMetric::Count { margin, .. }
            | SequentialMetric::Latency { margin, .. }
            | SequentialMetric::Gauge { margin, .. } => *margin,
        }
    }
}

/// The parameters of [`SequentialJudge`]. The defaults: α = 0.01 in all, 80 % of it for the
/// critical metrics; two minutes of warm-up excluded; nothing found worse on less than four
/// minutes of evidence; proceed early no sooner than 5 minutes into a step; decide by 60
/// minutes; at least 100 requests per arm; prior concentration 30; p50/p95/p99 latency with a
/// margin of 0.25 (critical), errors per request with a margin of 0.1 (critical), and model
/// confidence with a margin of 0.02 (not critical). The judge-quality benchmark measured these
/// (README, "Judge quality"): shorter warm-up and evidence times decide sooner but roll back
/// healthy canaries whose arms drift apart for a few minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequentialParameters {
    /// The probability, over the whole run however often it is judged, of declaring any
    /// metric worse (or within its margin) when it is not.
    pub alpha: f64,
    /// The share of `alpha` the critical metrics get (split equally among them); the rest is
    /// split among the others. With no other metrics the critical ones get all of it.
    pub critical_share: f64,
    /// Evidence before this much time into the run is left out (a new pod's warm-up).
    #[serde(with = "crate::seconds")]
    pub warmup: Duration,
    /// The earliest a step may proceed, counted from its first judged observation.
    #[serde(with = "crate::seconds")]
    pub min_duration: Duration,
    /// The earliest anything is found worse, counted from the first judged observation: until
    /// a few scrapes are in, noise that moves one arm alone cannot show as dispersion.
    #[serde(with = "crate::seconds")]
    pub min_evidence: Duration,
    /// A step's decision is due this long after its first judged observation.
    #[serde(with = "crate::seconds")]
    pub max_duration: Duration,
    /// Each arm needs at least this many events of traffic (requests) for a critical metric
    /// to count as measured.
    pub min_requests: f64,
    /// The Dirichlet prior's concentration `k` of the count tests (`savvi`'s `k`).
    pub prior_concentration: f64,
    /// Scrapes per batch in the gauges' batch-means variance.
    pub batch_scrapes: u32,
    /// The smallest long-run standard deviation a gauge's paired difference is given, in the
    /// gauge's unit: a floor, so that a gauge that never moved does not claim infinite
    /// precision.
    pub gauge_min_sd: f64,
    /// The metrics.
    pub metrics: Vec<SequentialMetric>,
}

impl Default for SequentialParameters {
    fn default() -> Self {
        SequentialParameters {
            alpha: 0.01,
            critical_share: 0.8,
            warmup: Duration::from_secs(120),
            min_duration: Duration::from_secs(300),
            min_evidence: Duration::from_secs(240),
            max_duration: Duration::from_secs(3600),
            min_requests: 100.0,
            prior_concentration: 30.0,
            batch_scrapes: 8,
            gauge_min_sd: 0.01,
            metrics: vec![
                SequentialMetric::Latency {
                    name: "latency".into(),
                    histogram: names::LATENCY.into(),
                    quantiles: vec![0.5, 0.95, 0.99],
                    margin: 0.25,
                    critical: true,
                },
                SequentialMetric::Count {
                    name: "error_rate".into(),
                    events: names::ERRORS.into(),
                    per: names::REQUESTS.into(),
                    margin: 0.1,
                    critical: true,
                },
                SequentialMetric::Gauge {
                    name: "model_confidence".into(),
                    gauge: names::MODEL_CONFIDENCE.into(),
                    direction: Direction::HigherIsBetter,
                    margin: 0.02,
                    critical: false,
                },
            ],
        }
    }
}

impl SequentialParameters {
    /// Checks the parameters; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: &str| {
            Err(Error::InvalidConfig {
                field: field.into(),
                reason: reason.into(),
            })
        };
        let finite_positive = |v: f64| v.is_finite() && v > 0.0;
        if !(self.alpha > 0.0 && self.alpha <= 0.5) {
            return invalid("alpha", "must be in (0, 0.5]");
        }
        if !(self.critical_share > 0.0 && self.critical_share <= 1.0) {
            return invalid("critical_share", "must be in (0, 1]");
        }
        if self.max_duration < Duration::from_secs(1)
            || self.min_duration > self.max_duration
            || self.min_evidence > self.max_duration
        {
            return invalid(
                "max_duration",
                "must be at least 1 s, min_duration and min_evidence",
            );
        }
        if !(self.min_requests >= 0.0 && self.min_requests.is_finite()) {
            return invalid("min_requests", "must be a finite number >= 0");
        }
        if !finite_positive(self.prior_concentration) {
            return invalid("prior_concentration", "must be a finite number > 0");
        }
        if self.batch_scrapes < 2 {
            return invalid("batch_scrapes", "must be at least 2");
        }
        if !finite_positive(self.gauge_min_sd) {
            return invalid("gauge_min_sd", "must be a finite number > 0");
        }
        if self.metrics.is_empty() {
            return invalid("metrics", "at least one metric");
        }
        let mut seen = std::collections::BTreeSet::new();
        for m in &self.metrics {
            let field = format!("metrics.{}", m.name());
            if m.name().trim().is_empty() || !seen.insert(m.name()) {
                return invalid("metrics", "every metric needs a name of its own");
            }
            if !finite_positive(m.margin()) {
                return invalid(&field, "margin must be a finite number > 0");
            }
            if let SequentialMetric::Latency { quantiles, .. } = m {
                if quantiles.is_empty() || quantiles.iter().any(|q| !(*q > 0.0 && *q < 1.0)) {
                    return invalid(&field, "quantiles must be in (0, 1), at least one");
                }
            }
        }
        Ok(())
    }

    /// Each metric's share of `alpha`, in the metrics' order.
    pub(super) fn alphas(&self) -> Vec<f64> {
        let critical = self.metrics.iter().filter(|m| m.critical()).count();
        let other = self.metrics.len() - critical;
        let (to_critical, to_other) = match (critical, other) {
            (_, 0) => (self.alpha, 0.0),
            (0, _) => (0.0, self.alpha),
            _ => (
                self.alpha * self.critical_share,
                self.alpha * (1.0 - self.critical_share),
            ),
        };
        self.metrics
            .iter()
            .map(|m| {
                if m.critical() {
                    to_critical / critical as f64
                } else {
                    to_other / other as f64
                }
            })
            .collect()
    }
}

impl SequentialParameters {
    /// The share of `alpha` one test of `metric` gets: its metric's share, divided for a
    /// latency metric over both tails of its `bounds` finite bucket bounds. `None` for an
    /// unknown metric.
    pub fn test_alpha(&self, metric: &str, bounds: usize) -> Option<f64> {
        let a = self.metric_alpha(metric)?;
        let i = self.metrics.iter().position(|m| m.name() == metric)?;
        Some(match self.metrics[i] {
            SequentialMetric::Latency { .. } => a / (2.0 * bounds.max(1) as f64),
            _ => a,
        })
    }

    /// The α `metric` gets of the judge's (its share of the critical or non-critical part),
    /// which its pods' placement allowance is at; `None` for a metric it does not judge.
    pub fn metric_alpha(&self, metric: &str) -> Option<f64> {
        let i = self.metrics.iter().position(|m| m.name() == metric)?;
        Some(self.alphas()[i])
    }
}

/// The power analysis: the smallest rate ratio (canary / baseline) of a count that the judge
/// finds worse than `margin` with 95 % power, when over the judged time the baseline is
/// expected to show `baseline_events` and the canary `canary_events` at ratio 1 (its traffic
/// times the baseline's rate), tested at `alpha` with prior concentration `k`. `None` if even
/// a 1000-fold ratio is not caught.
///
/// The estimate of `ln θ` is close to normal with variance `1/x_B + 1/x_C`; at 95 % power
/// its 5th percentile, `ln θ − 1.645 sd`, must still leave the confidence sequence's lower end
/// above `ln(1 + margin)`. Because the sequence is valid at every look, proceeding at the end
/// after no detection is then safe against any regression at least this large, with 95 %
/// probability, whenever the traffic reached these counts.
pub fn detectable_ratio(
    alpha: f64,
    margin: f64,
    k: f64,
    baseline_events: f64,
    canary_events: f64,
) -> Option<f64> {
    if !(baseline_events > 0.0 && canary_events > 0.0 && alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let share = canary_events / (baseline_events + canary_events);
    let caught = |theta: f64| {
        let c = canary_events * theta;
        let sd = (1.0 / baseline_events + 1.0 / c).sqrt();
        let observed = theta.ln() - 1.644_853_626_951_472_2 * sd;
        // Counts with the expected total whose estimate is that 5th percentile.
        let total = baseline_events + c;
        let p = Segment {
            baseline: 0.0,
            canary: 0.0,
            canary_share: share,
        }
        .canary_probability(observed);
        let r = RateRatio::new(
            &[Segment {
                baseline: total * (1.0 - p),
                canary: total * p,
                canary_share: share,
            }],
            k,
        );
        r.interval(alpha).0 > (1.0 + margin).ln()
    };
    let (mut lo, mut hi) = ((1.0 + margin).ln(), 1000f64.ln());
    if !caught(hi.exp()) {
        return None;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if caught(mid.exp()) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi.exp())
}

impl JudgeFactory for SequentialParameters {
    fn name(&self) -> &str {
        "sequential"
    }

    fn start(&self) -> Result<Box<dyn Judge>> {
        Ok(Box::new(SequentialJudge::new(self.clone())?))
    }
}
