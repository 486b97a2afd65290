//! A canary run judged from its start, as a stateless judge service must judge it.
//!
//! A service that keeps no state answers each controller request from scratch. Judging a
//! sliding window from scratch never lets a continuous judge reach its warm-up, minimum evidence
//! or maximum duration, so it would answer "continue" forever. Instead the run is replayed from
//! its start (the caller's `since`, or the canary's first sample found in Prometheus), the judge
//! is fed every observation since, and at the maximum duration it is made to finish: "continue"
//! is never the last word. Missing data is never "collecting evidence": no series, no shared
//! instant, or no requests after the judge's earliest decision time is [`Replayed::Insufficient`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Judge, Verdict};
use crate::observation::{names, Observation};
use crate::policy::{
    hold_incomplete, hold_stopped, AnytimeInterval, Condition, Evaluation, MetricComparison,
    RollbackDecision, Rule,
};

/// Where a run's start came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StartSource {
    /// The caller named it (`since=`).
    Given,
    /// The canary's first observation after its latest gap, found within the look-back.
    FirstSample {
        /// How far back the canary's series were searched, in seconds.
        lookback_seconds: f64,
    },
    /// The canary's series reach back to the look-back's beginning: the run is at least that
    /// long, and is judged from there.
    LookbackLimit {
        /// How far back the canary's series were searched, in seconds.
        lookback_seconds: f64,
    },
}

impl std::fmt::Display for StartSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartSource::Given => f.write_str("given by the request (since)"),
            StartSource::FirstSample { lookback_seconds } => write!(
                f,
                "the canary's first sample in Prometheus (searched {} back)",
                crate::format::duration(*lookback_seconds)
            ),
            StartSource::LookbackLimit { lookback_seconds } => write!(
                f,
                "the canary's series reach past the look-back ({}): judged from its beginning",
                crate::format::duration(*lookback_seconds)
            ),
        }
    }
}

/// A run's start and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    /// The instant the run is judged from.
    pub at: DateTime<Utc>,
    /// Why that instant.
    pub source: StartSource,
}

/// The longest pause in a canary's series that still counts as the same run: a longer one
/// means the version was deployed again (an earlier attempt rolled back, then retried).
pub fn run_gap(step: Duration) -> Duration {
    (step * 4).max(Duration::from_secs(300))
}

/// The start of the canary's current run among `canary` (observations from `searched_from`
/// on, in time order, every `step`): its first observation after the latest gap longer than
/// [`run_gap`]. `None` when there is no observation at all.
pub fn run_start(
    canary: &[Observation],
    searched_from: DateTime<Utc>,
    at: DateTime<Utc>,
    step: Duration,
) -> Option<RunStart> {
    let gap = chrono::Duration::from_std(run_gap(step)).unwrap_or(chrono::Duration::MAX);
    let mut start = canary.first()?;
    for pair in canary.windows(2) {
        if pair[1].at - pair[0].at > gap {
            start = &pair[1];
        }
    }
    let lookback_seconds = (at - searched_from).num_milliseconds() as f64 / 1000.0;
    let step = chrono::Duration::from_std(step).unwrap_or(chrono::Duration::MAX);
    let source = if std::ptr::eq(start, &canary[0]) && start.at - searched_from <= step {
        StartSource::LookbackLimit { lookback_seconds }
    } else {
        StartSource::FirstSample { lookback_seconds }
    };
    Some(RunStart {
        at: start.at,
        source,
    })
}

/// The longest an arm may go without a sample before its silence is a finding: four steps, and
/// at least a minute. It covers a missed scrape, a step that falls between two scrapes, and a
/// store's ingestion delay (VictoriaMetrics hides the last 30 s by default). A store that
/// marks stale series (Prometheus, on a target that stops answering) ends them within a scrape;
/// backfilled data has no staleness markers, and there a stopped series shows its last value
/// for Prometheus's lookback (5 minutes) first.
pub fn silence_bound(step: Duration) -> Duration {
    (step * 4).max(Duration::from_secs(60))
}

/// How long after a run's start a canary with no series at all is still awaited (its first
/// scrape): eight steps, and at least two minutes. After it, no series is a finding.
pub fn first_scrape_grace(step: Duration) -> Duration {
    (step * 8).max(Duration::from_secs(120))
}

/// The bounds of one replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayBounds {
    /// The run's start.
    pub start: DateTime<Utc>,
    /// The evaluation time ("now", or the caller's `at`).
    pub at: DateTime<Utc>,
    /// At `start + max_duration` the judge must decide ([`Judge::finish`]).
    pub max_duration: Duration,
    /// Between observations: the silence bound and the first-scrape grace follow from it.
    pub step: Duration,
}

impl ReplayBounds {
    /// When the judge must decide: `start + max_duration` (`at` if that overflows).
    pub fn deadline(&self) -> DateTime<Utc> {
        chrono::Duration::from_std(self.max_duration)
            .ok()
            .and_then(|max| self.start.checked_add_signed(max))
            .unwrap_or(self.at)
    }

    /// The last instant judged: the evaluation time, or the deadline if that came first.
    pub fn end(&self) -> DateTime<Utc> {
        self.at.min(self.deadline())
    }
}

/// What a replay ends with.
#[derive(Clone, Debug, PartialEq)]
pub enum Replayed {
    /// The judge decided (or was made to, at the maximum duration), and the evidence rules
    /// kept it or held it for a person.
    Decided {
        /// The decision and its evidence.
        evaluation: Box<Evaluation>,
        /// Observation pairs fed.
        looks: u64,
    },
    /// Still collecting evidence.
    Continue {
        /// Observation pairs fed.
        looks: u64,
        /// How long the judge may still take: until the maximum duration.
        remaining: Duration,
        /// What the run waits for beyond the judge's own evidence (the canary's first scrape),
        /// for people.
        waiting_for: Option<String>,
    },
    /// There is nothing to judge, or the evidence stopped; a person decides.
    Insufficient {
        /// What is missing, for people.
        reason: String,
        /// Observation pairs fed.
        looks: u64,
    },
}

