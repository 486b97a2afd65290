//! The sequential, anytime-valid judge.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Judge, JudgeFactory, Schedule, SequencePoint, Verdict};
use crate::error::{Error, Result};
use crate::observation::{names, Histogram, Observation};
use crate::policy::{
    AnytimeInterval, ComparisonStatus, Condition, Criticality, Direction, Evaluation,
    MetricComparison, RollbackDecision, Rule,
};
use crate::stats::anytime::{normal_mixture_radius, RateRatio, Segment};

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

    fn margin(&self) -> f64 {
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
    fn alphas(&self) -> Vec<f64> {
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
        let i = self.metrics.iter().position(|m| m.name() == metric)?;
        let a = self.alphas()[i];
        Some(match self.metrics[i] {
            SequentialMetric::Latency { .. } => a / (2.0 * bounds.max(1) as f64),
            _ => a,
        })
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

/// Where one test stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Standing {
    /// Worse than the margin, with confidence.
    Worse,
    /// Not decided either way.
    Open,
    /// Within the margin, with confidence.
    Within,
}

/// What a rate test counts between two observations of both arms.
#[derive(Clone, Copy, Debug)]
enum Counting<'a> {
    /// Events of one counter per events of another.
    Count { events: &'a str, per: &'a str },
    /// Requests beyond (`slow`) or within bucket `k` of a histogram, per request.
    Bound {
        histogram: &'a str,
        k: usize,
        slow: bool,
    },
}

impl Counting<'_> {
    /// `[baseline events, canary events, baseline traffic, canary traffic]` from `a` to `z`
    /// (each a (baseline, canary) pair); `None` where a series is missing or went down.
    fn counts(
        &self,
        a: (&Observation, &Observation),
        z: (&Observation, &Observation),
    ) -> Option<[f64; 4]> {
        let arm = |a: &Observation, z: &Observation| -> Option<(f64, f64)> {
            match *self {
                Counting::Count { events, per } => Some((
                    z.counters.get(events)? - a.counters.get(events)?,
                    z.counters.get(per)? - a.counters.get(per)?,
                )),
                Counting::Bound { histogram, k, slow } => {
                    let h = z
                        .histograms
                        .get(histogram)?
                        .since(a.histograms.get(histogram)?)?;
                    let (within, total) = (h.buckets().get(k)?.1, h.total());
                    Some((if slow { total - within } else { within }, total))
                }
            }
        };
        let (eb, tb) = arm(a.0, z.0)?;
        let (ec, tc) = arm(a.1, z.1)?;
        [eb, ec, tb, tc]
            .iter()
            .all(|v| *v >= 0.0)
            .then_some([eb, ec, tb, tc])
    }
}

/// The dispersion estimate is shrunk towards `DISPERSION_PRIOR` (independent events) with the
/// weight of `DISPERSION_PRIOR_DF` pseudo-terms, so that a few residuals cannot swing it.
const DISPERSION_PRIOR: f64 = 1.0;
const DISPERSION_PRIOR_DF: f64 = 4.0;

/// Pearson residuals of one test's counts, per scrape and per batch of scrapes.
#[derive(Clone, Copy, Debug, Default)]
struct Dispersion {
    /// Σ r², Σ r_k r_(k−1), terms, and the last residual, per scrape.
    scrape: [f64; 4],
    /// Σ r² and terms, per batch.
    batch: [f64; 2],
    /// The estimate (ln θ) at the previous look and at the batch's start: residuals are taken
    /// against what was known before their data, so that a fit cannot hide its own noise.
    before: [Option<f64>; 2],
}

impl Dispersion {
    fn shrunk(x2: f64, terms: f64) -> f64 {
        let df = (terms - 1.0).max(0.0);
        (x2.max(0.0) + DISPERSION_PRIOR * DISPERSION_PRIOR_DF) / (df + DISPERSION_PRIOR_DF)
    }

    /// The long-run dispersion. Per scrape: the residuals' variance `v`, shrunk towards 1,
    /// stretched by its persistence: the residuals' lag-1 autocorrelation `ρ` read as an AR(1)
    /// excess with coefficient `a = ρ / (1 − 1/v)`, whose sum has `(1 + a) / (1 − a)` times its
    /// variance (and at least the lag-1 estimate `v + 2ρv`). Per batch: the batch residuals'
    /// variance, which also sees noise that lasts longer. The per-scrape estimate counts only
    /// once its lag-1 long-run χ² is clearly above its degrees of freedom (three standard
    /// deviations), so that independent events are not penalised by the estimate's own
    /// noise; the larger of the two, never below 1.
    fn factor(&self) -> f64 {
        let [x2, lagged, terms, _] = self.scrape;
        let df = terms - 1.0;
        let long_run = x2 + 2.0 * lagged.max(0.0);
        let per_scrape = if df >= 1.0 && long_run - df > 3.0 * (2.0 * df).sqrt() {
            let v = Self::shrunk(x2, terms).max(1.0);
            let excess = (1.0 - 1.0 / v).max(1e-9);
            let a = ((lagged / x2).max(0.0) / excess).min(0.9);
            (1.0 + (v - 1.0) * (1.0 + a) / (1.0 - a)).max(Self::shrunk(long_run, terms))
        } else {
            1.0
        };
        let [b2, batches] = self.batch;
        let per_batch =
            if batches >= 2.0 && b2 - (batches - 1.0) > 2.0 * (2.0 * (batches - 1.0)).sqrt() {
                Self::shrunk(b2, batches)
            } else {
                1.0
            };
        per_scrape.max(per_batch).max(1.0)
    }
}

/// A gauge's paired differences: their running sum and the batch means' running variance.
#[derive(Clone, Debug, Default)]
struct Paired {
    n: f64,
    sum: f64,
    sum_baseline: f64,
    sum_canary: f64,
    batch_sum: f64,
    batch_n: u32,
    batches: f64,
    batch_mean: f64,
    batch_m2: f64,
}

