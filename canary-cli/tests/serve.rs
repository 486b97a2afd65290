//! `canary serve` as a process: from flags alone it serves the default queries and policy;
//! from a config file it takes its `serve` section (a token from the environment); SIGTERM
//! stops it with exit 0.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn wait_ready(port: u16, child: &mut Child) {
    testkit::services::wait_until_ready(port, "/healthz", child, Duration::from_secs(20));
}

fn terminate(mut child: Child) -> i32 {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap().code().unwrap_or(-1)
}

/// `canary serve` from flags alone, with `extra` flags, ready on its port.
fn serve_flags(prometheus: &str, extra: &[&str]) -> (Child, u16) {
    let port = testkit::free_port();
    let mut child = common::command()
        .args(["serve", "--prometheus-url", prometheus, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    (child, port)
}

#[test]
fn flags_alone_serve_the_sequential_judge_and_sigterm_stops_it() {
    let (prometheus, end) = common::prometheus();
    // The default judge: the sequential judge over the canary's run so far. Twenty minutes of
    // a healthy canary at 10 % of production's traffic are not yet enough to promote; 8 %
    // failing requests are enough to roll back.
    let (child, port) = serve_flags(&prometheus.url, &[]);
    let healthy = common::analysis(port, "v2", end);
    assert_eq!(healthy["judge"], "sequential", "{healthy}");
    assert_eq!(healthy["decision"], "continue", "{healthy}");
    let failing = common::analysis(port, "v3", end);
    assert_eq!(failing["decision"], "rollback_auto", "{failing}");
    assert_eq!(terminate(child), 0);
    // The guide's single look, one flag away: the trailing window decides at once.
    let (child, port) = serve_flags(&prometheus.url, &["--judge", "threshold"]);
    for (canary, decision) in [("v2", "proceed"), ("v3", "rollback_auto")] {
        let answer = common::analysis(port, canary, end);
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
    let mut child = common::command()
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("CANARY_TEST_SERVE_TOKEN", "tok-from-env")
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
    let bad = common::canary(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("serve.max_concurrent_analyses"));
}

/// `canary serve` with `args` (and `prefix`, e.g. `prlimit`, before it), its stderr in a file.
fn spawn_serve(prefix: &[&str], args: &[&str], stderr: &std::path::Path) -> Child {
    let bin = env!("CARGO_BIN_EXE_canary");
    let (program, rest): (&str, Vec<&str>) = match prefix.split_first() {
        Some((p, more)) => (p, more.iter().copied().chain([bin]).collect()),
        None => (bin, Vec::new()),
    };
    Command::new(program)
        .args(rest)
        .arg("serve")
        .args(args)
        .env_remove("PROMETHEUS_URL")
        .env_remove("CANARY_AUTH_TOKEN")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

/// GET `path` with a read timeout; the status, or `None` if nothing came back in time.
fn get_within(port: u16, path: &str, within: Duration) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, within).ok()?;
    s.set_read_timeout(Some(within)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

#[test]
fn idle_connections_neither_exhaust_the_service_nor_flood_its_log() {
    let (prometheus, _) = common::prometheus();
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("canary.yaml");
    std::fs::write(
        &config,
        format!(
            "prometheus:\n  url: {}\nserve:\n  listen: 127.0.0.1:{port}\n  header_timeout: 1\n",
            prometheus.url
        ),
    )
    .unwrap();
    let log = dir.path().join("stderr");
    // 128 descriptors: 400 idle connections run the process out of them.
    let mut child = spawn_serve(
        &["prlimit", "--nofile=128:128"],
        &["--config", config.to_str().unwrap()],
        &log,
    );
    wait_ready(port, &mut child);
    let idle: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idle.len() > 300, "{} idle connections", idle.len());
    std::thread::sleep(Duration::from_secs(2));
    // Idle connections are closed after the header timeout; /healthz answers again.
    let answered = get_within(port, "/healthz", Duration::from_secs(20));
    assert_eq!(
        answered.map(|a| a.0),
        Some(200),
        "/healthz after 400 idle connections"
    );
    drop(idle);
    assert_eq!(terminate(child), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let failures = text.matches("accept failed").count();
    assert!(
        failures < 30,
        "{failures} accept failures logged: the log is flooded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_drains_requests_in_flight_like_sigterm() {
    use testkit::http::{Reply, Server};
    let at = testkit::traffic::now_secs() - 60;
    // A slow Prometheus: every answer takes 1.5 s, healthy, stamped at the evaluation time.
    let slow =
        Server::start(move |r| Reply::healthy_instant(r, at).delayed(Duration::from_millis(1500)))
            .await;
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut child = spawn_serve(
        &[],
        &[
            "--prometheus-url",
            &slow.url,
            "--listen",
            &listen,
            "--judge",
            "threshold",
        ],
        &dir.path().join("stderr"),
    );
    wait_ready(port, &mut child);
    let path = format!("/v1/analysis?baseline=v1&canary=v2&at={at}");
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || get_within(port, &path, Duration::from_secs(30)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    for r in requests {
        let (status, text) = r.join().unwrap().expect("an answer, not a dropped request");
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("\"decision\""), "{text}");
    }
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "SIGHUP drains, then exits 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_breaks_from_clients_or_servers_never_forge_a_log_line() {
    use testkit::http::{Reply, Server};
    // Prometheus's own error text, logged as the query is retried, holds a line break too.
    let prometheus = Server::start(|_| {
        Reply::json(
            503,
            r#"{"status":"error","errorType":"unavailable","error":"overloaded\nFORGED from the server"}"#,
        )
    })
    .await;
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let listen = format!("127.0.0.1:{port}");
    let mut child = spawn_serve(
        &[],
        &["--prometheus-url", &prometheus.url, "--listen", &listen],
        &log,
    );
    wait_ready(port, &mut child);
    let body = serde_json::json!({
        "name": "apex\nFORGED level=ERROR admin logged in",
        "namespace": "prod\r\nFORGED second",
        "metadata": {"baseline": "v1", "canary": "v2"},
    })
    .to_string();
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /v1/flagger/gate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    assert_eq!(terminate(child), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("FORGED level"),
        "the webhook was logged: {text}"
    );
    assert!(
        text.contains("FORGED from the server"),
        "the retry was logged: {text}"
    );
    for line in text.lines() {
        assert!(
            !line.trim_start().starts_with("FORGED"),
            "a forged line: {line:?}"
        );
    }
}

#[test]
fn the_sequential_judge_behind_the_examples_urls_never_promotes_a_regression() {
    let end = testkit::traffic::now_secs() - 3;
    let (data, canary_start) = testkit::traffic::controller_canaries(end);
    let prometheus = testkit::services::prometheus(&data);
    let port = testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut child = spawn_serve(
        &[],
        &[
            "--prometheus-url",
            &prometheus.url,
            "--listen",
            &listen,
            "--judge",
            "sequential",
        ],
        &dir.path().join("stderr"),
    );
    wait_ready(port, &mut child);
    let template: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/argo/analysis-template.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let url = template["spec"]["metrics"][0]["provider"]["web"]["url"]
        .as_str()
        .unwrap()
        .replace("http://canary-judge.canary.svc:8080", "");
    for version in [
        "c-latency",
        "c-errors",
        "c-confidence",
        "c-silent",
        "c-missing",
        "c-healthy",
    ] {
        let path = url
            .replace("{{args.baseline-version}}", "v1")
            .replace("{{args.canary-version}}", version);
        let mut answers = Vec::new();
        // Argo's measurements, every five minutes from the analysis' start to past the
        // judge's maximum duration.
        for minute in (5..=70).step_by(5) {
            let at = canary_start + minute * 60;
            let (status, text) =
                get_within(port, &format!("{path}&at={at}"), Duration::from_secs(30)).unwrap();
            assert_eq!(status, 200, "{version} at +{minute} min: {text}");
            let body = text.split("\r\n\r\n").last().unwrap();
            let answer: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
            answers.push(answer["decision"].as_str().unwrap().to_owned());
        }
        if version == "c-healthy" {
            assert_eq!(answers.last().unwrap(), "proceed", "{answers:?}");
        } else {
            assert!(
                !answers.iter().any(|a| a == "proceed"),
                "{version}: {answers:?}"
            );
        }
        assert_ne!(
            answers.last().unwrap(),
            "continue",
            "{version}: {answers:?}"
        );
    }
    assert_eq!(terminate(child), 0);
}