/// Replays the run `[bounds.start, min(bounds.at, start + max_duration)]` through `judge`:
/// a [`Run`] asked once. See the module's docs.
pub fn replay(
    judge: &mut dyn Judge,
    baseline: &[Observation],
    canary: &[Observation],
    bounds: ReplayBounds,
) -> Replayed {
    Run::within(judge, &bounds).advance(baseline, canary, bounds.at)
}

/// One canary run driven through a judge, the one place where what counts as evidence is
/// decided for every path (the service, `canary run`, Python, the backtest, retrospective
/// `analyze`) and every judge:
///
/// - **No series.** A canary with no series since the start is awaited for
///   [`first_scrape_grace`], then held for a person; production with none, or the two arms
///   with no shared instant, is held at once.
/// - **No traffic.** Once the judge could decide, an arm that received no request is held.
/// - **Silence.** An arm whose latest sample is older than [`silence_bound`] stopped
///   reporting: held for a person, naming the arm and when it stopped, whatever the judge
///   would say, unless the judge rolled the canary back. A pod that stopped while others of
///   its arm report is named in the evidence; the run goes on with the rest.
/// - **Coverage.** A promotion (the judge's, or at the maximum duration) needs evidence over
///   the whole run: no hole longer than the silence bound in either arm from its first
///   sample to the end.
/// - **Incomplete answers.** Any warning the store gave with the observations keeps the
///   canary from being promoted ([`hold_incomplete`](crate::policy::hold_incomplete)).
///
/// [`advance`](Run::advance) may be called again with everything observed since the start:
/// only instants not yet fed reach the judge.
pub struct Run<'j> {
    judge: &'j mut dyn Judge,
    start: DateTime<Utc>,
    max_duration: Duration,
    step: Duration,
    fed_until: Option<DateTime<Utc>>,
    looks: u64,
    proceeded: Option<Evaluation>,
    decided: Option<Evaluation>,
    /// When the judge decided (its observation's instant).
    judge_decided_at: Option<DateTime<Utc>>,
    /// When the latest answer's decision was made: the judge's instant, or the end of the
    /// evidence when an evidence rule overrode the judge.
    decided_at: Option<DateTime<Utc>>,
    past_proceed: bool,
    min_traffic: MinTraffic,
    /// The store's queries behind the observations, (baseline, canary), by observation name.
    queries: [Vec<(String, String)>; 2],
}

/// The least traffic a promotion is made on: `requests` per arm in every `window` of the run,
/// on average. The guide's policy asks 100 requests per 5-minute window of each arm
/// (`min_sample_count`, `analysis_window`): a judge that reads a thinner canary as healthy
/// has not seen enough to say so, whatever its own test concluded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinTraffic {
    /// Requests per window.
    pub requests: f64,
    /// The window.
    pub window: Duration,
}

impl Default for MinTraffic {
    fn default() -> Self {
        MinTraffic {
            requests: crate::thresholds::RollbackThresholds::default().min_sample_count,
            window: Duration::from_secs(300),
        }
    }
}

impl MinTraffic {
    /// `policy`'s minimum sample count per `window` (its analysis window).
    pub fn of(policy: &crate::policy::RollbackPolicy, window: Duration) -> Self {
        MinTraffic {
            requests: policy.thresholds().min_sample_count,
            window,
        }
    }

    /// Requests needed over `span`.
    fn over(&self, span: Duration) -> f64 {
        self.requests * span.as_secs_f64() / self.window.as_secs_f64().max(1.0)
    }
}

impl<'j> Run<'j> {
    /// A run from `start` judged by `judge`, which must decide by `start + max_duration`, with
    /// observations every `step`.
    pub fn new(
        judge: &'j mut dyn Judge,
        start: DateTime<Utc>,
        max_duration: Duration,
        step: Duration,
    ) -> Self {
        Run {
            judge,
            start,
            max_duration,
            step,
            fed_until: None,
            looks: 0,
            proceeded: None,
            decided: None,
            judge_decided_at: None,
            decided_at: None,
            past_proceed: true,
            min_traffic: MinTraffic::default(),
            queries: Default::default(),
        }
    }

    /// The least traffic a promotion is made on (the guide's by default): the policy's
    /// `min_sample_count` per analysis window.
    pub fn with_min_traffic(mut self, min: MinTraffic) -> Self {
        self.min_traffic = min;
        self
    }

    /// The store's queries behind each arm's observations (see
    /// [`ObservationSource::describe`](crate::observation::ObservationSource::describe)): a
    /// decision's rows then cite the queries their values were computed from.
    pub fn with_queries(
        mut self,
        baseline: Vec<(String, String)>,
        canary: Vec<(String, String)>,
    ) -> Self {
        self.queries = [baseline, canary];
        self
    }

    /// Takes the judge's first decision, a proceed included, as a driver that moves on to
    /// its next traffic step on a proceed needs (it [resumes](Judge::resume) the judge
    /// itself). By default a judge that proceeds and resumes is fed on.
    pub fn until_first_decision(mut self) -> Self {
        self.past_proceed = false;
        self
    }

    /// A run over `bounds` (its start, maximum duration and step) judged by `judge`.
    pub fn within(judge: &'j mut dyn Judge, bounds: &ReplayBounds) -> Self {
        Run::new(judge, bounds.start, bounds.max_duration, bounds.step)
    }