impl Paired {
    fn push(&mut self, baseline: f64, canary: f64, batch: u32) {
        let d = canary - baseline;
        self.n += 1.0;
        self.sum += d;
        self.sum_baseline += baseline;
        self.sum_canary += canary;
        self.batch_sum += d;
        self.batch_n += 1;
        if self.batch_n == batch {
            // Welford's update over the batch means.
            let x = self.batch_sum / f64::from(batch);
            self.batches += 1.0;
            let delta = x - self.batch_mean;
            self.batch_mean += delta / self.batches;
            self.batch_m2 += delta * (x - self.batch_mean);
            self.batch_sum = 0.0;
            self.batch_n = 0;
        }
    }

    /// `(estimate, lower, upper)` of the mean difference, or `None` before two batches.
    fn interval(&self, alpha: f64, batch: u32, min_sd: f64) -> Option<(f64, f64, f64)> {
        if self.batches < 2.0 {
            return None;
        }
        let batch = f64::from(batch);
        // The long-run variance per scrape: batch size times the batch means' variance.
        let lrv = (batch * self.batch_m2 / (self.batches - 1.0)).max(min_sd * min_sd);
        let mean = self.sum / self.n;
        let rho = lrv * 4.0 * batch;
        let r = normal_mixture_radius(self.n * lrv, rho, alpha) / self.n;
        Some((mean, mean - r, mean + r))
    }
}

/// One test's result at a look.
#[derive(Clone, Debug)]
struct Tested {
    /// The row's name, e.g. `latency_p99`.
    row: String,
    standing: Standing,
    interval: AnytimeInterval,
}

/// A look's findings for one metric.
#[derive(Clone, Debug)]
struct Finding {
    rows: Vec<MetricComparison>,
    tests: Vec<Tested>,
    /// Why the metric cannot be judged (no series, too little traffic), if so.
    no_data: Option<String>,
    /// A fault in the data (a counter that went down), if any.
    fault: Option<String>,
}

/// The sequential judge: anytime-valid tests on the distributions Prometheus holds, judged at
/// every observation.
///
/// # Model
///
/// - **Counts** ([`SequentialMetric::Count`]): between two observations each arm's events are a
///   Poisson process whose intensity is its traffic times its rate; baseline and canary share
///   the traffic's shape (swings cancel). Conditioned on the total, an event is the canary's
///   with probability `ρθ / (1 − ρ + ρθ)`, `ρ` the canary's share of the traffic (observed over
///   the step) and `θ` its rate relative to the baseline's. The Dirichlet-multinomial mixture
///   (Lindon and Malek, NeurIPS 2022; as `savvi`'s `InhomogeneousPoissonProcess`) gives a
///   confidence sequence for `θ` ([`RateRatio`]).
/// - **Latency** ([`SequentialMetric::Latency`]): at a histogram bucket bound the cumulative
///   count is exact, so "requests slower than the bound" is a count with the histogram's total
///   as traffic: the same test, on the share of each arm's requests beyond the bound (a
///   time-uniform band on each arm's CDF at the bounds, taken relative to each other). For each
///   quantile, the bounds that bracket it (from both arms' pooled counts) are judged. α is
///   split over every bound and both tails (Bonferroni), so choosing the bounds from the data
///   costs no validity.
/// - **Gauges** ([`SequentialMetric::Gauge`]): the paired difference per scrape; its mean has a
///   confidence sequence from Robbins' normal-mixture boundary ([`normal_mixture_radius`]) with
///   the long-run variance estimated by batch means (batches of `batch_scrapes`, floored at
///   `gauge_min_sd`). Batch means because scrapes of a gauge are autocorrelated: the variance
///   of a sum of dependent scrapes is the long-run variance, which batch means estimate
///   consistently, and the boundary is exact for the Brownian motion the sum approaches.
///   Blocking (testing only the batch means) would throw away the looks within a batch.
///
/// - **Dependence**: the tests above assume events independent given the traffic. Noise that
///   moves one arm and not the other (a pod slow for minutes) clusters them. Each count test
///   estimates its dispersion φ from Pearson residuals (against the estimate before their data)
///   per scrape, stretched by their lag-1 autocorrelation as an AR(1), and per batch of
///   `batch_scrapes`, counting only when significantly above 1, and divides its counts by φ
///   (quasi-likelihood). This is a heuristic on top of the anytime-valid core, measured on the
///   judge-quality benchmark's per-arm autocorrelated scenarios; with independent events it
///   changes nothing.
///
/// The counts' intervals are widened by their estimated dispersion, which changes as evidence
/// arrives, so each look's interval stands alone (no running intersection); a verdict, once
/// reached, is kept.
///
/// # Deciding
///
/// After the warm-up, at every observation (nothing is found worse on less than `min_evidence`
/// of judged time): a critical metric worse than its margin rolls back at once; another metric worse goes to manual review at once; every metric within its margin
/// (and each arm past `min_requests`, and `min_duration` into the step) proceeds early;
/// otherwise it continues. At `max_duration` (or [`Judge::finish`]) it proceeds if no metric
/// was found worse and every critical metric was measured (`min_requests` of traffic in each
/// arm, two batches of a gauge), and goes to manual review if not. A counter that goes down
/// (a reset the source did not correct) is a fault: manual review, never evidence.
///
/// Its state is the first judged observation of each step and the last one, plus a few sums
/// per gauge: memory does not grow with the run, and feeding the observations since the
/// analysis started rebuilds it exactly (a stateless service needs no database).
///
/// ```
/// use canary_core::judge::{Judge, SequentialJudge, SequentialParameters};
/// let mut judge = SequentialJudge::new(SequentialParameters::default())?;
/// // No evidence at all: manual review, never a promotion.
/// assert_eq!(judge.finish().decision, canary_core::RollbackDecision::RollbackManual);
/// # Ok::<_, canary_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SequentialJudge {
    parameters: SequentialParameters,
    alphas: Vec<f64>,
    first_at: Option<DateTime<Utc>>,
    /// Earlier steps' (first, last) observation pairs, (baseline, canary) each.
    closed: Vec<[Observation; 4]>,
    /// This step's first and latest judged pairs.
    reference: Option<(Observation, Observation)>,
    last: Option<(Observation, Observation)>,
    paired: Vec<Paired>,
    /// Pearson's χ² and its terms by test, per scrape and per batch, for its dispersion.
    dispersion: BTreeMap<String, Dispersion>,
    /// The judged pair before the latest one.
    previous: Option<(Observation, Observation)>,
    /// Where the current batch of scrapes began, and how many looks it has.
    batch_start: Option<(Observation, Observation)>,
    batch_looks: u32,
    trace: Vec<SequencePoint>,
    trace_stride: u32,
    looks: u32,
    decided: Option<Evaluation>,
}

