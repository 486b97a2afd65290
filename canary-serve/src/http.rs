//! The routes, their handlers, and the server loop (TLS, graceful shutdown).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use canary_core::judge::replay::{
    replay, run_start, ReplayBounds, Replayed, RunStart, StartSource,
};
use canary_core::observation::{ObservationQuery, ObservationSource};
use canary_core::{
    fetch_pair, Arm, Evaluation, MetricsQuery, RollbackDecision, ValidatorConfig, Version,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::metrics::{label, ServiceMetrics};
use crate::{Judging, ServeConfig};

/// An analysis' decision, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The canary may go on.
    Proceed,
    /// Roll the canary back.
    RollbackAuto,
    /// A person decides.
    RollbackManual,
    /// A judge is still collecting evidence: ask again later.
    Continue,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Proceed => "proceed",
            Decision::RollbackAuto => "rollback_auto",
            Decision::RollbackManual => "rollback_manual",
            Decision::Continue => "continue",
        }
    }
}

impl From<RollbackDecision> for Decision {
    fn from(d: RollbackDecision) -> Self {
        match d {
            RollbackDecision::Proceed => Decision::Proceed,
            RollbackDecision::RollbackAuto => Decision::RollbackAuto,
            RollbackDecision::RollbackManual => Decision::RollbackManual,
        }
    }
}

/// The queries behind one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queries {
    /// Production's query.
    pub baseline: Option<String>,
    /// The canary's query.
    pub canary: Option<String>,
}

/// One analysis' answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The decision.
    pub decision: Decision,
    /// The primary reason, for people.
    pub reason: String,
    /// Production's version.
    pub baseline: String,
    /// The canary's version.
    pub canary: String,
    /// The window analysed, in seconds.
    pub window_seconds: f64,
    /// The evaluation time.
    pub at: DateTime<Utc>,
    /// The judge: `threshold`, or the configured judge's name.
    pub judge: String,
    /// The whole evaluation with every metric's evidence; absent while a judge continues.
    pub evaluation: Option<Evaluation>,
    /// The queries that were run, per metric.
    pub queries: BTreeMap<String, Queries>,
    /// A judge's run start: the instant its evidence is counted from.
    pub start: Option<DateTime<Utc>>,
    /// Where `start` came from (the request's `since`, or the canary's first sample).
    pub start_source: Option<String>,
    /// With `continue`: the longest the judge may still take, in seconds.
    pub remaining_seconds: Option<f64>,
    /// A judge's looks: the observation pairs it was fed.
    pub looks: Option<u64>,
}

/// What an analysis is asked with: the query string of a GET, the JSON body of a POST.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalysisRequest {
    baseline: Option<String>,
    canary: Option<String>,
    window: Option<TextOrNumber>,
    at: Option<TextOrNumber>,
    since: Option<TextOrNumber>,
}

/// `"5m"` or `300`; `"2026-11-27T20:00:00Z"` or `1795800000`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TextOrNumber {
    Text(String),
    Number(f64),
}

impl TextOrNumber {
    fn text(&self) -> String {
        match self {
            TextOrNumber::Text(t) => t.clone(),
            // Exact for any plausible window or instant; an absurd number stays short in the
            // error that quotes it (`1e308`, not 309 digits).
            TextOrNumber::Number(n) if n.is_finite() && n.abs() < 1e15 => format!("{n}"),
            TextOrNumber::Number(n) => format!("{n:e}"),
        }
    }
}

/// Flagger's webhook payload.
#[derive(Debug, Deserialize)]
struct FlaggerPayload {
    name: String,
    namespace: String,
    phase: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// An error as the API answers it: a status and `{"error": "..."}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// What every handler shares.
struct AppState {
    judging: Judging,
    config: ServeConfig,
    limiter: Semaphore,
    metrics: ServiceMetrics,
}

type Shared = Arc<AppState>;

/// The service's routes over `judging`, with its limits, auth and metrics.
pub fn router(config: ServeConfig, judging: Judging) -> Router {
    let state = Arc::new(AppState {
        limiter: Semaphore::new(config.max_concurrent_analyses),
        metrics: ServiceMetrics::new(judging.source.clone()),
        judging,
        config,
    });
    let api = Router::new()
        .route("/v1/analysis", get(analysis_get).post(analysis_post))
        .route("/v1/flagger/gate", post(flagger_gate))
        .route(
            "/v1/flagger/confirm-promotion",
            post(flagger_confirm_promotion),
        )
        .route("/v1/flagger/rollback", post(flagger_rollback))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .merge(api)
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state)
}

