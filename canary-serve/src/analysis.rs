//! One analysis: the request checked, a turn in the queue, then the policy's single look or the
//! configured judge replaying the canary's run, within the deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use canary_core::judge::replay::{
    first_scrape_grace, run_start, MinTraffic, ReplayBounds, Replayed, Run, RunStart, StartSource,
};
use canary_core::observation::{ObservationQuery, ObservationSource};
use canary_core::{fetch_pair, Arm, MetricsQuery, ValidatorConfig, Version};
use chrono::{DateTime, Utc};

use crate::api::{Analysis, AnalysisRequest, ApiError, Decision, Queries, TextOrNumber};
use crate::metrics::label;
use crate::routes::Shared;

/// Checks the request, waits for a turn, and analyses within the deadline.
pub(crate) async fn analyze(s: &Shared, request: AnalysisRequest) -> Result<Analysis, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let version = |name: &str, v: Option<String>| {
        let v = v.ok_or_else(|| bad(format!("{name} is required")))?;
        Version::new(&v).map_err(|e| bad(format!("{name}: {e}")))
    };
    let baseline = version("baseline", request.baseline)?;
    let canary = version("canary", request.canary)?;
    let window = request
        .window
        .map(|w| canary_core::duration::parse_window(&w.text()))
        .transpose()
        .map_err(|e| bad(format!("window: {e}")))?;
    let instant = |name: &str, t: Option<TextOrNumber>| {
        t.map(|t| canary_core::duration::instant(&t.text()))
            .transpose()
            .map_err(|e| bad(format!("{name}: {e}")))
    };
    let at = instant("at", request.at)?;
    let since = instant("since", request.since)?;
    if let Some(since) = since {
        let now = at.unwrap_or_else(Utc::now);
        if since > now {
            return Err(bad(format!(
                "since: {since} is after the evaluation time {now}"
            )));
        }
        if (now - since).to_std().unwrap_or_default() > ValidatorConfig::MAX_ANALYSIS_WINDOW {
            return Err(bad(
                "since: at most 31 days before the evaluation time".into()
            ));
        }
    }
    let Ok(permit) = tokio::time::timeout(s.config.queue_timeout, s.limiter.acquire()).await else {
        s.metrics
            .rejected
            .get_or_create(&label("reason", "busy"))
            .inc();
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many analyses at once; try again",
        );
        e.retry_after = Some(s.config.queue_timeout.as_secs().max(1));
        return Err(e);
    };
    let started = Instant::now();
    let result = tokio::time::timeout(
        s.config.deadline,
        judge(s, baseline, canary, window, at, since),
    )
    .await;
    drop(permit);
    let analysis = match result {
        Ok(r) => r?,
        Err(_) => {
            s.metrics
                .rejected
                .get_or_create(&label("reason", "deadline"))
                .inc();
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the analysis took longer than {} s",
                    s.config.deadline.as_secs_f64()
                ),
            ));
        }
    };
    s.metrics
        .analyses
        .get_or_create(&label("decision", analysis.decision.as_str()))
        .inc();
    let judge = &s.metrics.judge;
    judge
        .analysis_duration
        .observe(started.elapsed().as_secs_f64());
    let verdicts = match analysis.decision {
        Decision::Proceed => Some(&judge.promotions),
        Decision::RollbackAuto => Some(&judge.rollbacks),
        Decision::RollbackManual => Some(&judge.manual_reviews),
        Decision::Continue => None,
    };
    if let Some(counter) = verdicts {
        counter.inc();
    }
    Ok(analysis)
}

