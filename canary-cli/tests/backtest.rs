//! `canary backtest` and `canary analyze --judge` as a team runs them: two days of a three-pod
//! production (v1) and a slower canary (v2) beside it, simulated by canary-sim and backfilled
//! into a real Prometheus. The CI gate's exit codes, the calibration's config snippet (checked
//! by `canary config check`), the failed runs' links, the errors a user meets, the HTML page in
//! headless Chromium (`CANARY_UPDATE_DOCS=1` writes `docs/src/images/backtest.png`), and a retrospective
//! of the canary's run through every judge.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use canary_sim::{simulate, Effect, MetricNames, Pods, Scenario};
use chrono::{DateTime, TimeZone, Utc};
use common::{canary, stderr, stdout};
use testkit::screenshot::{near, pixels, screenshot};
use testkit::traffic::now_secs;

const DAY: i64 = 86_400;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Two days ending ten minutes ago at 30 s: production v1 on three pods, the canary v2 on one,
/// 30 % slower.
fn history() -> (testkit::services::Service, DateTime<Utc>, DateTime<Utc>) {
    let mut s = Scenario::aa_guide(5);
    s.name = "backtest-cli".into();
    s.duration = Duration::from_secs(2 * DAY as u64);
    s.scrape_interval = Duration::from_secs(30);
    s.gaps.missing = 0.0;
    s.canary_share = 0.25;
    s.canary.version = "v2".into();
    s.canary.effect = Effect {
        latency_factor: 1.3,
        ..Effect::default()
    };
    s.pods = Some(Pods {
        baseline: 3,
        canary: 1,
        faults: Vec::new(),
        changes: Vec::new(),
    });
    let start_s = (now_secs() - 2 * DAY - 600) / 30 * 30;
    let start = Utc.timestamp_opt(start_s, 0).unwrap();
    let run = simulate(&s).unwrap().starting_at(start);
    let prometheus = testkit::services::prometheus(&run.to_openmetrics(&MetricNames::default()));
    (
        prometheus,
        start,
        start + chrono::Duration::seconds(2 * DAY),
    )
}

