//! Judges: deciders fed evidence over time.
//!
//! A [`Judge`] judges one canary run. It is fed a pair of [`Observation`]s (baseline and
//! canary, same instant) as time passes and answers each time: continue, or a decision with its
//! [`Evaluation`]. When the run's maximum duration is reached it is told so, and must decide.
//!
//! [`ThresholdJudge`] is the guide's [`RollbackPolicy`] as a judge: one look after the warm-up,
//! over the analysis window, with its point estimates derived from the observations exactly as
//! Prometheus's `increase` and `histogram_quantile` would derive them.
//!
//! The peer judges are what our users would otherwise run, implemented faithfully so that the
//! judge-quality benchmark compares like with like and so that a team migrating from one can
//! keep its judgement: [`FlaggerJudge`], [`ArgoJudge`] and [`KayentaJudge`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::CanaryMetrics;
use crate::observation::{names, Observation};
use crate::policy::{AnytimeInterval, Evaluation, RollbackPolicy};

mod argo;
mod flagger;
mod kayenta;
mod peer;
pub mod replay;
mod sequential;

pub use argo::{ArgoJudge, ArgoParameters};
pub use flagger::{FlaggerJudge, FlaggerParameters};
pub use kayenta::{KayentaJudge, KayentaMetric, KayentaParameters};
pub use sequential::{
    detectable_ratio, detectable_ratio_with_pods, SequentialJudge, SequentialMetric,
    SequentialParameters,
};

/// When a judge looks at the evidence, counted from the run's first observation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Schedule {
    /// One look, at the first observation at least `after` into the run.
    Once {
        /// When the look is due.
        #[serde(with = "crate::seconds")]
        after: Duration,
    },
    /// A look at every observation from `first` on.
    Continuous {
        /// When the first look is due.
        #[serde(with = "crate::seconds")]
        first: Duration,
    },
}

/// What a judge answers after an observation.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not decided yet: feed more observations.
    Continue,
    /// Decided, with the evidence.
    Decided(Box<Evaluation>),
}

/// Judges one canary run from observations over time.
///
/// # Contract
///
/// - **Feeding.** [`observe`](Judge::observe) gets the baseline's and the canary's observation
///   of one instant, in time order. A judge keeps what it needs of them.
/// - **Deciding.** Once a judge has decided it answers the same decision to every later call,
///   `finish` included.
/// - **The end.** [`finish`](Judge::finish) is called when the run's maximum duration is
///   reached. It always decides, and evidence too thin to judge is `RollbackManual` ("insufficient
///   data"), never `Proceed`.
/// - **Description.** A judge has a [`name`](Judge::name), a [`schedule`](Judge::schedule), and
///   [`parameters`](Judge::parameters) that serialize, so reports and benchmarks can say exactly
///   what judged.
pub trait Judge: Send {
    /// A short name for reports and benchmarks, e.g. `threshold`.
    fn name(&self) -> &str;
    /// When it looks.
    fn schedule(&self) -> Schedule;
    /// Its parameters, as they serialize.
    fn parameters(&self) -> serde_json::Value;
    /// Takes one instant's observations and answers.
    fn observe(&mut self, baseline: &Observation, canary: &Observation) -> Verdict;
    /// The maximum duration is reached: the decision.
    fn finish(&mut self) -> Evaluation;

    /// The run goes on at a new traffic weight (progressive delivery) after this judge
    /// proceeded. A judge whose evidence stays valid across steps forgets its `Proceed`, keeps
    /// its evidence, and answers true; the default answers false and the validator starts a
    /// fresh judge for the next step.
    fn resume(&mut self) -> bool {
        false
    }

    /// The earliest a judge decides on ordinary evidence, counted from its first observation:
    /// a run judged over less continues unless its evidence is overwhelming (a judge may roll
    /// a catastrophe back sooner). The default is its schedule's first look.
    fn earliest_decision(&self) -> Duration {
        match self.schedule() {
            Schedule::Once { after } => after,
            Schedule::Continuous { first } => first,
        }
    }

    /// Its evidence over time, for reports: each judged statistic's estimate and interval at
    /// the looks it kept. Empty for judges that decide from one look.
    fn sequence(&self) -> Vec<SequencePoint> {
        Vec::new()
    }

    /// While undecided: each metric as it stands at the latest look (an `open` row is one the
    /// judge cannot tell yet, with why). Empty for judges that decide from one look or keep
    /// no such state.
    fn progress(&self) -> Vec<crate::policy::MetricComparison> {
        Vec::new()
    }
}

