//! Kayenta's NetflixACAJudge, as a judge.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::peer::{evaluation, per_step, Looks, PeerMetric, Row};
use super::{Judge, JudgeFactory, Schedule, Verdict};
use crate::error::{Error, Result};
use crate::observation::Observation;
use crate::policy::{ComparisonStatus, Evaluation, RollbackDecision, Rule};
use crate::stats::rank_sum;

/// One metric of a Kayenta canary config.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KayentaMetric {
    /// `latency_p99`, `error_rate` or `model_confidence`.
    pub name: String,
    /// Its group; groups weigh equally in the score.
    pub group: String,
    /// A critical metric that fails scores the whole canary 0.
    pub critical: bool,
    /// The mean ratio (canary / baseline) at or above which an increase counts
    /// (`effectSize.allowedIncrease`; 1 counts any significant increase).
    pub allowed_increase: f64,
    /// The mean ratio at or below which a decrease counts (`allowedDecrease`).
    pub allowed_decrease: f64,
}

/// The parameters of [`KayentaJudge`]. The defaults: per-minute values over a 30-minute
/// lifetime judged every 10 minutes over the growing window; Mann-Whitney at 98 %; tolerance
/// 0.25; thresholds pass 95 / marginal 75; three metrics in three groups: p99 latency (fails if
/// higher), error rate (critical, fails if higher), model confidence (fails if lower).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KayentaParameters {
    /// The metrics' resolution (`step` of the query).
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub step: Duration,
    /// Time between judgements (`analysisIntervalMins`).
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub interval: Duration,
    /// The whole analysis (`lifetimeDuration`); the judgement at its end is the last.
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub lifetime: Duration,
    /// Mann-Whitney's confidence level.
    pub confidence_level: f64,
    /// A difference is ignored unless its interval lies beyond this fraction of |HL estimate|.
    pub tolerance: f64,
    /// Score at or above which the canary passes.
    pub pass: f64,
    /// Score at or below which it fails.
    pub marginal: f64,
    /// The metrics.
    pub metrics: Vec<KayentaMetric>,
}

impl Default for KayentaParameters {
    fn default() -> Self {
        let metric = |name: &str, group: &str, critical: bool| KayentaMetric {
            name: name.into(),
            group: group.into(),
            critical,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
        };
        KayentaParameters {
            step: Duration::from_secs(60),
            interval: Duration::from_secs(600),
            lifetime: Duration::from_secs(1800),
            confidence_level: 0.98,
            tolerance: 0.25,
            pass: 95.0,
            marginal: 75.0,
            metrics: vec![
                metric("latency_p99", "latency", false),
                metric("error_rate", "errors", true),
                metric("model_confidence", "quality", false),
            ],
        }
    }
}

impl JudgeFactory for KayentaParameters {
    fn name(&self) -> &str {
        "kayenta"
    }

    fn start(&self) -> Result<Box<dyn Judge>> {
        Ok(Box::new(KayentaJudge::new(self.clone())?))
    }
}

/// A rule that fired: (rule, metric, message).
type Finding = (Rule, Option<&'static str>, String);

/// A metric's classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Pass,
    High,
    Low,
    NoData,
}

/// Kayenta's NetflixACAJudge. Each judgement takes every metric's per-step values over the
/// window from the start, removes NaN, and classifies the canary against the baseline with the
/// Mann-Whitney U test (normal approximation, continuity and tie corrections; the
/// Hodges–Lehmann interval, as [`rank_sum`]): High when the interval's lower end lies above
/// `tolerance · |HL|` and the mean ratio is at least `allowed_increase` (Low mirrored); an arm
/// with no values is NODATA; identical or single-valued data pass. A metric fails when it is
/// High and fails on increase, or Low and fails on decrease. The score is the mean over groups
/// of each group's passing fraction (NODATA metrics left out), times 100; it is 0 when a
/// critical metric fails or at least half the metrics are NODATA.
///
/// The schedule is the canary stage's: a judgement every `interval` over the growing window;
/// a score at or below `marginal` fails at once (rollback); the last judgement passes at
/// `pass` (proceed), and between the two it is marginal, which we send to manual review.
#[derive(Debug)]
pub struct KayentaJudge {
    parameters: KayentaParameters,
    metrics: Vec<PeerMetric>,
    looks: Looks,
    scores: Vec<f64>,
    decided: Option<Evaluation>,
}