/// Counts and times every request by route and status.
async fn measure(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    s.metrics.in_flight.inc();
    let response = next.run(request).await;
    s.metrics.in_flight.dec();
    let mut labels = label("route", &route);
    labels.push(("code".into(), response.status().as_u16().to_string()));
    s.metrics.requests.get_or_create(&labels).inc();
    s.metrics
        .latency
        .get_or_create(&label("route", &route))
        .observe(started.elapsed().as_secs_f64());
    response
}

/// With a token configured, every `/v1/` request carries `Authorization: Bearer <token>`.
async fn authorize(State(s): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &s.config.auth_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
                .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(request).await
}

/// Equal in time that depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0);
    }
    diff == 0
}

async fn metrics(State(s): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn readyz(State(s): State<Shared>) -> Response {
    match tokio::time::timeout(Duration::from_secs(5), s.judging.source.ready()).await {
        Ok(Ok(())) => "ready\n".into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "Prometheus does not answer: {}",
                canary_core::error::chain(&e)
            ),
        )
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Prometheus does not answer in 5 s",
        )
        .into_response(),
    }
}

async fn analysis_get(
    State(s): State<Shared>,
    query: Result<Query<AnalysisRequest>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Analysis>, ApiError> {
    let Query(request) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    analyze(&s, request).await.map(Json)
}

async fn analysis_post(
    State(s): State<Shared>,
    body: Result<Json<AnalysisRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Analysis>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    analyze(&s, request).await.map(Json)
}

/// The metadata key with which a gate says its canary's promotion waits for a
/// `confirm-promotion` hook: only then may the gate let `continue` advance the canary.
pub const CONFIRM_PROMOTION_KEY: &str = "confirm_promotion";

async fn flagger(
    s: &Shared,
    body: Result<Json<FlaggerPayload>, axum::extract::rejection::JsonRejection>,
) -> Result<Analysis, ApiError> {
    flagger_payload(s, body).await.map(|(a, _)| a)
}

/// One Flagger webhook's analysis, with the webhook's metadata.
async fn flagger_payload(
    s: &Shared,
    body: Result<Json<FlaggerPayload>, axum::extract::rejection::JsonRejection>,
) -> Result<(Analysis, BTreeMap<String, String>), ApiError> {
    let Json(payload) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let key = |k: &str| payload.metadata.get(k).cloned();
    // Debug-formatted: a client's CR/LF is escaped, never a forged log line.
    info!(
        canary = ?payload.name,
        namespace = ?payload.namespace,
        phase = ?payload.phase.as_deref().unwrap_or(""),
        "flagger webhook"
    );
    let request = AnalysisRequest {
        baseline: key("baseline"),
        canary: key("canary"),
        window: key("window").map(TextOrNumber::Text),
        at: key("at").map(TextOrNumber::Text),
        since: key("since").map(TextOrNumber::Text),
    };
    if request.baseline.is_none() || request.canary.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the webhook's metadata must name the versions: baseline and canary",
        ));
    }
    let analysis = analyze(s, request).await?;
    Ok((analysis, payload.metadata))
}

/// Flagger's rollout hook: 200 lets the canary advance a step, 403 (with the analysis) is a
/// failed check. `continue` advances only when the metadata says a `confirm-promotion` hook
/// guards the promotion (`confirm_promotion: "true"`): used alone, a gate that let `continue`
/// through would have Flagger step up to its maximum weight and promote before the judge
/// decided.
async fn flagger_gate(
    State(s): State<Shared>,
    body: Result<Json<FlaggerPayload>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (mut analysis, metadata) = flagger_payload(&s, body).await?;
    let guarded = metadata
        .get(CONFIRM_PROMOTION_KEY)
        .is_some_and(|v| v == "true");
    let status = match analysis.decision {
        Decision::Proceed => StatusCode::OK,
        Decision::Continue if guarded => StatusCode::OK,
        Decision::Continue => {
            analysis.reason = format!(
                "{} (this gate does not let an undecided canary advance: without a \
                 confirm-promotion hook on /v1/flagger/confirm-promotion, and \
                 {CONFIRM_PROMOTION_KEY}: \"true\" in this hook's metadata, Flagger would promote it)",
                analysis.reason
            );
            StatusCode::FORBIDDEN
        }
        Decision::RollbackAuto | Decision::RollbackManual => StatusCode::FORBIDDEN,
    };
    Ok((status, Json(analysis)).into_response())
}

