//! The service driven the way Argo Rollouts' `web` provider and Flagger's webhooks drive it,
//! from the examples under `examples/argo` and `examples/flagger`, with every judge, over a
//! real Prometheus holding a canary run of each kind: a controller that follows the examples
//! promotes a canary only after the judge said `proceed`.
//!
//! Argo's rules (v1.8+, `analysis/analysis.go`): a measurement is Error on a non-2xx (and does
//! not count), else Failed if the failure condition holds, else Successful if the success
//! condition holds, else Inconclusive. A metric is Error past `consecutiveErrorLimit`
//! consecutive errors, Inconclusive past `inconclusiveLimit`, Failed past `failureLimit` (when
//! it is not -1), Successful at `consecutiveSuccessLimit` consecutive successes; at `count`,
//! Inconclusive if both limits apply, Failed if only the success limit does, else Successful.
//! Once a metric is Failed, Error or Inconclusive the run terminates: the others stop measuring
//! and end Successful unless their failure limit is violated. The run is the worst of its
//! metrics (Failed > Error > Inconclusive > Successful).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use canary_core::judge::{
    ArgoParameters, FlaggerParameters, JudgeFactory, KayentaParameters, SequentialParameters,
};
use common::{partial_querier, post, start, start_with};
use serde_yaml::Value;

fn example(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(path);
    serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Argo's phases, measurement and metric alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Successful,
    Failed,
    Inconclusive,
    Error,
}

impl Phase {
    fn completed(self) -> bool {
        self != Phase::Running
    }
    fn rank(self) -> u8 {
        match self {
            Phase::Successful => 0,
            Phase::Running => 1,
            Phase::Inconclusive => 2,
            Phase::Error => 3,
            Phase::Failed => 4,
        }
    }
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

fn minutes(text: &str) -> i64 {
    let d = canary_core::duration::parse(text).unwrap();
    (d.as_secs() / 60) as i64
}

/// One metric of an AnalysisTemplate, and its result so far.
struct Metric {
    spec: Value,
    interval_min: i64,
    count: u32,
    failure_limit: i64,
    inconclusive_limit: u32,
    consecutive_error_limit: u32,
    consecutive_success_limit: u32,
    measured: u32,
    failed: u32,
    inconclusive: u32,
    consecutive_errors: u32,
    consecutive_successes: u32,
    phase: Phase,
    next_at: i64,
}

impl Metric {
    fn new(spec: &Value, started_min: i64) -> Self {
        let int = |k: &str, default: i64| spec[k].as_i64().unwrap_or(default);
        let delay = spec["initialDelay"].as_str().map_or(0, minutes);
        Metric {
            spec: spec.clone(),
            interval_min: minutes(spec["interval"].as_str().unwrap()),
            count: int("count", 1) as u32,
            failure_limit: int("failureLimit", 0),
            inconclusive_limit: int("inconclusiveLimit", 0) as u32,
            consecutive_error_limit: int("consecutiveErrorLimit", 4) as u32,
            consecutive_success_limit: int("consecutiveSuccessLimit", 0) as u32,
            measured: 0,
            failed: 0,
            inconclusive: 0,
            consecutive_errors: 0,
            consecutive_successes: 0,
            phase: Phase::Running,
            next_at: started_min + delay,
        }
    }

    fn record(&mut self, measurement: Phase) {
        match measurement {
            Phase::Error => {
                self.consecutive_errors += 1;
                self.consecutive_successes = 0;
                return;
            }
            Phase::Successful => self.consecutive_successes += 1,
            Phase::Failed => {
                self.failed += 1;
                self.consecutive_successes = 0
            }
            Phase::Inconclusive => {
                self.inconclusive += 1;
                self.consecutive_successes = 0
            }
            Phase::Running => unreachable!(),
        }
        self.measured += 1;
        self.consecutive_errors = 0;
    }

