//! An Argo Rollouts analysis, as a judge.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::peer::{evaluation, Looks, PeerMetric, Row};
use super::{derive_metrics, Judge, JudgeFactory, Schedule, Verdict};
use crate::error::{Error, Result};
use crate::metrics::CanaryMetrics;
use crate::observation::Observation;
use crate::policy::{ComparisonStatus, Evaluation, RollbackDecision, Rule};

/// The parameters of [`ArgoJudge`]: an `AnalysisTemplate` with two Prometheus metrics on the
/// canary, measured every `interval` over that window, `count` times. A measurement is
/// Successful when its `successCondition` holds, Failed when its `failureCondition` holds,
/// Inconclusive when neither does, and an Error when the query returns nothing. The limits are
/// Argo's defaults (`failureLimit: 0`, `inconclusiveLimit: 0`, `consecutiveErrorLimit: 4`);
/// the conditions (Argo has no defaults for them) follow Argo's documented example
/// (`result[0] >= 0.95` succeeds) with a failure bound beside it: success rate ≥ 95 % succeeds
/// and < 90 % fails; p99 ≤ 500 ms succeeds and > 1000 ms fails.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArgoParameters {
    /// Time between measurements, and each query's window.
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub interval: Duration,
    /// Measurements per metric; all successful is a Successful analysis.
    pub count: u32,
    /// Failed measurements tolerated (more fail the analysis).
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated (more make the analysis Inconclusive).
    pub inconclusive_limit: u32,
    /// Consecutive measurement errors tolerated (more are an Error: the rollout aborts).
    pub consecutive_error_limit: u32,
    /// Success rate (%) at or above which a measurement succeeds.
    pub success_rate_success_percent: f64,
    /// Success rate (%) below which it fails.
    pub success_rate_failure_percent: f64,
    /// p99 (ms) at or below which a measurement succeeds.
    pub p99_success_ms: f64,
    /// p99 (ms) above which it fails.
    pub p99_failure_ms: f64,
}

impl Default for ArgoParameters {
    fn default() -> Self {
        ArgoParameters {
            interval: Duration::from_secs(60),
            count: 10,
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_error_limit: 4,
            success_rate_success_percent: 95.0,
            success_rate_failure_percent: 90.0,
            p99_success_ms: 500.0,
            p99_failure_ms: 1000.0,
        }
    }
}

impl JudgeFactory for ArgoParameters {
    fn name(&self) -> &str {
        "argo"
    }

    fn start(&self) -> Result<Box<dyn Judge>> {
        Ok(Box::new(ArgoJudge::new(self.clone())?))
    }
}

/// One measurement's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Successful,
    Failed,
    Inconclusive,
    Error,
}

/// Per metric: the measurement counts an `AnalysisRun` keeps.
#[derive(Clone, Debug, Default)]
struct Counts {
    successful: u32,
    failed: u32,
    inconclusive: u32,
    consecutive_errors: u32,
    measured: u32,
}

/// An Argo Rollouts `AnalysisRun` over canary-only measurements: Failed (rollback) when a
/// metric's failed measurements exceed `failure_limit` or its consecutive errors exceed
/// `consecutive_error_limit`; Inconclusive (the rollout pauses for a person: manual review)
/// when inconclusive measurements exceed `inconclusive_limit`; Successful (proceed) when every
/// metric has taken `count` measurements without either. Like Flagger, Argo's analysis does
/// not consult the baseline.
#[derive(Debug)]
pub struct ArgoJudge {
    parameters: ArgoParameters,
    looks: Looks,
    counts: [Counts; 2],
    decided: Option<Evaluation>,
}

const METRICS: [PeerMetric; 2] = [PeerMetric::ErrorRate, PeerMetric::P99];