    /// While undecided: each metric as the judge saw it at its latest look (see
    /// [`Judge::progress`]), each open one saying what it still needs and, from its interval,
    /// when the judge expects to have it at the traffic so far.
    pub fn progress(&self) -> Vec<MetricComparison> {
        let elapsed = self
            .fed_until
            .map(|t| (t - self.start).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0);
        let deadline = self.max_duration.as_secs_f64();
        let mut rows = self.judge.progress();
        for r in &mut rows {
            if r.status != crate::policy::ComparisonStatus::Open {
                continue;
            }
            if let Some(i) = &r.interval {
                r.no_data_reason = Some(expectation(i, elapsed, deadline));
            }
        }
        rows
    }

    /// Observation pairs fed to the judge so far.
    pub fn looks(&self) -> u64 {
        self.looks
    }

    /// When the latest answer's decision was made: the instant of the observation the judge
    /// decided on, or the end of the evidence when the judge was made to decide there or an
    /// evidence rule (silence, holes, store warnings, thin traffic) overrode it. `None` while
    /// undecided.
    pub fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.decided_at
    }

    /// The answer at `at`, given each arm's observations since the start (in time order; those
    /// outside the run are ignored). See the type's docs for the rules.
    pub fn advance(
        &mut self,
        baseline: &[Observation],
        canary: &[Observation],
        at: DateTime<Utc>,
    ) -> Replayed {
        self.answer(baseline, canary, at, false)
    }

    /// As [`advance`](Run::advance), but the judge must decide now, as at the maximum
    /// duration: for a driver that counts its looks rather than the clock.
    pub fn finish(
        &mut self,
        baseline: &[Observation],
        canary: &[Observation],
        at: DateTime<Utc>,
    ) -> Replayed {
        self.answer(baseline, canary, at, true)
    }

    fn answer(
        &mut self,
        baseline: &[Observation],
        canary: &[Observation],
        at: DateTime<Utc>,
        must_decide: bool,
    ) -> Replayed {
        let bounds = ReplayBounds {
            start: self.start,
            at,
            max_duration: self.max_duration,
            step: self.step,
        };
        let (deadline, end) = (bounds.deadline(), bounds.end());
        let within = |o: &&Observation| o.at >= bounds.start && o.at <= end;
        let canary: Vec<&Observation> = canary.iter().filter(within).collect();
        let baseline: Vec<&Observation> = baseline.iter().filter(within).collect();
        let looks = self.looks;
        let insufficient = |reason: String| Replayed::Insufficient { reason, looks };
        let since = |o: &[&Observation]| o.first().map(|f| f.at).unwrap_or(bounds.start);
        let elapsed = (end - bounds.start).to_std().unwrap_or_default();
        let remaining = (deadline - at).to_std().unwrap_or_default();
        let Some(canary_version) = canary.first().map(|o| o.version.clone()) else {
            let grace = first_scrape_grace(self.step);
            if elapsed < grace && at < deadline && !must_decide {
                return Replayed::Continue {
                    looks,
                    remaining,
                    waiting_for: Some(format!(
                        "the canary's first scrape: it has no series since {} yet; without one \
                         by {} a person decides",
                        crate::format::instant(bounds.start),
                        crate::format::instant(
                            bounds.start + chrono::Duration::from_std(grace).unwrap_or_default()
                        )
                    )),
                };
            }
            return insufficient(format!(
                "insufficient data: the canary has no series since {}",
                crate::format::instant(bounds.start)
            ));
        };
        let Some(baseline_version) = baseline.first().map(|o| o.version.clone()) else {
            return insufficient(format!(
                "insufficient data: production has no series since {} (the canary {canary_version} has)",
                crate::format::instant(bounds.start)
            ));
        };
        let pairs: Vec<(&Observation, &Observation)> = canary
            .iter()
            .filter_map(|c| baseline.iter().find(|b| b.at == c.at).map(|b| (*b, *c)))
            .collect();
        if pairs.is_empty() {
            return insufficient(format!(
                "insufficient data: production {baseline_version} and the canary {canary_version} share no instant since {}",
                crate::format::instant(bounds.start)
            ));
        }
        let arms = [
            ("the canary", &canary_version, &canary),
            ("production", &baseline_version, &baseline),
        ];
        // No traffic is not evidence: once the judge could have decided, an arm without
        // requests is a reason for a person to look, not to wait.
        if elapsed >= self.judge.earliest_decision() {
            for (arm, version, observations) in arms {
                let requests = requests_between(observations);
                if requests.is_none_or(|r| r <= 0.0) {
                    return insufficient(format!(
                        "insufficient data: {arm} {version} received no requests in the {} since {}",
                        crate::format::duration(
                            (end - since(observations)).num_milliseconds() as f64 / 1000.0
                        ),
                        crate::format::instant(since(observations))
                    ));
                }
            }
        }
        self.feed(&pairs);
        let judged = match (&self.decided, &self.proceeded) {
            (Some(e), _) | (None, Some(e)) => Some(e.clone()),
            (None, None) if at >= deadline || must_decide => {
                let e = self.judge.finish();
                self.decided = Some(e.clone());
                self.judge_decided_at = Some(end);
                Some(e)
            }
            (None, None) => None,
        };
        let bound = silence_bound(self.step);
        let stopped: Option<String> = arms.iter().find_map(|(arm, version, observations)| {
            let last = observations.last()?;
            let quiet = (end - last.at).to_std().unwrap_or_default();
            (quiet > bound).then(|| {
                format!(
                    "{arm} {version} stopped reporting: its latest sample is at {}, {} before {} \
                     (evidence that stops for over {} is a finding){}",
                    crate::format::instant(last.at),
                    crate::format::duration(quiet.as_secs_f64()),
                    crate::format::instant(end),
                    crate::format::duration(bound.as_secs_f64()),
                    pods_named(&last.instances, " its pods", |_| true)
                )
            })
        });
        let looks = self.looks;
        // The rest is evidence for a decision: nothing to attach it to while undecided.
        let Some(evaluation) = judged else {
            if let Some(reason) = stopped {
                return Replayed::Insufficient { reason, looks };
            }
            return Replayed::Continue {
                looks,
                remaining,
                waiting_for: None,
            };
        };
        let judged_reason = evaluation.primary_reason.clone();
        let mut notes = Vec::new();
        for (arm, version, observations) in arms {
            if let Some(last) = observations.last() {
                let gone = |p: &Observation| {
                    p.last_sample
                        .is_some_and(|t| (end - t).to_std().unwrap_or_default() > bound)
                };
                let named = pods_named(&last.instances, "", gone);
                if !named.is_empty() {
                    notes.push(format!(
                        "{arm} {version}: pods that stopped reporting while others go on:{named}"
                    ));
                }
            }
            // A pod that went quiet and came back: its target was down, or the store's answer
            // left it out for a while, silently.
            if let Some(gaps) = pod_gaps(observations, bound) {
                notes.push(format!(
                    "{arm} {version}: pods that reported nothing for a while: {gaps}"
                ));
            }
        }
        let hole = arms.iter().find_map(|(arm, version, observations)| {
            observations.windows(2).find_map(|w| {
                let gap = (w[1].at - w[0].at).to_std().unwrap_or_default();
                (gap > bound).then(|| {
                    format!(
                        "{arm} {version} reported nothing from {} to {} ({}): the run's evidence \
                         has a hole longer than {}",
                        crate::format::instant(w[0].at),
                        crate::format::instant(w[1].at),
                        crate::format::duration(gap.as_secs_f64()),
                        crate::format::duration(bound.as_secs_f64())
                    )
                })
            })
        });
        let mut store_warnings: Vec<String> = Vec::new();
        for (arm, observations) in [("baseline", &baseline), ("canary", &canary)] {
            for w in observations.iter().flat_map(|o| &o.store_warnings) {
                let w = format!("{arm}: {w}");
                if !store_warnings.contains(&w) {
                    store_warnings.push(w);
                }
            }
        }
        let mut evaluation = hold_incomplete(evaluation, &store_warnings);
        evaluation.warnings.extend(notes);
        if let Some(reason) = stopped.or(hole) {
            evaluation = hold_stopped(evaluation, reason);
        }
        if evaluation.decision == RollbackDecision::Proceed {
            let thin = arms.iter().find_map(|(arm, version, observations)| {
                let span = (end - since(observations)).to_std().unwrap_or_default();
                let seen = requests_between(observations).unwrap_or(0.0);
                let needed = self.min_traffic.over(span);
                (seen < needed).then(|| {
                    format!(
                        "too little traffic to judge: {arm} {version} received {} requests in \
                         {}, fewer than the {} needed to promote ({} per {})",
                        crate::format::Num(seen.round()),
                        crate::format::duration(span.as_secs_f64()),
                        crate::format::Num(needed.ceil()),
                        crate::format::Num(self.min_traffic.requests),
                        crate::format::duration(self.min_traffic.window.as_secs_f64())
                    )
                })
            });
            if let Some(reason) = thin {
                evaluation.decision = RollbackDecision::RollbackManual;
                evaluation.recommendation = format!(
                    "Do not promote {} on so little traffic: send it more (a higher weight) \
                     or let it run longer, then analyse again.",
                    evaluation.canary_version
                );
                evaluation.triggered_conditions.insert(
                    0,
                    Condition {
                        rule: Rule::InsufficientSamples,
                        metric: Some(crate::metrics::names::SAMPLE_COUNT.to_owned()),
                        message: reason.clone(),
                    },
                );
                evaluation.primary_reason = reason;
            }
        }
        cite(&mut evaluation, &self.queries, self.step);
        self.decided_at = Some(if evaluation.primary_reason == judged_reason {
            self.judge_decided_at.unwrap_or(end)
        } else {
            end
        });
        Replayed::Decided {
            evaluation: Box::new(evaluation),
            looks,
        }
    }

    /// Feeds the judge the pairs it has not seen, in order, until it decides. A judge that
    /// proceeds and [resumes](Judge::resume) is fed on, so evidence after its proceed can still
    /// roll it back; its proceed stands otherwise.
    fn feed(&mut self, pairs: &[(&Observation, &Observation)]) {
        for &(b, c) in pairs {
            if self.decided.is_some() {
                return;
            }
            if self.fed_until.is_some_and(|t| c.at <= t) {
                continue;
            }
            self.fed_until = Some(c.at);
            self.looks += 1;
            if let Verdict::Decided(e) = self.judge.observe(b, c) {
                if e.decision == RollbackDecision::Proceed
                    && self.past_proceed
                    && self.judge.resume()
                {
                    self.proceeded = Some(*e);
                    self.judge_decided_at = Some(c.at);
                    continue;
                }
                self.decided = Some(*e);
                self.judge_decided_at = Some(c.at);
            }
        }
    }
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("judge", &self.judge.name())
            .field("start", &self.start)
            .field("max_duration", &self.max_duration)
            .field("step", &self.step)
            .field("looks", &self.looks)
            .field("decided", &self.decided.as_ref().map(|e| e.decision))
            .finish()
    }
}

