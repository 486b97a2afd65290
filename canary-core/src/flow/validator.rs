//! The guide's `CanaryValidator`: deploy, wait, analyse, act, notify, report.
//!
//! One flow serves every shape of the guide: a single analysis, a progressive canary (one
//! analysis per traffic weight, stopping at the first step that does not proceed), several
//! regions at once (one source and one deployer each, promoting only if every region
//! proceeds), and a user's business check that must pass too.
//!
//! # Failure handling
//!
//! If any step fails — resolving the baseline, deploying, shifting traffic, fetching metrics,
//! the business check, promoting — the canary is rolled back in every region where it was
//! (or may have been) deployed, and the report's outcome is `failed` with the cause.
//! Notifications are best-effort: a failing notifier is recorded in the report and changes
//! nothing else.
//!
//! # Cancellation
//!
//! [`CanaryValidator::validate_until`] takes a cancel signal. It is honoured while the
//! baseline is resolved, the canary deployed, during warm-ups and analyses: the running step
//! is dropped, the canary rolled back, and the outcome is `cancelled`. Once the validator acts
//! on a decision (promote or roll back) it finishes that first. Dropping the future returned
//! by `validate` abandons the flow without cleanup; prefer a cancel signal.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::future::{self, Either};

use tracing::{info, info_span, warn, Instrument};

use crate::business::BusinessCheck;
use crate::clock::{elapsed, Clock, SystemClock};
use crate::deployer::{CanarySpec, Deployer, RollbackTarget};
use crate::error::{chain, Error, Result};
use crate::judge::{self, JudgeFactory};
use crate::notifier::Notifier;
use crate::policy::{Evaluation, RollbackDecision, RollbackPolicy};
use crate::progress::{Progress, ProgressEvent};
use crate::report::{
    Action, BusinessCheckRecord, FailureRecord, Outcome, Timings, ValidationReport,
};
use crate::source::MetricsSource;
use crate::telemetry::ValidationMetrics;
use crate::version::Version;

mod bookkeeping;
mod config;
mod step;

use bookkeeping::{lock, Journal, StepFailure, Verdict};
pub use config::{
    BaselineArm, ManualReviewAction, Region, ValidationRequest, ValidatorConfig,
    DEFAULT_PROGRESSIVE_WEIGHTS,
};
use step::StepContext;

/// Runs canary validations. See the [module docs](self) for the flow.
///
/// ```
/// # use std::sync::Arc;
/// # use canary_core::test_util::{RecordingDeployer, ScriptedSource, healthy_metrics, ManualClock};
/// use canary_core::{CanaryValidator, Outcome, ValidationRequest, Version};
/// # tokio_test_block_on(async {
/// let source = Arc::new(ScriptedSource::new());
/// source.set("v1", healthy_metrics("v1"));
/// source.set("v2", healthy_metrics("v2"));
/// let deployer = Arc::new(RecordingDeployer::with_production("v1"));
/// let validator = CanaryValidator::new(source, deployer.clone())
///     .with_clock(Arc::new(ManualClock::default()));
/// let report = validator.validate(ValidationRequest::new(Version::new("v2")?)).await;
/// assert_eq!(report.outcome, Outcome::Promoted);
/// # Ok::<_, canary_core::Error>(()) }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output { futures::executor::block_on(f) }
/// ```
#[derive(Clone)]
pub struct CanaryValidator {
    regions: Vec<Region>,
    notifiers: Vec<Arc<dyn Notifier>>,
    policy: RollbackPolicy,
    config: ValidatorConfig,
    clock: Arc<dyn Clock>,
    metrics: Option<ValidationMetrics>,
    business_check: Option<Arc<dyn BusinessCheck>>,
    judge: Option<Arc<dyn JudgeFactory>>,
    progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for CanaryValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanaryValidator")
            .field("regions", &self.regions)
            .field(
                "notifiers",
                &self.notifiers.iter().map(|n| n.name()).collect::<Vec<_>>(),
            )
            .field("policy", &self.policy)
            .field("config", &self.config)
            .field(
                "business_check",
                &self.business_check.as_ref().map(|c| c.name()),
            )
            .finish_non_exhaustive()
    }
}

impl CanaryValidator {
    /// A single-region validator with the default policy and configuration.
    pub fn new(source: Arc<dyn MetricsSource>, deployer: Arc<dyn Deployer>) -> Self {
        Self::with_regions(vec![Region {
            name: None,
            source,
            deployer,
            observations: None,
        }])
        .expect("one unnamed region is valid")
    }