/// Points the trace keeps at most; beyond, it keeps every other look.
const TRACE_CAPACITY: usize = 2000;

impl SequentialJudge {
    /// A judge with `parameters`, checked.
    pub fn new(parameters: SequentialParameters) -> Result<Self> {
        parameters.validate()?;
        Ok(SequentialJudge {
            alphas: parameters.alphas(),
            paired: vec![Paired::default(); parameters.metrics.len()],
            parameters,
            first_at: None,
            closed: Vec::new(),
            reference: None,
            last: None,
            dispersion: BTreeMap::new(),
            previous: None,
            batch_start: None,
            batch_looks: 0,
            trace: Vec::new(),
            trace_stride: 1,
            looks: 0,
            decided: None,
        })
    }

    /// The parameters.
    pub fn sequential_parameters(&self) -> &SequentialParameters {
        &self.parameters
    }

    /// Every step's (first, last) pairs, earlier steps first, the current one last.
    fn spans(&self) -> Vec<[&Observation; 4]> {
        let mut out: Vec<[&Observation; 4]> = self
            .closed
            .iter()
            .map(|[a, b, c, d]| [a, b, c, d])
            .collect();
        if let (Some((b0, c0)), Some((b1, c1))) = (&self.reference, &self.last) {
            out.push([b0, c0, b1, c1]);
        }
        out
    }

    /// One segment per step of what `counting` counts, each with the traffic split it had.
    fn segments(&self, counting: Counting<'_>) -> Vec<Segment> {
        self.spans()
            .into_iter()
            .filter_map(|[b0, c0, b1, c1]| {
                let [eb, ec, tb, tc] = counting.counts((b0, c0), (b1, c1))?;
                (tb > 0.0 && tc > 0.0).then(|| Segment {
                    baseline: eb,
                    canary: ec,
                    canary_share: tc / (tb + tc),
                })
            })
            .collect()
    }

    /// Adds this look's (and, at a batch's end, this batch's) Pearson residual of what
    /// `counting` counts to the dispersion kept under `key`. Residuals are taken against the
    /// estimate before the look (half an event added to each arm, so that it stays finite),
    /// so that a fit cannot hide its own noise.
    fn track_dispersion(&mut self, key: &str, counting: Counting<'_>) {
        let segments = self.segments(counting);
        let estimate = segments.last().map(|last| {
            let (b, c) = segments
                .iter()
                .fold((0.5, 0.5), |(b, c), s| (b + s.baseline, c + s.canary));
            let share = last.canary_share;
            (c / b).ln() - (share / (1.0 - share)).ln()
        });
        let previous = self.previous.clone();
        self.add_term(key, 0, previous.as_ref(), counting, estimate);
        if self.batch_looks >= self.parameters.batch_scrapes {
            let start = self.batch_start.clone();
            self.add_term(key, 1, start.as_ref(), counting, estimate);
        }
    }

    /// Runs a rate-ratio test on what `counting` counts, its counts divided by the dispersion
    /// kept under `dispersion`. Worse is `θ > 1 + margin` when `higher_is_worse`, `θ < 1 /
    /// (1 + margin)` otherwise.
    #[allow(clippy::too_many_arguments)]
    fn rate_test(
        &mut self,
        dispersion: &str,
        row: &str,
        statistic: String,
        counting: Counting<'_>,
        alpha: f64,
        margin: f64,
        higher_is_worse: bool,
    ) -> Tested {
        let phi = self.dispersion_factor(dispersion);
        let scaled: Vec<Segment> = self
            .segments(counting)
            .iter()
            .map(|s| Segment {
                baseline: s.baseline / phi,
                canary: s.canary / phi,
                ..*s
            })
            .collect();
        let r = RateRatio::new(&scaled, self.parameters.prior_concentration);
        let (lo, hi) = r.interval(alpha);
        let edge = (1.0 + margin).ln();
        let standing = if higher_is_worse {
            if lo > edge {
                Standing::Worse
            } else if hi < edge {
                Standing::Within
            } else {
                Standing::Open
            }
        } else if hi < -edge {
            Standing::Worse
        } else if lo > -edge {
            Standing::Within
        } else {
            Standing::Open
        };
        let finite = |v: f64| v.is_finite().then(|| v.exp());
        Tested {
            row: row.to_owned(),
            standing,
            interval: AnytimeInterval {
                statistic,
                estimate: r.log_estimate().and_then(finite),
                lower: finite(lo),
                upper: finite(hi),
                margin: if higher_is_worse {
                    1.0 + margin
                } else {
                    1.0 / (1.0 + margin)
                },
                confidence: 1.0 - alpha,
            },
        }
    }

    /// How overdispersed a test's counts are: Pearson's χ² of the canary's share per scrape
    /// and per batch of scrapes against the share its current estimate predicts, per degree of
    /// freedom, each shrunk towards 1; the larger, never below 1. Independent requests give
    /// about 1; noise that moves one arm and not the other (per-arm autocorrelation,
    /// clustering) gives more, and the test then counts each event as `1/φ` of one
    /// (quasi-likelihood). Per scrape reacts within minutes; per batch also sees the part of
    /// the noise that lasts longer than a scrape.
    fn dispersion_factor(&self, key: &str) -> f64 {
        self.dispersion.get(key).map_or(1.0, Dispersion::factor)
    }