/// Each row's description of how the judge computed it, followed by the store's queries its
/// observations came from, so that what a report shows as a query can be run again.
fn cite(evaluation: &mut Evaluation, queries: &[Vec<(String, String)>; 2], step: Duration) {
    if queries.iter().all(Vec::is_empty) {
        return;
    }
    let used = |metric: &str, how: &str| -> Vec<&'static str> {
        let by_name: &[&'static str] = match metric {
            "error_rate" => &[names::ERRORS, names::REQUESTS],
            "request_rate" | "sample_count" => &[names::REQUESTS],
            m if m.starts_with("latency") => &[names::LATENCY],
            m if m == names::MODEL_CONFIDENCE => &[names::MODEL_CONFIDENCE],
            _ => &[],
        };
        [
            names::LATENCY,
            names::REQUESTS,
            names::ERRORS,
            names::MODEL_CONFIDENCE,
        ]
        .into_iter()
        .filter(|n| by_name.contains(n) || how.contains(n))
        .collect()
    };
    for row in &mut evaluation.comparisons {
        for (arm, query) in [&mut row.baseline_query, &mut row.canary_query]
            .into_iter()
            .enumerate()
        {
            let Some(how) = query.as_ref() else { continue };
            let cited: Vec<String> = used(&row.metric, how)
                .into_iter()
                .filter_map(|n| {
                    let (_, q) = queries[arm].iter().find(|(name, _)| name == n)?;
                    Some(format!("{n} = {q}"))
                })
                .collect();
            if !cited.is_empty() {
                *query = Some(format!(
                    "{how}; its observations from the range queries (step {}): {}",
                    crate::format::duration(step.as_secs_f64()),
                    cited.join("; ")
                ));
            }
        }
    }
}