impl KayentaJudge {
    /// A judge with `parameters`, checked.
    pub fn new(parameters: KayentaParameters) -> Result<Self> {
        let invalid = |field: &str, reason: String| Error::InvalidConfig {
            field: field.into(),
            reason,
        };
        let p = &parameters;
        if p.step < Duration::from_secs(1) || p.interval < p.step || p.lifetime < p.interval {
            return Err(invalid(
                "interval",
                "need step >= 1 s, interval >= step and lifetime >= interval".into(),
            ));
        }
        let level_ok = p.confidence_level > 0.5 && p.confidence_level < 1.0;
        let tolerance_ok = p.tolerance >= 0.0 && p.tolerance.is_finite();
        let scores_ok = 0.0 <= p.marginal && p.marginal <= p.pass && p.pass <= 100.0;
        if !(level_ok && tolerance_ok && scores_ok) {
            return Err(invalid(
                "confidence_level",
                "need a confidence level in (0.5, 1), a tolerance >= 0, and 0 <= marginal <= pass <= 100".into(),
            ));
        }
        if p.metrics.is_empty() {
            return Err(invalid("metrics", "at least one metric".into()));
        }
        if let Some(m) = p.metrics.iter().find(|m| {
            !(m.allowed_increase.is_finite()
                && m.allowed_increase > 0.0
                && m.allowed_decrease.is_finite()
                && m.allowed_decrease > 0.0)
        }) {
            return Err(invalid(
                "metrics",
                format!(
                    "{}: allowed_increase and allowed_decrease must be finite and > 0",
                    m.name
                ),
            ));
        }
        let metrics = p
            .metrics
            .iter()
            .map(|m| match m.name.as_str() {
                "latency_p99" => Ok(PeerMetric::P99),
                "error_rate" => Ok(PeerMetric::ErrorRate),
                "model_confidence" => Ok(PeerMetric::Confidence),
                other => Err(invalid(
                    "metrics",
                    format!("unknown metric {other:?} (latency_p99, error_rate, model_confidence)"),
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KayentaJudge {
            parameters,
            metrics,
            looks: Looks::default(),
            scores: Vec::new(),
            decided: None,
        })
    }

    /// Scores the window so far: the score and the evidence.
    fn judge(&self) -> (f64, Vec<Row>, Vec<Finding>) {
        let p = &self.parameters;
        let mut rows = Vec::new();
        let mut conditions = Vec::new();
        // group -> (passed, judged)
        let mut groups: Vec<(String, f64, f64)> = Vec::new();
        let mut nodata = 0usize;
        let mut critical_failed = false;
        for (spec, &metric) in p.metrics.iter().zip(&self.metrics) {
            let clean = |arm: &[Observation]| -> Vec<f64> {
                per_step(arm, p.step, metric)
                    .into_iter()
                    .filter(|v| !v.is_nan())
                    .collect()
            };
            let (control, experiment) = (clean(&self.looks.baseline), clean(&self.looks.canary));
            let (class, detail) = classify(&control, &experiment, spec, p);
            let fails_high = metric.direction() == crate::policy::Direction::LowerIsBetter;
            let failed =
                (class == Class::High && fails_high) || (class == Class::Low && !fails_high);
            let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            let slot = match groups.iter().position(|g| g.0 == spec.group) {
                Some(i) => i,
                None => {
                    groups.push((spec.group.clone(), 0.0, 0.0));
                    groups.len() - 1
                }
            };
            if class == Class::NoData {
                nodata += 1;
            } else {
                groups[slot].2 += 1.0;
                if !failed {
                    groups[slot].1 += 1.0;
                }
            }
            if failed {
                critical_failed |= spec.critical;
                conditions.push((
                    Rule::RollbackThreshold,
                    Some(metric.name()),
                    format!("{} was classified {class:?}: {detail}", metric.name()),
                ));
            }
            rows.push(Row {
                metric,
                baseline: mean(&control),
                canary: mean(&experiment),
                status: match (class, failed) {
                    (Class::NoData, _) => ComparisonStatus::NoData,
                    (_, true) => ComparisonStatus::Degraded,
                    (Class::Pass, _) => ComparisonStatus::Stable,
                    _ => ComparisonStatus::Improved,
                },
                threshold: None,
                critical: spec.critical,
                query: format!(
                    "per {}s step since the start, NaN removed ({} baseline, {} canary values); {detail}",
                    p.step.as_secs(),
                    control.len(),
                    experiment.len()
                ),
                no_data: (class == Class::NoData).then(|| "an arm has no values".into()),
            });
        }
        let judged: Vec<&(String, f64, f64)> = groups.iter().filter(|g| g.2 > 0.0).collect();
        let score = if critical_failed || nodata * 2 >= p.metrics.len() || judged.is_empty() {
            0.0
        } else {
            100.0 * judged.iter().map(|g| g.1 / g.2).sum::<f64>() / judged.len() as f64
        };
        if nodata * 2 >= p.metrics.len() {
            conditions.push((
                Rule::MissingData,
                None,
                format!("{nodata} of {} metrics had no data", p.metrics.len()),
            ));
        }
        (score, rows, conditions)
    }

    /// The decision with the evidence of the judgement it rests on.
    fn decide(
        &mut self,
        decision: RollbackDecision,
        reason: String,
        (rows, mut conditions): (Vec<Row>, Vec<Finding>),
    ) -> Evaluation {
        if decision == RollbackDecision::RollbackManual && conditions.is_empty() {
            conditions.push((Rule::WarningThreshold, None, reason.clone()));
        }
        let e = evaluation(decision, reason, conditions, rows, &self.looks);
        self.decided = Some(e.clone());
        e
    }

    fn scores_text(&self) -> String {
        let s: Vec<String> = self.scores.iter().map(|s| format!("{s:.1}")).collect();
        s.join(", ")
    }
}

/// The classifier for one metric.
fn classify(
    control: &[f64],
    experiment: &[f64],
    spec: &KayentaMetric,
    p: &KayentaParameters,
) -> (Class, String) {
    if control.is_empty() || experiment.is_empty() {
        return (Class::NoData, "missing data".into());
    }
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    if sorted(control) == sorted(experiment) {
        return (
            Class::Pass,
            "the canary's and baseline's data are identical".into(),
        );
    }
    let first = control[0];
    if control.iter().chain(experiment).all(|&v| v == first) {
        return (Class::Pass, "a single value in both arms".into());
    }
    // Kayenta adds tiny Gaussian noise when each arm is constant, so the test is defined.
    let jitter = |v: &[f64], seed: u64| -> Vec<f64> {
        let constant = v.iter().all(|&x| x == v[0]);
        if !constant {
            return v.to_vec();
        }
        let mut rng = fastrand::Rng::with_seed(seed);
        let scale = v[0] * 1e-5;
        v.iter()
            .map(|&x| {
                let (u1, u2) = (1.0 - rng.f64(), rng.f64());
                x + scale * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            })
            .collect()
    };
    let both_constant =
        control.iter().all(|&x| x == control[0]) && experiment.iter().all(|&x| x == experiment[0]);
    let (control, experiment) = if both_constant {
        (jitter(control, 1), jitter(experiment, 2))
    } else {
        (control.to_vec(), experiment.to_vec())
    };
    let Some(mw) = rank_sum(&experiment, &control, p.confidence_level) else {
        return (
            Class::Pass,
            "the test is undefined (all values tied)".into(),
        );
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let deviation = if mean(&control) == 0.0 {
        1.0
    } else {
        mean(&experiment) / mean(&control)
    };
    let bound = p.tolerance * mw.estimate.abs();
    let detail = format!(
        "Hodges–Lehmann shift {:.4} ({:.0} % interval {:.4} to {:.4}; p = {:.4}); mean ratio {:.3}",
        mw.estimate,
        p.confidence_level * 100.0,
        mw.interval.0,
        mw.interval.1,
        mw.p_value,
        deviation
    );
    if mw.interval.0 > bound && deviation >= spec.allowed_increase {
        (Class::High, detail)
    } else if mw.interval.1 < -bound && deviation <= spec.allowed_decrease {
        (Class::Low, detail)
    } else {
        (Class::Pass, detail)
    }
}

impl Judge for KayentaJudge {
    fn name(&self) -> &str {
        "kayenta"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Continuous {
            first: self.parameters.interval,
        }
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::to_value(&self.parameters).unwrap_or_default()
    }

    fn observe(&mut self, baseline: &Observation, canary: &Observation) -> Verdict {
        let every = self.parameters.interval;
        if let Some(v) = self
            .looks
            .before_look(self.decided.as_ref(), baseline, canary, every)
        {
            return v;
        }
        let (score, rows, conditions) = self.judge();
        self.scores.push(score);
        let p = &self.parameters;
        let last = self.looks.elapsed() >= p.lifetime;
        let verdict = if score <= p.marginal {
            let reason = format!(
                "Kayenta canary score {score:.1} <= marginal {} (scores so far: {})",
                p.marginal,
                self.scores_text()
            );
            Some((RollbackDecision::RollbackAuto, reason))
        } else if last && score >= p.pass {
            let reason = format!(
                "Kayenta canary score {score:.1} >= pass {} (scores: {})",
                p.pass,
                self.scores_text()
            );
            Some((RollbackDecision::Proceed, reason))
        } else if last {
            let reason = format!(
                "Kayenta canary score {score:.1} is marginal (between {} and {}; scores: {})",
                p.marginal,
                p.pass,
                self.scores_text()
            );
            Some((RollbackDecision::RollbackManual, reason))
        } else {
            None
        };
        match verdict {
            Some((d, reason)) => {
                Verdict::Decided(Box::new(self.decide(d, reason, (rows, conditions))))
            }
            None => Verdict::Continue,
        }
    }

    fn finish(&mut self) -> Evaluation {
        if let Some(e) = &self.decided {
            return e.clone();
        }
        let reason = format!(
            "the run ended before Kayenta's lifetime (scores so far: {})",
            self.scores_text()
        );
        let (_, rows, conditions) = self.judge();
        self.decide(RollbackDecision::RollbackManual, reason, (rows, conditions))
    }
}
