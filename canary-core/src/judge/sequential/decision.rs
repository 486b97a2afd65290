//! The decision at each look: from the findings to a verdict.

use std::time::Duration;

use super::*;
use crate::observation::names;
use crate::policy::{Condition, Evaluation, RollbackDecision, Rule};

impl SequentialJudge {
    /// Every metric's findings at this look.
    pub(super) fn assess(&mut self) -> Vec<Finding> {
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
    pub(super) fn decide(&mut self, findings: Vec<Finding>, at_end: bool) -> Option<Evaluation> {
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

    pub(super) fn evaluation(
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
        let findings = answer_power(findings);
        let warnings = self.pod_statements(&findings);
        Evaluation {
            decision,
            primary_reason: reason,
            triggered_conditions: conditions,
            comparisons: findings.into_iter().flat_map(|f| f.rows).collect(),
            recommendation: crate::judge::peer::recommendation(decision).into(),
            baseline_version: version(0),
            canary_version: version(1),
            baseline_samples: requests(0),
            canary_samples: requests(1),
            min_sample_count: self.parameters.min_requests,
            warnings,
        }
    }

    /// Time since the first judged observation of the run.
    pub(super) fn judged_elapsed(&self) -> Duration {
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

    pub(super) fn step_elapsed(&self) -> Duration {
        match (&self.reference, &self.last) {
            (Some((_, a)), Some((_, z))) => (z.at - a.at).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    pub(super) fn conclude(&mut self, at_end: bool) -> Option<Evaluation> {
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

/// Answers each arm test's power question into its evidence, and into the row that shows it.
/// A latency bound's test appears once per quantile it brackets: it is answered once.
fn answer_power(mut findings: Vec<Finding>) -> Vec<Finding> {
    for f in &mut findings {
        let mut answered: Vec<(String, Vec<crate::policy::Detectable>)> = Vec::new();
        for t in &mut f.tests {
            let (Some(q), Some(p)) = (&t.power, t.interval.pods.as_mut()) else {
                continue;
            };
            let statistic = &t.interval.statistic;
            p.detectable = match answered.iter().find(|(s, _)| s == statistic) {
                Some((_, d)) => d.clone(),
                None => {
                    let d = q.answer();
                    answered.push((statistic.clone(), d.clone()));
                    d
                }
            };
        }
        for r in &mut f.rows {
            let Some(i) = r.interval.as_mut() else {
                continue;
            };
            let found = answered.iter().find(|(s, _)| *s == i.statistic);
            if let (Some((_, d)), Some(p)) = (found, i.pods.as_mut()) {
                p.detectable.clone_from(d);
            }
        }
    }
    findings
}