/// What an open interval still needs, and when the judge should have it if the estimate holds:
/// an anytime interval narrows about as 1/√n, so at the traffic so far it clears the margin
/// after about `elapsed · (half-width / distance)²`.
fn expectation(i: &AnytimeInterval, elapsed: f64, deadline: f64) -> String {
    let difference = i.is_difference();
    let scale = |v: f64| {
        if difference {
            Some(v)
        } else {
            (v > 0.0).then(|| v.ln())
        }
    };
    let (Some(lo), Some(hi), Some(est)) = (i.lower, i.upper, i.estimate) else {
        return format!("{}: not bounded yet; it needs more requests", i.statistic);
    };
    let straddles = format!(
        "{} in [{}, {}] still straddles the margin {}",
        i.statistic,
        crate::format::Num(lo),
        crate::format::Num(hi),
        crate::format::Num(i.margin)
    );
    let (Some(l), Some(h), Some(e), Some(m)) = (scale(lo), scale(hi), scale(est), scale(i.margin))
    else {
        return straddles;
    };
    let (half, distance) = ((h - l) / 2.0, (m - e).abs());
    if !(half > 0.0 && distance > 0.0 && elapsed > 0.0) {
        return format!("{straddles}; its estimate sits on the margin");
    }
    let total = elapsed * (half / distance).powi(2);
    // Which side the estimate is on: worse side is past the margin away from 1 (or 0).
    let worse_side = if difference {
        (e > m) == (i.margin > 0.0)
    } else {
        (e > m) == (i.margin >= 1.0)
    };
    let outcome = if worse_side {
        "found worse"
    } else {
        "within its margin"
    };
    if total > deadline {
        format!(
            "{straddles}; at this traffic it would be {outcome} only after about {}, beyond \
             the run's maximum duration ({}), where the judge decides anyway",
            crate::format::duration(total),
            crate::format::duration(deadline)
        )
    } else {
        format!(
            "{straddles}; at this traffic, if the estimate holds, it is {outcome} about {} \
             into the run",
            crate::format::duration(total)
        )
    }
}

/// The evaluation a driver that needs one records when a run is held for a person before the
/// judge decided ([`Replayed::Insufficient`]): manual review, the reason, no comparisons.
pub fn held(reason: String, baseline_version: &str, canary_version: &str) -> Evaluation {
    Evaluation {
        decision: RollbackDecision::RollbackManual,
        primary_reason: reason.clone(),
        triggered_conditions: vec![Condition {
            rule: Rule::StoppedEvidence,
            metric: None,
            message: reason,
        }],
        comparisons: Vec::new(),
        recommendation: format!(
            "Do not promote {canary_version}: a person should find out why its evidence is \
             missing (is it deployed, are its pods running and scraped, does it get traffic?)."
        ),
        baseline_version: baseline_version.to_owned(),
        canary_version: canary_version.to_owned(),
        baseline_samples: None,
        canary_samples: None,
        min_sample_count: 0.0,
        warnings: Vec::new(),
    }
}

/// Each pod's longest silence over the bound that it came back from, `a from T1 to T2, …` (at
/// most five named); `None` if there is none.
fn pod_gaps(observations: &[&Observation], bound: Duration) -> Option<String> {
    let mut longest: std::collections::BTreeMap<&str, (DateTime<Utc>, DateTime<Utc>)> =
        Default::default();
    let mut quiet: std::collections::BTreeMap<&str, DateTime<Utc>> = Default::default();
    for o in observations {
        for (name, pod) in &o.instances {
            match pod.last_sample {
                Some(t) => {
                    quiet.entry(name.as_str()).or_insert(t);
                }
                None => {
                    if let Some(from) = quiet.remove(name.as_str()) {
                        let gap = (o.at - from).to_std().unwrap_or_default();
                        let kept = longest.get(name.as_str()).map(|(a, b)| *b - *a);
                        if gap > bound && kept.is_none_or(|k| o.at - from > k) {
                            longest.insert(name.as_str(), (from, o.at));
                        }
                    }
                }
            }
        }
    }
    if longest.is_empty() {
        return None;
    }
    let mut named: Vec<String> = longest
        .iter()
        .take(5)
        .map(|(name, (from, to))| {
            format!(
                "{name} from {} to {}",
                crate::format::instant(*from),
                crate::format::instant(*to)
            )
        })
        .collect();
    if longest.len() > 5 {
        named.push(format!("and {} more", longest.len() - 5));
    }
    Some(named.join(", "))
}

