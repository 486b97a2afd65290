//! The sequential, anytime-valid judge.
//!
//! One file per job: [`parameters`] (what is tested, and how hard), [`counts`] (rate tests
//! and their dispersion), [`latency`] (histogram bounds), [`gauge`] (paired differences),
//! [`decision`] (a look's findings to a verdict) and [`evidence`] (the trace and the rows).

mod counts;
mod decision;
mod evidence;
mod gauge;
mod latency;
mod parameters;
mod pods;
mod power;

pub use parameters::{
    detectable_ratio, detectable_ratio_with_pods, SequentialMetric, SequentialParameters,
};

use counts::Dispersion;
use evidence::{minutes, no_data_row, pending_row, row, worse_message};
use gauge::Paired;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Judge, Schedule, SequencePoint, Verdict};
use crate::error::Result;
use crate::observation::Observation;
use crate::policy::{AnytimeInterval, Evaluation, MetricComparison, RollbackDecision};

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

/// One test's result at a look.
#[derive(Clone, Debug)]
struct Tested {
    /// The row's name, e.g. `latency_p99`.
    row: String,
    standing: Standing,
    interval: AnytimeInterval,
    /// For an arm test with pods: what its power statement needs.
    power: Option<counts::PowerQuestion>,
    /// For an arm test: what it would have caught at the traffic seen.
    seen: Option<power::Seen>,
    /// Worse, with the test's confidence, than what matters (a gauge below 80 % of
    /// production's): the guide's automatic-rollback trigger, critical metric or not.
    beyond_matters: bool,
    /// For an arm's rate test, once a step could promote: the worst regression (a log ratio
    /// of its statistic, positive in the worse direction) its counts do not exclude at the
    /// promotion risk, however often judged.
    reach: Option<f64>,
    /// For a count: the floor its rate is surely below what matters times, if so (a canary
    /// with no errors at all is cleared against the floor, not against production's rate).
    floor_excluded: Option<f64>,
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
    /// Evidence is coming but is not enough to test yet (a gauge's first batches): unlike a
    /// metric without data, it holds an early promotion back.
    waiting: bool,
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
///   confidence sequence for `θ` ([`RateRatio`](crate::stats::anytime::RateRatio)).
/// - **Latency** ([`SequentialMetric::Latency`]): at a histogram bucket bound the cumulative
///   count is exact, so "requests slower than the bound" is a count with the histogram's total
///   as traffic: the same test, on the share of each arm's requests beyond the bound (a
///   time-uniform band on each arm's CDF at the bounds, taken relative to each other). For each
///   quantile, the bounds that bracket it (from both arms' pooled counts) are judged. α is
///   split over every bound and both tails (Bonferroni), so choosing the bounds from the data
///   costs no validity.
/// - **Gauges** ([`SequentialMetric::Gauge`]): the paired difference per scrape; its mean has a
///   confidence sequence from Robbins' normal-mixture boundary ([`normal_mixture_radius`](crate::stats::anytime::normal_mixture_radius)) with
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
/// At every observation, after the warm-up (counts are judged from the run's first
/// observation, warm-up included: errors in a warm-up are not excused by it):
///
/// - **Worse**: a critical metric worse than its margin rolls back, another goes to manual
///   review. On less than `min_evidence` of judged time only a catastrophe decides: a count
///   whose estimated ratio is at least `catastrophe_count_ratio`, or a latency metric with a
///   minute of evidence whose every quantile is at least `catastrophe_latency_ratio` times
///   production's (a warm-up that is slow for its first seconds is excluded, or too short to
///   move every quantile for a minute).
/// - **Within**: every metric within its margin (each arm past `min_requests`, and
///   `min_duration` into the step) proceeds early.
/// - **Powered**: nothing worse than its margin, every critical metric measured, `min_duration`
///   into the step, and every metric's tests would have caught the regression that
///   [`matters`](SequentialParameters::matters) with 95 % power at the traffic seen: proceeds,
///   and says so ("would have caught error_rate × 1.9 or worse with 95 % power"). This is a
///   power statement at the observed traffic, not an anytime-valid proof that the canary is
///   within its margin: a regression smaller than what matters can pass. A metric may stand in
///   for power in two other ways: its counts exclude what matters at `promotion_risk`; or what
///   matters is **out of reach**: even at `max_duration`, at the rate evidence comes, it would
///   not be caught, and waiting no longer sharpens the smallest regression the row catches by
///   `waiting_gain` (10 % of its log), neither projected to the step's end nor as seen since
///   the look with half the evidence (the pods' spread, which the projection holds fixed,
///   settles too). The reason names each such row with what it catches now and at best.
/// - otherwise it continues.
///
/// At `max_duration` (or [`Judge::finish`]) it proceeds if no metric was found worse and every
/// critical metric was measured (`min_requests` of traffic in each arm, two batches of a
/// gauge), and goes to manual review if not; the report says what was not reachable. A
/// counter that goes down (a reset the source did not correct) is a fault: manual review,
/// never evidence.
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
    /// The run's first pair: counts are judged from here, warm-up included (errors in a
    /// warm-up are not excused by it).
    origin: Option<(Observation, Observation)>,
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
    /// The latest look's rows: each metric as it stands.
    progress: Vec<MetricComparison>,
    looks: u32,
    decided: Option<Evaluation>,
    /// This step's looks that asked whether what matters is out of reach: the judged seconds
    /// and the smallest regression caught (`|ln|`), per row not yet cleared on its metric's
    /// scale or, where that shows none, per test on its own statistic; to see whether
    /// doubling the evidence still sharpened it.
    limits: Vec<(f64, BTreeMap<String, f64>)>,
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
            origin: None,
            closed: Vec::new(),
            reference: None,
            last: None,
            dispersion: BTreeMap::new(),
            previous: None,
            batch_start: None,
            batch_looks: 0,
            trace: Vec::new(),
            trace_stride: 1,
            progress: Vec::new(),
            looks: 0,
            decided: None,
            limits: Vec::new(),
        })
    }

    /// The parameters.
    pub fn sequential_parameters(&self) -> &SequentialParameters {
        &self.parameters
    }

    /// [`spans`](Self::spans) for counts: the first step starts at the run's first pair, and
    /// during the warm-up that is the one span.
    fn count_spans(&self) -> Vec<[&Observation; 4]> {
        let mut out = self.spans();
        if let Some((b0, c0)) = &self.origin {
            match (out.first_mut(), &self.last) {
                (Some(first), _) => {
                    first[0] = b0;
                    first[1] = c0;
                }
                (None, Some((b1, c1))) => out.push([b0, c0, b1, c1]),
                (None, None) => {}
            }
        }
        out
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
}