/// One analysis: the policy's single look, or the configured judge over the window.
async fn judge(
    s: &Shared,
    baseline: Version,
    canary: Version,
    window: Option<Duration>,
    at: Option<DateTime<Utc>>,
    since: Option<DateTime<Utc>>,
) -> Result<Analysis, ApiError> {
    let failed = |e: canary_core::Error| {
        ApiError::new(StatusCode::BAD_GATEWAY, canary_core::error::chain(&e))
    };
    let j = &s.judging;
    let mut answer = Analysis {
        decision: Decision::Continue,
        reason: String::new(),
        baseline: baseline.to_string(),
        canary: canary.to_string(),
        window_seconds: 0.0,
        at: at.unwrap_or_else(Utc::now),
        judge: "threshold".into(),
        evaluation: None,
        queries: BTreeMap::new(),
        start: None,
        start_source: None,
        remaining_seconds: None,
        looks: None,
        decided_at: None,
        progress: Vec::new(),
    };
    let Some(factory) = &j.judge else {
        // The guide's single look over the window ending now (or `since` to now).
        let window = match (since, window) {
            (Some(since), _) => (answer.at - since).to_std().unwrap_or_default(),
            (None, w) => w.unwrap_or(s.config.default_window),
        };
        if window < Duration::from_secs(1) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "since: the window it makes is shorter than a second",
            ));
        }
        answer.window_seconds = window.as_secs_f64();
        let mut bq = MetricsQuery::new(baseline, Arm::Baseline, window);
        let mut cq = MetricsQuery::new(canary, Arm::Canary, window);
        bq.at = at;
        cq.at = at;
        let (b, c) = fetch_pair(j.source.as_ref(), &bq, &cq).await;
        let (b, c) = (b.map_err(failed)?, c.map_err(failed)?);
        answer.at = c.timestamp;
        let evaluation = j.policy.try_evaluate(&b, &c).map_err(failed)?;
        answer.decided(evaluation);
        return Ok(answer);
    };
    // A judge replays the run from its start: the service keeps no state, and a sliding
    // window would never let a continuous judge reach its warm-up or its maximum duration.
    let mut judge = factory.start().map_err(failed)?;
    answer.judge = judge.name().to_owned();
    let earliest = judge.earliest_decision();
    if let Some(w) = window {
        if w < earliest {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "window: {} is shorter than the {} judge can decide in ({}); leave window out \
                     to judge since the canary started, or give since=",
                    canary_core::format::duration(w.as_secs_f64()),
                    judge.name(),
                    canary_core::format::duration(earliest.as_secs_f64()),
                ),
            ));
        }
    }
    let asked_now = at.is_none();
    let at = answer.at;
    let step = j.judge_step;
    let lookback = s.config.start_lookback;
    let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let searched_from = at.checked_sub_signed(span(lookback)).unwrap_or(at);
    let bounds_from = |start: DateTime<Utc>| ReplayBounds {
        start,
        at,
        max_duration: j.max_duration,
        step,
    };
    let (start, canary_observations) = match since {
        Some(since) => {
            let end = bounds_from(since).end();
            let cq = ObservationQuery::new(canary.clone(), Arm::Canary, since, end, step);
            let c = j.source.observe(&cq).await.map_err(failed)?;
            (
                Some(RunStart {
                    at: since,
                    source: StartSource::Given,
                }),
                c,
            )
        }
        None => {
            let cq = ObservationQuery::new(canary.clone(), Arm::Canary, searched_from, at, step);
            let c = j.source.observe(&cq).await.map_err(failed)?;
            (run_start(&c, searched_from, at, step), c)
        }
    };
    let Some(start) = start else {
        // A live question (no `at`) about a canary not scraped yet: awaited for the
        // first-scrape grace from the first question, then held for a person.
        let first = asked_now.then(|| s.first_asked.since(&baseline, &canary, at));
        let grace = first_scrape_grace(step);
        let held_from = first.map(|f| f + span(grace));
        if let Some((first, held_from)) = first.zip(held_from).filter(|(_, h)| at < *h) {
            answer.remaining_seconds = Some((held_from - at).num_milliseconds() as f64 / 1000.0);
            answer.reason = format!(
                "still collecting evidence: waiting for the canary's first scrape: {canary} has \
                 no series in Prometheus yet (first asked at {first}); if none appears by \
                 {held_from}, a person decides"
            );
            return Ok(answer);
        }
        answer.decision = Decision::RollbackManual;
        answer.reason = format!(
            "insufficient data: the canary {canary} has no series in the {} before {at}{}: is it \
             deployed, and do its series carry this version label?",
            canary_core::format::duration(lookback.as_secs_f64()),
            first
                .map(|f| format!(
                    " (first asked at {f}, awaited {})",
                    canary_core::format::duration(grace.as_secs_f64())
                ))
                .unwrap_or_default()
        );
        return Ok(answer);
    };
    s.first_asked.forget(&baseline, &canary);
    let bounds = bounds_from(start.at);
    let end = bounds.end();
    let bq = ObservationQuery::new(baseline.clone(), Arm::Baseline, start.at, end, step);
    let b = j.source.observe(&bq).await.map_err(failed)?;
    answer.window_seconds = (end - start.at).num_milliseconds().max(0) as f64 / 1000.0;
    answer.start_source = Some(start.source.to_string());
    answer.start = Some(start.at);
    let cq = ObservationQuery::new(canary.clone(), Arm::Canary, start.at, end, step);
    let mut run = Run::within(judge.as_mut(), &bounds)
        .with_min_traffic(MinTraffic::of(&j.policy, s.config.default_window))
        .with_queries(j.source.describe(&bq), j.source.describe(&cq));
    let answered = run.advance(&b, &canary_observations, bounds.at);
    answer.decided_at = run.decided_at();
    answer.progress = run.progress();
    match answered {
        Replayed::Decided { evaluation, looks } => {
            answer.looks = Some(looks);
            answer.progress.clear();
            answer.decided(*evaluation);
        }
        Replayed::Continue {
            looks,
            remaining,
            waiting_for,
        } => {
            answer.looks = Some(looks);
            answer.remaining_seconds = Some(remaining.as_secs_f64());
            answer.reason = format!(
                "still collecting evidence: {looks} observations of each arm over the {} since {}; {}the {} judge \
                 decides within {}",
                canary_core::format::duration(answer.window_seconds),
                canary_core::format::instant(start.at),
                waiting_for
                    .map(|w| format!("waiting for {w}; "))
                    .unwrap_or_default(),
                answer.judge,
                canary_core::format::duration(remaining.as_secs_f64()),
            );
        }
        Replayed::Insufficient { reason, looks } => {
            answer.looks = Some(looks);
            answer.decision = Decision::RollbackManual;
            answer.reason = reason;
        }
    }
    Ok(answer)
}

impl Analysis {
    /// The answer carries `evaluation`: its decision, its reason and each row's queries.
    fn decided(&mut self, evaluation: canary_core::Evaluation) {
        for m in &evaluation.comparisons {
            self.queries.insert(
                m.metric.clone(),
                Queries {
                    baseline: m.baseline_query.clone(),
                    canary: m.canary_query.clone(),
                },
            );
        }
        self.decision = evaluation.decision.into();
        self.reason.clone_from(&evaluation.primary_reason);
        self.evaluation = Some(evaluation);
    }
}
