//! The API's contract: an OpenAPI 3.1 document generated from the types the handlers speak and
//! from [`OPERATIONS`], the one list of routes and their answers, which the router's tests
//! hold it to. `GET /openapi.json` serves it.

use schemars::generate::{Contract, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::api::{Analysis, AnalysisRequest, ErrorBody, FlaggerPayload};

/// What a response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// An [`Analysis`] as JSON.
    Analysis,
    /// `{"error": "..."}`.
    Error,
    /// Plain text.
    Text,
    /// The OpenMetrics text format.
    OpenMetrics,
    /// This document.
    OpenApi,
}

/// What a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Nothing.
    None,
    /// The analysis' parameters in the query string.
    Query,
    /// The analysis' parameters as a JSON body.
    Json,
    /// Flagger's webhook payload, as JSON.
    Flagger,
}

/// One route and method of the API.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    /// `get` or `post`.
    pub method: &'static str,
    /// The path.
    pub path: &'static str,
    /// Its operation id.
    pub id: &'static str,
    /// One line.
    pub summary: &'static str,
    /// What it does, for the reference.
    pub description: &'static str,
    /// What it is asked with.
    pub input: Input,
    /// Whether `serve.auth_token`, when set, guards it.
    pub guarded: bool,
    /// Its own answers; an analysis' errors are added by [`Operation::responses`].
    pub answers: &'static [(u16, &'static str, Body)],
}

/// The errors every analysis may answer, whatever its route.
const ANALYSIS_ERRORS: &[(u16, &str, Body)] = &[
    (
        400,
        "A bad request: a missing, empty or hostile version, a bad window or time, an unknown parameter.",
        Body::Error,
    ),
    (
        401,
        "A token is configured and the request did not carry it (`Authorization: Bearer …`).",
        Body::Error,
    ),
    (
        502,
        "Prometheus failed, or answered something that contradicts the question.",
        Body::Error,
    ),
    (
        503,
        "More analyses than the service runs at once, for longer than `queue_timeout`; `Retry-After` says when to ask again.",
        Body::Error,
    ),
    (504, "The analysis ran past its deadline.", Body::Error),
];

/// A JSON body's errors, beyond an analysis'.
const BODY_ERRORS: &[(u16, &str, Body)] = &[
    (
        413,
        "The body is over `serve.body_limit_bytes`.",
        Body::Error,
    ),
    (
        415,
        "The body is not declared as JSON (`Content-Type: application/json`).",
        Body::Error,
    ),
    (
        422,
        "The body is JSON of the wrong shape: a missing field, a wrong type, an unknown key.",
        Body::Error,
    ),
];

const ANALYSIS_OK: (u16, &str, Body) = (
    200,
    "The analysis: `decision` is `proceed`, `rollback_auto`, `rollback_manual`, or `continue` while a judge collects evidence.",
    Body::Analysis,
);

const ANALYSIS: &str = "One analysis of the canary against production. With a judge that decides over time, the canary's run is replayed from its start (`since`, else the canary's first sample), and `continue` says the judge has not decided yet; at the maximum duration it must decide.";

/// Every route and method the service answers, besides `404` for any other path and `405`
/// for another method on one of these paths.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/v1/analysis",
        id: "analysisGet",
        summary: "Analyse a canary (parameters in the query string)",
        description: ANALYSIS,
        input: Input::Query,
        guarded: true,
        answers: &[ANALYSIS_OK],
    },
    Operation {
        method: "post",
        path: "/v1/analysis",
        id: "analysisPost",
        summary: "Analyse a canary (parameters as JSON)",
        description: ANALYSIS,
        input: Input::Json,
        guarded: true,
        answers: &[ANALYSIS_OK],
    },
    Operation {
        method: "post",
        path: "/v1/flagger/gate",
        id: "flaggerGate",
        summary: "Flagger's rollout hook",
        description: "200 lets the canary advance a step: on `proceed`, and on `continue` only when the hook's metadata says `confirm_promotion: \"true\"` (a confirm-promotion hook guards the promotion). 403 is a failed check. The versions are the metadata's `baseline` and `canary` (and optionally `since`, `window`, `at`).",
        input: Input::Flagger,
        guarded: true,
        answers: &[
            (200, "The canary may advance; the analysis.", Body::Analysis),
            (403, "The canary may not advance; the analysis says why.", Body::Analysis),
        ],
    },
    Operation {
        method: "post",
        path: "/v1/flagger/confirm-promotion",
        id: "flaggerConfirmPromotion",
        summary: "Flagger's confirm-promotion hook",
        description: "200 (Flagger promotes) only on `proceed`; otherwise 403, and Flagger waits at its maximum weight, its checks going on.",
        input: Input::Flagger,
        guarded: true,
        answers: &[
            (200, "Promote; the analysis.", Body::Analysis),
            (403, "Do not promote yet; the analysis says why.", Body::Analysis),
        ],
    },
    Operation {
        method: "post",
        path: "/v1/flagger/rollback",
        id: "flaggerRollback",
        summary: "Flagger's rollback hook",
        description: "200 (Flagger rolls back) only on `rollback_auto`; 409 otherwise.",
        input: Input::Flagger,
        guarded: true,
        answers: &[
            (200, "Roll back; the analysis.", Body::Analysis),
            (409, "Do not roll back; the analysis says why.", Body::Analysis),
        ],
    },
    Operation {
        method: "get",
        path: "/metrics",
        id: "metrics",
        summary: "The service's own metrics",
        description: "Requests by route and code, their duration, analyses by decision, analyses turned away, queries to Prometheus, and the validator's series, all named `canary_…`.",
        input: Input::None,
        guarded: false,
        answers: &[(200, "The metrics.", Body::OpenMetrics)],
    },
    Operation {
        method: "get",
        path: "/healthz",
        id: "healthz",
        summary: "Liveness",
        description: "The process answers.",
        input: Input::None,
        guarded: false,
        answers: &[(200, "`ok`.", Body::Text)],
    },
    Operation {
        method: "get",
        path: "/readyz",
        id: "readyz",
        summary: "Readiness",
        description: "Ready only while Prometheus answers (within 5 s).",
        input: Input::None,
        guarded: false,
        answers: &[
            (200, "`ready`.", Body::Text),
            (503, "Prometheus does not answer.", Body::Error),
        ],
    },
    Operation {
        method: "get",
        path: "/openapi.json",
        id: "openapi",
        summary: "This document",
        description: "The API's OpenAPI 3.1 document.",
        input: Input::None,
        guarded: false,
        answers: &[(200, "The document.", Body::OpenApi)],
    },
];