    fn assess(&self, terminating: bool) -> Phase {
        if self.phase.completed() {
            return self.phase;
        }
        let mut phase = Phase::Running;
        if self.failure_limit >= 0 && i64::from(self.failed) > self.failure_limit {
            phase = Phase::Failed;
        }
        if self.inconclusive > self.inconclusive_limit {
            phase = Phase::Inconclusive;
        }
        if self.consecutive_errors > self.consecutive_error_limit {
            phase = Phase::Error;
        }
        if phase.completed() {
            return phase;
        }
        let success_applies = self.consecutive_success_limit > 0;
        if success_applies && self.consecutive_successes >= self.consecutive_success_limit {
            return Phase::Successful;
        }
        if self.measured >= self.count {
            return match (self.failure_limit >= 0, success_applies) {
                (true, true) => Phase::Inconclusive,
                (false, true) => Phase::Failed,
                _ => Phase::Successful,
            };
        }
        if terminating {
            Phase::Successful
        } else {
            Phase::Running
        }
    }
}

/// One web measurement at `at` (unix seconds): GET the URL; a non-2xx is an error; the JSON
/// path picks the result; the failure condition first, then the success one.
async fn measure(metric: &Value, base: &str, args: &[(&str, &str)], at: i64) -> (Phase, String) {
    let web = &metric["provider"]["web"];
    let substitute = |text: &str| {
        let mut text = text.to_owned();
        for (k, v) in args {
            text = text.replace(&format!("{{{{args.{k}}}}}"), v);
        }
        text
    };
    let url = substitute(web["url"].as_str().unwrap())
        .replace("http://canary-judge.canary.svc:8080", base)
        + &format!("&at={at}");
    let mut request = reqwest::Client::new().get(&url);
    for h in web["headers"].as_sequence().unwrap() {
        request = request.header(
            h["key"].as_str().unwrap(),
            substitute(h["value"].as_str().unwrap()),
        );
    }
    let r = request.send().await.unwrap();
    if !r.status().is_success() {
        return (Phase::Error, format!("HTTP {}", r.status().as_u16()));
    }
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let path = web["jsonPath"].as_str().unwrap();
    let field = path
        .strip_prefix("{$.")
        .and_then(|p| p.strip_suffix('}'))
        .expect("a {$.field} JSON path");
    let result = body[field].as_str().unwrap().to_owned();
    let phase = if accepted(metric["failureCondition"].as_str().unwrap()).contains(&result) {
        Phase::Failed
    } else if accepted(metric["successCondition"].as_str().unwrap()).contains(&result) {
        Phase::Successful
    } else {
        Phase::Inconclusive
    };
    (phase, result)
}

/// An AnalysisRun of `template` started at `started` (unix seconds), reconciled every minute
/// until it completes (or the data ends): its phase and every answer the judge gave.
async fn argo_run(
    template: &Value,
    base: &str,
    args: &[(&str, &str)],
    started: i64,
    data_end: i64,
) -> (Phase, Vec<String>) {
    let started_min = started / 60;
    let mut metrics: Vec<Metric> = template["spec"]["metrics"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| Metric::new(m, started_min))
        .collect();
    let mut answers = Vec::new();
    let mut now_min = started_min;
    while now_min * 60 <= data_end {
        let terminating = metrics
            .iter()
            .any(|m| matches!(m.phase, Phase::Failed | Phase::Error | Phase::Inconclusive));
        for m in metrics.iter_mut() {
            if terminating || m.phase.completed() || now_min < m.next_at {
                continue;
            }
            let (phase, answer) = measure(&m.spec, base, args, now_min * 60).await;
            answers.push(answer);
            m.record(phase);
            m.next_at = now_min + m.interval_min;
        }
        for m in metrics.iter_mut() {
            m.phase = m.assess(terminating);
        }
        if metrics.iter().all(|m| m.phase.completed()) {
            let worst = metrics.iter().map(|m| m.phase).max_by_key(|p| p.rank());
            return (worst.unwrap(), answers);
        }
        now_min += 1;
    }
    (Phase::Running, answers)
}

/// Where a Flagger canary ends.
#[derive(Debug, PartialEq, Eq)]
enum Flagger {
    Promoted,
    RolledBack,
    Waiting,
}

/// Flagger's analysis of `canary.yaml` from `started` (unix seconds), one iteration per
/// `interval`: rollback hooks first (a 2xx rolls back), then rollout hooks (a non-2xx is a
/// failed check, `threshold` of them roll back; otherwise the weight advances by
/// `stepWeight`), and at `maxWeight` the confirm-promotion hooks (a 2xx promotes; otherwise
/// Flagger waits, checking on). Returns the end and every decision the judge gave.
async fn flagger_run(
    canary: &Value,
    base: &str,
    version: &str,
    started: i64,
    data_end: i64,
) -> (Flagger, Vec<String>) {
    let analysis = &canary["spec"]["analysis"];
    let interval = minutes(analysis["interval"].as_str().unwrap()) * 60;
    let threshold = analysis["threshold"].as_u64().unwrap();
    let (max_weight, step) = (
        analysis["maxWeight"].as_u64().unwrap(),
        analysis["stepWeight"].as_u64().unwrap(),
    );
    let hooks = analysis["webhooks"].as_sequence().unwrap();
    let of = |kind: &str| -> Vec<&Value> { hooks.iter().filter(|h| h["type"] == kind).collect() };
    let call = |hook: &Value, at: i64| {
        let mut metadata: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::to_value(&hook["metadata"]).unwrap()).unwrap();
        metadata.insert("baseline".into(), "v1".into());
        metadata.insert("canary".into(), version.into());
        metadata.insert("at".into(), at.to_string().into());
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
            .replace("http://canary-judge.canary.svc:8080", base);
        async move { post(&url, &payload).await }
    };
    let (mut weight, mut failed, mut answers) = (0, 0, Vec::new());
    let mut at = started;
    while at <= data_end {
        for hook in of("rollback") {
            let (code, body) = call(hook, at).await;
            answers.push(body["decision"].as_str().unwrap_or("error").to_owned());
            if (200..300).contains(&code) {
                return (Flagger::RolledBack, answers);
            }
        }
        let mut passed = true;
        for hook in of("rollout") {
            let (code, body) = call(hook, at).await;
            answers.push(body["decision"].as_str().unwrap_or("error").to_owned());
            passed &= (200..300).contains(&code);
        }
        if !passed {
            failed += 1;
            if failed >= threshold {
                return (Flagger::RolledBack, answers);
            }
        } else if weight < max_weight {
            weight = (weight + step).min(max_weight);
        } else {
            let mut confirmed = true;
            for hook in of("confirm-promotion") {
                let (code, body) = call(hook, at).await;
                answers.push(body["decision"].as_str().unwrap_or("error").to_owned());
                confirmed &= (200..300).contains(&code);
            }
            if confirmed {
                return (Flagger::Promoted, answers);
            }
        }
        at += interval;
    }
    (Flagger::Waiting, answers)
}