/// ` a (stopped at T), b (…)` for the pods `keep` selects, at most five named.
fn pods_named(
    pods: &std::collections::BTreeMap<String, Observation>,
    lead: &str,
    keep: impl Fn(&Observation) -> bool,
) -> String {
    let chosen: Vec<String> = pods
        .iter()
        .filter(|(_, p)| keep(p))
        .map(|(name, p)| match p.last_sample {
            Some(t) => format!("{name} (last sample {t})"),
            None => name.clone(),
        })
        .collect();
    if chosen.is_empty() {
        return String::new();
    }
    let more = chosen.len().saturating_sub(5);
    let mut text = format!("{lead} {}", chosen[..chosen.len().min(5)].join(", "));
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// Requests between the first and the last observation; `None` without the counter.
fn requests_between(observations: &[&Observation]) -> Option<f64> {
    let first = observations.first()?.counters.get(names::REQUESTS)?;
    let last = observations.last()?.counters.get(names::REQUESTS)?;
    Some(last - first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{JudgeFactory, SequentialParameters, ThresholdParameters};
    use crate::test_util::{steady_observations, HEALTHY_SHARES};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }
    const STEP: Duration = Duration::from_secs(15);

    fn steady(
        version: &str,
        rps: f64,
        errors: f64,
        from: DateTime<Utc>,
        mins: u64,
    ) -> Vec<Observation> {
        steady_observations(
            version,
            rps,
            errors,
            HEALTHY_SHARES,
            from,
            Duration::from_secs(mins * 60),
            STEP,
        )
    }

    fn bounds(start: DateTime<Utc>, minutes: i64) -> ReplayBounds {
        ReplayBounds {
            start,
            at: start + chrono::Duration::minutes(minutes),
            max_duration: Duration::from_secs(3600),
            step: STEP,
        }
    }

    #[test]
    fn the_start_is_the_first_sample_after_the_latest_gap() {
        let early = steady("v2", 10.0, 0.01, t0(), 10);
        let later_start = t0() + chrono::Duration::minutes(30);
        let mut all = early.clone();
        all.extend(steady("v2", 10.0, 0.01, later_start, 10));
        let from = t0() - chrono::Duration::minutes(60);
        let s = run_start(&all, from, later_start, STEP).unwrap();
        assert_eq!(s.at, later_start, "a retried deploy starts a new run");
        assert!(matches!(s.source, StartSource::FirstSample { .. }));
        let s = run_start(&early, t0(), t0(), STEP).unwrap();
        assert!(
            matches!(s.source, StartSource::LookbackLimit { .. }),
            "series from the look-back's first instant: the run may be older"
        );
        assert_eq!(run_start(&[], from, t0(), STEP), None);
    }

    #[test]
    fn a_continuous_judge_finishes_at_the_maximum_duration_instead_of_continuing() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        let c = steady("v2", 10.0, 0.01, t0(), 70);
        let mut judge = SequentialParameters::default().start().unwrap();
        match replay(judge.as_mut(), &b, &c, bounds(t0(), 10)) {
            Replayed::Continue {
                remaining, looks, ..
            } => {
                assert_eq!(remaining, Duration::from_secs(3000));
                assert!(looks > 30, "{looks}");
            }
            other => panic!("ten minutes in, a healthy canary is still judged: {other:?}"),
        }
        let mut judge = SequentialParameters::default().start().unwrap();
        match replay(judge.as_mut(), &b, &c, bounds(t0(), 65)) {
            Replayed::Decided { evaluation, .. } => {
                assert_eq!(evaluation.decision, RollbackDecision::Proceed)
            }
            other => panic!("past the maximum duration the judge decides: {other:?}"),
        }
    }

    #[test]
    fn a_bad_canary_is_rolled_back_from_its_start() {
        let b = steady("v1", 50.0, 0.01, t0(), 30);
        let c = steady("v3", 10.0, 0.08, t0(), 30);
        let mut judge = SequentialParameters::default().start().unwrap();
        match replay(judge.as_mut(), &b, &c, bounds(t0(), 20)) {
            Replayed::Decided { evaluation, .. } => {
                assert_eq!(evaluation.decision, RollbackDecision::RollbackAuto)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_data_is_never_collecting_evidence() {
        let b = steady("v1", 50.0, 0.01, t0(), 30);
        let silent = steady("v4", 0.0, 0.0, t0(), 30);
        let mut judge = SequentialParameters::default().start().unwrap();
        let r = replay(judge.as_mut(), &b, &silent, bounds(t0(), 10));
        assert!(
            matches!(&r, Replayed::Insufficient { reason, .. } if reason.contains("no requests")),
            "{r:?}"
        );
        let mut judge = SequentialParameters::default().start().unwrap();
        let r = replay(judge.as_mut(), &b, &[], bounds(t0(), 10));
        assert!(
            matches!(&r, Replayed::Insufficient { reason, .. } if reason.contains("no series")),
            "{r:?}"
        );
        let c = steady("v2", 10.0, 0.01, t0(), 30);
        let mut judge = ThresholdParameters::default().start().unwrap();
        let r = replay(judge.as_mut(), &[], &c, bounds(t0(), 10));
        assert!(
            matches!(&r, Replayed::Insufficient { reason, .. } if reason.contains("production")),
            "{r:?}"
        );
        // Before the judge could decide, a canary without traffic yet is still warming up.
        let mut judge = SequentialParameters::default().start().unwrap();
        let r = replay(judge.as_mut(), &b, &silent, bounds(t0(), 1));
        assert!(matches!(r, Replayed::Continue { .. }), "{r:?}");
    }

    fn every(
        b: &[Observation],
        c: &[Observation],
        bounds: ReplayBounds,
    ) -> Vec<(String, Replayed)> {
        crate::test_util::every_judge()
            .iter()
            .map(|f| {
                let mut judge = f.start().unwrap();
                let name = judge.name().to_owned();
                (name, replay(judge.as_mut(), b, c, bounds))
            })
            .collect()
    }

    fn held_for_a_person(r: &Replayed) -> Option<String> {
        match r {
            Replayed::Insufficient { reason, .. } => Some(reason.clone()),
            Replayed::Decided { evaluation, .. }
                if evaluation.decision == RollbackDecision::RollbackManual =>
            {
                Some(evaluation.primary_reason.clone())
            }
            _ => None,
        }
    }

    /// A pod of the canary's, its series stopping at `minutes`, as a store shows a target that
    /// died (Prometheus's staleness ends its series).
    fn canary_that_stops(minutes: u64) -> Vec<Observation> {
        steady("v2", 10.0, 0.01, t0(), minutes)
    }

    #[test]
    fn a_canary_that_stopped_reporting_is_never_promoted_nor_awaited_by_any_judge() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        // Reported for 4 minutes, asked at 65 (past the maximum duration); reported for 8,
        // asked at 20.
        for (reported, asked) in [(4, 65), (8, 20)] {
            let c = canary_that_stops(reported);
            for (judge, r) in every(&b, &c, bounds(t0(), asked)) {
                // Flagger's absolute latency bound rolls even this canary back: a rollback
                // stands, with the silence among its conditions.
                if let Replayed::Decided { evaluation, .. } = &r {
                    if evaluation.decision == RollbackDecision::RollbackAuto {
                        assert!(evaluation.fired(Rule::StoppedEvidence), "{judge}");
                        continue;
                    }
                }
                let reason = held_for_a_person(&r).unwrap_or_else(|| {
                    panic!("{judge}: reported {reported} min, asked at {asked}: {r:?}")
                });
                assert!(
                    reason.contains("the canary v2 stopped reporting"),
                    "{judge}: {reason}"
                );
            }
        }
    }

    #[test]
    fn a_canary_that_still_reports_is_not_held_for_silence() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        let c = steady("v2", 10.0, 0.01, t0(), 70);
        for (judge, r) in every(&b, &c, bounds(t0(), 65)) {
            let Replayed::Decided { evaluation, .. } = &r else {
                panic!("{judge}: {r:?}")
            };
            assert!(
                !evaluation.fired(Rule::StoppedEvidence),
                "{judge}: {evaluation:?}"
            );
        }
    }

    #[test]
    fn a_rollback_stands_when_the_canary_then_stops() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        let c = steady("v3", 10.0, 0.2, t0(), 12);
        let mut judge = SequentialParameters::default().start().unwrap();
        let r = replay(judge.as_mut(), &b, &c, bounds(t0(), 30));
        let Replayed::Decided { evaluation, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(evaluation.decision, RollbackDecision::RollbackAuto);
        assert!(evaluation.fired(Rule::StoppedEvidence));
    }

    #[test]
    fn a_hole_in_the_evidence_keeps_any_judge_from_promoting() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        let c: Vec<Observation> = steady("v2", 10.0, 0.01, t0(), 70)
            .into_iter()
            .filter(|o| {
                let m = (o.at - t0()).num_seconds();
                !(1200..1440).contains(&m)
            })
            .collect();
        for (judge, r) in every(&b, &c, bounds(t0(), 65)) {
            if let Replayed::Decided { evaluation, .. } = &r {
                assert_ne!(evaluation.decision, RollbackDecision::Proceed, "{judge}");
                if evaluation.decision == RollbackDecision::RollbackManual
                    && evaluation.fired(Rule::StoppedEvidence)
                {
                    assert!(
                        evaluation.primary_reason.contains("reported nothing from"),
                        "{judge}: {}",
                        evaluation.primary_reason
                    );
                }
            }
        }
    }

    #[test]
    fn an_answer_the_store_marked_incomplete_never_promotes_with_any_judge() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        let mut c = steady("v2", 10.0, 0.01, t0(), 70);
        for o in c.iter_mut().skip(100).take(3) {
            o.store_warnings
                .push("partial response: store 10.0.0.7:10901 unavailable".into());
        }
        for (judge, r) in every(&b, &c, bounds(t0(), 65)) {
            let Replayed::Decided { evaluation, .. } = &r else {
                panic!("{judge}: {r:?}")
            };
            assert_ne!(
                evaluation.decision,
                RollbackDecision::Proceed,
                "{judge}: {}",
                evaluation.primary_reason
            );
            assert!(
                evaluation.fired(Rule::IncompleteAnswer)
                    && evaluation
                        .warnings
                        .iter()
                        .any(|w| w == "canary: partial response: store 10.0.0.7:10901 unavailable"),
                "{judge}: {evaluation:?}"
            );
        }
    }

    #[test]
    fn a_canary_not_scraped_yet_is_awaited_for_the_grace_then_held() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        for f in crate::test_util::every_judge() {
            let mut judge = f.start().unwrap();
            let r = replay(judge.as_mut(), &b, &[], bounds(t0(), 1));
            assert!(
                matches!(&r, Replayed::Continue { waiting_for: Some(w), .. } if w.contains("first scrape")),
                "{r:?}"
            );
            let mut judge = f.start().unwrap();
            let late = first_scrape_grace(STEP).as_secs() as i64 / 60 + 1;
            let r = replay(judge.as_mut(), &b, &[], bounds(t0(), late));
            assert!(
                held_for_a_person(&r).is_some_and(|why| why.contains("no series")),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_pod_that_stops_while_others_report_is_named_and_the_run_goes_on() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        let c: Vec<Observation> = steady("v2", 10.0, 0.01, t0(), 70)
            .into_iter()
            .map(|mut o| {
                let mut gone = o.clone();
                gone.instances.clear();
                if o.at - t0() > chrono::Duration::minutes(10) {
                    gone.last_sample = Some(t0() + chrono::Duration::minutes(10));
                }
                let live = o.clone();
                o.instances.insert("v2-a".into(), live);
                o.instances.insert("v2-b".into(), gone);
                o
            })
            .collect();
        let mut judge = ThresholdParameters::default().start().unwrap();
        let r = replay(judge.as_mut(), &b, &c, bounds(t0(), 65));
        let Replayed::Decided { evaluation, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(evaluation.decision, RollbackDecision::Proceed);
        assert!(
            evaluation
                .warnings
                .iter()
                .any(|w| w.contains("pods that stopped reporting")
                    && w.contains("v2-b")
                    && !w.contains("v2-a")),
            "{:?}",
            evaluation.warnings
        );
    }

    #[test]
    fn a_pod_that_went_quiet_and_came_back_is_named() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        let quiet = |o: &Observation| {
            let m = (o.at - t0()).num_seconds();
            (600..900)
                .contains(&m)
                .then(|| t0() + chrono::Duration::seconds(585))
        };
        let c: Vec<Observation> = steady("v2", 10.0, 0.01, t0(), 70)
            .into_iter()
            .map(|mut o| {
                let mut a = o.clone();
                a.instances.clear();
                let mut b = a.clone();
                b.last_sample = quiet(&o);
                o.instances.insert("v2-a".into(), a);
                o.instances.insert("v2-b".into(), b);
                o
            })
            .collect();
        let mut judge = ThresholdParameters::default().start().unwrap();
        let Replayed::Decided { evaluation, .. } = replay(judge.as_mut(), &b, &c, bounds(t0(), 65))
        else {
            panic!()
        };
        let note = evaluation
            .warnings
            .iter()
            .find(|w| w.contains("reported nothing for a while"))
            .unwrap_or_else(|| panic!("{:?}", evaluation.warnings));
        assert!(
            note.contains("v2-b from 2026-11-28 12:09:45 UTC to 2026-11-28 12:15:00 UTC")
                && !note.contains("v2-a"),
            "{note}"
        );
    }

    #[test]
    fn too_little_traffic_is_never_promoted_by_any_judge() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        // Ten requests a minute: 50 per 5-minute window, half the guide's minimum.
        let thin = steady("v2", 10.0 / 60.0, 0.01, t0(), 70);
        for (judge, r) in every(&b, &thin, bounds(t0(), 65)) {
            let Replayed::Decided { evaluation, .. } = &r else {
                panic!("{judge}: {r:?}")
            };
            assert_ne!(
                evaluation.decision,
                RollbackDecision::Proceed,
                "{judge}: {}",
                evaluation.primary_reason
            );
        }
        // Kayenta read it as healthy; the run says why it is not promoted.
        let mut judge = crate::judge::KayentaParameters::default().start().unwrap();
        let r = replay(judge.as_mut(), &b, &thin, bounds(t0(), 65));
        let Replayed::Decided { evaluation, .. } = r else {
            panic!("{r:?}")
        };
        assert!(
            evaluation.primary_reason.starts_with(
                "too little traffic to judge: the canary v2 received 600 requests in 1 h"
            ),
            "{}",
            evaluation.primary_reason
        );
        // Two requests a second is plenty: the rule leaves such a run to its judge.
        let enough = steady("v2", 2.0, 0.01, t0(), 70);
        let mut judge = crate::judge::KayentaParameters::default().start().unwrap();
        let r = replay(judge.as_mut(), &b, &enough, bounds(t0(), 65));
        let Replayed::Decided { evaluation, .. } = r else {
            panic!("{r:?}")
        };
        assert!(
            !evaluation.primary_reason.contains("too little traffic"),
            "{}",
            evaluation.primary_reason
        );
    }

    #[test]
    fn asking_again_feeds_only_what_is_new() {
        let b = steady("v1", 50.0, 0.01, t0(), 70);
        let c = steady("v2", 10.0, 0.01, t0(), 70);
        let mut judge = SequentialParameters::default().start().unwrap();
        let mut run = Run::new(judge.as_mut(), t0(), Duration::from_secs(3600), STEP);
        let at = |m: i64| t0() + chrono::Duration::minutes(m);
        let first = run.advance(&b, &c, at(5));
        let looks_then = run.looks();
        let again = run.advance(&b, &c, at(5));
        assert_eq!(first, again, "the same question, the same answer");
        assert_eq!(run.looks(), looks_then, "nothing new, nothing fed");
        let later = run.advance(&b, &c, at(65));
        let mut fresh = SequentialParameters::default().start().unwrap();
        assert_eq!(
            later,
            replay(fresh.as_mut(), &b, &c, bounds(t0(), 65)),
            "incremental and replayed from scratch agree"
        );
    }
}