    /// A single-region validator from a whole [`Region`] (its name, if any, shows in reports),
    /// e.g. one with an observation source for a judge.
    pub fn for_region(region: Region) -> Self {
        Self::with_regions(vec![region]).expect("one region is valid")
    }

    /// A validator over several regions, run concurrently. Names must be present and unique.
    pub fn multi_region(regions: Vec<Region>) -> Result<Self> {
        let mut names: Vec<&str> = Vec::new();
        for r in &regions {
            match r.name.as_deref() {
                Some(n) if !n.is_empty() && !names.contains(&n) => names.push(n),
                other => {
                    return Err(Error::InvalidConfig {
                        field: "regions".into(),
                        reason: format!("every region needs a unique name, got {other:?}"),
                    })
                }
            }
        }
        Self::with_regions(regions)
    }

    fn with_regions(regions: Vec<Region>) -> Result<Self> {
        if regions.is_empty() {
            return Err(Error::InvalidConfig {
                field: "regions".into(),
                reason: "at least one region is needed".into(),
            });
        }
        Ok(CanaryValidator {
            regions,
            notifiers: Vec::new(),
            policy: RollbackPolicy::default(),
            config: ValidatorConfig::default(),
            clock: Arc::new(SystemClock),
            metrics: None,
            business_check: None,
            judge: None,
            progress: None,
        })
    }

    /// Adds a notifier; every notifier gets every decision.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Uses `policy` to decide, after validating it like every other configuration.
    pub fn with_policy(mut self, policy: RollbackPolicy) -> Result<Self> {
        policy.validate()?;
        self.policy = policy;
        Ok(self)
    }

    /// Uses `config`, after validating it.
    pub fn with_config(mut self, config: ValidatorConfig) -> Result<Self> {
        config.validate()?;
        self.config = config;
        Ok(self)
    }

