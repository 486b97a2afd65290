//! The service driven the way Argo Rollouts' `web` provider and Flagger's webhooks drive it,
//! from the examples under `examples/argo` and `examples/flagger`: every decision maps to the
//! controller phase or status code the examples promise.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{post, prometheus, start};
use serde_yaml::Value;

fn example(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(path);
    serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Argo's measurement phases.
#[derive(Debug, PartialEq)]
enum Phase {
    Successful,
    Failed,
    Inconclusive,
    Error,
}

/// An Argo condition of the form `result == "a" || result == "b"`: the values it accepts.
fn accepted(condition: &str) -> Vec<String> {
    condition
        .split("||")
        .map(|part| {
            let value = part
                .trim()
                .strip_prefix("result == ")
                .unwrap_or_else(|| panic!("an unsupported condition: {condition}"));
            value.trim_matches('"').to_owned()
        })
        .collect()
}

/// What Argo's web provider does with one measurement: GET the URL; a non-2xx is an error;
/// the JSON path picks the result; the failure condition is checked first, then success; both
/// false is inconclusive.
async fn measure(metric: &Value, base: &str, args: &[(&str, &str)]) -> Phase {
    let web = &metric["provider"]["web"];
    let mut url = web["url"].as_str().unwrap().to_owned();
    for (k, v) in args {
        url = url.replace(&format!("{{{{args.{k}}}}}"), v);
    }
    let url = url.replace("http://canary-judge.canary.svc:8080", base);
    let mut request = reqwest::Client::new().get(&url);
    for h in web["headers"].as_sequence().unwrap() {
        let mut value = h["value"].as_str().unwrap().to_owned();
        for (k, v) in args {
            value = value.replace(&format!("{{{{args.{k}}}}}"), v);
        }
        request = request.header(h["key"].as_str().unwrap(), value);
    }
    let r = request.send().await.unwrap();
    if !r.status().is_success() {
        return Phase::Error;
    }
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let path = web["jsonPath"].as_str().unwrap();
    let field = path
        .strip_prefix("{$.")
        .and_then(|p| p.strip_suffix('}'))
        .expect("a {$.field} JSON path");
    let result = body[field].as_str().unwrap().to_owned();
    if accepted(metric["failureCondition"].as_str().unwrap()).contains(&result) {
        Phase::Failed
    } else if accepted(metric["successCondition"].as_str().unwrap()).contains(&result) {
        Phase::Successful
    } else {
        Phase::Inconclusive
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_maps_every_decision_to_the_intended_phase() {
    let template = example("argo/analysis-template.yaml");
    let metric = &template["spec"]["metrics"][0];
    // The rollout passes the arguments the template declares.
    let rollout = example("argo/rollout.yaml");
    let declared: Vec<&str> = template["spec"]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for step in rollout["spec"]["strategy"]["canary"]["steps"]
        .as_sequence()
        .unwrap()
    {
        if let Some(args) = step["analysis"]["args"].as_sequence() {
            assert_eq!(
                step["analysis"]["templates"][0]["templateName"],
                "canary-judge"
            );
            for a in args {
                assert!(declared.contains(&a["name"].as_str().unwrap()), "{a:?}");
            }
        }
    }
    let p = prometheus();
    let token = "judge-token-1";
    let s = start(
        &p.url,
        |c| c.auth_token = Some(canary_core::Secret::new(token)),
        None,
    )
    .await;
    let args = |canary: &'static str| {
        [
            ("baseline-version", "v1"),
            ("canary-version", canary),
            ("judge-token", token),
        ]
    };
    assert_eq!(
        measure(metric, &s.base, &args("v2")).await,
        Phase::Successful
    );
    assert_eq!(measure(metric, &s.base, &args("v3")).await, Phase::Failed);
    assert_eq!(
        measure(metric, &s.base, &args("v9")).await,
        Phase::Inconclusive
    );
    // Bad input and a wrong token are measurement errors, never a phase of their own.
    assert_eq!(measure(metric, &s.base, &args("")).await, Phase::Error);
    let wrong = [
        ("baseline-version", "v1"),
        ("canary-version", "v2"),
        ("judge-token", "nope"),
    ];
    assert_eq!(measure(metric, &s.base, &wrong).await, Phase::Error);
    // A judge still collecting evidence lets the rollout go on to its next measurement.
    let judge = Arc::new(canary_core::judge::SequentialParameters::default());
    let s = start(
        &p.url,
        |c| c.auth_token = Some(canary_core::Secret::new(token)),
        Some(judge),
    )
    .await;
    assert_eq!(
        measure(metric, &s.base, &args("v2")).await,
        Phase::Successful
    );
    // Prometheus unreachable: an error.
    let down = start(
        "http://127.0.0.1:9",
        |c| c.auth_token = Some(canary_core::Secret::new(token)),
        None,
    )
    .await;
    assert_eq!(measure(metric, &down.base, &args("v2")).await, Phase::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaggers_hooks_get_the_status_codes_they_act_on() {
    let canary = example("flagger/canary.yaml");
    let hooks = canary["spec"]["analysis"]["webhooks"]
        .as_sequence()
        .unwrap();
    let hook = |kind: &str| hooks.iter().find(|h| h["type"] == kind).unwrap().clone();
    let (gate, rollback) = (hook("rollout"), hook("rollback"));
    let p = prometheus();
    let s = start(&p.url, |_| {}, None).await;
    // Flagger's payload: the canary's name and namespace, the phase, a checksum, and the
    // webhook's metadata.
    let call = |hook: &Value, version: &str| {
        let mut metadata: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::to_value(&hook["metadata"]).unwrap()).unwrap();
        metadata.insert("baseline".into(), "v1".into());
        metadata.insert("canary".into(), version.into());
        let payload = serde_json::json!({
            "name": canary["metadata"]["name"].as_str().unwrap(),
            "namespace": canary["metadata"]["namespace"].as_str().unwrap(),
            "phase": "Progressing",
            "checksum": "6b2f8d3c",
            "metadata": metadata,
        });
        let url = hook["url"]
            .as_str()
            .unwrap()
            .replace("http://canary-judge.canary.svc:8080", &s.base);
        async move { post(&url, &payload).await }
    };
    for (version, gate_code, rollback_code) in
        [("v2", 200, 409), ("v3", 403, 200), ("v9", 403, 409)]
    {
        let (code, body) = call(&gate, version).await;
        assert_eq!(code, gate_code, "gate {version}: {body}");
        assert!(
            body["reason"].is_string(),
            "the reason is in the answer: {body}"
        );
        let (code, body) = call(&rollback, version).await;
        assert_eq!(code, rollback_code, "rollback {version}: {body}");
    }
    // No versions, or a hostile one: 400, so the gate halts and the rollback hook does nothing.
    for version in ["", "v2\"} or vector(1)"] {
        let (code, body) = call(&gate, version).await;
        assert_eq!(code, 400, "{version:?}: {body}");
    }
    let empty = serde_json::json!({"name": "a", "namespace": "b", "metadata": {}});
    let (code, body) = post(&format!("{}/v1/flagger/gate", s.base), &empty).await;
    assert_eq!(code, 400, "{body}");
}