    /// Adds what happened between `from` and the latest pair to a test's χ² (`which`: 0 per
    /// scrape, 1 per batch).
    fn add_term(
        &mut self,
        key: &str,
        which: usize,
        from: Option<&(Observation, Observation)>,
        counting: Counting<'_>,
        estimate: Option<f64>,
    ) {
        let entry = self.dispersion.entry(key.to_owned()).or_default();
        let before = std::mem::replace(&mut entry.before[which], estimate);
        let (Some((b0, c0)), Some((b1, c1)), Some(d)) = (from, &self.last, before) else {
            return;
        };
        let Some([eb, ec, tb, tc]) = counting.counts((b0, c0), (b1, c1)) else {
            return;
        };
        let m = eb + ec;
        if m <= 0.0 || tb <= 0.0 || tc <= 0.0 {
            return;
        }
        let p = Segment {
            baseline: eb,
            canary: ec,
            canary_share: tc / (tb + tc),
        }
        .canary_probability(d.clamp(-20.0, 20.0));
        let r = (ec - m * p) / (m * p * (1.0 - p)).max(1e-12).sqrt();
        if which == 0 {
            let [x2, lagged, terms, last] = &mut entry.scrape;
            if *terms > 0.0 {
                *lagged += r * *last;
            }
            *x2 += r * r;
            *terms += 1.0;
            *last = r;
        } else {
            entry.batch[0] += r * r;
            entry.batch[1] += 1.0;
        }
    }

    fn assess_count(&mut self, i: usize, events: &str, per: &str) -> Finding {
        let spans = self.spans();
        let mut finding = empty_finding();
        let (mut traffic_b, mut traffic_c) = (0.0, 0.0);
        let (mut events_b, mut events_c) = (0.0, 0.0);
        for [b0, c0, b1, c1] in spans {
            let delta = |a: &Observation, z: &Observation, name: &str| -> Option<f64> {
                Some(z.counters.get(name)? - a.counters.get(name)?)
            };
            let (Some(tb), Some(tc)) = (delta(b0, b1, per), delta(c0, c1, per)) else {
                finding.no_data = Some(format!("no {per} counter in both arms"));
                return finding;
            };
            let (Some(eb), Some(ec)) = (delta(b0, b1, events), delta(c0, c1, events)) else {
                finding.no_data = Some(format!("no {events} counter in both arms"));
                return finding;
            };
            if [tb, tc, eb, ec].iter().any(|v| *v < 0.0) {
                finding.fault = Some(format!(
                    "a counter ({events} or {per}) went down between observations: a reset the source did not correct"
                ));
                return finding;
            }
            (traffic_b, traffic_c) = (traffic_b + tb, traffic_c + tc);
            (events_b, events_c) = (events_b + eb, events_c + ec);
        }
        let name = self.parameters.metrics[i].name().to_owned();
        let (alpha, margin) = (self.alphas[i], self.parameters.metrics[i].margin());
        if traffic_b < self.parameters.min_requests || traffic_c < self.parameters.min_requests {
            finding.no_data = Some(format!(
                "{} baseline and {} canary {per} since the warm-up; {} per arm are needed",
                crate::format::Num(traffic_b),
                crate::format::Num(traffic_c),
                crate::format::Num(self.parameters.min_requests)
            ));
        }
        self.track_dispersion(&name, Counting::Count { events, per });
        let tested = self.rate_test(
            &name,
            &name,
            format!("{events} per {per}, canary / baseline"),
            Counting::Count { events, per },
            alpha,
            margin,
            true,
        );
        let rate = |e: f64, t: f64| (t > 0.0).then(|| e / t * 100.0);
        finding.rows.push(row(
            &name,
            if per == names::REQUESTS { "%" } else { "" },
            Direction::LowerIsBetter,
            self.parameters.metrics[i].critical(),
            rate(events_b, traffic_b),
            rate(events_c, traffic_c),
            &tested,
            format!("increase({events}) / increase({per}) since the warm-up"),
        ));
        finding.tests.push(tested);
        finding
    }