impl ArgoJudge {
    /// A judge with `parameters`, checked.
    pub fn new(parameters: ArgoParameters) -> Result<Self> {
        let invalid = |field: &str, reason: &str| Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        };
        let p = &parameters;
        if p.interval < Duration::from_secs(1) || p.count == 0 {
            return Err(invalid(
                "interval",
                "must be at least 1 s, and count at least 1",
            ));
        }
        if !(p.success_rate_failure_percent <= p.success_rate_success_percent
            && (0.0..=100.0).contains(&p.success_rate_failure_percent)
            && (0.0..=100.0).contains(&p.success_rate_success_percent))
        {
            return Err(invalid(
                "success_rate_failure_percent",
                "the failure bound must be at most the success bound, both in [0, 100]",
            ));
        }
        if !(p.p99_success_ms > 0.0
            && p.p99_success_ms <= p.p99_failure_ms
            && p.p99_failure_ms.is_finite())
        {
            return Err(invalid(
                "p99_failure_ms",
                "the success bound must be > 0 and at most the (finite) failure bound",
            ));
        }
        Ok(ArgoJudge {
            parameters,
            looks: Looks::default(),
            counts: Default::default(),
            decided: None,
        })
    }

    /// The canary's point estimates over the last interval: what one measurement queries.
    fn latest(&self) -> CanaryMetrics {
        derive_metrics(&self.looks.canary, self.parameters.interval)
    }

    fn measure(&self, metric: PeerMetric, m: &CanaryMetrics) -> (Phase, f64) {
        let v = metric.of(m);
        let p = &self.parameters;
        if v.is_nan() {
            return (Phase::Error, v);
        }
        let phase = match metric {
            PeerMetric::ErrorRate => {
                let success = 100.0 - v;
                if success >= p.success_rate_success_percent {
                    Phase::Successful
                } else if success < p.success_rate_failure_percent {
                    Phase::Failed
                } else {
                    Phase::Inconclusive
                }
            }
            _ => {
                if v <= p.p99_success_ms {
                    Phase::Successful
                } else if v > p.p99_failure_ms {
                    Phase::Failed
                } else {
                    Phase::Inconclusive
                }
            }
        };
        (phase, v)
    }

    fn rows(&self, m: &CanaryMetrics) -> Vec<Row> {
        let p = &self.parameters;
        METRICS
            .iter()
            .zip(&self.counts)
            .map(|(&metric, c)| {
                let v = metric.of(m);
                let degraded = c.failed > p.failure_limit
                    || c.inconclusive > p.inconclusive_limit
                    || c.consecutive_errors > p.consecutive_error_limit;
                Row {
                    metric,
                    baseline: None,
                    canary: Some(v),
                    status: if v.is_nan() {
                        ComparisonStatus::NoData
                    } else if degraded {
                        ComparisonStatus::Degraded
                    } else {
                        ComparisonStatus::Stable
                    },
                    threshold: Some(match metric {
                        PeerMetric::ErrorRate => 100.0 - p.success_rate_failure_percent,
                        _ => p.p99_failure_ms,
                    }),
                    critical: true,
                    query: format!(
                        "canary only, over the last {}s; {} measured: {} successful, {} failed, {} inconclusive",
                        p.interval.as_secs(),
                        c.measured,
                        c.successful,
                        c.failed,
                        c.inconclusive
                    ),
                    no_data: v.is_nan().then(|| "the query returned no value".into()),
                }
            })
            .collect()
    }

    fn decide(
        &mut self,
        decision: RollbackDecision,
        reason: String,
        rule: Option<(Rule, &str)>,
        m: &CanaryMetrics,
    ) -> Evaluation {
        let conditions = rule
            .map(|(rule, metric)| (rule, Some(metric), reason.clone()))
            .into_iter()
            .collect();
        let e = evaluation(decision, reason, conditions, self.rows(m), &self.looks);
        self.decided = Some(e.clone());
        e
    }
}

impl Judge for ArgoJudge {
    fn name(&self) -> &str {
        "argo"
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
        let p = self.parameters.clone();
        let m = self.latest();
        for (i, &metric) in METRICS.iter().enumerate() {
            let (phase, value) = self.measure(metric, &m);
            let c = &mut self.counts[i];
            c.measured += 1;
            c.consecutive_errors = match phase {
                Phase::Error => c.consecutive_errors + 1,
                _ => 0,
            };
            match phase {
                Phase::Successful => c.successful += 1,
                Phase::Failed => c.failed += 1,
                Phase::Inconclusive => c.inconclusive += 1,
                Phase::Error => {}
            }
            let name = metric.name();
            if c.failed > p.failure_limit {
                let reason = format!(
                    "Argo analysis Failed: {name} had {} failed measurements (failureLimit {}); the last was {value:.3}",
                    c.failed, p.failure_limit
                );
                return Verdict::Decided(Box::new(self.decide(
                    RollbackDecision::RollbackAuto,
                    reason,
                    Some((Rule::RollbackThreshold, name)),
                    &m,
                )));
            }
            if c.consecutive_errors > p.consecutive_error_limit {
                let reason = format!(
                    "Argo analysis Error: {name} had {} consecutive measurement errors (consecutiveErrorLimit {})",
                    c.consecutive_errors, p.consecutive_error_limit
                );
                return Verdict::Decided(Box::new(self.decide(
                    RollbackDecision::RollbackAuto,
                    reason,
                    Some((Rule::MissingData, name)),
                    &m,
                )));
            }
            if c.inconclusive > p.inconclusive_limit {
                let reason = format!(
                    "Argo analysis Inconclusive: {name} had {} inconclusive measurements (inconclusiveLimit {}); the last was {value:.3}",
                    c.inconclusive, p.inconclusive_limit
                );
                return Verdict::Decided(Box::new(self.decide(
                    RollbackDecision::RollbackManual,
                    reason,
                    Some((Rule::WarningThreshold, name)),
                    &m,
                )));
            }
        }
        if self.counts.iter().all(|c| c.measured >= p.count) {
            let reason = format!(
                "Argo analysis Successful: {} measurements per metric within their conditions",
                p.count
            );
            return Verdict::Decided(Box::new(self.decide(
                RollbackDecision::Proceed,
                reason,
                None,
                &m,
            )));
        }
        Verdict::Continue
    }

    fn finish(&mut self) -> Evaluation {
        if let Some(e) = &self.decided {
            return e.clone();
        }
        let reason = "the run ended before Argo's analysis took all its measurements".to_owned();
        let m = self.latest();
        self.decide(
            RollbackDecision::RollbackManual,
            reason,
            Some((Rule::InsufficientSamples, "analysis")),
            &m,
        )
    }
}
