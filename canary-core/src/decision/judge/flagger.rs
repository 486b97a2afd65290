//! Flagger's analysis, as a judge.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::peer::{evaluation, Looks, PeerMetric, Row};
use super::{derive_metrics, Judge, JudgeFactory, Schedule, Verdict};
use crate::error::{Error, Result};
use crate::metrics::CanaryMetrics;
use crate::observation::Observation;
use crate::policy::{ComparisonStatus, Evaluation, RollbackDecision, Rule};

/// The parameters of [`FlaggerJudge`]. The defaults are the canary analysis of Flagger's
/// tutorials: checks every minute over a one-minute window, `request-success-rate` at least
/// 99 %, `request-duration` (p99) at most 500 ms, rollback after `threshold: 5` failed checks,
/// promotion after `maxWeight: 50` is reached in steps of `stepWeight: 10` (five passing
/// checks). Flagger's own default `threshold` is 1 when the field is left out; set it here to
/// judge like that.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlaggerParameters {
    /// How often the checks run (`analysis.interval`), and the window each queries.
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub interval: Duration,
    /// Failed checks before rollback (`analysis.threshold`).
    pub threshold: u32,
    /// Passing checks before promotion (`maxWeight / stepWeight`).
    pub iterations: u32,
    /// `request-success-rate` `thresholdRange.min`, percent.
    pub min_success_rate_percent: f64,
    /// `request-duration` `thresholdRange.max`, ms (Flagger's builtin is the p99).
    pub max_p99_ms: f64,
}

impl Default for FlaggerParameters {
    fn default() -> Self {
        FlaggerParameters {
            interval: Duration::from_secs(60),
            threshold: 5,
            iterations: 5,
            min_success_rate_percent: 99.0,
            max_p99_ms: 500.0,
        }
    }
}

impl JudgeFactory for FlaggerParameters {
    fn name(&self) -> &str {
        "flagger"
    }

    fn start(&self) -> Result<Box<dyn Judge>> {
        Ok(Box::new(FlaggerJudge::new(self.clone())?))
    }
}

/// Flagger's canary analysis: canary-only threshold checks, every interval; a check fails when
/// either metric is out of range or has no data ("no values found" fails a check in Flagger
/// too). It rolls back when failed checks reach the threshold (they accumulate; a passing check
/// does not reset them) and promotes after `iterations` passing checks. The baseline is not
/// consulted: Flagger has no relative comparison.
#[derive(Debug)]
pub struct FlaggerJudge {
    parameters: FlaggerParameters,
    looks: Looks,
    passed: u32,
    failed: u32,
    last_failure: Option<String>,
    decided: Option<Evaluation>,
}