/// One statistic's anytime-valid interval at one look, for the report's evidence over time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequencePoint {
    /// Seconds since the run's first observation.
    pub seconds: f64,
    /// The metric, e.g. `latency_p99`.
    pub metric: String,
    /// The statistic's estimate, interval and margin then.
    pub interval: AnytimeInterval,
}

/// Makes a fresh [`Judge`] for each canary run (a judge is stateful), so a validator can run
/// any judge. Parameters types implement it: `Arc::new(ThresholdParameters::default())`.
pub trait JudgeFactory: Send + Sync + std::fmt::Debug {
    /// The judges' name, e.g. `threshold`.
    fn name(&self) -> &str;
    /// A judge for one run, its parameters checked.
    fn start(&self) -> Result<Box<dyn Judge>>;
}

impl JudgeFactory for ThresholdParameters {
    fn name(&self) -> &str {
        "threshold"
    }

    fn start(&self) -> Result<Box<dyn Judge>> {
        Ok(Box::new(ThresholdJudge::new(self.clone())?))
    }
}

/// The parameters of [`ThresholdJudge`]; the defaults are the guide's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdParameters {
    /// The policy that decides.
    pub policy: RollbackPolicy,
    /// How long after the run starts the one look is due (the guide's 10 minutes).
    #[serde(with = "crate::seconds")]
    pub warmup: Duration,
    /// The window the look's rates and quantiles are taken over (5 minutes).
    #[serde(with = "crate::seconds")]
    pub window: Duration,
}

impl Default for ThresholdParameters {
    fn default() -> Self {
        ThresholdParameters {
            policy: RollbackPolicy::default(),
            warmup: Duration::from_secs(600),
            window: Duration::from_secs(300),
        }
    }
}

/// The guide's policy as a judge: one look at the first observation at least `warmup` into the
/// run, over the last `window`.
///
/// Its point estimates come from the difference between the observation it looks at and the
/// latest one at or before the window's start: the requests in between are the sample count,
/// their rate the request rate, errors over requests the error rate, the latency histogram's
/// difference gives p50/p95/p99 by Prometheus's `histogram_quantile` interpolation, and the
/// confidence is the mean of the gauge over the window (as `avg_over_time`). When observations
/// fall on the window's edges (as scrapes do when the window is a multiple of the interval),
/// these are exactly what Prometheus's `increase`, `rate` and `histogram_quantile` answer;
/// otherwise Prometheus extrapolates to the edges and this does not (see
/// [`crate::promql`]).
///
/// ```
/// use canary_core::judge::{Judge, ThresholdJudge, ThresholdParameters, Verdict};
/// let mut judge = ThresholdJudge::new(ThresholdParameters::default())?;
/// assert_eq!(judge.name(), "threshold");
/// // No evidence at all: the end of the run is manual review, never a promotion.
/// let e = judge.finish();
/// assert_eq!(e.decision, canary_core::RollbackDecision::RollbackManual);
/// # Ok::<_, canary_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ThresholdJudge {
    parameters: ThresholdParameters,
    baseline: Vec<Observation>,
    canary: Vec<Observation>,
    decided: Option<Evaluation>,
}

impl ThresholdJudge {
    /// A judge with `parameters`, checked: a valid policy and a window of at least a second.
    pub fn new(parameters: ThresholdParameters) -> Result<Self> {
        parameters.policy.validate()?;
        if parameters.window < Duration::from_secs(1) {
            return Err(Error::InvalidConfig {
                field: "window".into(),
                reason: "must be at least 1 s".into(),
            });
        }
        Ok(ThresholdJudge {
            parameters,
            baseline: Vec::new(),
            canary: Vec::new(),
            decided: None,
        })
    }

    /// The parameters.
    pub fn threshold_parameters(&self) -> &ThresholdParameters {
        &self.parameters
    }

    fn decide(&mut self) -> Evaluation {
        let window = self.parameters.window;
        let b = derive_metrics(&self.baseline, window);
        let c = derive_metrics(&self.canary, window);
        let e = self.parameters.policy.evaluate(&b, &c);
        self.decided = Some(e.clone());
        e
    }
}

impl Judge for ThresholdJudge {
    fn name(&self) -> &str {
        "threshold"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Once {
            after: self.parameters.warmup,
        }
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::to_value(&self.parameters).unwrap_or_default()
    }