/// Every judge the service runs: `None` is the guide's threshold policy.
fn judges() -> Vec<(&'static str, Option<Arc<dyn JudgeFactory>>)> {
    vec![
        ("threshold", None),
        (
            "sequential",
            Some(Arc::new(SequentialParameters::default())),
        ),
        ("kayenta", Some(Arc::new(KayentaParameters::default()))),
        ("flagger", Some(Arc::new(FlaggerParameters::default()))),
        ("argo", Some(Arc::new(ArgoParameters::default()))),
    ]
}

/// Canaries that must never be promoted: regressions, no traffic, no series, and too little
/// traffic to judge.
const REGRESSIONS: [&str; 6] = [
    "c-latency",
    "c-errors",
    "c-confidence",
    "c-silent",
    "c-missing",
    "c-thin",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_following_the_example_promotes_only_after_proceed_with_every_judge() {
    let template = example("argo/analysis-template.yaml");
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
    // count x interval covers the judge's maximum duration from the analysis' start.
    for m in template["spec"]["metrics"].as_sequence().unwrap() {
        let span = m["count"].as_i64().unwrap() * minutes(m["interval"].as_str().unwrap());
        assert!(span >= 60, "{span} min");
        let url = m["provider"]["web"]["url"].as_str().unwrap();
        assert!(
            !url.contains("window="),
            "a sliding window never ends: {url}"
        );
    }
    let end = testkit::traffic::now_secs() - 3;
    let (data, canary_start) = testkit::traffic::controller_canaries(end);
    let p = testkit::services::prometheus(&data);
    let token = "judge-token-1";
    // The analysis starts after the rollout's first pause (5 minutes at 10 %).
    let analysis_start = canary_start + 5 * 60;
    let mut outcomes = Vec::new();
    for (name, judge) in judges() {
        let s = start(
            &p.url,
            |c| c.auth_token = Some(canary_core::Secret::new(token)),
            judge,
        )
        .await;
        let runs = ["c-healthy"].iter().chain(&REGRESSIONS).map(|version| {
            let args = [
                ("baseline-version", "v1"),
                ("canary-version", *version),
                ("judge-token", token),
            ];
            let (template, base) = (&template, &s.base);
            async move {
                let (phase, answers) = argo_run(template, base, &args, analysis_start, end).await;
                (*version, phase, answers)
            }
        });
        for (version, phase, answers) in futures::future::join_all(runs).await {
            let said_proceed = answers.iter().any(|a| a == "proceed");
            let last = answers.last().cloned().unwrap_or_default();
            outcomes.push(format!(
                "{name} {version}: {phase:?} after {} answers, last {last}",
                answers.len()
            ));
            if REGRESSIONS.contains(&version) {
                assert!(
                    matches!(phase, Phase::Failed | Phase::Inconclusive | Phase::Error),
                    "{name} judge, {version}: a regression ended {phase:?}: {answers:?}"
                );
            }
            // The guide's automatic-rollback triggers (latency doubled, errors tripled,
            // confidence 0.60 against 0.85) abort the rollout under the judges we ship as
            // defaults: Failed, not paused for a person.
            if ["threshold", "sequential"].contains(&name)
                && ["c-latency", "c-errors", "c-confidence"].contains(&version)
            {
                assert_eq!(
                    (phase, last.as_str()),
                    (Phase::Failed, "rollback_auto"),
                    "{name} judge, {version}: {answers:?}"
                );
            } else if phase == Phase::Successful {
                assert!(
                    said_proceed,
                    "{name}: Successful without a proceed: {answers:?}"
                );
            }
            assert_ne!(
                phase,
                Phase::Running,
                "{name} {version}: never ended: {answers:?}"
            );
        }
    }
    let healthy = |judge: &str| {
        outcomes
            .iter()
            .any(|o| o.starts_with(&format!("{judge} c-healthy: Successful")))
    };
    // The test can fail the other way too: the judges that pass this healthy canary do so.
    assert!(
        healthy("threshold") && healthy("sequential"),
        "{outcomes:#?}"
    );
    eprintln!("{outcomes:#?}");
    // Bad input, a wrong token, an unreachable Prometheus: measurement errors, never a phase.
    let metric = &template["spec"]["metrics"][0];
    let s = start(
        &p.url,
        |c| c.auth_token = Some(canary_core::Secret::new(token)),
        Some(Arc::new(SequentialParameters::default())),
    )
    .await;
    let at = analysis_start + 600;
    for (canary, given) in [("", token), ("c-healthy", "nope"), ("c-healthy\"}", token)] {
        let args = [
            ("baseline-version", "v1"),
            ("canary-version", canary),
            ("judge-token", given),
        ];
        assert_eq!(
            measure(metric, &s.base, &args, at).await.0,
            Phase::Error,
            "{canary:?}"
        );
    }
    let down = start(
        "http://127.0.0.1:9",
        |c| c.auth_token = Some(canary_core::Secret::new(token)),
        Some(Arc::new(SequentialParameters::default())),
    )
    .await;
    let args = [
        ("baseline-version", "v1"),
        ("canary-version", "c-healthy"),
        ("judge-token", token),
    ];
    assert_eq!(measure(metric, &down.base, &args, at).await.0, Phase::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagger_following_the_example_promotes_only_after_proceed_with_every_judge() {
    let canary = example("flagger/canary.yaml");
    let hooks = canary["spec"]["analysis"]["webhooks"]
        .as_sequence()
        .unwrap();
    for kind in ["rollout", "confirm-promotion", "rollback"] {
        assert!(hooks.iter().any(|h| h["type"] == kind), "no {kind} hook");
    }
    for h in hooks {
        assert!(
            h["metadata"]["window"].is_null(),
            "a sliding window never ends: {h:?}"
        );
    }
    let end = testkit::traffic::now_secs() - 3;
    let (data, canary_start) = testkit::traffic::controller_canaries(end);
    let p = testkit::services::prometheus(&data);
    let mut outcomes = Vec::new();
    for (name, judge) in judges() {
        let s = start(&p.url, |_| {}, judge).await;
        let runs = ["c-healthy"].iter().chain(&REGRESSIONS).map(|version| {
            let (canary, base) = (&canary, &s.base);
            async move {
                let (outcome, answers) =
                    flagger_run(canary, base, version, canary_start + 60, end).await;
                (*version, outcome, answers)
            }
        });
        for (version, outcome, answers) in futures::future::join_all(runs).await {
            outcomes.push(format!(
                "{name} {version}: {outcome:?}, last {:?}",
                answers.last()
            ));
            if REGRESSIONS.contains(&version) {
                assert_ne!(
                    outcome,
                    Flagger::Promoted,
                    "{name} judge, {version}: a regression was promoted: {answers:?}"
                );
            }
            if outcome == Flagger::Promoted {
                assert_eq!(
                    answers.last().map(String::as_str),
                    Some("proceed"),
                    "{name} {version}: promoted without a proceed: {answers:?}"
                );
            }
        }
    }
    // A gate used alone (no confirm-promotion hook, no `confirm_promotion` in its metadata)
    // never lets an undecided canary through to promotion either.
    let mut alone = canary.clone();
    let hooks = alone["spec"]["analysis"]["webhooks"]
        .as_sequence_mut()
        .unwrap();
    hooks.retain(|h| h["type"] == "rollout");
    for h in hooks.iter_mut() {
        h["metadata"]
            .as_mapping_mut()
            .unwrap()
            .remove("confirm_promotion");
    }
    for (name, judge) in judges() {
        let s = start(&p.url, |_| {}, judge).await;
        for version in ["c-healthy"].iter().chain(&REGRESSIONS) {
            let (outcome, answers) =
                flagger_run(&alone, &s.base, version, canary_start + 60, end).await;
            if outcome == Flagger::Promoted {
                assert_eq!(
                    answers.last().map(String::as_str),
                    Some("proceed"),
                    "{name} {version}, gate alone: promoted without a proceed: {answers:?}"
                );
                assert!(
                    !REGRESSIONS.contains(version),
                    "{name} {version}: {answers:?}"
                );
            }
        }
    }
    let promoted = |judge: &str| {
        outcomes
            .iter()
            .any(|o| o.starts_with(&format!("{judge} c-healthy: Promoted")))
    };
    assert!(
        promoted("threshold") && promoted("sequential"),
        "{outcomes:#?}"
    );
    eprintln!("{outcomes:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaggers_hooks_get_the_status_codes_they_act_on() {
    let canary = example("flagger/canary.yaml");
    let hooks = canary["spec"]["analysis"]["webhooks"]
        .as_sequence()
        .unwrap();
    let hook = |kind: &str| hooks.iter().find(|h| h["type"] == kind).unwrap().clone();
    let (gate, promotion, rollback) =
        (hook("rollout"), hook("confirm-promotion"), hook("rollback"));
    let p = common::prometheus();
    let s = start(&p.url, |_| {}, None).await;
    let call = |hook: &Value, version: &str| {
        let mut metadata: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::to_value(&hook["metadata"]).unwrap()).unwrap();
        metadata.insert("baseline".into(), "v1".into());
        metadata.insert("canary".into(), version.into());
        let payload = serde_json::json!({
            "name": "apex-inference", "namespace": "production", "metadata": metadata,
        });
        let url = hook["url"]
            .as_str()
            .unwrap()
            .replace("http://canary-judge.canary.svc:8080", &s.base);
        async move { post(&url, &payload).await }
    };
    for (version, gate_code, promotion_code, rollback_code) in [
        ("v2", 200, 200, 409),
        ("v3", 403, 403, 200),
        ("v9", 403, 403, 409),
    ] {
        let (code, body) = call(&gate, version).await;
        assert_eq!(code, gate_code, "gate {version}: {body}");
        assert!(
            body["reason"].is_string(),
            "the reason is in the answer: {body}"
        );
        let (code, body) = call(&promotion, version).await;
        assert_eq!(code, promotion_code, "confirm-promotion {version}: {body}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_answer_is_never_promoted_through_argo_or_flagger_with_every_judge() {
    let template = example("argo/analysis-template.yaml");
    let canary = example("flagger/canary.yaml");
    let end = testkit::traffic::now_secs() - 3;
    let (data, canary_start) = testkit::traffic::controller_canaries(end);
    let p = testkit::services::prometheus(&data);
    let querier = partial_querier(p.port).await;
    let mut outcomes = Vec::new();
    for (name, judge) in judges() {
        let s = start(&querier.url, |_| {}, judge).await;
        for version in ["c-healthy", "c-errors"] {
            let args = [
                ("baseline-version", "v1"),
                ("canary-version", version),
                ("judge-token", ""),
            ];
            let (phase, answers) =
                argo_run(&template, &s.base, &args, canary_start + 5 * 60, end).await;
            assert!(
                !answers.iter().any(|a| a == "proceed") && phase != Phase::Successful,
                "{name} {version}: Argo {phase:?} on a partial answer: {answers:?}"
            );
            let (outcome, answers) =
                flagger_run(&canary, &s.base, version, canary_start + 60, end).await;
            assert_ne!(
                outcome,
                Flagger::Promoted,
                "{name} {version}: Flagger promoted on a partial answer: {answers:?}"
            );
            outcomes.push(format!(
                "{name} {version}: Argo {phase:?}, Flagger {outcome:?}"
            ));
        }
    }
    // The test can fail: the same healthy canary asked directly is promoted by these judges.
    let s = start(
        &p.url,
        |_| {},
        Some(Arc::new(SequentialParameters::default())),
    )
    .await;
    let args = [
        ("baseline-version", "v1"),
        ("canary-version", "c-healthy"),
        ("judge-token", ""),
    ];
    let (phase, _) = argo_run(&template, &s.base, &args, canary_start + 5 * 60, end).await;
    assert_eq!(phase, Phase::Successful, "{outcomes:#?}");
    assert!(!querier.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_argo_example_ends_the_same_on_victoria_metrics_as_on_prometheus() {
    let template = example("argo/analysis-template.yaml");
    let end = testkit::traffic::now_secs() - 3;
    let (data, canary_start) = testkit::traffic::controller_canaries(end);
    let p = testkit::services::prometheus(&data);
    let vm = testkit::live::victoria_metrics(&data);
    let mut on_vm = canary_prometheus::PrometheusConfig::new(&vm.url);
    on_vm.query_delay = std::time::Duration::from_secs(30);
    let sequential = || Some(Arc::new(SequentialParameters::default()) as Arc<dyn JudgeFactory>);
    let mut outcomes = Vec::new();
    for (name, judge) in [("threshold", None), ("sequential", sequential())] {
        let on_p = start(&p.url, |_| {}, judge.clone()).await;
        let on_v = start_with(
            on_vm.clone(),
            std::time::Duration::from_secs(15),
            |_| {},
            judge,
        )
        .await;
        for version in ["c-healthy", "c-errors", "c-thin", "c-missing"] {
            let args = [
                ("baseline-version", "v1"),
                ("canary-version", version),
                ("judge-token", ""),
            ];
            let start_at = canary_start + 5 * 60;
            let (on_prometheus, pa) = argo_run(&template, &on_p.base, &args, start_at, end).await;
            let (on_victoria, va) = argo_run(&template, &on_v.base, &args, start_at, end).await;
            assert_eq!(
                on_prometheus, on_victoria,
                "{name} {version}: Prometheus {pa:?}, VictoriaMetrics {va:?}"
            );
            outcomes.push(format!("{name} {version}: {on_victoria:?}"));
        }
    }
    // The test can fail: a healthy canary is promoted and a failing one is not, on both.
    assert!(
        outcomes.contains(&"sequential c-healthy: Successful".to_owned())
            && outcomes.contains(&"sequential c-errors: Failed".to_owned()),
        "{outcomes:#?}"
    );
    // Asked between steps, seconds apart, as a controller's clock falls: the same answer each
    // time (unaligned, VictoriaMetrics answered "no series" to most of these).
    let on_v = start_with(
        on_vm,
        std::time::Duration::from_secs(15),
        |_| {},
        sequential(),
    )
    .await;
    for offset in [7, 27, 44, 52] {
        let at = canary_start + 20 * 60 + offset;
        let (code, body) = common::get(&format!(
            "{}/v1/analysis?baseline=v1&canary=c-errors&at={at}",
            on_v.base
        ))
        .await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["decision"], "rollback_auto", "at +{offset} s: {body}");
    }
}
