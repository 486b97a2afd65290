//! The routes and their handlers: auth, metrics, health, the analysis and Flagger's hooks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::Semaphore;
use tracing::info;

use crate::analysis::analyze;
use crate::api::{
    Analysis, AnalysisRequest, ApiError, Decision, FlaggerPayload, TextOrNumber,
    CONFIRM_PROMOTION_KEY,
};
use crate::metrics::{label, ServiceMetrics};
use crate::{Judging, ServeConfig};

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) judging: Judging,
    pub(crate) config: ServeConfig,
    pub(crate) limiter: Semaphore,
    pub(crate) metrics: ServiceMetrics,
    pub(crate) first_asked: crate::awaiting::FirstAsked,
    /// The OpenAPI document, rendered once.
    pub(crate) openapi: String,
}

pub(crate) type Shared = Arc<AppState>;

/// The service's routes over `judging`, with its limits, auth and metrics.
pub fn router(config: ServeConfig, judging: Judging) -> Router {
    let state = Arc::new(AppState {
        limiter: Semaphore::new(config.max_concurrent_analyses),
        metrics: ServiceMetrics::new(judging.source.clone()),
        judging,
        config,
        first_asked: Default::default(),
        openapi: crate::openapi::document().to_string(),
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
        .route("/openapi.json", get(openapi))
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

async fn openapi(State(s): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.openapi.clone(),
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