/// Flagger's `confirm-promotion` hook: 200 (Flagger promotes) only on `proceed`; 403 with the
/// analysis otherwise, and Flagger waits, its metric checks going on.
async fn flagger_confirm_promotion(
    State(s): State<Shared>,
    body: Result<Json<FlaggerPayload>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let analysis = flagger(&s, body).await?;
    let status = match analysis.decision {
        Decision::Proceed => StatusCode::OK,
        _ => StatusCode::FORBIDDEN,
    };
    Ok((status, Json(analysis)).into_response())
}

/// Flagger's rollback hook: 200 (Flagger rolls back) only on `rollback_auto`; 409 otherwise.
async fn flagger_rollback(
    State(s): State<Shared>,
    body: Result<Json<FlaggerPayload>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let analysis = flagger(&s, body).await?;
    let status = match analysis.decision {
        Decision::RollbackAuto => StatusCode::OK,
        _ => StatusCode::CONFLICT,
    };
    Ok((status, Json(analysis)).into_response())
}

/// Checks the request, waits for a turn, and analyses within the deadline.
async fn analyze(s: &Shared, request: AnalysisRequest) -> Result<Analysis, ApiError> {
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
        for m in &evaluation.comparisons {
            answer.queries.insert(
                m.metric.clone(),
                Queries {
                    baseline: m.baseline_query.clone(),
                    canary: m.canary_query.clone(),
                },
            );
        }
        answer.decision = evaluation.decision.into();
        answer.reason.clone_from(&evaluation.primary_reason);
        answer.evaluation = Some(evaluation);
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
    let at = answer.at;
    let step = j.judge_step;
    let lookback = s.config.start_lookback;
    let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let searched_from = at.checked_sub_signed(span(lookback)).unwrap_or(at);
    let bounds_from = |start: DateTime<Utc>| ReplayBounds {
        start,
        at,
        max_duration: j.max_duration,
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
        answer.decision = Decision::RollbackManual;
        answer.reason = format!(
            "insufficient data: the canary {canary} has no series in the {} before {at}: is it \
             deployed, and do its series carry this version label?",
            canary_core::format::duration(lookback.as_secs_f64())
        );
        return Ok(answer);
    };
    let bounds = bounds_from(start.at);
    let end = bounds.end();
    let bq = ObservationQuery::new(baseline.clone(), Arm::Baseline, start.at, end, step);
    let b = j.source.observe(&bq).await.map_err(failed)?;
    answer.window_seconds = (end - start.at).num_milliseconds().max(0) as f64 / 1000.0;
    answer.start_source = Some(start.source.to_string());
    answer.start = Some(start.at);
    match replay(judge.as_mut(), &b, &canary_observations, bounds) {
        Replayed::Decided { evaluation, looks } => {
            answer.looks = Some(looks);
            answer.decision = evaluation.decision.into();
            answer.reason.clone_from(&evaluation.primary_reason);
            answer.evaluation = Some(*evaluation);
        }
        Replayed::Continue { looks, remaining } => {
            answer.looks = Some(looks);
            answer.remaining_seconds = Some(remaining.as_secs_f64());
            answer.reason = format!(
                "still collecting evidence: {looks} looks over the {} since {}; the {} judge \
                 decides within {}",
                canary_core::format::duration(answer.window_seconds),
                start.at,
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

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    grace: Duration,
    header_timeout: Duration,
    connections: Arc<Semaphore>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Binds `config.listen` (TLS when configured) for the routes over `judging`.
pub async fn serve(config: ServeConfig, judging: Judging) -> Result<Server, String> {
    config.validate()?;
    if judging.max_duration < Duration::from_secs(1) || judging.judge_step < Duration::from_secs(1)
    {
        return Err("validator.max_duration and validator.judge_step: must be at least 1 s".into());
    }
    if judging.judge.is_some() && config.start_lookback < judging.max_duration {
        return Err(format!(
            "serve.start_lookback: {} is shorter than the judge's maximum duration {} \
             (validator.max_duration): a run older than the look-back would never end",
            canary_core::format::duration(config.start_lookback.as_secs_f64()),
            canary_core::format::duration(judging.max_duration.as_secs_f64()),
        ));
    }
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    Ok(Server {
        listener,
        grace: config.shutdown_grace,
        header_timeout: config.header_timeout,
        connections: Arc::new(Semaphore::new(config.max_connections)),
        router: router(config, judging),
        tls,
    })
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls;
    // A regular file of at most 1 MiB: a FIFO would hang the start, /dev/zero fill memory.
    let read = |p: &std::path::Path| {
        let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        if !meta.is_file() || meta.len() > 1 << 20 {
            return Err(format!(
                "{} is not a regular file of at most 1 MiB",
                p.display()
            ));
        }
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate: {e}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| format!("{}: not a PEM key: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key in it", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("TLS: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Server {
    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` completes; then refuses new connections and lets in-flight
    /// requests finish (up to the grace period).
    ///
    /// At most `max_connections` are served at once (more wait in the kernel's listen queue),
    /// each must send a request head within `header_timeout`, and a failing `accept` (out of
    /// file descriptors) backs off and is logged once a second at most.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::service::TowerToHyperService;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.header_timeout)
            .keep_alive_timeout(self.header_timeout);
        let header_timeout = self.header_timeout;
        tokio::pin!(shutdown);
        info!(address = %self.local_addr(), tls = self.tls.is_some(), "canary serve: listening");
        let mut backoff = AcceptBackoff::default();
        loop {
            let permit = tokio::select! {
                p = self.connections.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        backoff.succeeded();
                        stream
                    }
                    Err(e) => {
                        let wait = backoff.failed(&e);
                        tokio::select! {
                            () = tokio::time::sleep(wait) => continue,
                            () = &mut shutdown => break,
                        }
                    }
                },
                () = &mut shutdown => break,
            };
            let service = TowerToHyperService::new(self.router.clone());
            match &self.tls {
                None => {
                    let stream = FirstByteWithin::new(stream, header_timeout);
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                        drop(permit);
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(header_timeout, acceptor.accept(stream));
                        let Ok(Ok(tls)) = handshake.await else {
                            return;
                        };
                        let tls = FirstByteWithin::new(tls, header_timeout);
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls), service)
                            .into_owned();
                        let _ = watcher.watch(conn).await;
                        drop(permit);
                    });
                }
            }
        }
        drop(self.listener);
        info!("canary serve: shutting down; finishing requests in flight");
        if tokio::time::timeout(self.grace, graceful.shutdown())
            .await
            .is_err()
        {
            warn!("requests still in flight after the grace period; stopping anyway");
        }
        Ok(())
    }
}

/// A connection that must send its first byte within a deadline: hyper's header timeout only
/// starts once it knows the protocol, and telling HTTP/1 from HTTP/2 waits for bytes, so an
/// idle connection would otherwise be held forever.
struct FirstByteWithin<S> {
    inner: S,
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> FirstByteWithin<S> {
    fn new(inner: S, within: Duration) -> Self {
        FirstByteWithin {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for FirstByteWithin<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        let me = &mut *self;
        match std::pin::Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    me.deadline = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let expired = me
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "no request in time");
                    Poll::Ready(Err(e))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for FirstByteWithin<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How the accept loop waits after a failed `accept` (e.g. `EMFILE`): doubling from 10 ms to
/// a second, so it neither spins nor floods the log; one line a second at most, with the
/// number of failures it stands for.
#[derive(Debug, Default)]
struct AcceptBackoff {
    wait: Duration,
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl AcceptBackoff {
    fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.wait = (self.wait * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.unlogged += 1;
        if self
            .logged_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            warn!(
                error = %error,
                failures = self.unlogged,
                retry_in_ms = self.wait.as_millis() as u64,
                "accept failed; backing off"
            );
            self.unlogged = 0;
            self.logged_at = Some(Instant::now());
        }
        self.wait
    }

    fn succeeded(&mut self) {
        self.wait = Duration::ZERO;
    }
}
