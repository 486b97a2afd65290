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
use crate::policy::{Evaluation, RollbackDecision};

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

/// The bounds of one replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayBounds {
    /// The run's start.
    pub start: DateTime<Utc>,
    /// The evaluation time ("now", or the caller's `at`).
    pub at: DateTime<Utc>,
    /// At `start + max_duration` the judge must decide ([`Judge::finish`]).
    pub max_duration: Duration,
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
    /// The judge decided (or was made to, at the maximum duration).
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
    },
    /// There is nothing to judge; a person decides.
    Insufficient {
        /// What is missing, for people.
        reason: String,
        /// Observation pairs fed.
        looks: u64,
    },
}

/// Replays the run `[bounds.start, min(bounds.at, start + max_duration)]` through `judge`:
/// see the module's docs. A judge that proceeds and [resumes](Judge::resume) is fed on, so
/// evidence after its proceed can still roll it back; its proceed stands otherwise.
pub fn replay(
    judge: &mut dyn Judge,
    baseline: &[Observation],
    canary: &[Observation],
    bounds: ReplayBounds,
) -> Replayed {
    let (deadline, end) = (bounds.deadline(), bounds.end());
    let within = |o: &&Observation| o.at >= bounds.start && o.at <= end;
    let canary: Vec<&Observation> = canary.iter().filter(within).collect();
    let baseline: Vec<&Observation> = baseline.iter().filter(within).collect();
    let insufficient = |reason: String| Replayed::Insufficient { reason, looks: 0 };
    let since = |o: &[&Observation]| o.first().map(|f| f.at).unwrap_or(bounds.start);
    let Some(canary_version) = canary.first().map(|o| o.version.clone()) else {
        return insufficient(format!(
            "insufficient data: the canary has no series since {}",
            bounds.start
        ));
    };
    let Some(baseline_version) = baseline.first().map(|o| o.version.clone()) else {
        return insufficient(format!(
            "insufficient data: production has no series since {} (the canary {canary_version} has)",
            bounds.start
        ));
    };
    let pairs: Vec<(&Observation, &Observation)> = canary
        .iter()
        .filter_map(|c| baseline.iter().find(|b| b.at == c.at).map(|b| (*b, *c)))
        .collect();
    if pairs.is_empty() {
        return insufficient(format!(
            "insufficient data: production {baseline_version} and the canary {canary_version} share no instant since {}",
            bounds.start
        ));
    }
    // No traffic is not evidence: once the judge could have decided, an arm without requests
    // is a reason for a person to look, not to wait.
    let elapsed = (end - bounds.start).to_std().unwrap_or_default();
    if elapsed >= judge.earliest_decision() {
        for (arm, version, observations) in [
            ("the canary", &canary_version, &canary),
            ("production", &baseline_version, &baseline),
        ] {
            let requests = requests_between(observations);
            if requests.is_none_or(|r| r <= 0.0) {
                return insufficient(format!(
                    "insufficient data: {arm} {version} received no requests in the {} since {}",
                    crate::format::duration(
                        (end - since(observations)).num_milliseconds() as f64 / 1000.0
                    ),
                    since(observations)
                ));
            }
        }
    }
    let mut looks = 0;
    let mut proceeded: Option<Evaluation> = None;
    for (b, c) in pairs {
        looks += 1;
        if let Verdict::Decided(e) = judge.observe(b, c) {
            if e.decision == RollbackDecision::Proceed && judge.resume() {
                proceeded = Some(*e);
                continue;
            }
            return Replayed::Decided {
                evaluation: e,
                looks,
            };
        }
    }
    if let Some(e) = proceeded {
        return Replayed::Decided {
            evaluation: Box::new(e),
            looks,
        };
    }
    if bounds.at >= deadline {
        return Replayed::Decided {
            evaluation: Box::new(judge.finish()),
            looks,
        };
    }
    Replayed::Continue {
        looks,
        remaining: (deadline - bounds.at).to_std().unwrap_or_default(),
    }
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
            Replayed::Continue { remaining, looks } => {
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
}
