//! `canary run` itself against a real Prometheus and the recording fake helm: the exit code for
//! manual review, the report and job-summary files, a judge chosen by name, and Ctrl-C / SIGTERM
//! rolling the canary back. (Promotion, rollback, dry run and failures are tested through the
//! `deploy` example, which is this command.)

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::fake_helm::FakeHelm;
use testkit::traffic::{now_secs, openmetrics, Traffic};

fn chart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/chart")
        .display()
        .to_string()
}

fn data() -> String {
    openmetrics(
        &[Traffic::healthy("v1", 50.0), Traffic::healthy("v2", 10.0)],
        1200,
        15,
        now_secs() - 2,
    )
}

/// `canary run` with `args`; the guide's single look unless `args` name a judge (these tests
/// are about the flow around a decision, which one look at backfilled data makes at once).
fn run(fake: &FakeHelm, prometheus: &str, scale: &str, args: &[&str]) -> Command {
    let mut c = default_judge(fake, prometheus, scale, args);
    if !args.contains(&"--judge") {
        c.args(["--judge", "threshold"]);
    }
    c
}

/// `canary run` with `args` as given: the command's own default judge.
fn default_judge(fake: &FakeHelm, prometheus: &str, scale: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_canary"));
    c.arg("run")
        .args(args)
        .args(["--chart", &chart()])
        .env("PATH", fake.path_env())
        .env("PROMETHEUS_URL", prometheus)
        .env("CANARY_TIME_SCALE", scale)
        .env("NO_COLOR", "1")
        .env_remove("SLACK_WEBHOOK_URL");
    c
}

