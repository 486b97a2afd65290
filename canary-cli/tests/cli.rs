//! The `canary` binary itself: help, version, completions, `analyze` against a real
//! Prometheus with every exit code, `report` on a saved report, and one clear line with exit 3
//! for every bad invocation.

mod common;

use std::sync::Arc;

use canary_core::test_util::{healthy_metrics, ManualClock, RecordingDeployer, ScriptedSource};
use canary_core::{CanaryValidator, ValidationRequest, Version};
use common::{canary, stderr, stdout};

#[test]
fn help_and_version_answer_with_exit_0() {
    let v = canary(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(stdout(&v).starts_with("canary 0."), "{}", stdout(&v));
    let top = canary(&["--help"]);
    assert_eq!(top.status.code(), Some(0));
    assert!(stdout(&top).contains("Exit codes"));
    // Every subcommand, nested ones too, has help with examples.
    for sub in [
        &["analyze"][..],
        &["run"],
        &["report"],
        &["config"],
        &["config", "check"],
        &["config", "example"],
        &["config", "schema"],
        &["serve"],
        &["completions"],
    ] {
        let args: Vec<&str> = sub.iter().copied().chain(["--help"]).collect();
        let h = canary(&args);
        assert_eq!(h.status.code(), Some(0), "{sub:?}");
        assert!(stdout(&h).contains("Examples:"), "{sub:?}: {}", stdout(&h));
        if sub != ["completions"] && sub != ["config", "example"] && sub != ["config", "schema"] {
            assert!(stdout(&h).contains("Exit codes"), "{sub:?}");
        }
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_canary()"),
        ("zsh", "#compdef canary"),
        ("fish", "complete -c canary"),
    ] {
        let o = canary(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(stdout(&o).contains(marker), "{shell}");
        assert!(stdout(&o).contains("analyze"), "{shell}");
    }
}

#[test]
fn a_reader_that_stops_early_is_no_panic() {
    // `canary completions zsh | true`, made certain: the pipe's read end is closed before the
    // command writes. It printed a panic (clap_complete writes straight to stdout) before.
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["completions", "zsh"][..],
        &["completions", "bash"],
        &["config", "schema"],
        &["config", "example"],
        &["config", "check", "examples/canary.yaml"],
        &["man", "--out", dir.path().to_str().unwrap()],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = common::command()
            .args(args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .stdout(writer)
            .output()
            .unwrap();
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn bad_invocations_are_one_clear_line_and_exit_3() {
    let base = [
        "analyze",
        "--prometheus-url",
        "http://127.0.0.1:1",
        "--baseline",
        "v1",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["analyze", "--baseline", "v1", "--canary", "v2"],
            "--prometheus-url",
        ),
        (with(&[]), "--canary"),
        (
            with(&["--canary", "v2", "--window", "5 minutes"]),
            "not a duration",
        ),
        (
            with(&["--canary", "v2", "--window", "18446744073709551615h"]),
            "longer than a year",
        ),
        (with(&["--canary", ""]), "--canary"),
        (
            with(&["--canary", "v2", "--at", "yesterday"]),
            "neither RFC 3339",
        ),
        (with(&["--canary", "v2", "--output", "yaml"]), "yaml"),
        (vec!["deploy-everything"], "deploy-everything"),
        (with(&["--canary", "v2"]), "cannot reach Prometheus"),
        (
            vec![
                "run",
                "--version",
                "v2",
                "--dry-run",
                "--wait-minutes",
                "1e308",
            ],
            "\"1e308\" is not a number of minutes",
        ),
        (
            vec![
                "run",
                "--version",
                "v2",
                "--dry-run",
                "--wait-minutes",
                "NaN",
            ],
            "--wait-minutes",
        ),
    ];
    for (args, names) in cases {
        let o = canary(&args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{args:?}: {err}");
        assert!(err.contains(names), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}: data only on success");
        let longest_digits = err.split(|c: char| !c.is_ascii_digit()).map(str::len).max();
        assert!(
            longest_digits < Some(25),
            "{args:?}: a number nobody reads: {err}"
        );
    }
}

#[test]
fn analyze_exit_codes_and_outputs_follow_the_decision() {
    let (prometheus, end) = common::prometheus();
    let url = prometheus.url.as_str();
    let at = end.to_string();
    let run = |canary_version: &str, extra: &[&str]| {
        let mut args = vec![
            "analyze",
            "--prometheus-url",
            url,
            "--baseline",
            "v1",
            "--canary",
            canary_version,
            "--at",
            &at,
        ];
        args.extend_from_slice(extra);
        canary(&args)
    };

    let ok = run("v2", &["--json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("JSON on stdout");
    assert_eq!(
        (json["decision"].as_str(), json["canary_version"].as_str()),
        (Some("proceed"), Some("v2"))
    );

    let table = run("v3", &["--window", "1h30m"]);
    assert_eq!(table.status.code(), Some(1), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.starts_with("v3 vs v1: ROLLBACK_AUTO"), "{text}");
    let row = text
        .lines()
        .skip_while(|l| !l.starts_with("metric "))
        .find(|l| l.starts_with("error_rate"))
        .expect("an error_rate row under the header");
    assert!(row.contains("8%") && row.contains("degraded"), "{row}");
    assert!(
        !text.contains('\x1b'),
        "no colour with NO_COLOR or without a terminal"
    );

    let md = run("v3", &["--output", "markdown"]);
    assert_eq!(md.status.code(), Some(1));
    assert!(
        stdout(&md).starts_with("## v3 vs v1: ROLLBACK_AUTO"),
        "{}",
        stdout(&md)
    );

    // One HTML page with a chart per compared metric, from range queries over the window.
    let html = run("v3", &["--output", "html"]);
    assert_eq!(html.status.code(), Some(1), "{}", stderr(&html));
    let page = stdout(&html);
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("banner rollback_auto"));
    assert_eq!(
        page.matches("<svg").count(),
        6,
        "six metrics compared, six charts"
    );

    // A version the store never had is a typo, not a canary short of traffic: exit 3.
    let missing = run("v9", &[]);
    assert_eq!(missing.status.code(), Some(3), "{}", stdout(&missing));
    assert!(
        stderr(&missing).contains("no series with version=\"v9\""),
        "{}",
        stderr(&missing)
    );

    // The URL may come from the environment, as the deploy script's does.
    let from_env = common::command()
        .args([
            "analyze",
            "--baseline",
            "v1",
            "--canary",
            "v2",
            "--at",
            &at,
            "--json",
        ])
        .env("PROMETHEUS_URL", url)
        .output()
        .unwrap();
    assert_eq!(from_env.status.code(), Some(0), "{}", stderr(&from_env));
}

#[tokio::test]
async fn a_saved_report_renders_as_markdown_and_json() {
    let metrics = Arc::new(ScriptedSource::new());
    metrics.set("v1", healthy_metrics("v1"));
    metrics.set("v2", healthy_metrics("v2").with_error_rate_percent(3.0));
    let deployer = Arc::new(RecordingDeployer::with_production("v1"));
    let validator = CanaryValidator::new(metrics, deployer)
        .with_clock(Arc::new(ManualClock::starting_at(chrono::Utc::now())));
    let report = validator
        .validate(ValidationRequest::new(Version::new("v2").unwrap()))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("report.json");
    std::fs::write(&saved, report.to_json()).unwrap();
    let path = saved.to_str().unwrap();

    let md = canary(&["report", path, "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(0), "{}", stderr(&md));
    assert_eq!(stdout(&md).trim_end(), report.to_markdown().trim_end());

    let out = dir.path().join("again.json");
    let json = canary(&[
        "report",
        path,
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    assert!(stdout(&json).is_empty());
    let again: canary_core::ValidationReport =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(again, report);

    std::fs::write(dir.path().join("bad.json"), "{\n  \"version\": 3\n}").unwrap();
    let bad = canary(&["report", dir.path().join("bad.json").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(
        stderr(&bad).contains("is not a canary report") && stderr(&bad).contains("line "),
        "{}",
        stderr(&bad)
    );
    let missing = canary(&["report", "/nonexistent/report.json"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        stderr(&missing).contains("cannot read the report /nonexistent/report.json"),
        "{}",
        stderr(&missing)
    );
}