    fn observe(&mut self, baseline: &Observation, canary: &Observation) -> Verdict {
        if let Some(e) = &self.decided {
            return Verdict::Decided(Box::new(e.clone()));
        }
        self.baseline.push(baseline.clone());
        self.canary.push(canary.clone());
        let started = self.canary[0].at;
        let elapsed = (canary.at - started).to_std().unwrap_or_default();
        if elapsed >= self.parameters.warmup {
            Verdict::Decided(Box::new(self.decide()))
        } else {
            Verdict::Continue
        }
    }

    fn finish(&mut self) -> Evaluation {
        match &self.decided {
            Some(e) => e.clone(),
            None => self.decide(),
        }
    }
}

/// The point estimates of one arm over the `window` that ends at its last observation: see
/// [`ThresholdJudge`]. A metric that cannot be derived (no observation old enough, no requests,
/// a counter that went down) is `None`, never 0.
pub fn derive_metrics(observations: &[Observation], window: Duration) -> CanaryMetrics {
    let Some(end) = observations.last() else {
        return CanaryMetrics::at("", chrono::Utc::now());
    };
    let mut m = CanaryMetrics::at(end.version.as_str(), end.at);
    let Some(cutoff) = chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| end.at.checked_sub_signed(w))
    else {
        return m;
    };
    let in_window = observations.iter().filter(|o| o.at >= cutoff);
    m.model_confidence = crate::promql::avg_over_time(
        in_window.filter_map(|o| o.gauges.get(names::MODEL_CONFIDENCE).copied()),
    );
    let Some(start) = observations.iter().rev().find(|o| o.at <= cutoff) else {
        return m;
    };
    let seconds = (end.at - start.at).num_milliseconds() as f64 / 1000.0;
    let delta = |name: &str| -> Option<f64> {
        let d = end.counters.get(name)? - start.counters.get(name)?;
        (d >= 0.0).then_some(d)
    };
    let requests = delta(names::REQUESTS);
    m.sample_count = requests;
    m.request_rate_rps = requests.filter(|_| seconds > 0.0).map(|r| r / seconds);
    if let (Some(r), Some(e)) = (requests, delta(names::ERRORS)) {
        m.error_rate_percent = (r > 0.0 && e <= r).then(|| e / r * 100.0);
    }
    let latency = end
        .histograms
        .get(names::LATENCY)
        .zip(start.histograms.get(names::LATENCY))
        .and_then(|(now, then)| now.since(then));
    if let Some(h) = latency {
        m.latency_p50_ms = h.quantile(0.5).map(|s| s * 1000.0);
        m.latency_p95_ms = h.quantile(0.95).map(|s| s * 1000.0);
        m.latency_p99_ms = h.quantile(0.99).map(|s| s * 1000.0);
    }
    let span = format!(
        "between observations at {} and {} (computed by the judge, not PromQL)",
        crate::format::instant(start.at),
        crate::format::instant(end.at)
    );
    for (metric, how) in [
        (
            "latency_p50",
            "quantile 0.5 of the latency histogram's counts",
        ),
        (
            "latency_p95",
            "quantile 0.95 of the latency histogram's counts",
        ),
        (
            "latency_p99",
            "quantile 0.99 of the latency histogram's counts",
        ),
        ("error_rate", "errors ÷ requests"),
        ("request_rate", "requests ÷ seconds"),
        ("sample_count", "requests"),
    ] {
        m.queries
            .insert(metric.to_owned(), format!("{how}, {span}"));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{RollbackDecision, Rule};
    use crate::test_util::{steady_observations, HEALTHY_SHARES as HEALTHY};
    use chrono::{TimeZone, Utc};

    /// Steady traffic every 15 s for `minutes`, from a fixed instant.
    fn run(
        version: &str,
        rps: f64,
        errors: f64,
        shares: [f64; 8],
        minutes: u64,
    ) -> Vec<Observation> {
        let start = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let step = Duration::from_secs(15);
        steady_observations(
            version,
            rps,
            errors,
            shares,
            start,
            Duration::from_secs(minutes * 60),
            step,
        )
    }

    #[test]
    fn point_estimates_are_prometheus_s() {
        let obs = run("v1", 10.0, 0.01, HEALTHY, 10);
        let m = derive_metrics(&obs, Duration::from_secs(300));
        assert!(
            (m.latency_p99_ms.unwrap() - 944.444).abs() < 1e-3,
            "{:?}",
            m.latency_p99_ms
        );
        assert!((m.latency_p50_ms.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(m.sample_count, Some(3000.0));
        assert_eq!(m.request_rate_rps, Some(10.0));
        assert!((m.error_rate_percent.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(m.model_confidence, Some(0.9));
        assert!(m.queries["latency_p99"].contains("quantile 0.99 of the latency histogram"));
        assert!(
            m.queries["latency_p99"].contains("not PromQL"),
            "a description never passes for a query"
        );
        m.validate().unwrap();
    }

    #[test]
    fn it_looks_once_after_the_warmup_and_keeps_its_decision() {
        let baseline = run("v1", 40.0, 0.01, HEALTHY, 12);
        let canary = run("v2", 4.0, 0.01, HEALTHY, 12);
        let mut judge = ThresholdJudge::new(ThresholdParameters::default()).unwrap();
        let mut decided_at = None;
        for (i, (b, c)) in baseline.iter().zip(&canary).enumerate() {
            match judge.observe(b, c) {
                Verdict::Continue => assert!(decided_at.is_none()),
                Verdict::Decided(e) => {
                    assert_eq!(
                        e.decision,
                        RollbackDecision::Proceed,
                        "{}",
                        e.primary_reason
                    );
                    decided_at.get_or_insert(i);
                }
            }
        }
        assert_eq!(decided_at, Some(40), "the first observation 10 minutes in");
        assert_eq!(judge.finish().decision, RollbackDecision::Proceed);
        assert_eq!(
            judge.schedule(),
            Schedule::Once {
                after: Duration::from_secs(600)
            }
        );
    }

    #[test]
    fn a_regression_rolls_back_with_the_same_evidence_as_the_policy() {
        let baseline = run("v1", 40.0, 0.01, HEALTHY, 10);
        let canary = run("v2", 4.0, 0.03, HEALTHY, 10);
        let mut judge = ThresholdJudge::new(ThresholdParameters::default()).unwrap();
        let mut last = Verdict::Continue;
        for (b, c) in baseline.iter().zip(&canary) {
            last = judge.observe(b, c);
        }
        let Verdict::Decided(e) = last else {
            panic!("no decision after 10 minutes")
        };
        assert_eq!(e.decision, RollbackDecision::RollbackAuto);
        assert!(e.fired(Rule::RollbackThreshold));
        let w = Duration::from_secs(300);
        let expected = RollbackPolicy::default()
            .evaluate(&derive_metrics(&baseline, w), &derive_metrics(&canary, w));
        assert_eq!(*e, expected);
    }

    #[test]
    fn too_little_evidence_at_the_end_is_manual_review() {
        let baseline = run("v1", 40.0, 0.01, HEALTHY, 2);
        let canary = run("v2", 4.0, 0.01, HEALTHY, 2);
        let mut judge = ThresholdJudge::new(ThresholdParameters::default()).unwrap();
        for (b, c) in baseline.iter().zip(&canary) {
            assert_eq!(judge.observe(b, c), Verdict::Continue);
        }
        let e = judge.finish();
        assert_eq!(e.decision, RollbackDecision::RollbackManual);
        assert!(
            e.primary_reason.starts_with("insufficient data"),
            "{}",
            e.primary_reason
        );
    }

    #[test]
    fn parameters_serialize_and_are_checked() {
        let judge = ThresholdJudge::new(ThresholdParameters::default()).unwrap();
        let p = judge.parameters();
        assert_eq!(
            (p["warmup"].as_f64(), p["window"].as_f64()),
            (Some(600.0), Some(300.0))
        );
        let back: ThresholdParameters = serde_json::from_value(p).unwrap();
        assert_eq!(&back, judge.threshold_parameters());
        let short = ThresholdParameters {
            window: Duration::ZERO,
            ..Default::default()
        };
        assert!(ThresholdJudge::new(short).is_err());
    }

    #[test]
    fn a_counter_that_goes_down_is_no_data_not_a_number() {
        let mut canary = run("v2", 4.0, 0.01, HEALTHY, 10);
        let last = canary.len() - 1;
        canary[last].counters.insert(names::REQUESTS.into(), 1.0);
        let m = derive_metrics(&canary, Duration::from_secs(300));
        assert_eq!((m.sample_count, m.error_rate_percent), (None, None));
    }
}