    fn assess_latency(&mut self, i: usize, histogram: &str, quantiles: &[f64]) -> Finding {
        let spans = self.spans();
        let mut finding = empty_finding();
        // Per span: (baseline, canary) histograms of what happened in it.
        let mut diffs: Vec<(Histogram, Histogram)> = Vec::new();
        for [b0, c0, b1, c1] in spans {
            let since = |a: &Observation, z: &Observation| {
                z.histograms
                    .get(histogram)?
                    .since(a.histograms.get(histogram)?)
            };
            match (since(b0, b1), since(c0, c1)) {
                (Some(b), Some(c)) if b.buckets().len() == c.buckets().len() => diffs.push((b, c)),
                _ => {
                    let either = [b0, c0, b1, c1]
                        .iter()
                        .all(|o| o.histograms.contains_key(histogram));
                    if either {
                        finding.fault = Some(format!(
                            "the {histogram} histogram went down or changed its buckets between observations"
                        ));
                    } else {
                        finding.no_data = Some(format!("no {histogram} histogram in both arms"));
                    }
                    return finding;
                }
            }
        }
        let Some(bounds) = diffs
            .first()
            .map(|(b, _)| b.buckets().iter().map(|x| x.0).collect::<Vec<f64>>())
        else {
            finding.no_data = Some("no judged observations yet".into());
            return finding;
        };
        if diffs.iter().any(|(b, c)| {
            [b, c]
                .iter()
                .any(|h| h.buckets().iter().map(|x| x.0).ne(bounds.iter().copied()))
        }) {
            finding.fault = Some(format!("the {histogram} histogram changed its buckets"));
            return finding;
        }
        let name = self.parameters.metrics[i].name().to_owned();
        let critical = self.parameters.metrics[i].critical();
        let margin = self.parameters.metrics[i].margin();
        let finite_bounds = bounds.len() - 1;
        // Two tails at every finite bound, whichever are looked at.
        let alpha = self.alphas[i] / (2.0 * finite_bounds.max(1) as f64);
        let sum = |arm: usize| -> Histogram {
            let mut counts = vec![0.0; bounds.len()];
            for d in &diffs {
                let h = if arm == 0 { &d.0 } else { &d.1 };
                for (k, (_, c)) in h.buckets().iter().enumerate() {
                    counts[k] += c;
                }
            }
            Histogram::new(bounds.iter().copied().zip(counts).collect())
                .expect("sums of valid histograms with the same bounds")
        };
        let (hb, hc) = (sum(0), sum(1));
        let (total_b, total_c) = (hb.total(), hc.total());
        if total_b < self.parameters.min_requests || total_c < self.parameters.min_requests {
            finding.no_data = Some(format!(
                "{} baseline and {} canary requests in the {histogram} histogram since the warm-up; {} per arm are needed",
                crate::format::Num(total_b),
                crate::format::Num(total_c),
                crate::format::Num(self.parameters.min_requests)
            ));
        }
        let pooled: Vec<f64> = hb
            .buckets()
            .iter()
            .zip(hc.buckets())
            .map(|(b, c)| b.1 + c.1)
            .collect();
        let total = total_b + total_c;
        // Every bound's dispersion is tracked at every look, so a bound has its history when
        // the quantiles come to lie next to it.
        for k in 0..finite_bounds {
            let slow = true;
            self.track_dispersion(
                &format!("{name}/{k}"),
                Counting::Bound { histogram, k, slow },
            );
        }
        // A bound that brackets two quantiles is tested once.
        let mut done: BTreeMap<String, Tested> = BTreeMap::new();
        for &q in quantiles {
            let row_name = format!("{name}_p{}", quantile_label(q));
            let mut tests = Vec::new();
            if total > 0.0 {
                // The bounds that bracket the pooled q-quantile.
                let upper = (0..finite_bounds).find(|&k| pooled[k] / total >= q);
                let lower = match upper {
                    Some(0) => None,
                    Some(k) => Some(k - 1),
                    None => finite_bounds.checked_sub(1),
                };
                for k in [lower, upper].into_iter().flatten() {
                    let below = pooled[k] / total;
                    let slow = below >= 0.5;
                    let ms = crate::format::Num(bounds[k] * 1000.0);
                    let statistic = if slow {
                        format!("share of requests slower than {ms} ms, canary / baseline")
                    } else {
                        format!("share of requests at most {ms} ms, canary / baseline")
                    };
                    let key = format!("{name}/{k}/{}", if slow { "slow" } else { "fast" });
                    let mut tested = match done.get(&key) {
                        Some(t) => t.clone(),
                        None => self.rate_test(
                            &format!("{name}/{k}"),
                            &row_name,
                            statistic,
                            Counting::Bound { histogram, k, slow },
                            alpha,
                            margin,
                            slow,
                        ),
                    };
                    tested.row.clone_from(&row_name);
                    done.insert(key, tested.clone());
                    tests.push(tested);
                }
            }
            // The row shows the test nearest to "worse".
            let shown = tests
                .iter()
                .min_by(|a, b| {
                    a.standing
                        .cmp(&b.standing)
                        .then(adversity(b).total_cmp(&adversity(a)))
                })
                .cloned();
            let ms = |h: &Histogram| h.quantile(q).map(|s| s * 1000.0);
            let mut r = match &shown {
                Some(t) => row(
                    &row_name,
                    "ms",
                    Direction::LowerIsBetter,
                    critical,
                    ms(&hb),
                    ms(&hc),
                    t,
                    format!("histogram_quantile({q}) of the {histogram} histogram's increase since the warm-up"),
                ),
                None => no_data_row(&row_name, "ms", critical, "no requests"),
            };
            if shown.is_none() {
                r.status = ComparisonStatus::NoData;
            }
            finding.rows.push(r);
            finding.tests.extend(tests);
        }
        finding
    }

    fn assess_gauge(&mut self, i: usize, direction: Direction) -> Finding {
        let mut finding = empty_finding();
        let metric = self.parameters.metrics[i].clone();
        let (batch, min_sd) = (self.parameters.batch_scrapes, self.parameters.gauge_min_sd);
        let name = metric.name().to_owned();
        let margin = metric.margin();
        let alpha = self.alphas[i];
        let paired = self.paired[i].clone();
        let Some((mean, lo, hi)) = paired.interval(alpha, batch, min_sd) else {
            finding.no_data = Some(format!(
                "{} paired scrapes; two batches of {batch} are needed",
                paired.n
            ));
            finding.rows.push(no_data_row(
                &name,
                "",
                metric.critical(),
                "not enough paired scrapes yet",
            ));
            return finding;
        };
        let standing = match direction {
            Direction::HigherIsBetter if hi < -margin => Standing::Worse,
            Direction::HigherIsBetter if lo > -margin => Standing::Within,
            Direction::LowerIsBetter if lo > margin => Standing::Worse,
            Direction::LowerIsBetter if hi < margin => Standing::Within,
            _ => Standing::Open,
        };
        let tested = Tested {
            row: name.clone(),
            standing,
            interval: AnytimeInterval {
                statistic: "mean paired difference per scrape, canary − baseline".into(),
                estimate: Some(mean),
                lower: Some(lo),
                upper: Some(hi),
                margin: match direction {
                    Direction::HigherIsBetter => -margin,
                    Direction::LowerIsBetter => margin,
                },
                confidence: 1.0 - alpha,
            },
        };
        let (b, c) = (
            Some(paired.sum_baseline / paired.n),
            Some(paired.sum_canary / paired.n),
        );
        let mut r = row(
            &name,
            "",
            direction,
            metric.critical(),
            b,
            c,
            &tested,
            "paired difference of the gauge per scrape since the warm-up".into(),
        );
        // The ratio of a difference test says little; the interval carries the evidence.
        r.ratio = None;
        r.change_percent = None;
        finding.rows.push(r);
        finding.tests.push(tested);
        finding
    }