    /// Waits and reads time through `clock` (tests use a manual clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Records outcomes into these series.
    pub fn with_metrics(mut self, metrics: ValidationMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Decides with a judge fed observations over time, instead of one look at point
    /// estimates: at each step the judge gets both arms' observations every
    /// [`ValidatorConfig::judge_step`] until it decides, or is made to at
    /// [`ValidatorConfig::max_duration`]. Every region needs an observation source
    /// ([`Region::with_observations`]); `warmup` and `analysis_window` are then the judge's
    /// business. Without a judge the validator takes one look after the warm-up, as the guide
    /// does.
    pub fn with_judge(mut self, judge: Arc<dyn JudgeFactory>) -> Self {
        self.judge = Some(judge);
        self
    }

    /// Tells `progress` what the run is doing: each warm-up, each wait for a judge's next look,
    /// each step's decision (for progress bars and CI log lines).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Requires `check` to pass too before promoting.
    pub fn with_business_check(mut self, check: Arc<dyn BusinessCheck>) -> Self {
        self.business_check = Some(check);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &RollbackPolicy {
        &self.policy
    }

    /// The configuration.
    pub fn config(&self) -> &ValidatorConfig {
        &self.config
    }

    /// Runs the whole flow and reports. Never panics and never returns early: every failure
    /// ends in the report, with the canary rolled back.
    pub async fn validate(&self, request: ValidationRequest) -> ValidationReport {
        self.validate_until(request, future::pending()).await
    }

    /// Like [`validate`](Self::validate), but stops, rolls back and reports `cancelled` when
    /// `cancel` completes before the decision is acted on.
    pub async fn validate_until(
        &self,
        request: ValidationRequest,
        cancel: impl Future<Output = ()>,
    ) -> ValidationReport {
        let span = info_span!(
            "canary_validation",
            version = %request.version,
            baseline = request.baseline_version.as_ref().map(Version::as_str).unwrap_or(""),
            regions = self.regions.len(),
        );
        self.run(request, cancel).instrument(span).await
    }

    async fn run(
        &self,
        request: ValidationRequest,
        cancel: impl Future<Output = ()>,
    ) -> ValidationReport {
        let started_at = self.clock.now();
        let journal = Mutex::new(Journal::new(self.regions.len()));
        let analysis = {
            let analysis = self.analyze(&request, &journal);
            futures::pin_mut!(analysis);
            futures::pin_mut!(cancel);
            match future::select(analysis, cancel).await {
                Either::Left((result, _)) => Some(result),
                Either::Right(((), _)) => None,
            }
        };
        let decided_at = self.clock.now();

        let mut verdict = Verdict::default();
        match analysis {
            None => {
                let step = lock(&journal).current_step();
                warn!(%step, "validation cancelled; rolling back the canary");
                let rollback_failure = self.rollback_deployed(&journal).await;
                verdict.outcome = Outcome::Cancelled;
                verdict.reason = format!("cancelled during {step}; the canary was rolled back");
                verdict.failure = Some(FailureRecord {
                    region: None,
                    step: step.clone(),
                    error: chain(&Error::Cancelled { step }),
                    retryable: false,
                });
                if let Some(f) = rollback_failure {
                    verdict.fail(f);
                    verdict.reason =
                        format!("cancelled, and {}; roll it back by hand", verdict.reason);
                }
            }
            Some(Err(failure)) => {
                self.fail_and_roll_back(&journal, &mut verdict, failure)
                    .await
            }
            Some(Ok(results)) => {
                self.decide_and_act(&request, &journal, results, &mut verdict)
                    .await;
            }
        }
        // Whatever the end (promoted, rolled back, held, failed, cancelled): the deployed
        // baseline goes.
        self.remove_baselines(&journal, &mut verdict).await;
        let analysis_seconds = verdict
            .decision
            .map(|_| elapsed(started_at, decided_at).as_secs_f64());

        let journal = journal.into_inner().unwrap_or_else(|p| p.into_inner());
        let baseline_version = request
            .baseline_version
            .as_ref()
            .map(|v| v.to_string())
            .or_else(|| journal.baselines.iter().flatten().next().cloned());
        let waited_seconds = self
            .regions
            .iter()
            .map(|r| {
                journal
                    .steps
                    .iter()
                    .filter(|s| s.region == r.name)
                    .map(|s| s.waited_seconds)
                    .sum::<f64>()
            })
            .fold(0.0, f64::max);
        let mut report = ValidationReport {
            version: request.version.to_string(),
            baseline_version,
            baseline_arm: self.config.baseline,
            outcome: verdict.outcome,
            success: verdict.outcome == Outcome::Promoted,
            decision: verdict.decision,
            reason: verdict.reason,
            evaluation: verdict.evaluation,
            steps: journal.steps,
            business_check: verdict.business,
            actions: journal.actions,
            notifications: Vec::new(),
            failure: verdict.failure,
            timings: Timings {
                started_at,
                finished_at: started_at,
                analysis_seconds,
                waited_seconds,
                total_seconds: 0.0,
            },
            dry_run: false,
        };
        report.notifications = self.notify(&report).await;
        report.timings.finished_at = self.clock.now();
        report.timings.total_seconds =
            elapsed(started_at, report.timings.finished_at).as_secs_f64();
        self.record_metrics(&report);
        info!(outcome = report.outcome.as_str(), reason = %report.reason, "validation finished");
        report
    }

    async fn decide_and_act(
        &self,
        request: &ValidationRequest,
        journal: &Mutex<Journal>,
        results: Vec<Evaluation>,
        verdict: &mut Verdict,
    ) {
        let Some(mut evaluation) = self.policy.combine_regions(results) else {
            return;
        };
        if let (RollbackDecision::Proceed, Some(check)) =
            (evaluation.decision, &self.business_check)
        {
            match check.check(&request.version, &evaluation).await {
                Ok(v) => {
                    evaluation = self
                        .policy
                        .apply_business_verdict(evaluation, &check.name(), &v);
                    verdict.business = Some(BusinessCheckRecord {
                        name: check.name(),
                        passed: v.passed,
                        details: v.details,
                    });
                }
                Err(e) => {
                    let error = Error::BusinessCheck {
                        check: check.name(),
                        source: Box::new(e),
                    };
                    let failure = StepFailure {
                        region: None,
                        step: "business check".into(),
                        error,
                    };
                    self.fail_and_roll_back(journal, verdict, failure).await;
                    return;
                }
            }
        }
        let decision = evaluation.decision;

        info!(%decision, reason = %evaluation.primary_reason, "decision");
        verdict.decision = Some(decision);
        verdict.reason = evaluation.primary_reason.clone();
        verdict.evaluation = Some(evaluation);
        verdict.outcome = match decision {
            RollbackDecision::Proceed => {
                let promoted =
                    future::join_all(self.regions.iter().enumerate().map(|(i, r)| async move {
                        let result = r.deployer.promote(&request.version).await;
                        self.record(
                            journal,
                            i,
                            Action::Promote {
                                version: request.version.to_string(),
                            },
                            &result,
                        );
                        (i, result)
                    }))
                    .await;
                let mut failed = promoted
                    .into_iter()
                    .filter_map(|(i, r)| r.err().map(|e| (i, e)));
                match failed.next() {
                    None => Outcome::Promoted,
                    Some((i, error)) => {
                        // Regions that did promote stay promoted; the failing ones lose the canary.
                        let failing: Vec<usize> =
                            std::iter::once(i).chain(failed.map(|(j, _)| j)).collect();
                        verdict.fail(StepFailure {
                            region: self.regions[i].name.clone(),
                            step: "promote".into(),
                            error,
                        });
                        self.rollback_regions(journal, &failing).await;
                        return;
                    }
                }
            }
            RollbackDecision::RollbackAuto => self.rollback_or_fail(journal, verdict).await,
            RollbackDecision::RollbackManual => match self.config.on_manual_review {
                ManualReviewAction::Rollback => self.rollback_or_fail(journal, verdict).await,
                ManualReviewAction::Hold => {
                    for i in 0..self.regions.len() {
                        self.record(journal, i, Action::HoldForReview, &Ok(()));
                    }
                    Outcome::HeldForReview
                }
            },
        };
    }

    /// Records `failure`, rolls the canary back, and says so if that fails too.
    async fn fail_and_roll_back(
        &self,
        journal: &Mutex<Journal>,
        verdict: &mut Verdict,
        failure: StepFailure,
    ) {
        warn!(step = %failure.step, error = %chain(&failure.error), "step failed; rolling back the canary");
        verdict.fail(failure);
        if let Some(f) = self.rollback_deployed(journal).await {
            verdict.reason.push_str(&format!(
                "; rolling back the canary failed too: {}; roll it back by hand",
                chain(&f.error)
            ));
        }
    }

    async fn rollback_or_fail(&self, journal: &Mutex<Journal>, verdict: &mut Verdict) -> Outcome {
        match self.rollback_deployed(journal).await {
            None => Outcome::RolledBack,
            Some(f) => {
                let decision_reason = std::mem::take(&mut verdict.reason);
                verdict.fail(f);
                verdict.reason =
                    format!(
                    "{decision_reason}; rolling back the canary failed: {}; roll it back by hand",
                    verdict.failure.as_ref().map(|f| f.error.as_str()).unwrap_or("")
                );
                Outcome::Failed
            }
        }
    }

    /// Removes the baseline wherever it was (or may have been) deployed; a failure is said in
    /// the reason, with what to remove by hand, and does not change the outcome.
    async fn remove_baselines(&self, journal: &Mutex<Journal>, verdict: &mut Verdict) {
        let deployed: Vec<usize> = {
            let j = lock(journal);
            (0..self.regions.len())
                .filter(|&i| j.baseline_deployed[i])
                .collect()
        };
        let results = future::join_all(deployed.iter().map(|&i| async move {
            let result = self.regions[i].deployer.remove_baseline().await;
            self.record(journal, i, Action::RemoveBaseline, &result);
            (i, result)
        }))
        .await;
        for (i, r) in results {
            if let Err(e) = r {
                let region = self.regions[i]
                    .name
                    .as_deref()
                    .map(|r| format!(" in {r}"))
                    .unwrap_or_default();
                warn!(error = %chain(&e), "removing the baseline failed");
                verdict.reason.push_str(&format!(
                    "; removing the baseline{region} failed: {}; remove it by hand",
                    chain(&e)
                ));
            }
        }
    }

    /// Rolls the canary back wherever it was (or may have been) deployed.
    async fn rollback_deployed(&self, journal: &Mutex<Journal>) -> Option<StepFailure> {
        let deployed: Vec<usize> = {
            let j = lock(journal);
            (0..self.regions.len()).filter(|&i| j.deployed[i]).collect()
        };
        self.rollback_regions(journal, &deployed).await
    }

    async fn rollback_regions(
        &self,
        journal: &Mutex<Journal>,
        regions: &[usize],
    ) -> Option<StepFailure> {
        let results = future::join_all(regions.iter().map(|&i| async move {
            let result = self.regions[i]
                .deployer
                .rollback(&RollbackTarget::Canary)
                .await;
            self.record(
                journal,
                i,
                Action::Rollback {
                    target: RollbackTarget::Canary,
                },
                &result,
            );
            (i, result)
        }))
        .await;
        results.into_iter().find_map(|(i, r)| {
            r.err().map(|error| StepFailure {
                region: self.regions[i].name.clone(),
                step: "roll back the canary".into(),
                error,
            })
        })
    }

    async fn analyze(
        &self,
        request: &ValidationRequest,
        journal: &Mutex<Journal>,
    ) -> Result<Vec<Evaluation>, StepFailure> {
        future::try_join_all(
            self.regions
                .iter()
                .enumerate()
                .map(|(i, region)| self.analyze_region(i, region, request, journal)),
        )
        .await
    }

    async fn analyze_region(
        &self,
        i: usize,
        region: &Region,
        request: &ValidationRequest,
        journal: &Mutex<Journal>,
    ) -> Result<Evaluation, StepFailure> {
        let fail = |step: &str, error: Error| StepFailure {
            region: region.name.clone(),
            step: step.to_owned(),
            error,
        };
        if request
            .warmup
            .is_some_and(|w| w > ValidatorConfig::MAX_WARMUP)
        {
            return Err(fail(
                "check the request",
                Error::InvalidConfig {
                    field: "warmup".into(),
                    reason: "must be at most a week".into(),
                },
            ));
        }
        let baseline = match &request.baseline_version {
            Some(v) => v.clone(),
            None => {
                let step = "resolve the production version";
                lock(journal).step[i] = step.into();
                let result = region.deployer.production_version().await;
                self.record(journal, i, Action::ResolveBaseline, &result);
                match result {
                    Ok(Some(v)) => v,
                    Ok(None) => {
                        return Err(fail(
                            step,
                            Error::NoBaseline {
                                region: region.name.clone(),
                            },
                        ))
                    }
                    Err(e) => return Err(fail(step, e)),
                }
            }
        };
        lock(journal).baselines[i] = Some(baseline.to_string());

        {
            let mut j = lock(journal);
            j.step[i] = "deploy the canary".into();
            // Marked before the call: a failed or cancelled deploy may have left something.
            j.deployed[i] = true;
        }
        let spec = CanarySpec {
            version: request.version.clone(),
            values_file: request.values_file.clone(),
        };
        let result = region.deployer.deploy_canary(&spec).await;
        self.record(
            journal,
            i,
            Action::DeployCanary {
                version: request.version.to_string(),
            },
            &result,
        );
        result.map_err(|e| fail("deploy the canary", e))?;

        if self.config.baseline == BaselineArm::Deployed {
            let step = "deploy the baseline";
            {
                let mut j = lock(journal);
                j.step[i] = step.into();
                j.baseline_deployed[i] = true;
            }
            // Production's version with the canary's values: its size and share of traffic.
            let spec = CanarySpec {
                version: baseline.clone(),
                values_file: request.values_file.clone(),
            };
            let result = region.deployer.deploy_baseline(&spec).await;
            self.record(
                journal,
                i,
                Action::DeployBaseline {
                    version: baseline.to_string(),
                },
                &result,
            );
            result.map_err(|e| fail(step, e))?;
        }

        let weights: Vec<Option<u8>> = if self.config.progressive_weights.is_empty() {
            vec![None]
        } else {
            self.config
                .progressive_weights
                .iter()
                .copied()
                .map(Some)
                .collect()
        };
        let warmup = request.warmup.unwrap_or(self.config.warmup);
        let mut last = None;
        // A judge that can carry its evidence across traffic weights keeps judging.
        let mut carried: Option<Box<dyn judge::Judge>> = None;
        let steps = weights.len();
        for (n, weight) in weights.into_iter().enumerate() {
            let span = info_span!(
                "canary_step",
                region = region.name.as_deref().unwrap_or(""),
                step = n + 1,
                weight = weight.unwrap_or(0)
            );
            let ctx = StepContext {
                i,
                region,
                request,
                baseline: &baseline,
                number: n + 1,
                steps,
                weight,
                journal,
            };
            let evaluation = self
                .analyze_step(&ctx, warmup, &mut carried)
                .instrument(span)
                .await?;
            let decision = evaluation.decision;
            self.progress(&ProgressEvent::Decided {
                place: ctx.place(),
                decision,
            });
            last = Some(evaluation);
            if decision != RollbackDecision::Proceed {
                break;
            }
        }
        Ok(last.expect("at least one step"))
    }
}
