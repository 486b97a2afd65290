//! The decision at each look: from the findings to a verdict.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::observation::names;
use crate::policy::{AnytimeInterval, Condition, Evaluation, RollbackDecision, Rule};

impl SequentialJudge {
    /// Every metric's findings at this look; during the `warmup` only the counts'.
    pub(super) fn assess(&mut self, warmup: bool) -> Vec<Finding> {
        let metrics = self.parameters.metrics.clone();
        metrics
            .iter()
            .enumerate()
            .map(|(i, m)| match m {
                _ if warmup && !matches!(m, SequentialMetric::Count { .. }) => self.pending(m),
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

    /// A metric not judged during the warm-up: its rows, open, saying when judging starts
    /// (a decision made meanwhile still shows every metric).
    fn pending(&self, m: &SequentialMetric) -> Finding {
        let why = format!(
            "not judged until the warm-up ends, {} into the run",
            minutes(self.parameters.warmup)
        );
        let rows = match m {
            SequentialMetric::Latency {
                name, quantiles, ..
            } => quantiles
                .iter()
                .map(|q| {
                    let row = format!("{name}_p{}", super::latency::quantile_label(*q));
                    pending_row(&row, "ms", m.critical(), &why)
                })
                .collect(),
            _ => vec![pending_row(m.name(), "", m.critical(), &why)],
        };
        Finding {
            rows,
            ..empty_finding()
        }
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
        let mut any_worse = false;
        let mut unmeasured = Vec::new();
        let too_early = !at_end && self.judged_elapsed() < p.min_evidence;
        for (i, (m, f)) in p.metrics.iter().zip(&findings).enumerate() {
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
                    Standing::Worse if too_early && !self.catastrophic(m, f, t) => {
                        any_worse = true;
                        all_within = false;
                    }
                    Standing::Worse => {
                        any_worse = true;
                        let (d, rule) = if m.critical() || t.beyond_matters {
                            (RollbackDecision::RollbackAuto, Rule::RollbackThreshold)
                        } else {
                            (RollbackDecision::RollbackManual, Rule::WarningThreshold)
                        };
                        let mut message = worse_message(&t.row, &t.interval);
                        if t.beyond_matters && !m.critical() {
                            message.push_str(&format!(
                                ", and surely beyond × {} of production's (what matters): the guide's automatic-rollback trigger",
                                crate::format::Num(p.matters_for(i))
                            ));
                        }
                        if too_early {
                            message.push_str(&format!(
                                ", and so far beyond it (at least × {} of production's) that it decides before the minimum evidence",
                                crate::format::Num(match m {
                                    SequentialMetric::Count { .. } => p.catastrophe_count_ratio,
                                    _ => p.catastrophe_latency_ratio,
                                })
                            ));
                        }
                        take(d, rule, &t.row, message);
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
        let cleared = if decision.is_none() && !at_end && !any_worse && step_time >= p.min_duration
        {
            let (cleared, limits) = self.cleared(&findings, self.projection());
            if !limits.is_empty() {
                let judged = self.judged_elapsed().as_secs_f64();
                self.limits.push((judged, limits));
            }
            cleared
        } else {
            None
        };
        // The rows a promotion cleared by exclusion rather than by power.
        let mut excluded_rows = Vec::new();
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
            None if !at_end
                && !any_worse
                && step_time >= p.min_duration
                && unmeasured.is_empty()
                && cleared.is_some() =>
            {
                let clearings = cleared.unwrap_or_default();
                excluded_rows.extend(
                    clearings
                        .iter()
                        .filter(|c| !matches!(c, Clearing::OutOfReach { .. }))
                        .map(|c| c.row().to_owned()),
                );
                reason = self.promotion_reason(&clearings, step_time);
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
        Some(self.evaluation(decision, reason, conditions, findings, &excluded_rows))
    }

    /// The evaluation of `decision`; `excluded_rows` had what matters excluded by their
    /// counts, so their power falling short is not a shortfall.
    pub(super) fn evaluation(
        &self,
        decision: RollbackDecision,
        reason: String,
        conditions: Vec<Condition>,
        findings: Vec<Finding>,
        excluded_rows: &[String],
    ) -> Evaluation {
        let requests = |arm: usize| -> Option<f64> {
            // Every request the judge counted, the warm-up's included (from the run's origin).
            let mut total = None::<f64>;
            for s in self.count_spans() {
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
        let mut findings = answer_power(findings);
        let mut warnings = self.pod_statements(&findings);
        let mut lines = self.power_lines(&findings);
        for l in &mut lines {
            l.excluded = excluded_rows.contains(&l.row);
        }
        let mut reason = reason;
        if let Some(statement) = power::statement(&lines) {
            if decision == RollbackDecision::Proceed {
                reason = format!("{reason}; {statement}");
            }
            // What the judge could have caught is beside the point of a rollback it made.
            if decision != RollbackDecision::RollbackAuto {
                warnings.push(statement);
            }
        }
        for f in &mut findings {
            for r in &mut f.rows {
                let line = lines.iter().find(|l| l.row == r.metric);
                if let (Some(i), Some(l)) = (r.interval.as_mut(), line) {
                    i.caught = l.caught;
                }
            }
        }
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

    /// The rows of this look, for [`Judge::progress`] while undecided.
    fn keep_progress(&mut self, findings: &[Finding]) {
        self.progress = findings
            .iter()
            .flat_map(|f| f.rows.iter().cloned())
            .collect();
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
                // The warm-up: only a catastrophe in the counts decides.
                self.last.as_ref()?;
                let findings = self.assess(true);
                self.keep_progress(&findings);
                let e = self.decide(findings, false)?;
                self.decided = Some(e.clone());
                return Some(e);
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
                &[],
            );
            self.decided = Some(e.clone());
            return Some(e);
        }
        let findings = self.assess(false);
        if self.batch_looks >= self.parameters.batch_scrapes {
            self.batch_start = self.last.clone();
            self.batch_looks = 0;
        }
        self.record(&findings);
        self.keep_progress(&findings);
        let e = self.decide(findings, at_end)?;
        self.decided = Some(e.clone());
        Some(e)
    }
}

/// Every this many looks the judge asks whether what matters is out of reach.
const REACH_EVERY: u32 = 4;

/// How much latency evidence a latency catastrophe needs: noise that moves one arm's latency
/// for a scrape or two (the benchmark's per-arm autocorrelated families) is not a catastrophe.
const CATASTROPHE_LATENCY_EVIDENCE: f64 = 60.0;

impl SequentialJudge {
    /// Whether a test worse than its margin before the minimum evidence is a catastrophe,
    /// which decides at once: a count at least `catastrophe_count_ratio` times the baseline's;
    /// a latency metric whose every quantile is at least `catastrophe_latency_ratio` times
    /// production's over a minute of evidence or more. A gauge never is.
    fn catastrophic(&self, m: &SequentialMetric, f: &Finding, t: &Tested) -> bool {
        let p = &self.parameters;
        match m {
            SequentialMetric::Count { .. } => t
                .interval
                .estimate
                .is_some_and(|e| e >= p.catastrophe_count_ratio),
            SequentialMetric::Latency { histogram, .. } => {
                let counting = counts::Counting::Bound {
                    histogram,
                    k: 0,
                    slow: true,
                };
                self.span_seconds(counting) >= CATASTROPHE_LATENCY_EVIDENCE
                    && !f.rows.is_empty()
                    && f.rows
                        .iter()
                        .all(|r| r.ratio.is_some_and(|x| x >= p.catastrophe_latency_ratio))
            }
            SequentialMetric::Gauge { .. } => false,
        }
    }
}

impl SequentialJudge {
    /// Whether every row of every metric with data is cleared: it would have caught what
    /// matters at the traffic seen (a latency quantile: by one of the bounds that bracket it);
    /// failing that, its counts exclude what matters at the promotion risk; failing that, with
    /// `projection` (the step's evidence at its maximum duration over the evidence now), what
    /// matters is out of reach even then and waiting would sharpen what the row catches by
    /// less than `waiting_gain`. A non-critical metric without data does not hold a promotion
    /// back; one whose evidence is still too little to test does. `Some` with the rows not
    /// cleared by power, `None` if a row is not cleared.
    fn cleared(
        &self,
        findings: &[Finding],
        projection: f64,
    ) -> (Option<Vec<Clearing>>, BTreeMap<String, f64>) {
        let mut clearings = Vec::new();
        let mut limits = BTreeMap::new();
        // Whether what matters is out of reach is asked every few looks: it is a bisection
        // per row, and a minute's delay in stopping to wait costs nothing.
        let ask_reach = self.looks.is_multiple_of(REACH_EVERY);
        let p = &self.parameters;
        let judged = self.judged_elapsed().as_secs_f64();
        // A row's limit at the latest earlier look with at most half of today's evidence.
        let half = self.limits.partition_point(|(at, _)| *at <= 0.5 * judged);
        let earlier_limit = |row: &str| {
            self.limits[..half]
                .iter()
                .rev()
                .find_map(|(_, l)| l.get(row).copied())
        };
        let mut all = true;
        for (i, (m, f)) in p.metrics.iter().zip(findings).enumerate() {
            let matters = p.matters_for(i);
            if f.tests.is_empty() {
                // A gauge with readings but too few to test is not "without data": a canary
                // at 0.60 confidence against 0.85 is not promoted before it is judged.
                all &= !m.critical() && !f.waiting && (f.no_data.is_some() || f.rows.is_empty());
                continue;
            }
            for r in &f.rows {
                let tests = f.tests.iter().filter(|t| t.row == r.metric);
                if tests
                    .clone()
                    .any(|t| t.seen.as_ref().is_some_and(|s| s.catches(matters)))
                {
                    continue;
                }
                // Excluded only when every bound that brackets the quantile excludes it: one
                // bound alone can miss a regression that moves only the tail beyond it.
                let arm: Vec<&Tested> = tests.filter(|t| t.seen.is_some()).collect();
                let row = r.metric.clone();
                if let Some(floor) = arm.iter().find_map(|t| t.floor_excluded) {
                    clearings.push(Clearing::Floor {
                        row,
                        matters,
                        floor,
                    });
                    continue;
                }
                let excluded = !arm.is_empty()
                    && arm.iter().all(|t| {
                        t.seen
                            .as_ref()
                            .is_some_and(|s| s.excludes(matters, t.reach))
                    });
                if excluded {
                    clearings.push(Clearing::Excluded { row, matters });
                    continue;
                }
                if !ask_reach {
                    all = false;
                    continue;
                }
                // A test whose estimate already lies beyond where it would roll back may
                // still get there: waiting helps it, whatever its limit.
                if f.tests
                    .iter()
                    .any(|t| t.row == r.metric && leaning_worse(&t.interval))
                {
                    all = false;
                    continue;
                }
                let reach = Reaching {
                    tests: &arm,
                    row: &row,
                    matters,
                };
                match reach.out_of_reach(projection, &earlier_limit, p.waiting_gain, &mut limits) {
                    Some((now, later)) => clearings.push(Clearing::OutOfReach {
                        row,
                        matters,
                        now,
                        later,
                    }),
                    None => all = false,
                }
            }
        }
        (all.then_some(clearings), limits)
    }

    /// Why a step proceeds early: what was powered, excluded, or out of reach.
    fn promotion_reason(&self, clearings: &[Clearing], step_time: Duration) -> String {
        let p = &self.parameters;
        let num = crate::format::Num;
        let ratio = |r: f64| num((r * 100.0).round() / 100.0);
        // A limit (`|ln|`) back on a metric's scale, in its worse direction; `None` if infinite.
        let on_scale = |matters: f64, d: f64| {
            d.is_finite()
                .then(|| if matters >= 1.0 { d.exp() } else { (-d).exp() })
        };
        let excluded: Vec<String> = clearings
            .iter()
            .filter_map(|c| match c {
                Clearing::Floor {
                    row,
                    matters,
                    floor,
                } => Some(format!(
                    "{row} at × {} of the {}% floor or above",
                    num(*matters),
                    num(100.0 * floor)
                )),
                Clearing::Excluded { row, matters } => {
                    Some(format!("{row} × {} or worse", num(*matters)))
                }
                Clearing::OutOfReach { .. } => None,
            })
            .collect();
        let limited: Vec<String> = clearings
            .iter()
            .filter_map(|c| match c {
                Clearing::OutOfReach {
                    row,
                    matters,
                    now,
                    later,
                } => {
                    // The sharpest test's at the end, asked once, for this sentence.
                    let at_most = later
                        .iter()
                        .filter_map(power::Seen::limit)
                        .min_by(f64::total_cmp)
                        .and_then(|d| on_scale(*matters, d));
                    let now = now.and_then(|d| on_scale(*matters, d));
                    Some(match (now, at_most) {
                        (Some(now), Some(at_most)) => format!(
                            "{row} × {} (it catches × {} now and would catch × {} at best)",
                            num(*matters),
                            ratio(now),
                            ratio(at_most)
                        ),
                        (None, Some(at_most)) => format!(
                            "{row} × {} (it catches no factor within × 1000 now and would catch × {} at best)",
                            num(*matters),
                            ratio(at_most)
                        ),
                        _ => format!(
                            "{row} × {} (it catches no factor within × 1000, now or at best)",
                            num(*matters)
                        ),
                    })
                }
                _ => None,
            })
            .collect();
        let mut reason = format!(
            "no metric was found worse than its margin in {}",
            minutes(step_time)
        );
        if !excluded.is_empty() {
            reason.push_str(&format!(
                "; the evidence excludes, at {}% anytime-valid confidence, {} (what matters)",
                num(100.0 * (1.0 - p.promotion_risk)),
                excluded.join(", ")
            ));
        }
        if !limited.is_empty() {
            reason.push_str(&format!(
                "; what matters is out of reach within {}: {}, and waiting would sharpen that by less than {}%, so the judge does not wait for evidence that will not come",
                minutes(p.max_duration),
                limited.join(", "),
                num(100.0 * p.waiting_gain)
            ));
        }
        if clearings.is_empty() {
            reason.push_str(
                ", and at the traffic seen the judge would have caught what matters with 95% power",
            );
        } else {
            reason.push_str(
                ", and every other metric would have caught what matters with 95% power at the traffic seen",
            );
        }
        reason
    }

    /// How much more evidence the step would have at its maximum duration than now, at the
    /// rate it has come (counts are judged from the run's start, so this errs large: towards
    /// power that keeps the judge waiting).
    fn projection(&self) -> f64 {
        let judged = self.judged_elapsed().as_secs_f64();
        let rest = self
            .parameters
            .max_duration
            .saturating_sub(self.step_elapsed())
            .as_secs_f64();
        if judged > 0.0 {
            (judged + rest) / judged
        } else {
            f64::INFINITY
        }
    }

    /// Per row, the smallest regression caught with 95 % power at the traffic seen, against
    /// what matters.
    fn power_lines(&self, findings: &[Finding]) -> Vec<power::Line> {
        let p = &self.parameters;
        let mut lines = Vec::new();
        for (i, f) in findings.iter().enumerate() {
            let matters = p.matters_for(i);
            for r in &f.rows {
                let caught = f
                    .tests
                    .iter()
                    .filter(|t| t.row == r.metric)
                    .filter_map(|t| t.seen.as_ref()?.caught())
                    .min_by(|a, b| (a.ln().abs()).total_cmp(&b.ln().abs()));
                let tested = f
                    .tests
                    .iter()
                    .any(|t| t.row == r.metric && t.seen.is_some());
                if tested {
                    lines.push(power::Line {
                        row: r.metric.clone(),
                        matters,
                        caught,
                        excluded: false,
                    });
                }
            }
        }
        lines
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

/// A row cleared otherwise than by power, for the promotion's reason.
#[derive(Clone, Debug)]
pub(super) enum Clearing {
    /// Its rate is surely below what matters times the count floor.
    Floor {
        row: String,
        matters: f64,
        floor: f64,
    },
    /// Its counts exclude what matters at the promotion risk.
    Excluded { row: String, matters: f64 },
    /// What matters is out of reach within the step, and waiting would not sharpen what it
    /// catches enough: the smallest regression its sharpest test catches with 95 % power now
    /// (`|ln|` on the metric's scale; `None`: none within × 1000), and its tests as they would
    /// be at the step's end.
    OutOfReach {
        row: String,
        matters: f64,
        now: Option<f64>,
        later: Vec<power::Seen>,
    },
}

impl Clearing {
    fn row(&self) -> &str {
        match self {
            Clearing::Floor { row, .. }
            | Clearing::Excluded { row, .. }
            | Clearing::OutOfReach { row, .. } => row,
        }
    }
}

/// A row whose arm `tests` do not catch `matters`, asked whether what matters is out of reach.
struct Reaching<'a> {
    tests: &'a [&'a Tested],
    row: &'a str,
    matters: f64,
}

impl Reaching<'_> {
    /// `Some` when what matters is out of reach even at the step's end (`projection` times
    /// the evidence) and waiting no longer helps: the sharpest test's limit now on the
    /// metric's scale (`|ln|`; `None` when no test shows a factor within × 1000) and the
    /// tests as they would be at the end. Helps means: the smallest regression caught would
    /// sharpen by at least `gain` (of its log) by the step's end, or did since the look with
    /// half the evidence (`earlier`). The projection holds the pods' spread fixed, which
    /// early estimates are not; the look back does not trust it alone. The row's sharpest
    /// test on the metric's own scale is asked; when no test shows a factor within × 1000
    /// there (a quantile between two coarse bucket bounds), every test is asked on its own
    /// statistic instead. Each limit asked goes into `limits`, by row or by row and test.
    fn out_of_reach(
        &self,
        projection: f64,
        earlier: &dyn Fn(&str) -> Option<f64>,
        gain: f64,
        limits: &mut BTreeMap<String, f64>,
    ) -> Option<(Option<f64>, Vec<power::Seen>)> {
        let tests = self.tests;
        if tests.is_empty() || !projection.is_finite() {
            return None;
        }
        let later: Vec<power::Seen> = tests
            .iter()
            .filter_map(|t| Some(t.seen.as_ref()?.projected(projection)))
            .collect();
        if later.len() != tests.len() || later.iter().any(|s| s.catches(self.matters)) {
            return None;
        }
        // At the end it would catch nothing smaller than today's limit shrunk by the gain,
        // and doubling the evidence did not shrink it by that either.
        let settled = |now: f64, ahead: &dyn Fn(f64) -> bool, key: &str| {
            !ahead(now / (1.0 + gain) * (1.0 - 1e-9))
                && earlier(key).is_some_and(|e| e <= (1.0 + gain) * now)
        };
        // The sharpest test's limit on the metric's scale; a test that does not catch the
        // best so far has a worse one, which one call shows without its bisection.
        let mut sharpest: Option<f64> = None;
        for seen in tests.iter().filter_map(|t| t.seen.as_ref()) {
            if sharpest.is_some_and(|best| !seen.catches_log(best)) {
                continue;
            }
            if let Some(d) = seen.limit().filter(|d| d.is_finite()) {
                sharpest = Some(sharpest.map_or(d, |best| best.min(d)));
            }
        }
        if let Some(now) = sharpest {
            limits.insert(self.row.to_owned(), now);
            let ahead = |d: f64| later.iter().any(|s| s.catches_log(d));
            return settled(now, &ahead, self.row).then_some((Some(now), later));
        }
        let mut all = true;
        for (t, ahead) in tests.iter().zip(&later) {
            let key = format!("{}|{}", self.row, t.interval.statistic);
            let now = t.seen.as_ref().and_then(power::Seen::own_limit)?;
            limits.insert(key.clone(), now);
            all &= settled(now, &|d| ahead.catches_own(d), &key);
        }
        all.then_some((None, later))
    }
}

/// Whether a test's estimate lies beyond its margin and pod allowance in the worse direction:
/// not yet shown worse, but leaning that way.
fn leaning_worse(i: &AnytimeInterval) -> bool {
    let Some(estimate) = i.estimate else {
        return false;
    };
    if i.is_difference() {
        return (i.margin < 0.0 && estimate < i.margin) || (i.margin > 0.0 && estimate > i.margin);
    }
    let allowance = i.pods.as_ref().map_or(1.0, |p| p.allowance.max(1.0));
    if i.margin >= 1.0 {
        estimate > i.margin * allowance
    } else {
        estimate < i.margin / allowance
    }
}
