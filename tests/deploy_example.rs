//! `examples/deploy.rs`, the guide's full flow in Rust, end to end: a real Prometheus with
//! backfilled data, a recording fake helm on PATH, and a loopback Slack receiver.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::fake_helm::FakeHelm;
use testkit::http::Server;
use testkit::traffic::{now_secs, openmetrics, Traffic};

fn example() -> PathBuf {
    testkit::example_binary("deploy")
}

fn chart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/chart")
        .display()
        .to_string()
}

fn deploy(fake: &FakeHelm, prometheus: &str, slack: &str, args: &[&str]) -> Output {
    Command::new(example())
        .args(args)
        .args([
            "--chart",
            &chart(),
            "--values-file",
            &format!("{}/values-canary.yaml", chart()),
            "--wait-minutes",
            "0",
        ])
        .env("PATH", fake.path_env())
        .env("PROMETHEUS_URL", prometheus)
        .env("SLACK_WEBHOOK_URL", slack)
        .env("RUST_LOG", "canary=info")
        .output()
        .unwrap()
}

fn data() -> String {
    openmetrics(
        &[
            Traffic::healthy("v1", 50.0),
            Traffic::healthy("v2", 10.0),
            Traffic {
                error_ratio: 0.09,
                ..Traffic::healthy("v3", 10.0)
            },
        ],
        1200,
        15,
        now_secs() - 2,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_canary_is_deployed_promoted_and_announced() {
    let prometheus = testkit::services::prometheus(&data());
    let slack = Server::receiver().await;
    let fake = FakeHelm::new();
    fake.seed_release("default", "apex-inference", "v1");

    let out = deploy(
        &fake,
        &prometheus.url,
        &format!("{}/hook", slack.url),
        &["--version", "v2"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PROMOTED (decision: proceed)"), "{stdout}");
    // stderr is a pipe here, as when logs go to a file: no colour codes.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("validation finished"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI codes in piped logs: {stderr}"
    );
    assert!(stdout.contains("\n\n### Actions"), "{stdout}");

    let ops: Vec<String> = fake.operations().iter().map(|a| a[..2].join(" ")).collect();
    assert_eq!(
        ops,
        vec![
            "get values",
            "upgrade --install",
            "upgrade apex-inference",
            "uninstall apex-inference-canary"
        ]
    );
    assert_eq!(
        fake.values("default", "apex-inference").unwrap()["image"]["tag"],
        "v2"
    );

    let msg: Value = serde_json::from_slice(&slack.requests()[0].body).unwrap();
    assert!(
        msg["text"]
            .as_str()
            .unwrap()
            .starts_with("✅ Canary v2 promoted"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn regressing_canary_is_rolled_back_and_announced() {
    let prometheus = testkit::services::prometheus(&data());
    let slack = Server::receiver().await;
    let fake = FakeHelm::new();
    fake.seed_release("default", "apex-inference", "v1");

    let out = deploy(
        &fake,
        &prometheus.url,
        &format!("{}/hook", slack.url),
        &["--version", "v3"],
    );
    assert_eq!(out.status.code(), Some(1));
    let ops: Vec<String> = fake.operations().iter().map(|a| a[..2].join(" ")).collect();
    assert_eq!(
        ops,
        vec![
            "get values",
            "upgrade --install",
            "uninstall apex-inference-canary"
        ]
    );
    assert_eq!(
        fake.values("default", "apex-inference").unwrap()["image"]["tag"],
        "v1",
        "production untouched"
    );
    let msg: Value = serde_json::from_slice(&slack.requests()[0].body).unwrap();
    let text = msg["text"].as_str().unwrap();
    assert!(
        text.starts_with("🚨 Automatic rollback triggered for v3"),
        "{text}"
    );
    assert!(text.contains("error_rate: 9% (was 1%, 9×)"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_helm_calls_and_runs_none() {
    let prometheus = testkit::services::prometheus(&data());
    let slack = Server::receiver().await;
    let fake = FakeHelm::new();
    let out = deploy(
        &fake,
        &prometheus.url,
        &format!("{}/hook", slack.url),
        &["--version", "v2", "--production-version", "v1", "--dry-run"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("helm upgrade --install apex-inference-canary"),
        "{stdout}"
    );
    assert!(stdout.contains("--set-string image.tag=v2"), "{stdout}");
    assert!(
        fake.operations().is_empty(),
        "a dry run runs no cluster command"
    );
}

#[test]
fn bad_versions_are_refused_before_anything_runs() {
    let fake = FakeHelm::new();
    let out = Command::new(example())
        .args(["--version", "v1,canary.enabled=false"])
        .env("PATH", fake.path_env())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid version"));
    assert!(fake.calls().is_empty());
}