#[test]
fn a_canary_without_data_is_held_with_exit_2_and_both_files_written() {
    let prometheus = testkit::services::prometheus(&data());
    let fake = FakeHelm::new();
    fake.seed_release("default", "apex-inference", "v1");
    let dir = tempfile::tempdir().unwrap();
    let (report, summary) = (dir.path().join("r.json"), dir.path().join("summary.md"));
    std::fs::write(&summary, "# earlier step\n").unwrap();
    let out = run(
        &fake,
        &prometheus.url,
        "0",
        &[
            "--version",
            "v7",
            "--wait-minutes",
            "0",
            "--report-file",
            report.to_str().unwrap(),
            "--summary-file",
            summary.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The terminal table: the outcome, each step's evidence, the actions; no colour codes
    // with NO_COLOR.
    assert!(
        stdout.starts_with("canary v7 vs v1: HELD FOR REVIEW\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("── step 1 ──") && stdout.contains("latency_p99"),
        "{stdout}"
    );
    assert!(
        stdout.contains("actions:") && stdout.contains("deployed canary v7"),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "{stdout}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(saved["outcome"], "held_for_review");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.starts_with("# earlier step\n"),
        "appended, not replaced"
    );
    assert!(summary.contains("HELD FOR REVIEW"), "{summary}");
    assert!(summary.contains("**Judge:** threshold"), "{summary}");
}

#[test]
fn the_sequential_judge_is_the_default_and_the_threshold_policy_one_flag_away() {
    let prometheus = testkit::services::prometheus(&data());
    let fake = FakeHelm::new();
    fake.seed_release("default", "apex-inference", "v1");
    let args = ["--version", "v2", "--wait-minutes", "0", "--output", "json"];
    // `--judge threshold`: one look at the trailing window, which holds a healthy canary.
    let out = run(&fake, &prometheus.url, "0", &args).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["outcome"], "promoted", "{report}");
    assert_eq!(out.status.code(), Some(0));
    // No `--judge`, and `--judge sequential`: the same judge, at every scrape from the run's
    // start.
    fake.seed_release("default", "apex-inference", "v1");
    let named = [&args[..], &["--judge", "sequential"]].concat();
    for args in [&args[..], &named[..]] {
        let out = default_judge(&fake, &prometheus.url, "0", args)
            .output()
            .unwrap();
        assert_eq!(
            report_of(&out)["steps"][0]["judge"],
            "sequential",
            "{args:?}"
        );
    }
    let out = default_judge(&fake, &prometheus.url, "0", &args)
        .output()
        .unwrap();
    let report = report_of(&out);
    // The data lies before the run: the judge never sees a judged observation, and says so.
    assert_eq!(report["decision"], "rollback_manual", "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("insufficient data"),
        "{report}"
    );
    assert_eq!(out.status.code(), Some(2));
    let bad = run(
        &fake,
        &prometheus.url,
        "0",
        &["--version", "v2", "--judge", "oracle"],
    )
    .output()
    .unwrap();
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("oracle"));
}

#[cfg(unix)]
#[test]
fn sigterm_and_ctrl_c_roll_the_canary_back_and_exit_143_and_130() {
    let prometheus = testkit::services::prometheus(&data());
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        let fake = FakeHelm::new();
        fake.seed_release("default", "apex-inference", "v1");
        // A real minute of warm-up: the signal arrives while it waits.
        let child = run(
            &fake,
            &prometheus.url,
            "1",
            &["--version", "v2", "--wait-minutes", "1"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !fake
            .operations()
            .iter()
            .any(|op| op.first().map(String::as_str) == Some("upgrade"))
        {
            assert!(Instant::now() < deadline, "the canary was never deployed");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        let killed = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{signal}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("CANCELLED"), "{stdout}");
        let last = fake.operations().last().cloned().unwrap();
        assert_eq!(
            last[..2].join(" "),
            "uninstall apex-inference-canary",
            "{signal}: the canary is gone"
        );
    }
}

#[test]
fn waits_show_progress_as_log_lines_in_ci_and_as_a_bar_on_a_terminal() {
    let prometheus = testkit::services::prometheus(&data());
    let fake = FakeHelm::new();
    fake.seed_release("default", "apex-inference", "v1");
    // CI: stderr is a pipe; a timestamped line says what is waited for, and for how long
    // (a minute at a time scale of 0.02 is about a second).
    let out = run(
        &fake,
        &prometheus.url,
        "0.02",
        &[
            "--version",
            "v2",
            "--production-version",
            "v1",
            "--wait-minutes",
            "1",
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("step 1/1: warming up for 1s"))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(line.starts_with("20"), "timestamped: {line}");
    // A terminal: `script` gives the command a pseudo-terminal; the bar names the step.
    let cmd = format!(
        "{} run --version v2 --production-version v1 --wait-minutes 1 --judge threshold --chart {} --output json",
        env!("CARGO_BIN_EXE_canary"),
        chart()
    );
    let tty = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("PATH", fake.path_env())
        .env("PROMETHEUS_URL", &prometheus.url)
        .env("CANARY_TIME_SCALE", "0.05")
        .env("NO_COLOR", "1")
        .env_remove("SLACK_WEBHOOK_URL")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&tty.stdout);
    assert!(screen.contains("step 1/1: warm-up"), "{screen}");
    assert!(
        screen.contains("left)"),
        "the bar shows the time left: {screen}"
    );
    assert!(screen.contains("step 1/1: proceed"), "{screen}");
}

/// `--baseline deployed`: the baseline (production's version, `track=baseline`) is installed
/// after the canary and, on SIGTERM, uninstalled with it; a dry run shows both commands and
/// runs none.
#[test]
fn a_deployed_baseline_is_installed_and_removed_even_on_sigterm() {
    let prometheus = testkit::services::prometheus(&data());
    let fake = FakeHelm::new();
    fake.seed_release("default", "apex-inference", "v1");
    let child = run(
        &fake,
        &prometheus.url,
        "1",
        &[
            "--version",
            "v2",
            "--wait-minutes",
            "1",
            "--baseline",
            "deployed",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let installed = |fake: &FakeHelm| {
        fake.operations()
            .iter()
            .any(|op| op.iter().any(|a| a == "apex-inference-baseline"))
    };
    while !installed(&fake) {
        assert!(Instant::now() < deadline, "the baseline was never deployed");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "{stdout}");
    let ops: Vec<String> = fake.operations().iter().map(|o| o.join(" ")).collect();
    let install = ops
        .iter()
        .find(|o| o.starts_with("upgrade --install apex-inference-baseline"))
        .expect("installed");
    assert!(
        install.contains("--set-string image.tag=v1")
            && install.contains("--set-string track=baseline"),
        "{install}"
    );
    let tail: Vec<String> = ops[ops.len() - 2..]
        .iter()
        .map(|o| o.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        tail,
        [
            "uninstall apex-inference-canary",
            "uninstall apex-inference-baseline"
        ],
        "{ops:?}"
    );

    let fake = FakeHelm::new();
    let out = run(
        &fake,
        &prometheus.url,
        "0",
        &[
            "--version",
            "v2",
            "--production-version",
            "v1",
            "--dry-run",
            "--baseline",
            "deployed",
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("helm upgrade --install apex-inference-baseline"),
        "{stdout}"
    );
    assert!(
        stdout.contains("helm uninstall apex-inference-baseline"),
        "{stdout}"
    );
    assert!(
        fake.operations().is_empty(),
        "a dry run runs no cluster command"
    );
}

fn report_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}