impl Operation {
    /// Every status it may answer: its own, then an analysis' errors, then a body's.
    pub fn responses(&self) -> Vec<(u16, &'static str, Body)> {
        let mut out = self.answers.to_vec();
        if matches!(self.input, Input::Query | Input::Json | Input::Flagger) {
            out.extend_from_slice(ANALYSIS_ERRORS);
        }
        if matches!(self.input, Input::Json | Input::Flagger) {
            out.extend_from_slice(BODY_ERRORS);
        }
        out.sort_by_key(|r| r.0);
        out
    }
}

/// The components' schema of `T`, as a response (`serialize`) or a request (`deserialize`)
/// shows it, and a reference to it.
fn schema<T: JsonSchema>(contract: Contract, components: &mut Map<String, Value>) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    settings.contract = contract;
    let mut generator = settings.into_generator();
    let reference = generator.subschema_for::<T>().to_value();
    components.extend(generator.take_definitions(true));
    reference
}

/// The service's OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut components = Map::new();
    let analysis = schema::<Analysis>(Contract::Serialize, &mut components);
    let error = schema::<ErrorBody>(Contract::Serialize, &mut components);
    let request = schema::<AnalysisRequest>(Contract::Deserialize, &mut components);
    let flagger = schema::<FlaggerPayload>(Contract::Deserialize, &mut components);
    let parameters = query_parameters(&request, &components);
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut responses = Map::new();
        for (code, description, body) in op.responses() {
            let (media, schema) = match body {
                Body::Analysis => ("application/json", analysis.clone()),
                Body::Error => ("application/json", error.clone()),
                Body::Text => ("text/plain; charset=utf-8", json!({"type": "string"})),
                Body::OpenMetrics => (
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    json!({"type": "string"}),
                ),
                Body::OpenApi => ("application/json", json!({"type": "object"})),
            };
            let mut response = json!({
                "description": description,
                "content": { media: { "schema": schema } },
            });
            if code == 503 && op.input != Input::None {
                response["headers"] = json!({
                    "Retry-After": {
                        "description": "Seconds to wait before asking again.",
                        "schema": {"type": "integer", "minimum": 0},
                    }
                });
            }
            if code == 401 {
                response["headers"] = json!({
                    "WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}
                });
            }
            responses.insert(code.to_string(), response);
        }
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "description": op.description,
            "responses": responses,
        });
        let body = match op.input {
            Input::None => None,
            Input::Query => {
                operation["parameters"] = parameters.clone();
                None
            }
            Input::Json => Some(&request),
            Input::Flagger => Some(&flagger),
        };
        if let Some(schema) = body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema}},
            });
        }
        if op.guarded {
            operation["security"] = json!([{"bearer": []}]);
        }
        let item = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        item[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "canary serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "canary's judge over HTTP, for Argo Rollouts' web metrics and Flagger's webhooks. Every decision carries its evidence.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Required on `/v1/` when the service has a token (`serve.auth_token`); without one the API is open.",
                }
            },
        },
    })
}

/// The analysis' parameters in a query string, from the request's schema (`reference` into
/// `components`).
fn query_parameters(reference: &Value, components: &Map<String, Value>) -> Value {
    let name = reference["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or_default();
    let request = components.get(name).cloned().unwrap_or(Value::Null);
    let required: Vec<&str> = request["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    if let Some(props) = request["properties"].as_object() {
        for (key, prop) in props {
            // A query string carries text; a version keeps its pattern.
            let mut schema = json!({"type": "string"});
            for k in ["pattern", "maxLength", "examples"] {
                if let Some(v) = prop.get(k) {
                    schema[k] = v.clone();
                }
            }
            let mut parameter = json!({
                "name": key,
                "in": "query",
                "required": required.contains(&key.as_str()),
                "schema": schema,
            });
            if let Some(d) = prop.get("description") {
                parameter["description"] = d.clone();
            }
            out.push(parameter);
        }
    }
    Value::Array(out)
}