    /// Every metric's findings at this look.
    fn assess(&mut self) -> Vec<Finding> {
        let metrics = self.parameters.metrics.clone();
        metrics
            .iter()
            .enumerate()
            .map(|(i, m)| match m {
                SequentialMetric::Count { events, per, .. } => self.assess_count(i, events, per),
                SequentialMetric::Latency {
                    histogram,
                    quantiles,
                    ..
                } => self.assess_latency(i, histogram, quantiles),
                SequentialMetric::Gauge { direction, .. } => self.assess_gauge(i, *direction),
            })
            .collect()
    }

    /// The decision this look's findings call for, if any; `at_end` when the step's time is
    /// up.
    fn decide(&mut self, findings: Vec<Finding>, at_end: bool) -> Option<Evaluation> {
        let p = &self.parameters;
        // Each condition with the decision it calls for, to put the most decisive first.
        let mut fired: Vec<(RollbackDecision, Condition)> = Vec::new();
        let mut take = |d: RollbackDecision, rule: Rule, metric: &str, message: String| {
            fired.push((
                d,
                Condition {
                    rule,
                    metric: Some(metric.to_owned()),
                    message,
                },
            ));
        };
        let mut all_within = true;
        let mut unmeasured = Vec::new();
        let too_early = !at_end && self.judged_elapsed() < p.min_evidence;
        for (m, f) in p.metrics.iter().zip(&findings) {
            if let Some(fault) = &f.fault {
                take(
                    RollbackDecision::RollbackManual,
                    Rule::MissingData,
                    m.name(),
                    format!("{}: {fault}", m.name()),
                );
                all_within = false;
                continue;
            }
            for t in &f.tests {
                match t.standing {
                    Standing::Worse if too_early => all_within = false,
                    Standing::Worse => {
                        let (d, rule) = if m.critical() {
                            (RollbackDecision::RollbackAuto, Rule::RollbackThreshold)
                        } else {
                            (RollbackDecision::RollbackManual, Rule::WarningThreshold)
                        };
                        take(d, rule, &t.row, worse_message(&t.row, &t.interval));
                    }
                    Standing::Open => all_within = false,
                    Standing::Within => {}
                }
            }
            if f.no_data.is_some() || f.tests.is_empty() {
                all_within = false;
                if m.critical() {
                    unmeasured.push((m.name(), f.no_data.clone().unwrap_or_default()));
                }
            }
        }
        fired.sort_by_key(|(d, _)| d.rank());
        let decision = fired.first().map(|(d, _)| *d);
        let mut conditions: Vec<Condition> = fired.into_iter().map(|(_, c)| c).collect();
        let step_time = self.step_elapsed();
        let reason;
        let decision = match decision {
            Some(d) => {
                reason = conditions[0].message.clone();
                d
            }
            None if all_within && step_time >= p.min_duration => {
                reason = format!(
                    "every metric is within its margin with {}% anytime-valid confidence after {}",
                    crate::format::Num(100.0 * (1.0 - p.alpha)),
                    minutes(step_time)
                );
                RollbackDecision::Proceed
            }
            None if !at_end => return None,
            None if unmeasured.is_empty() => {
                reason = format!(
                    "no metric was found worse than its margin in {}, with every critical metric measured",
                    minutes(step_time)
                );
                RollbackDecision::Proceed
            }
            None => {
                for (metric, why) in &unmeasured {
                    conditions.push(Condition {
                        rule: Rule::InsufficientSamples,
                        metric: Some((*metric).to_owned()),
                        message: format!("insufficient data for {metric}: {why}"),
                    });
                }
                reason = format!(
                    "insufficient data after {}: {}",
                    minutes(step_time),
                    conditions[0].message
                );
                RollbackDecision::RollbackManual
            }
        };
        Some(self.evaluation(decision, reason, conditions, findings))
    }

    fn evaluation(
        &self,
        decision: RollbackDecision,
        reason: String,
        conditions: Vec<Condition>,
        findings: Vec<Finding>,
    ) -> Evaluation {
        let requests = |arm: usize| -> Option<f64> {
            let mut total = None::<f64>;
            for s in self.spans() {
                let (a, z) = if arm == 0 { (s[0], s[2]) } else { (s[1], s[3]) };
                let d = z.counters.get(names::REQUESTS)? - a.counters.get(names::REQUESTS)?;
                total = Some(total.unwrap_or(0.0) + d);
            }
            total
        };
        let version = |arm: usize| {
            self.last
                .as_ref()
                .map(|(b, c)| if arm == 0 { b } else { c })
                .map(|o| o.version.as_str().to_owned())
                .unwrap_or_default()
        };
        Evaluation {
            decision,
            primary_reason: reason,
            triggered_conditions: conditions,
            comparisons: findings.into_iter().flat_map(|f| f.rows).collect(),
            recommendation: super::peer::recommendation(decision).into(),
            baseline_version: version(0),
            canary_version: version(1),
            baseline_samples: requests(0),
            canary_samples: requests(1),
            min_sample_count: self.parameters.min_requests,
            warnings: Vec::new(),
        }
    }