fn empty_finding() -> Finding {
    Finding {
        rows: Vec::new(),
        tests: Vec::new(),
        no_data: None,
        fault: None,
        waiting: false,
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
        if self.origin.is_none() {
            self.origin = Some((baseline.clone(), canary.clone()));
        }
        let elapsed = (canary.at - first).to_std().unwrap_or_default();
        if elapsed < self.parameters.warmup {
            // Only a catastrophe in the counts decides during the warm-up.
            self.last = Some((baseline.clone(), canary.clone()));
            return match self.conclude(false) {
                Some(e) => Verdict::Decided(Box::new(e)),
                None => Verdict::Continue,
            };
        }
        if self.reference.is_none() {
            self.reference = Some((baseline.clone(), canary.clone()));
            self.last = None;
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

    /// Its ordinary evidence: a catastrophe may decide sooner, but an arm without traffic
    /// is not a reason to stop before this.
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
        self.limits.clear();
        if let (Some((b0, c0)), Some((b1, c1))) = (self.reference.take(), self.last.take()) {
            self.closed.push([b0, c0, b1, c1]);
        }
        true
    }

    fn sequence(&self) -> Vec<SequencePoint> {
        self.trace.clone()
    }

    fn progress(&self) -> Vec<MetricComparison> {
        self.progress.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{names, Histogram};
    use crate::policy::Rule;

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
    fn where_the_pods_landed_makes_a_regression_harder_to_catch() {
        let d = |placement_sd: f64, allowance: f64, higher_is_worse: bool| {
            super::parameters::Detection {
                alpha: 0.004,
                edge: 1.1f64.ln() + allowance,
                k: 100.0,
                baseline_events: 700.0,
                canary_events: 80.0,
                placement_sd,
                higher_is_worse,
            }
            .log_ratio()
            .unwrap()
        };
        // Without pods it is the power analysis itself.
        let plain = detectable_ratio(0.004, 0.1, 100.0, 700.0, 80.0).unwrap();
        assert!((d(0.0, 0.0, true) - plain.ln()).abs() < 1e-9);
        // Placement noise and its allowance each add to what is needed, in both directions.
        let (noisy, allowed) = (d(0.1, 0.0, true), d(0.1, 0.3, true));
        assert!(
            d(0.0, 0.0, true) < noisy && noisy < allowed,
            "{noisy} {allowed}"
        );
        assert!(allowed > 1.1f64.ln() + 0.3 + 1.6 * 0.1, "{allowed}");
        let lower = d(0.1, 0.3, false);
        assert!(lower > 1.1f64.ln() + 0.3 && lower.is_finite(), "{lower}");
    }

    #[test]
    fn the_most_decisive_condition_comes_first_and_gives_the_reason() {
        use crate::test_util::{steady_observations, HEALTHY_SHARES};
        use chrono::TimeZone;
        let start = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let (d, step) = (Duration::from_secs(1800), Duration::from_secs(15));
        let baseline = steady_observations("v1", 400.0, 0.01, HEALTHY_SHARES, start, d, step);
        let mut canary = steady_observations("v2", 100.0, 0.025, HEALTHY_SHARES, start, d, step);
        // At the first look allowed to find anything worse (2 minutes of warm-up and 4 of
        // evidence, 15 s apart: look 24) the canary's latency histogram goes down: a fault on
        // latency (manual review), listed before the errors, which call for a rollback (× 2.5:
        // not a catastrophe, so nothing decided earlier).
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
        for ratio in [1.0, 0.5, f64::NAN] {
            assert!(bad(SequentialParameters {
                catastrophe_count_ratio: ratio,
                ..d()
            }));
            assert!(bad(SequentialParameters {
                catastrophe_latency_ratio: ratio,
                ..d()
            }));
        }
        let matters = |name: &str, ratio: f64| {
            let mut p = d();
            p.matters.insert(name.into(), ratio);
            p
        };
        // What matters names a metric of the judge and lies in its worse direction.
        assert!(bad(matters("latency_p42", 1.5)));
        assert!(bad(matters("error_rate", 0.5)));
        assert!(bad(matters("error_rate", f64::INFINITY)));
        assert!(bad(matters("model_confidence", 1.2)));
        assert!(bad(matters("model_confidence", 1.0)));
        assert!(!bad(matters("model_confidence", 0.9)));
        assert!(!bad(matters("error_rate", 1.5)));
        assert!(!bad(d()));
    }

    #[test]
    fn what_matters_defaults_to_the_policys_thresholds_and_the_latency_margin() {
        let p = SequentialParameters::default();
        let at = |name: &str| {
            let i = p.metrics.iter().position(|m| m.name() == name).unwrap();
            p.matters_for(i)
        };
        assert_eq!(at("error_rate"), 2.0);
        assert_eq!(at("model_confidence"), 0.8);
        let margin = p.metrics[0].margin();
        assert_eq!(at("latency"), (1.0 + margin).min(1.5));
        let mut q = p.clone();
        q.matters.insert("error_rate".into(), 1.5);
        let i = q
            .metrics
            .iter()
            .position(|m| m.name() == "error_rate")
            .unwrap();
        assert_eq!(q.matters_for(i), 1.5);
    }
}
