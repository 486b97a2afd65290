//! `canary serve` as a process: from flags alone it serves the default queries and policy;
//! from a config file it takes its `serve` section (a token from the environment); SIGTERM
//! stops it with exit 0.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok((200, _)) = testkit::services::get(port, "/healthz") {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("canary serve exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("canary serve did not start");
}

fn terminate(mut child: Child) -> i32 {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap().code().unwrap_or(-1)
}

#[test]
fn flags_alone_serve_the_default_policy_and_sigterm_stops_it() {
    let (prometheus, end) = common::prometheus();
    let port = testkit::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["serve", "--prometheus-url", &prometheus.url, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("PROMETHEUS_URL")
        .env_remove("CANARY_AUTH_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    for (canary, decision) in [("v2", "proceed"), ("v3", "rollback_auto")] {
        let (status, body) = testkit::services::get(
            port,
            &format!("/v1/analysis?baseline=v1&canary={canary}&at={end}"),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let body = body.split("\r\n\r\n").last().unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(answer["decision"], decision, "{answer}");
    }
    assert_eq!(terminate(child), 0);
}

#[test]
fn the_config_files_serve_section_and_a_token_from_the_environment() {
    let (prometheus, _) = common::prometheus();
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("canary.yaml");
    std::fs::write(
        &config,
        format!(
            "prometheus:\n  url: {}\nserve:\n  listen: 127.0.0.1:{port}\n  auth_token: ${{CANARY_TEST_SERVE_TOKEN}}\n  deadline: 30\n",
            prometheus.url
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("CANARY_TEST_SERVE_TOKEN", "tok-from-env")
        .env_remove("PROMETHEUS_URL")
        .env_remove("CANARY_AUTH_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    let (status, _) = testkit::services::get(port, "/v1/analysis?baseline=v1&canary=v2").unwrap();
    assert_eq!(status, 401);
    let (status, _) = testkit::services::get(port, "/readyz").unwrap();
    assert_eq!(status, 200);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("tok-from-env"));
    // A config the service cannot use is one line and exit 3.
    std::fs::write(&config, "serve:\n  max_concurrent_analyses: 0\n").unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("serve.max_concurrent_analyses"));
}
