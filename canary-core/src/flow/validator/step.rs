//! One analysis step: the warm-up and a single look, or a judge fed observations until it
//! decides; the charts' series of the step; what a progress display is told.

use std::sync::Mutex;
use std::time::Duration;

use tracing::{info, warn};

use super::bookkeeping::{lock, Journal, StepFailure};
use super::{CanaryValidator, Region, ValidationRequest, ValidatorConfig};
use crate::clock::elapsed;
use crate::deployer::TrafficWeight;
use crate::error::{chain, Error, Result};
use crate::judge::replay::{held, MinTraffic, Replayed, Run};
use crate::judge::{self, JudgeFactory};
use crate::observation::{Observation, ObservationQuery};
use crate::policy::Evaluation;
use crate::progress::{ProgressEvent, StepPlace};
use crate::report::{Action, SeriesPair, StepReport};
use crate::source::{fetch_pair, Arm, MetricsQuery};
use crate::version::Version;

impl CanaryValidator {
    pub(super) async fn analyze_step(
        &self,
        ctx: &StepContext<'_>,
        warmup: Duration,
        carried: &mut Option<Box<dyn judge::Judge>>,
    ) -> Result<Evaluation, StepFailure> {
        let StepContext {
            i,
            region,
            request,
            baseline,
            number: step,
            weight,
            journal,
            ..
        } = *ctx;
        let fail = |what: &str, error: Error| ctx.fail(what, error);
        if let Some(percent) = weight {
            lock(journal).step[i] = format!("step {step}: set canary weight to {percent}%");
            let result = match TrafficWeight::new(percent) {
                Ok(w) => region.deployer.set_canary_weight(w).await,
                Err(e) => Err(e),
            };
            self.record(journal, i, Action::SetWeight { percent }, &result);
            result.map_err(|e| fail("set the canary weight", e))?;
        }
        if let Some(factory) = &self.judge {
            return self.judged_step(ctx, factory.as_ref(), carried).await;
        }
        lock(journal).step[i] = format!("step {step}: warm-up");
        let started_at = self.clock.now();
        self.progress(&ProgressEvent::WarmUp {
            place: ctx.place(),
            duration: warmup,
        });
        self.clock.sleep(warmup).await;

        lock(journal).step[i] = format!("step {step}: analysis");
        let at = self.clock.now();
        let window = self.config.analysis_window;
        let bq = MetricsQuery::new(baseline.clone(), Arm::Baseline, window).at(at);
        let cq = MetricsQuery::new(request.version.clone(), Arm::Canary, window).at(at);
        // The charts' series come alongside the metrics: one round trip, not two.
        let ((b, c), series) = futures::join!(
            fetch_pair(region.source.as_ref(), &bq, &cq),
            self.series(region, &bq, &cq)
        );
        // An impossible or implausible value, or metrics of another version than asked for
        // (a confused source would have the wrong arm judged), is a failed fetch.
        let checked = |m: Result<crate::CanaryMetrics>, asked: &Version| {
            let m = m?;
            if m.version != asked.as_str() {
                return Err(Error::source_failed(
                    asked.as_str(),
                    false,
                    format!(
                        "the source returned metrics labelled {:?} for version {asked}",
                        m.version
                    ),
                ));
            }
            self.policy.check(&m).map(|()| m)
        };
        let b = checked(b, baseline).map_err(|e| fail("fetch baseline metrics", e))?;
        let c = checked(c, &request.version).map_err(|e| fail("fetch canary metrics", e))?;
        let evaluation = self.policy.evaluate(&b, &c);
        info!(decision = %evaluation.decision, reason = %evaluation.primary_reason, "analysis");
        Ok(ctx.record(
            "threshold",
            started_at,
            warmup.as_secs_f64(),
            evaluation,
            Vec::new(),
            series,
        ))
    }

