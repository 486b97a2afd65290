//! The GitHub Actions example runs the `canary` command with flags it accepts: its steps'
//! commands, with the workflow's expressions replaced by sample values, run against the
//! binary (a dry run with no Prometheus: the validation fails safe) and leave what the later
//! steps need: the JSON report, the job summary, and the HTML report the upload step keeps.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A step's command as words, expressions replaced; quotes are only ever around one word.
fn words(run: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let mut text = run.to_owned();
    for (from, to) in vars {
        text = text.replace(from, to);
    }
    text.split_whitespace()
        .map(|w| w.trim_matches('"').to_owned())
        .collect()
}

#[test]
fn the_workflow_runs_the_command_with_the_config_and_keeps_both_reports() {
    let text =
        std::fs::read_to_string(root().join("examples/github-actions/deploy-canary.yml")).unwrap();
    let workflow: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let config = workflow["env"]["CANARY_CONFIG"]
        .as_str()
        .unwrap()
        .to_owned();
    let steps = workflow["jobs"]["canary"]["steps"].as_sequence().unwrap();
    let run_of = |needle: &str| -> String {
        steps
            .iter()
            .filter_map(|s| s["run"].as_str())
            .find(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("a step runs {needle}"))
            .to_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let vars = [
        ("$CANARY_CONFIG", config.as_str()),
        ("$VERSION", "v9.9.9"),
        ("$GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ];
    let canary = |args: &[String]| {
        assert_eq!(args[0], "canary", "{args:?}");
        Command::new(env!("CARGO_BIN_EXE_canary"))
            .args(&args[1..])
            .current_dir(dir.path())
            .env("PROMETHEUS_URL", "http://127.0.0.1:9")
            .env("CANARY_TIME_SCALE", "0")
            .env_remove("SLACK_WEBHOOK_URL")
            .output()
            .unwrap()
    };
    // Relative paths in the workflow are the repository's.
    let absolute = |mut args: Vec<String>| {
        for a in &mut args {
            if a.starts_with("examples/") {
                *a = root().join(&*a).display().to_string();
            }
        }
        args
    };

    let check = canary(&absolute(words(&run_of("canary config check"), &vars)));
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The job reads production's version from helm; a dry run must be told it.
    let mut args = absolute(words(&run_of("canary run"), &vars));
    assert!(args.contains(&"--config".to_owned()) && args.contains(&"--summary-file".to_owned()));
    args.extend(["--dry-run", "--production-version", "v9.9.8"].map(String::from));
    let out = canary(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "no Prometheus: an error, the canary rolled back: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("canary-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["version"], "v9.9.9");
    assert!(std::fs::read_to_string(&summary)
        .unwrap()
        .contains("## Canary v9.9.9 vs v9.9.8"));

    let render = canary(&words(&run_of("canary report"), &vars));
    assert_eq!(
        render.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    let page = std::fs::read_to_string(dir.path().join("canary-report.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    // The upload step keeps the HTML page.
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .unwrap();
    assert!(upload["with"]["path"]
        .as_str()
        .unwrap()
        .contains("canary-report.html"));
}
