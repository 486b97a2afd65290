//! The HTML report as a person sees it: `canary run --output html` on a simulated regression
//! backfilled into the real Prometheus, then `canary report --format html` on the saved JSON,
//! opened in headless Chromium and screenshotted. The image must not be blank and must show the
//! charts (baseline blue, canary orange, the red banner of a rollback). With
//! `CANARY_UPDATE_DOCS=1` the screenshot replaces `docs/src/images/report.png`, which the README and the book show.

use std::path::{Path, PathBuf};
use std::process::Command;

use canary_sim::{simulate, Effect, MetricNames, Scenario};
use chrono::{TimeZone, Utc};
use testkit::fake_helm::FakeHelm;
use testkit::screenshot::{near, pixels, screenshot};
use testkit::traffic::now_secs;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A simulated canary 60 % slower with three times the errors, over the last ten minutes.
fn regression() -> testkit::services::Service {
    let mut scenario = Scenario::aa_guide(21);
    scenario.canary.effect = Effect {
        latency_factor: 1.6,
        error_factor: 3.0,
        ..Effect::default()
    };
    let start = Utc
        .timestamp_millis_opt((now_secs() - 3 - 600) * 1000)
        .unwrap();
    let run = simulate(&scenario).unwrap().starting_at(start);
    testkit::services::prometheus(&run.to_openmetrics(&MetricNames::default()))
}

#[test]
fn the_html_report_shows_the_decision_and_a_chart_per_metric_in_chromium() {
    let prometheus = regression();
    let fake = FakeHelm::new();
    fake.seed_release("default", "apex-inference", "v1");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["run", "--version", "v2", "--production-version", "v1"])
        .args([
            "--judge",
            "threshold",
            "--wait-minutes",
            "0",
            "--output",
            "html",
        ])
        .arg("--report-file")
        .arg(&saved)
        .args(["--chart", root().join("examples/chart").to_str().unwrap()])
        .env("PATH", fake.path_env())
        .env("PROMETHEUS_URL", &prometheus.url)
        .env("CANARY_TIME_SCALE", "0")
        .env_remove("SLACK_WEBHOOK_URL")
        .output()
        .unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(page.starts_with("<!DOCTYPE html>"), "{page:.200}");
    assert!(page.contains("class=\"banner rolled_back\""));
    // Self-contained: no script, no external resource.
    for forbidden in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!page.contains(forbidden), "the page holds {forbidden}");
    }
    // One chart per compared metric, each with both arms.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let compared = report["evaluation"]["comparisons"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        page.matches("<svg").count(),
        compared,
        "one chart per metric"
    );
    for m in ["latency_p99", "error_rate", "model_confidence"] {
        assert!(
            page.contains(&format!("<figcaption>{m}")),
            "no chart for {m}"
        );
    }
    // `canary report` renders the saved JSON the same way.
    let html_file = dir.path().join("report.html");
    let rendered = Command::new(env!("CARGO_BIN_EXE_canary"))
        .arg("report")
        .arg(&saved)
        .args(["--format", "html", "--out"])
        .arg(&html_file)
        .output()
        .unwrap();
    assert_eq!(
        rendered.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&html_file).unwrap().trim_end(),
        page.trim_end()
    );

    let shot = dir.path().join("report.png");
    screenshot(&html_file, &shot, dir.path(), (1100, 1500));
    let (w, h, px) = pixels(&shot);
    assert_eq!((w, h), (1100, 1500));
    let count = |c: [u8; 3], tol: i32| px.iter().filter(|p| near(**p, c, tol)).count();
    let total = px.len();
    let white_or_page = px
        .iter()
        .filter(|p| near(**p, [0xff; 3], 6) || near(**p, [0xf6, 0xf7, 0xf9], 4))
        .count();
    assert!(white_or_page < total * 97 / 100, "the page is blank");
    // The rollback banner, and both arms' lines in the charts.
    assert!(count([0xc5, 0x22, 0x1f], 12) > 20_000, "no red banner");
    assert!(count([0x3b, 0x6e, 0xa8], 40) > 500, "no baseline lines");
    assert!(count([0xe0, 0x7b, 0x1f], 40) > 500, "no canary lines");
    if std::env::var_os("CANARY_UPDATE_DOCS").is_some() {
        std::fs::copy(&shot, root().join("docs/src/images/report.png")).unwrap();
    }
}

/// A report from the in-memory fakes, to be dressed up by each check.
fn fake_report() -> canary_core::ValidationReport {
    use canary_core::test_util::{healthy_metrics, ManualClock, RecordingDeployer, ScriptedSource};
    use std::sync::Arc;
    let source = Arc::new(ScriptedSource::new());
    source.set("v1", healthy_metrics("v1"));
    source.set("v2", healthy_metrics("v2"));
    let validator = canary_core::CanaryValidator::new(
        source,
        Arc::new(RecordingDeployer::with_production("v1")),
    )
    .with_clock(Arc::new(ManualClock::default()));
    let request = canary_core::ValidationRequest::new(canary_core::Version::new("v2").unwrap());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(validator.validate(request))
}