    /// One step decided by a judge: observations of both arms every `judge_step`, fed in time
    /// order, until the judge decides or `max_duration` makes it. A judge carried from the
    /// previous step that [resumes](judge::Judge::resume) keeps its evidence.
    async fn judged_step(
        &self,
        ctx: &StepContext<'_>,
        factory: &dyn JudgeFactory,
        carried: &mut Option<Box<dyn judge::Judge>>,
    ) -> Result<Evaluation, StepFailure> {
        let StepContext {
            i,
            region,
            request,
            baseline,
            number: step,
            journal,
            ..
        } = *ctx;
        let fail = |what: &str, error: Error| ctx.fail(what, error);
        let Some(source) = &region.observations else {
            let error = Error::InvalidConfig {
                field: "regions".into(),
                reason: format!(
                    "the {} judge needs observations; give the region an observation source",
                    factory.name()
                ),
            };
            return Err(fail("start the judge", error));
        };
        let resumed = carried.take().and_then(|mut j| j.resume().then_some(j));
        let mut judge = match resumed {
            Some(j) => j,
            None => factory.start().map_err(|e| fail("start the judge", e))?,
        };
        lock(journal).step[i] = format!("step {step}: judging ({})", judge.name());
        let started_at = self.clock.now();
        let every = self.config.judge_step;
        let name = judge.name().to_owned();
        let cite = |version: &crate::Version, arm| {
            source.describe(&ObservationQuery::new(
                version.clone(),
                arm,
                started_at,
                started_at,
                every,
            ))
        };
        let mut run = Run::new(judge.as_mut(), started_at, self.config.max_duration, every)
            .until_first_decision()
            .with_min_traffic(MinTraffic::of(&self.policy, self.config.analysis_window))
            .with_queries(
                cite(baseline, Arm::Baseline),
                cite(&request.version, Arm::Canary),
            );
        // Bounded by the number of steps, not by the clock: with waits scaled to zero
        // (`CANARY_TIME_SCALE=0`) time barely moves, and the run must still end.
        let looks = (self.config.max_duration.as_secs_f64() / every.as_secs_f64()).ceil() as u64;
        let mut look = 0;
        let evaluation = loop {
            look += 1;
            self.progress(&ProgressEvent::Judging {
                place: ctx.place(),
                judge: &name,
                look,
                next: every,
                remaining: every * (looks + 1).saturating_sub(look).min(u64::from(u32::MAX)) as u32,
            });
            self.clock.sleep(every).await;
            let now = self.clock.now();
            // Always from the start: cumulative counts keep one origin across looks.
            let bq = ObservationQuery::new(baseline.clone(), Arm::Baseline, started_at, now, every);
            let cq =
                ObservationQuery::new(request.version.clone(), Arm::Canary, started_at, now, every);
            let (b, c) = futures::join!(source.observe(&bq), source.observe(&cq));
            let b =
                checked_observations(b, baseline).map_err(|e| fail("observe the baseline", e))?;
            let c = checked_observations(c, &request.version)
                .map_err(|e| fail("observe the canary", e))?;
            // The same rules as every other path: `Run` decides what counts as evidence.
            let answer = if look >= looks {
                run.finish(&b, &c, now)
            } else {
                run.advance(&b, &c, now)
            };
            match answer {
                Replayed::Decided { evaluation, .. } => break *evaluation,
                Replayed::Insufficient { reason, .. } => {
                    break held(reason, baseline.as_str(), request.version.as_str())
                }
                Replayed::Continue { .. } => {}
            }
        };
        info!(decision = %evaluation.decision, reason = %evaluation.primary_reason, judge = judge.name(), "analysis");
        let waited = elapsed(started_at, self.clock.now()).as_secs_f64();
        // This step's share of the judge's evidence over time: what earlier steps did not show.
        let shown = lock(journal)
            .steps
            .iter()
            .filter(|s| s.region == region.name)
            .filter_map(|s| s.sequence.last().map(|p| p.seconds))
            .fold(f64::NEG_INFINITY, f64::max);
        let sequence = judge
            .sequence()
            .into_iter()
            .filter(|p| p.seconds > shown)
            .collect();
        *carried = Some(judge);
        // The charts cover the step as judged, up to the longest analysis window.
        let now = self.clock.now();
        let span = elapsed(started_at, now).clamp(every, ValidatorConfig::MAX_ANALYSIS_WINDOW);
        let bq = MetricsQuery::new(baseline.clone(), Arm::Baseline, span).at(now);
        let cq = MetricsQuery::new(request.version.clone(), Arm::Canary, span).at(now);
        let series = self.series(region, &bq, &cq).await;
        Ok(ctx.record(&name, started_at, waited, evaluation, sequence, series))
    }

    pub(super) fn progress(&self, event: &ProgressEvent<'_>) {
        if let Some(p) = &self.progress {
            p.event(event);
        }
    }

    /// Both arms' metrics over the analysed span, for the report's charts; a failure is
    /// recorded with the step, never a reason to decide otherwise.
    async fn series(
        &self,
        region: &Region,
        baseline: &MetricsQuery,
        canary: &MetricsQuery,
    ) -> (Vec<SeriesPair>, Option<String>) {
        match SeriesPair::fetch(
            region.source.as_ref(),
            baseline,
            canary,
            self.config.judge_step,
        )
        .await
        {
            Ok(series) => (series, None),
            Err(e) => {
                let reason = chain(&e);
                warn!(error = %reason, "no series for the report's charts");
                (Vec::new(), Some(reason))
            }
        }
    }
}

/// What one analysis step works on: the region (and its index), the request, the baseline,
/// the step's number and weight, and the journal.
#[derive(Clone, Copy)]
pub(super) struct StepContext<'a> {
    pub(super) i: usize,
    pub(super) region: &'a Region,
    pub(super) request: &'a ValidationRequest,
    pub(super) baseline: &'a Version,
    pub(super) number: usize,
    pub(super) steps: usize,
    pub(super) weight: Option<u8>,
    pub(super) journal: &'a Mutex<Journal>,
}

impl StepContext<'_> {
    pub(super) fn place(&self) -> StepPlace<'_> {
        StepPlace {
            region: self.region.name.as_deref(),
            step: self.number,
            steps: self.steps,
            weight: self.weight,
        }
    }

    /// Keeps the step's analysis in the journal, and hands it back.
    fn record(
        &self,
        judge: &str,
        started_at: chrono::DateTime<chrono::Utc>,
        waited_seconds: f64,
        evaluation: Evaluation,
        sequence: Vec<judge::SequencePoint>,
        (series, series_error): (Vec<SeriesPair>, Option<String>),
    ) -> Evaluation {
        lock(self.journal).steps.push(StepReport {
            region: self.region.name.clone(),
            step: self.number,
            weight: self.weight,
            started_at,
            waited_seconds,
            judge: Some(judge.to_owned()),
            evaluation: evaluation.clone(),
            sequence,
            series,
            series_error,
        });
        evaluation
    }

    fn fail(&self, what: &str, error: Error) -> StepFailure {
        StepFailure {
            region: self.region.name.clone(),
            step: what.to_owned(),
            error,
        }
    }
}

/// Observations as a judge may see them: labelled with the version asked for, and valid.
fn checked_observations(
    observations: Result<Vec<Observation>>,
    asked: &Version,
) -> Result<Vec<Observation>> {
    let observations = observations?;
    for o in &observations {
        if &o.version != asked {
            return Err(Error::source_failed(
                asked.as_str(),
                false,
                format!(
                    "the source returned observations labelled {} for version {asked}",
                    o.version
                ),
            ));
        }
        o.validate()?;
    }
    Ok(observations)
}
