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
use canary_core::judge::Verdict;
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
}

/// What an analysis is asked with: the query string of a GET, the JSON body of a POST.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalysisRequest {
    baseline: Option<String>,
    canary: Option<String>,
    window: Option<TextOrNumber>,
    at: Option<TextOrNumber>,
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

async fn flagger(
    s: &Shared,
    body: Result<Json<FlaggerPayload>, axum::extract::rejection::JsonRejection>,
) -> Result<Analysis, ApiError> {
    let Json(payload) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let key = |k: &str| payload.metadata.get(k).cloned();
    info!(
        canary = %payload.name,
        namespace = %payload.namespace,
        phase = payload.phase.as_deref().unwrap_or(""),
        "flagger webhook"
    );
    let request = AnalysisRequest {
        baseline: key("baseline"),
        canary: key("canary"),
        window: key("window").map(TextOrNumber::Text),
        at: None,
    };
    if request.baseline.is_none() || request.canary.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the webhook's metadata must name the versions: baseline and canary",
        ));
    }
    analyze(s, request).await
}

/// Flagger's rollout hook: 200 lets the canary advance, 403 (with the analysis) halts it.
async fn flagger_gate(
    State(s): State<Shared>,
    body: Result<Json<FlaggerPayload>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let analysis = flagger(&s, body).await?;
    let status = match analysis.decision {
        Decision::Proceed | Decision::Continue => StatusCode::OK,
        Decision::RollbackAuto | Decision::RollbackManual => StatusCode::FORBIDDEN,
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
    let window = match request.window {
        None => s.config.default_window,
        Some(w) => {
            canary_core::duration::parse(&w.text()).map_err(|e| bad(format!("window: {e}")))?
        }
    };
    if window > ValidatorConfig::MAX_ANALYSIS_WINDOW {
        return Err(bad("window: at most 31 days".into()));
    }
    let at = request
        .at
        .map(|t| canary_core::duration::instant(&t.text()))
        .transpose()
        .map_err(|e| bad(format!("at: {e}")))?;
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
    let result =
        tokio::time::timeout(s.config.deadline, judge(s, baseline, canary, window, at)).await;
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
    window: Duration,
    at: Option<DateTime<Utc>>,
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
        window_seconds: window.as_secs_f64(),
        at: at.unwrap_or_else(Utc::now),
        judge: "threshold".into(),
        evaluation: None,
        queries: BTreeMap::new(),
    };
    let Some(factory) = &j.judge else {
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
    // A judge over the window's observations, from scratch: the service keeps no state.
    let mut judge = factory.start().map_err(failed)?;
    answer.judge = judge.name().to_owned();
    let end = answer.at;
    let start = end - chrono::Duration::from_std(window).unwrap_or_default();
    let bq = ObservationQuery::new(baseline.clone(), Arm::Baseline, start, end, j.judge_step);
    let cq = ObservationQuery::new(canary.clone(), Arm::Canary, start, end, j.judge_step);
    let (b, c) = futures::join!(j.source.observe(&bq), j.source.observe(&cq));
    let (b, c) = (b.map_err(failed)?, c.map_err(failed)?);
    let mut looks = 0;
    for o in &c {
        let Some(base) = b.iter().find(|x| x.at == o.at) else {
            continue;
        };
        looks += 1;
        if let Verdict::Decided(e) = judge.observe(base, o) {
            answer.decision = e.decision.into();
            answer.reason.clone_from(&e.primary_reason);
            answer.evaluation = Some(*e);
            return Ok(answer);
        }
    }
    answer.reason = format!(
        "still collecting evidence: {looks} looks over {} s, no decision yet",
        window.as_secs()
    );
    Ok(answer)
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    grace: Duration,
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
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let grace = config.shutdown_grace;
    Ok(Server {
        listener,
        router: router(config, judging),
        tls,
        grace,
    })
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls;
    let read = |p: &std::path::Path| {
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
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::service::TowerToHyperService;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = Builder::new(TokioExecutor::new());
        tokio::pin!(shutdown);
        info!(address = %self.local_addr(), tls = self.tls.is_some(), "canary serve: listening");
        loop {
            let (stream, _) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let service = TowerToHyperService::new(self.router.clone());
            match &self.tls {
                None => {
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls), service)
                            .into_owned();
                        let _ = watcher.watch(conn).await;
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