#[test]
fn every_text_is_escaped_and_a_missing_chart_says_why() {
    let mut r = fake_report();
    assert_eq!(
        r.steps[0].series.len(),
        7,
        "the fakes give a series per metric"
    );
    r.reason = "<script>alert('reason')</script>".into();
    r.actions[0].error = Some("<img src=x onerror=alert(1)>".into());
    r.steps[0].series.clear();
    r.steps[0].series_error = Some("range query refused <u>".into());
    // A fractional sample count reads as counted, as in every other format.
    r.steps[0].evaluation.canary_samples = Some(99.6);
    let page = canary_cli::html::report(&r);
    assert!(page.contains("<td class=\"num\">99.6</td>"), "{page}");
    assert!(!page.contains("<script") && !page.contains("<img") && !page.contains("<u>"));
    assert!(page.contains("&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;"));
    assert!(page.contains("No charts for this step: range query refused &lt;u&gt;"));
    assert_eq!(page.matches("<svg").count(), 0);
}

#[test]
fn a_sequential_judges_intervals_are_charted_over_time() {
    use canary_core::judge::SequencePoint;
    use canary_core::policy::AnytimeInterval;
    let mut r = fake_report();
    let point = |minute: f64, metric: &str, estimate: f64, width: f64| SequencePoint {
        seconds: minute * 60.0,
        metric: metric.into(),
        interval: AnytimeInterval {
            statistic: format!("{metric} ratio (canary / baseline)"),
            estimate: Some(estimate),
            lower: Some(estimate - width),
            upper: Some(estimate + width),
            margin: 1.1,
            confidence: 0.99,
            pods: None,
            caught: None,
        },
    };
    r.steps[0].sequence = (1..=20)
        .flat_map(|m| {
            let m = f64::from(m);
            [
                point(m, "error_rate", 1.6, 2.0 / m),
                point(m, "latency_p99", 1.0, 1.0 / m),
            ]
        })
        .collect();
    let page = canary_cli::html::report(&r);
    let section = page
        .split("<h2>Evidence over time</h2>")
        .nth(1)
        .expect("an evidence-over-time section");
    let section = section.split("</section>").next().unwrap();
    assert_eq!(
        section.matches("<svg").count(),
        2,
        "one chart per statistic"
    );
    assert!(section.contains("<figcaption>error_rate: error_rate ratio (canary / baseline)"));
    // The margin is drawn as a dashed line: several short segments at one height.
    assert!(section.matches("<polyline").count() + section.matches("<line").count() > 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_chart_data_never_holds_up_the_decision_or_the_report() {
    use testkit::http::{Reply, Server};
    let at = now_secs() - 60;
    // Healthy instant answers at the evaluation time; range data of ±1e308 for the charts.
    let s = Server::start(move |r| {
        if r.path.contains("query_range") {
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[[{},"1e308"],[{},"-1e308"],[{},"1e308"]]}}]}}}}"#,
                at - 120,
                at - 60,
                at
            );
            Reply::json(200, &body)
        } else {
            Reply::healthy_instant(r, at)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = s.url.clone();
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args([
            "analyze",
            "--prometheus-url",
            &url,
            "--baseline",
            "v1",
            "--canary",
            "v2",
            "--at",
            &at.to_string(),
            "--output",
            "html",
        ])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = tokio::task::spawn_blocking(move || {
        // Bounded: a spinning chart must fail this test, not hang it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if child.try_wait().unwrap().is_some() {
                return Some(child.wait_with_output().unwrap());
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    })
    .await
    .unwrap()
    .expect("canary analyze --output html finished within a minute");
    let html = String::from_utf8_lossy(&output.stdout);
    assert!(
        html.contains("<html"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        html.contains("cannot be charted"),
        "the page says why there is no chart"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn raw_html_from_an_error_body_is_inert_in_the_markdown_report() {
    let mut r = fake_report();
    r.reason =
        "Prometheus answered 502: <script>alert(1)</script><img src=x onerror=alert(1)>".into();
    if let Some(e) = r.evaluation.as_mut() {
        e.recommendation = "<b onmouseover=alert(2)>look</b>".into();
    }
    let md = r.to_markdown();
    assert!(
        !md.contains("<script") && !md.contains("<img") && !md.contains("<b "),
        "{md}"
    );
    assert!(
        md.contains("**Reason:** Prometheus answered 502: &lt;script&gt;"),
        "{md}"
    );
}
