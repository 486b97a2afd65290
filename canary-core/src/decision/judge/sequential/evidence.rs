//! The evidence: the trace of every look and the rows of the report.

use std::time::Duration;

use super::*;
use crate::judge::SequencePoint;
use crate::policy::{AnytimeInterval, ComparisonStatus, Criticality, Direction, MetricComparison};

impl SequentialJudge {
    /// Keeps the look's intervals for the report, every `trace_stride`-th look.
    pub(super) fn record(&mut self, findings: &[Finding]) {
        self.looks += 1;
        if !self.looks.is_multiple_of(self.trace_stride) {
            return;
        }
        let seconds = match (self.first_at, &self.last) {
            (Some(a), Some((_, c))) => (c.at - a).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        for f in findings {
            // One canary pod's own tests stay out of the chart, which shows the arms.
            let arm_tests = f
                .tests
                .iter()
                .filter(|t| t.interval.pods.as_ref().is_none_or(|p| p.pod.is_none()));
            for t in arm_tests {
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
}

pub(super) fn minutes(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        format!("{} s", crate::format::Num(s))
    } else {
        format!("{} min", crate::format::Num((s / 6.0).round() / 10.0))
    }
}

pub(super) fn worse_message(row: &str, i: &AnytimeInterval) -> String {
    let n = |v: Option<f64>| {
        v.map(|x| crate::format::Num(x).to_string())
            .unwrap_or_else(|| "unbounded".into())
    };
    let mut pods = String::new();
    let mut subject = row.to_owned();
    if let Some(p) = &i.pods {
        if let Some(pod) = &p.pod {
            subject = format!("{row} of canary pod {pod}");
        }
        if p.allowance > 1.0 {
            pods.push_str(&format!(
                ", beyond the × {:.2} that production's {} pods (±{:.0}% apart) allow for where the pods landed",
                p.allowance,
                p.production_pods,
                100.0 * (p.spread.exp() - 1.0)
            ));
        }
        if !p.excluded.is_empty() {
            pods.push_str(&format!(
                "; production pods set aside as outliers: {}",
                p.excluded.join(", ")
            ));
        }
    }
    format!(
        "{subject} is worse than its margin: {} in [{}, {}] at {}% anytime-valid confidence, margin {}{pods}",
        i.statistic,
        n(i.lower),
        n(i.upper),
        crate::format::Num(100.0 * i.confidence),
        crate::format::Num(i.margin)
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn row(
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
            Standing::Open => ComparisonStatus::Open,
        },
        // The margin is not the policy's rollback ratio: the rule says what it is.
        rollback_threshold: None,
        warning_threshold: None,
        proceed_tolerance: t.interval.margin,
        floor: 0.0,
        floor_applied: false,
        no_data_reason: None,
        baseline_query: Some(query.clone()),
        canary_query: Some(query),
        rule: Some(margin_rule(&t.interval)),
        interval: Some(t.interval.clone()),
    }
}

/// The sequential judge's rule for one statistic: worse once the interval lies beyond the
/// margin (a ratio, or a difference for a gauge), at the test's confidence.
pub(super) fn margin_rule(i: &AnytimeInterval) -> String {
    let difference = i.is_difference();
    let margin = if difference {
        let sign = if i.margin >= 0.0 { "+" } else { "" };
        format!("{sign}{}", crate::format::Num(i.margin))
    } else {
        format!("× {}", crate::format::Num(i.margin))
    };
    format!(
        "worse once surely beyond {margin} ({}% anytime-valid)",
        crate::format::Num(100.0 * i.confidence)
    )
}

/// A row for a metric measured but not decided on yet (warm-up, too few scrapes): open, why.
pub(super) fn pending_row(name: &str, unit: &str, critical: bool, why: &str) -> MetricComparison {
    MetricComparison {
        status: ComparisonStatus::Open,
        rule: Some(why.to_owned()),
        ..no_data_row(name, unit, critical, why)
    }
}

pub(super) fn no_data_row(name: &str, unit: &str, critical: bool, why: &str) -> MetricComparison {
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
        rule: None,
    }
}
