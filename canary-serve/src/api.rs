//! What the API speaks: its decisions, answers, requests, Flagger's payload and its errors.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use canary_core::{Evaluation, RollbackDecision};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An analysis' decision, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    pub(crate) fn as_str(self) -> &'static str {
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Queries {
    /// Production's query.
    pub baseline: Option<String>,
    /// The canary's query.
    pub canary: Option<String>,
}

/// One analysis' answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// The whole evaluation with every metric's evidence; absent while a judge continues
    /// (`progress` then shows each metric as it stands).
    pub evaluation: Option<Evaluation>,
    /// With `continue`: each metric as the judge sees it at its latest look; an `open` one
    /// says what evidence it still needs and when the judge expects to have it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<canary_core::MetricComparison>,
    /// A judge's decision instant: the look it decided on (earlier than `at` when the run is
    /// replayed past its decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
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
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AnalysisRequest")]
pub(crate) struct AnalysisRequest {
    /// Production's version: a letter, digit or `_`, then letters, digits, `_`, `.` or `-`,
    /// at most 128 characters.
    #[schemars(
        required,
        regex(pattern = canary_core::Version::PATTERN),
        length(max = 128),
        example = "v1.0.0"
    )]
    pub(crate) baseline: Option<String>,
    /// The canary's version, spelt as `baseline`.
    #[schemars(
        required,
        regex(pattern = canary_core::Version::PATTERN),
        length(max = 128),
        example = "v1.1.0"
    )]
    pub(crate) canary: Option<String>,
    /// The window analysed: seconds, or `90s`, `5m`, `1h30m`, `2d` (default: the
    /// configuration's; at most 31 days). A judge replays the run since its start instead.
    pub(crate) window: Option<TextOrNumber>,
    /// The evaluation time: RFC 3339 or Unix seconds (default: now).
    pub(crate) at: Option<TextOrNumber>,
    /// A judge's run start: RFC 3339 or Unix seconds (default: the canary's first sample).
    pub(crate) since: Option<TextOrNumber>,
}

/// `"5m"` or `300`; `"2026-11-27T20:00:00Z"` or `1795800000`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum TextOrNumber {
    Text(String),
    Number(f64),
}

impl TextOrNumber {
    pub(crate) fn text(&self) -> String {
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
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct FlaggerPayload {
    /// The canary's name.
    pub(crate) name: String,
    /// Its namespace.
    pub(crate) namespace: String,
    /// Flagger's phase of the canary.
    pub(crate) phase: Option<String>,
    /// The webhook's metadata: `baseline` and `canary` (required), optionally `since`,
    /// `window`, `at`, and `confirm_promotion: "true"` for the gate.
    #[serde(default)]
    #[schemars(schema_with = "flagger_metadata")]
    pub(crate) metadata: BTreeMap<String, String>,
}

/// Flagger's metadata as the service reads it: the versions required, every value text.
fn flagger_metadata(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let version = serde_json::json!({
        "type": "string",
        "pattern": canary_core::Version::PATTERN,
        "maxLength": canary_core::Version::MAX_LEN,
    });
    schemars::json_schema!({
        "type": "object",
        "properties": {
            "baseline": version,
            "canary": version,
            "confirm_promotion": {"type": "string"},
        },
        "required": ["baseline", "canary"],
        "additionalProperties": {"type": "string"},
        "examples": [{"baseline": "v1.0.0", "canary": "v1.1.0"}],
    })
}

/// An error's body: what is wrong, in one line.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ErrorBody {
    /// What is wrong.
    pub(crate) error: String,
}

/// An error as the API answers it: a status and `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
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
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// The metadata key with which a gate says its canary's promotion waits for a
/// `confirm-promotion` hook: only then may the gate let `continue` advance the canary.
pub const CONFIRM_PROMOTION_KEY: &str = "confirm_promotion";