    /// Time since the first judged observation of the run.
    fn judged_elapsed(&self) -> Duration {
        let first = self
            .closed
            .first()
            .map(|c| &c[1])
            .or(self.reference.as_ref().map(|r| &r.1));
        match (first, &self.last) {
            (Some(a), Some((_, z))) => (z.at - a.at).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    fn step_elapsed(&self) -> Duration {
        match (&self.reference, &self.last) {
            (Some((_, a)), Some((_, z))) => (z.at - a.at).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    /// Keeps the look's intervals for the report, every `trace_stride`-th look.
    fn record(&mut self, findings: &[Finding]) {
        self.looks += 1;
        if !self.looks.is_multiple_of(self.trace_stride) {
            return;
        }
        let seconds = match (self.first_at, &self.last) {
            (Some(a), Some((_, c))) => (c.at - a).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        for f in findings {
            for t in &f.tests {
                self.trace.push(SequencePoint {
                    seconds,
                    metric: t.row.clone(),
                    interval: t.interval.clone(),
                });
            }
        }
        if self.trace.len() > TRACE_CAPACITY {
            // Keep every other look: the trace's length stays bounded, its span complete.
            let mut times: Vec<f64> = self.trace.iter().map(|p| p.seconds).collect();
            times.dedup();
            let keep: std::collections::BTreeSet<u64> =
                times.iter().step_by(2).map(|t| t.to_bits()).collect();
            self.trace.retain(|p| keep.contains(&p.seconds.to_bits()));
            self.trace_stride = self.trace_stride.saturating_mul(2);
        }
    }

    fn conclude(&mut self, at_end: bool) -> Option<Evaluation> {
        if self.reference.is_none() {
            if !at_end {
                return None;
            }
            let e = self.evaluation(
                RollbackDecision::RollbackManual,
                if self.closed.is_empty() {
                    "insufficient data: no observation after the warm-up".into()
                } else {
                    "insufficient data: no observation of both arms in this step".into()
                },
                vec![Condition {
                    rule: Rule::InsufficientSamples,
                    metric: None,
                    message: format!(
                        "no observation of both arms at least {} into the run",
                        minutes(self.parameters.warmup)
                    ),
                }],
                Vec::new(),
            );
            self.decided = Some(e.clone());
            return Some(e);
        }
        let findings = self.assess();
        if self.batch_looks >= self.parameters.batch_scrapes {
            self.batch_start = self.last.clone();
            self.batch_looks = 0;
        }
        self.record(&findings);
        let e = self.decide(findings, at_end)?;
        self.decided = Some(e.clone());
        Some(e)
    }
}

fn empty_finding() -> Finding {
    Finding {
        rows: Vec::new(),
        tests: Vec::new(),
        no_data: None,
        fault: None,
    }
}

/// How far a test's interval lies on the worse side of its margin, in log terms.
fn adversity(t: &Tested) -> f64 {
    let i = &t.interval;
    let (Some(lo), Some(hi)) = (i.lower, i.upper) else {
        return f64::NEG_INFINITY;
    };
    if i.margin >= 1.0 {
        (lo / i.margin).ln()
    } else {
        (i.margin / hi).ln()
    }
}

fn quantile_label(q: f64) -> String {
    let pct = q * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{}", pct.round())
    } else {
        format!("{pct}").replace('.', "_")
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        format!("{} s", crate::format::Num(s))
    } else {
        format!("{} min", crate::format::Num((s / 6.0).round() / 10.0))
    }
}

fn worse_message(row: &str, i: &AnytimeInterval) -> String {
    let n = |v: Option<f64>| {
        v.map(|x| crate::format::Num(x).to_string())
            .unwrap_or_else(|| "unbounded".into())
    };
    format!(
        "{row} is worse than its margin: {} in [{}, {}] at {}% anytime-valid confidence, margin {}",
        i.statistic,
        n(i.lower),
        n(i.upper),
        crate::format::Num(100.0 * i.confidence),
        crate::format::Num(i.margin)
    )
}

#[allow(clippy::too_many_arguments)]
fn row(
    name: &str,
    unit: &str,
    direction: Direction,
    critical: bool,
    baseline: Option<f64>,
    canary: Option<f64>,
    t: &Tested,
    query: String,
) -> MetricComparison {
    let ratio = match (baseline, canary) {
        (Some(b), Some(c)) if b > 0.0 && b.is_finite() && c.is_finite() => Some(c / b),
        _ => None,
    };
    MetricComparison {
        metric: name.to_owned(),
        unit: unit.to_owned(),
        direction,
        criticality: if critical {
            Criticality::Critical
        } else {
            Criticality::NonCritical
        },
        baseline: baseline.filter(|v| v.is_finite()),
        canary: canary.filter(|v| v.is_finite()),
        ratio,
        change_percent: ratio.map(|r| (r - 1.0) * 100.0),
        status: match t.standing {
            Standing::Worse => ComparisonStatus::Degraded,
            Standing::Within => ComparisonStatus::Stable,
            Standing::Open => ComparisonStatus::Stable,
        },
        rollback_threshold: Some(t.interval.margin),
        warning_threshold: None,
        proceed_tolerance: t.interval.margin,
        floor: 0.0,
        floor_applied: false,
        no_data_reason: None,
        baseline_query: Some(query.clone()),
        canary_query: Some(query),
        interval: Some(t.interval.clone()),
    }
}

fn no_data_row(name: &str, unit: &str, critical: bool, why: &str) -> MetricComparison {
    MetricComparison {
        metric: name.to_owned(),
        unit: unit.to_owned(),
        direction: Direction::LowerIsBetter,
        criticality: if critical {
            Criticality::Critical
        } else {
            Criticality::NonCritical
        },
        baseline: None,
        canary: None,
        ratio: None,
        change_percent: None,
        status: ComparisonStatus::NoData,
        rollback_threshold: None,
        warning_threshold: None,
        proceed_tolerance: 0.0,
        floor: 0.0,
        floor_applied: false,
        no_data_reason: Some(why.to_owned()),
        baseline_query: None,
        canary_query: None,
        interval: None,
    }
}

impl Judge for SequentialJudge {
    fn name(&self) -> &str {
        "sequential"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Continuous {
            first: self.parameters.warmup,
        }
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::to_value(&self.parameters).unwrap_or_default()
    }

    fn observe(&mut self, baseline: &Observation, canary: &Observation) -> Verdict {
        if let Some(e) = &self.decided {
            return Verdict::Decided(Box::new(e.clone()));
        }
        let first = *self.first_at.get_or_insert(canary.at);
        let elapsed = (canary.at - first).to_std().unwrap_or_default();
        if elapsed < self.parameters.warmup {
            return Verdict::Continue;
        }
        if self.reference.is_none() {
            self.reference = Some((baseline.clone(), canary.clone()));
        }
        self.previous = self.last.replace((baseline.clone(), canary.clone()));
        if self.batch_start.is_none() {
            self.batch_start = self.reference.clone();
        }
        self.batch_looks += 1;
        let batch = self.parameters.batch_scrapes;
        for (i, m) in self.parameters.metrics.iter().enumerate() {
            if let SequentialMetric::Gauge { gauge, .. } = m {
                if let (Some(b), Some(c)) = (baseline.gauges.get(gauge), canary.gauges.get(gauge)) {
                    if b.is_finite() && c.is_finite() {
                        self.paired[i].push(*b, *c, batch);
                    }
                }
            }
        }
        let at_end = self.step_elapsed() >= self.parameters.max_duration;
        match self.conclude(at_end) {
            Some(e) => Verdict::Decided(Box::new(e)),
            None => Verdict::Continue,
        }
    }

    fn earliest_decision(&self) -> Duration {
        let p = &self.parameters;
        p.warmup + p.min_evidence.min(p.min_duration)
    }

    fn finish(&mut self) -> Evaluation {
        if let Some(e) = &self.decided {
            return e.clone();
        }
        self.conclude(true)
            .expect("the end of a run always decides")
    }

    fn resume(&mut self) -> bool {
        match &self.decided {
            Some(e) if e.decision == RollbackDecision::Proceed => {}
            _ => return false,
        }
        self.decided = None;
        self.batch_start = None;
        self.batch_looks = 0;
        self.previous = None;
        if let (Some((b0, c0)), Some((b1, c1))) = (self.reference.take(), self.last.take()) {
            self.closed.push([b0, c0, b1, c1]);
        }
        true
    }

    fn sequence(&self) -> Vec<SequencePoint> {
        self.trace.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_traffic_catches_smaller_regressions() {
        let at = |minutes: f64| {
            // The guide's traffic: 39.6 and 4.4 requests a second, 1 % errors.
            detectable_ratio(
                0.004,
                0.1,
                100.0,
                0.396 * 60.0 * minutes,
                0.044 * 60.0 * minutes,
            )
            .unwrap()
        };
        let (ten, thirty, sixty) = (at(10.0), at(30.0), at(60.0));
        assert!(
            ten > thirty && thirty > sixty && sixty > 1.1,
            "{ten} {thirty} {sixty}"
        );
        // Half an hour of the guide's traffic catches a doubling of the error rate.
        assert!(thirty < 2.0, "{thirty}");
        assert_eq!(detectable_ratio(0.004, 0.1, 100.0, 0.0, 10.0), None);
    }

    #[test]
    fn the_most_decisive_condition_comes_first_and_gives_the_reason() {
        use crate::test_util::{steady_observations, HEALTHY_SHARES};
        use chrono::TimeZone;
        let start = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let (d, step) = (Duration::from_secs(1800), Duration::from_secs(15));
        let baseline = steady_observations("v1", 400.0, 0.01, HEALTHY_SHARES, start, d, step);
        let mut canary = steady_observations("v2", 100.0, 0.05, HEALTHY_SHARES, start, d, step);
        // At the first look allowed to find anything worse (2 minutes of warm-up and 4 of
        // evidence, 15 s apart: look 24) the canary's latency histogram goes down: a fault on
        // latency (manual review), listed before the errors, which call for a rollback.
        let broken = Histogram::new(vec![(0.1, 0.0), (f64::INFINITY, 0.0)]).unwrap();
        for o in canary.iter_mut().skip(24) {
            o.histograms.insert(names::LATENCY.into(), broken.clone());
        }
        let mut judge = SequentialJudge::new(SequentialParameters::default()).unwrap();
        let mut last = None;
        for (b, c) in baseline.iter().zip(&canary) {
            if let Verdict::Decided(e) = judge.observe(b, c) {
                last = Some(*e);
                break;
            }
        }
        let e = last.expect("a decision");
        assert_eq!(
            e.decision,
            RollbackDecision::RollbackAuto,
            "{}",
            e.primary_reason
        );
        assert_eq!(e.triggered_conditions[0].rule, Rule::RollbackThreshold);
        assert!(
            e.primary_reason.starts_with("error_rate"),
            "{}",
            e.primary_reason
        );
        assert!(e.fired(Rule::MissingData), "the fault is still listed");
    }

    #[test]
    fn alpha_is_split_as_documented() {
        let p = SequentialParameters::default();
        // 80 % of 0.01 over two critical metrics; the rest to the one other.
        assert!((p.test_alpha("error_rate", 7).unwrap() - 0.004).abs() < 1e-12);
        assert!((p.test_alpha("latency", 7).unwrap() - 0.004 / 14.0).abs() < 1e-12);
        assert!((p.test_alpha("model_confidence", 7).unwrap() - 0.002).abs() < 1e-12);
        assert_eq!(p.test_alpha("nope", 7), None);
    }

    #[test]
    fn parameters_are_checked() {
        let bad = |p: SequentialParameters| SequentialJudge::new(p).is_err();
        let d = SequentialParameters::default;
        assert!(bad(SequentialParameters { alpha: 0.0, ..d() }));
        assert!(bad(SequentialParameters {
            alpha: f64::NAN,
            ..d()
        }));
        assert!(bad(SequentialParameters {
            batch_scrapes: 1,
            ..d()
        }));
        assert!(bad(SequentialParameters {
            metrics: Vec::new(),
            ..d()
        }));
        assert!(bad(SequentialParameters {
            min_duration: Duration::from_secs(7200),
            ..d()
        }));
        let mut twice = d();
        twice.metrics.push(twice.metrics[0].clone());
        assert!(bad(twice));
        let mut no_margin = d();
        if let SequentialMetric::Count { margin, .. } = &mut no_margin.metrics[1] {
            *margin = f64::INFINITY;
        }
        assert!(bad(no_margin));
        assert!(!bad(d()));
    }
}