fn config_file(dir: &Path, url: &str, judge: &str) -> PathBuf {
    let path = dir.join(format!("canary-{judge}.yaml"));
    std::fs::write(
        &path,
        format!(
            "prometheus:\n  url: {url}\njudge: {judge}\nvalidator:\n  judge_step: 30\n  max_duration: 3600\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn backtest_gates_calibrates_links_and_renders_on_a_real_prometheus() {
    let (prometheus, start, end) = history();
    let dir = tempfile::tempdir().unwrap();
    let threshold = config_file(dir.path(), &prometheus.url, "threshold");
    let cfg = threshold.to_str().unwrap();
    let since = start.to_rfc3339();
    let until = end.to_rfc3339();
    let base = [
        "backtest",
        "--config",
        cfg,
        "--version",
        "v1",
        "--since",
        &since,
        "--until",
        &until,
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        canary(&a)
    };

    // JSON, two judges, an injection, a gate the threshold policy passes.
    let out = with(&[
        "--judge",
        "threshold,sequential",
        "--runs",
        "60",
        "--inject",
        "latency+25%",
        "--max-false-rollback",
        "0.95",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], "v1");
    assert_eq!(json["pods"].as_array().unwrap().len(), 3);
    assert_eq!(json["runs"], 60);
    let judges = json["judges"].as_array().unwrap();
    assert_eq!(judges.len(), 2);
    assert_eq!(judges[0]["judge"], "threshold");
    assert_eq!(judges[0]["configured"], true);
    assert_eq!(judges[1]["configured"], false);
    assert_eq!(json["gate"]["judge"], "threshold");
    assert_eq!(json["gate"]["passed"], true);
    // The guide's policy holds about a third of healthy canaries; the sequential judge none.
    let fr = |j: &serde_json::Value| j["healthy"]["false_rollback"]["count"].as_u64().unwrap();
    assert!(fr(&judges[0]) >= 5, "{}", judges[0]["healthy"]);
    assert!(fr(&judges[1]) <= 3, "{}", judges[1]["healthy"]);
    let caught = judges[1]["injected"][0]["caught"]["rate"].as_f64().unwrap();
    assert!(caught > 0.9, "sequential caught {caught}");
    // Each failed run links to Prometheus' graph of its pods over its time.
    let failure = &judges[0]["failures"][0];
    let link = failure["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/graph?", prometheus.url)),
        "{link}"
    );
    let pod = failure["canary_pods"][0].as_str().unwrap();
    assert!(link.contains(pod), "{link} does not show {pod}");
    // Each link graphs the metric that decided, and each failed run is listed once.
    for j in judges {
        let mut seen = std::collections::BTreeSet::new();
        for f in j["failures"].as_array().unwrap() {
            assert!(
                seen.insert((f["start"].to_string(), f["canary_pods"].to_string())),
                "{f}"
            );
            let link = urlencoding_decode(f["link"].as_str().unwrap());
            match f["metric"].as_str() {
                Some(m) if m.starts_with("latency") => {
                    assert!(link.contains("histogram_quantile"), "{m}: {link}")
                }
                Some("model_confidence") => assert!(link.contains("avg("), "{link}"),
                _ => assert!(link.contains("status"), "{link}"),
            }
        }
    }

    // The same gate at 1 %: the configured judge is above it, exit 1, said in a line.
    let out = with(&[
        "--judge",
        "threshold",
        "--runs",
        "60",
        "--max-false-rollback",
        "0.01",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("FAIL: threshold's false rollbacks"), "{text}");
    // A terminal's table: aligned columns under a rule, no URL, a word on where the links are.
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("judge ") && l.contains("false rollbacks"))
        .unwrap_or_else(|| panic!("no header in\n{text}"));
    assert!(lines[header + 1].starts_with("-----"), "{text}");
    assert!(!text.contains('|'), "{text}");
    assert!(!text.contains("http://"), "{text}");
    assert!(
        text.contains("--output markdown and --output json"),
        "{text}"
    );
    assert!(text.contains("above the limit 1.0 %"), "{text}");
    // The configured judge left out of --judge: the first listed stands for it.
    let out = with(&[
        "--judge",
        "sequential",
        "--runs",
        "40",
        "--max-false-rollback",
        "0.2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("PASS: sequential's"),
        "{}",
        stdout(&out)
    );

    // Calibration: the snippet is a config `canary config check` accepts, more tolerant
    // than the guide's, and the held-out rate is reported beside the native one.
    let out = with(&[
        "--judge",
        "threshold",
        "--runs",
        "120",
        "--calibrate",
        "0.1",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &json["calibrations"][0];
    assert_eq!(c["judge"], "threshold");
    assert!(c["sensitivity"].as_f64().unwrap() > 1.0, "{c}");
    assert_eq!(
        c["calibrated"]["injected"][0]["injection"], "latency+25%",
        "the default injections measure the power kept"
    );
    let held = c["calibrated"]["healthy"]["false_rollback"]["rate"]
        .as_f64()
        .unwrap();
    let native = c["native"]["healthy"]["false_rollback"]["rate"]
        .as_f64()
        .unwrap();
    assert!(held < native, "calibrated {held} vs as given {native}");
    let snippet = json["config_snippets"]["threshold"].as_str().unwrap();
    assert!(
        snippet.starts_with("judge: threshold\nthresholds:\n"),
        "{snippet}"
    );
    let snippet_file = dir.path().join("calibrated.yaml");
    std::fs::write(&snippet_file, snippet).unwrap();
    let check = canary(&["config", "check", snippet_file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let tolerance: serde_yaml::Value = serde_yaml::from_str(snippet).unwrap();
    assert!(
        tolerance["thresholds"]["proceed_tolerance"]
            .as_f64()
            .unwrap()
            > 1.1
    );
    // Markdown carries the snippet too.
    let out = with(&[
        "--judge",
        "threshold",
        "--runs",
        "120",
        "--calibrate",
        "0.1",
        "--output",
        "markdown",
    ]);
    assert!(
        stdout(&out).contains("```yaml\njudge: threshold\n"),
        "{}",
        stdout(&out)
    );

    // What a user gets wrong, each named, exit 3.
    let out = with(&["--judge", "threshold", "--calibrate", "1.5"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("strictly between 0 and 1"),
        "{}",
        stderr(&out)
    );
    let out = canary(&[
        "backtest",
        "--config",
        cfg,
        "--version",
        "v9",
        "--since",
        "1d",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("v9"), "{}", stderr(&out));
    let short_since = (end - chrono::Duration::minutes(30)).to_rfc3339();
    let out = canary(&[
        "backtest",
        "--config",
        cfg,
        "--version",
        "v1",
        "--since",
        &short_since,
        "--until",
        &until,
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("too little history"),
        "{}",
        stderr(&out)
    );
    // The canary version alone is one pod: no split possible, said.
    let out = canary(&[
        "backtest",
        "--config",
        cfg,
        "--version",
        "v2",
        "--since",
        &since,
        "--until",
        &until,
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("pod"), "{}", stderr(&out));

    // The HTML page, in Chromium.
    let out = with(&[
        "--runs",
        "120",
        "--inject",
        "latency+25%,errors*2",
        "--max-false-rollback",
        "0.05",
        "--output",
        "html",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("class=\"banner fail\""));
    for forbidden in ["<script", "src=\"http", "@import", "url("] {
        assert!(!page.contains(forbidden), "the page holds {forbidden}");
    }
    for judge in ["threshold", "sequential", "flagger", "argo", "kayenta"] {
        assert!(page.contains(&format!("<td>{judge}")), "no row for {judge}");
    }
    assert!(page.contains("False rollbacks by hour of the day"));
    assert!(page.contains(">what it saw</a>"));
    let html_file = dir.path().join("backtest.html");
    std::fs::write(&html_file, &page).unwrap();
    let shot = dir.path().join("backtest.png");
    screenshot(&html_file, &shot, dir.path(), (1100, 1400));
    let (w, h, px) = pixels(&shot);
    assert_eq!((w, h), (1100, 1400));
    let count = |c: [u8; 3], tol: i32| px.iter().filter(|p| near(**p, c, tol)).count();
    assert!(count([0xc5, 0x22, 0x1f], 12) > 20_000, "no red FAIL banner");
    assert!(
        count([0xe0, 0x66, 0x66], 10) > 300,
        "no false-rollback bars"
    );
    assert!(count([0x3b, 0x6e, 0xa8], 10) > 300, "no power bars");
    if std::env::var_os("CANARY_UPDATE_DOCS").is_some() {
        std::fs::copy(&shot, root().join("docs/src/images/backtest.png")).unwrap();
    }

    // A retrospective of the canary's run (v2, 30 % slower) through every judge: the same
    // outputs and exit codes as `analyze`.
    let run_start = (start + chrono::Duration::hours(20)).to_rfc3339();
    let run_end = (start + chrono::Duration::hours(21)).to_rfc3339();
    for judge in ["sequential", "threshold", "flagger", "argo", "kayenta"] {
        let out = canary(&[
            "analyze",
            "--config",
            cfg,
            "--baseline",
            "v1",
            "--canary",
            "v2",
            "--judge",
            judge,
            "--since",
            &run_start,
            "--until",
            &run_end,
            "--output",
            "json",
        ]);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "{judge}: {code:?} {}",
            stderr(&out)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["retrospective"]["judge"], judge);
        assert_eq!(
            json["retrospective"]["start"],
            run_start.replace("+00:00", "Z")
        );
        assert!(
            json["retrospective"]["looks"].as_u64().unwrap() > 0,
            "{judge}"
        );
        let decision = json["decision"].as_str().unwrap();
        let want = ["proceed", "rollback_auto", "rollback_manual"][code.unwrap() as usize];
        assert_eq!(decision, want, "{judge}: the exit code is the decision's");
        if judge == "sequential" {
            assert_eq!(decision, "rollback_auto", "{}", json["primary_reason"]);
            assert!(!json["retrospective"]["sequence"]
                .as_array()
                .unwrap()
                .is_empty());
        }
    }
    // Its HTML shows the judge's evidence over time.
    let out = canary(&[
        "analyze",
        "--config",
        cfg,
        "--baseline",
        "v1",
        "--canary",
        "v2",
        "--judge",
        "sequential",
        "--since",
        &run_start,
        "--until",
        &run_end,
        "--output",
        "html",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains("Evidence over time"));
    assert!(page.contains("Judged by sequential"));
    assert!(page.matches("<svg").count() >= 3, "charts and intervals");
    // Before the judge could decide: not decided yet, said, exit 4 (not a person's call).
    let early = (start + chrono::Duration::hours(20) + chrono::Duration::minutes(2)).to_rfc3339();
    let out = canary(&[
        "analyze",
        "--config",
        cfg,
        "--baseline",
        "v1",
        "--canary",
        "v2",
        "--judge",
        "threshold",
        "--since",
        &run_start,
        "--until",
        &early,
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stdout(&out).contains("continue: "), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains("rollback_manual"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("still collecting evidence"),
        "{}",
        stdout(&out)
    );
    // --since without --judge is a mistake, named.
    let out = canary(&[
        "analyze",
        "--config",
        cfg,
        "--baseline",
        "v1",
        "--canary",
        "v2",
        "--since",
        &run_start,
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("--judge"), "{}", stderr(&out));
}

/// Percent-decoding of a link's query, to read the PromQL it carries.
fn urlencoding_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
