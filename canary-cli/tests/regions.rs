//! `canary run --config` with what only the file can say: two regions (each with its own
//! Prometheus URL and cluster context), a JSON webhook with a secret header, and a real
//! Alertmanager. A failing canary is rolled back in both regions, and every notifier hears of it.

mod common;

use testkit::fake_helm::FakeHelm;
use testkit::http::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_webhooks_and_alertmanager_come_from_the_file() {
    let (prometheus, _) = common::prometheus();
    let am = testkit::services::alertmanager();
    let hook = Server::receiver().await;
    let fake = FakeHelm::new();
    fake.seed_release("prod-eu", "apex-inference", "v1");
    fake.seed_release("prod-us", "apex-inference", "v1");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("canary.yaml");
    std::fs::write(
        &config,
        format!(
            "prometheus:\n  url: http://127.0.0.1:1\nhelm:\n  chart: {chart}\n\
             judge: threshold\n\
             validator:\n  warmup: 0\n\
             regions:\n\
             \x20 - name: eu\n    prometheus_url: {p}\n    kube_context: eu-1\n    namespace: prod-eu\n\
             \x20 - name: us\n    prometheus_url: {p}\n    kube_context: us-1\n    namespace: prod-us\n\
             webhooks:\n  - name: audit\n    url: {hook}/hook\n    headers:\n      Authorization: ${{CANARY_TEST_HOOK_TOKEN}}\n\
             alertmanager:\n  url: http://127.0.0.1:{am}\n  labels:\n    service: apex-inference\n",
            chart = env!("CARGO_MANIFEST_DIR").to_owned() + "/../examples/chart",
            p = prometheus.url,
            hook = hook.url,
            am = am.port,
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        common::command()
            .args(["run", "--config", config.to_str().unwrap()])
            .args(["--version", "v3", "--output", "json"])
            .env("PATH", fake.path_env())
            .env("CANARY_TIME_SCALE", "0")
            .env("CANARY_TEST_HOOK_TOKEN", "Bearer hook-s3cret")
            .output()
            .map(|o| (o, fake))
    })
    .await
    .unwrap()
    .unwrap();
    let (out, fake) = out;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "rolled_back", "{}", report["reason"]);
    // Both regions were analysed, and both were rolled back.
    let regions = |key: &str| {
        let mut r: Vec<String> = report[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| key != "actions" || s["action"]["kind"] == "rollback")
            .map(|s| s["region"].as_str().unwrap_or_default().to_owned())
            .collect();
        r.sort();
        r
    };
    assert_eq!(regions("steps"), ["eu", "us"]);
    assert_eq!(regions("actions"), ["eu", "us"]);
    let uninstalls: Vec<Vec<String>> = fake
        .operations()
        .into_iter()
        .filter(|c| c[0] == "uninstall")
        .collect();
    for (ctx, ns) in [("eu-1", "prod-eu"), ("us-1", "prod-us")] {
        assert!(
            fake.calls()
                .iter()
                .any(|c| c.argv.windows(2).any(|w| w == ["--kube-context", ctx])
                    && c.argv.windows(2).any(|w| w == ["--namespace", ns])),
            "no helm call in {ctx}/{ns}: {:?}",
            fake.calls()
        );
    }
    assert!(!uninstalls.is_empty(), "{:?}", fake.operations());
    // The webhook got the report with its header; the secret is in no output.
    let posted = hook.requests();
    assert!(!posted.is_empty(), "the webhook heard nothing");
    assert_eq!(
        posted[0].header("authorization"),
        Some("Bearer hook-s3cret")
    );
    let body: serde_json::Value = serde_json::from_str(&posted[0].text()).unwrap();
    assert_eq!(body["kind"], "canary_report", "{body}");
    assert!(!stderr.contains("hook-s3cret") && !stdout.contains("hook-s3cret"));
    // Alertmanager holds the alert with the file's label.
    let (status, alerts) = testkit::services::get(am.port, "/api/v2/alerts").unwrap();
    assert_eq!(status, 200);
    let alerts: serde_json::Value = serde_json::from_str(&alerts).unwrap();
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["service"] == "apex-inference"
                && a["labels"]["alertname"] == "CanaryValidationFailed"),
        "{alerts}"
    );
}