impl FlaggerJudge {
    /// A judge with `parameters`, checked.
    pub fn new(parameters: FlaggerParameters) -> Result<Self> {
        let invalid = |field: &str, reason: &str| Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        };
        if parameters.interval < Duration::from_secs(1) {
            return Err(invalid("interval", "must be at least 1 s"));
        }
        if parameters.threshold == 0 || parameters.iterations == 0 {
            return Err(invalid(
                "threshold",
                "threshold and iterations must be at least 1",
            ));
        }
        let range_ok = (0.0..=100.0).contains(&parameters.min_success_rate_percent);
        let p99_ok = parameters.max_p99_ms.is_finite() && parameters.max_p99_ms > 0.0;
        if !(range_ok && p99_ok) {
            return Err(invalid(
                "min_success_rate_percent",
                "must be in [0, 100], and max_p99_ms finite and > 0",
            ));
        }
        Ok(FlaggerJudge {
            parameters,
            looks: Looks::default(),
            passed: 0,
            failed: 0,
            last_failure: None,
            decided: None,
        })
    }

    /// The canary's point estimates over the last interval: what one check reads.
    fn latest(&self) -> CanaryMetrics {
        derive_metrics(&self.looks.canary, self.parameters.interval)
    }

    fn rows(&self, m: &CanaryMetrics) -> Vec<Row> {
        let p = &self.parameters;
        let success = PeerMetric::ErrorRate.of(m);
        let p99 = PeerMetric::P99.of(m);
        let status = |ok: bool, v: f64| match (v.is_nan(), ok) {
            (true, _) => ComparisonStatus::NoData,
            (false, true) => ComparisonStatus::Stable,
            (false, false) => ComparisonStatus::Degraded,
        };
        let window = format!("over the last {}s, canary only", p.interval.as_secs());
        vec![
            Row {
                metric: PeerMetric::ErrorRate,
                baseline: None,
                canary: Some(success),
                status: status(100.0 - success >= p.min_success_rate_percent, success),
                threshold: Some(100.0 - p.min_success_rate_percent),
                critical: true,
                query: format!("request-success-rate {window}"),
                no_data: success.is_nan().then(|| "no requests in the window".into()),
            },
            Row {
                metric: PeerMetric::P99,
                baseline: None,
                canary: Some(p99),
                status: status(p99 <= p.max_p99_ms, p99),
                threshold: Some(p.max_p99_ms),
                critical: true,
                query: format!("request-duration p99 {window}"),
                no_data: p99.is_nan().then(|| "no requests in the window".into()),
            },
        ]
    }

    /// One check: the failure's message, if it failed.
    fn check(&self, m: &CanaryMetrics) -> Option<String> {
        let p = &self.parameters;
        let error_rate = PeerMetric::ErrorRate.of(m);
        let p99 = PeerMetric::P99.of(m);
        if error_rate.is_nan() || p99.is_nan() {
            return Some("no values found for the canary's metrics".into());
        }
        if 100.0 - error_rate < p.min_success_rate_percent {
            return Some(format!(
                "request-success-rate {:.2}% < {}%",
                100.0 - error_rate,
                p.min_success_rate_percent
            ));
        }
        if p99 > p.max_p99_ms {
            return Some(format!(
                "request-duration {p99:.0} ms > {} ms",
                p.max_p99_ms
            ));
        }
        None
    }

    fn decide(
        &mut self,
        decision: RollbackDecision,
        reason: String,
        m: &CanaryMetrics,
    ) -> Evaluation {
        let conditions = match decision {
            RollbackDecision::RollbackAuto => vec![(
                Rule::RollbackThreshold,
                // The metric of the check that failed last.
                self.last_failure.as_deref().and_then(|f| {
                    if f.starts_with("request-success-rate") {
                        Some(PeerMetric::ErrorRate.name())
                    } else if f.starts_with("request-duration") {
                        Some(PeerMetric::P99.name())
                    } else {
                        None
                    }
                }),
                format!(
                    "{} failed checks reached the threshold of {}; the last: {}",
                    self.failed,
                    self.parameters.threshold,
                    self.last_failure.clone().unwrap_or_default()
                ),
            )],
            RollbackDecision::RollbackManual => {
                vec![(Rule::InsufficientSamples, None, reason.clone())]
            }
            RollbackDecision::Proceed => Vec::new(),
        };
        let e = evaluation(decision, reason, conditions, self.rows(m), &self.looks);
        self.decided = Some(e.clone());
        e
    }
}

impl Judge for FlaggerJudge {
    fn name(&self) -> &str {
        "flagger"
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
        let m = self.latest();
        match self.check(&m) {
            Some(failure) => {
                self.failed += 1;
                self.last_failure = Some(failure);
            }
            None => self.passed += 1,
        }
        let p = &self.parameters;
        if self.failed >= p.threshold {
            let reason = format!(
                "Flagger analysis failed: {} of {} checks failed (threshold {}); the last: {}",
                self.failed,
                self.failed + self.passed,
                p.threshold,
                self.last_failure.as_deref().unwrap_or("none recorded")
            );
            return Verdict::Decided(Box::new(self.decide(
                RollbackDecision::RollbackAuto,
                reason,
                &m,
            )));
        }
        if self.passed >= p.iterations {
            let reason = format!(
                "Flagger analysis passed: {} checks passed, {} failed (threshold {})",
                self.passed, self.failed, p.threshold
            );
            return Verdict::Decided(Box::new(self.decide(RollbackDecision::Proceed, reason, &m)));
        }
        Verdict::Continue
    }

    fn finish(&mut self) -> Evaluation {
        if let Some(e) = &self.decided {
            return e.clone();
        }
        let reason = format!(
            "the run ended before Flagger's analysis finished ({} passed, {} failed)",
            self.passed, self.failed
        );
        let m = self.latest();
        self.decide(RollbackDecision::RollbackManual, reason, &m)
    }
}
