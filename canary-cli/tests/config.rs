//! `canary config` and `--config`: the example and the README's snippets are valid; unknown
//! keys, wrong types and missing variables are one line with the place; flags override the
//! file, the file overrides the defaults.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::fake_helm::FakeHelm;

fn canary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .env_remove("PROMETHEUS_URL")
        .env_remove("SLACK_WEBHOOK_URL")
        .env("NO_COLOR", "1")
        .current_dir(root())
        .output()
        .unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn check(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canary.yaml");
    std::fs::write(&file, text).unwrap();
    canary(&["config", "check", file.to_str().unwrap()])
}

#[test]
fn the_example_and_every_yaml_snippet_of_the_readme_are_valid() {
    let example = canary(&["config", "example"]);
    assert_eq!(example.status.code(), Some(0));
    let text = String::from_utf8_lossy(&example.stdout).into_owned();
    assert_eq!(
        text.trim_end(),
        std::fs::read_to_string(root().join("examples/canary.yaml"))
            .unwrap()
            .trim_end()
    );
    assert_eq!(
        check(&text).status.code(),
        Some(0),
        "{}",
        stderr(&check(&text))
    );
    let ok = canary(&["config", "check", "examples/canary.yaml"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "examples/canary.yaml: ok"
    );

    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let snippets: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .map(|s| s.split("```").next().unwrap())
        .collect();
    assert!(!snippets.is_empty(), "the README shows a config");
    for s in snippets {
        let out = check(s);
        assert_eq!(out.status.code(), Some(0), "{s}\n{}", stderr(&out));
    }
}

#[test]
fn mistakes_are_one_line_with_the_place_and_exit_3() {
    for (text, expected) in [
        (
            "prometheus:\n  url: http://p:9090\n  urll: x\n",
            "line 3, column 3: ",
        ),
        ("helm:\n  release: [1, 2]\n", "line 2, column"),
        // The key at fault is named, and an absurd number is not spelt out.
        (
            "validator:\n  warmup: 600\n  analysis_window: 1e308\n",
            "validator.analysis_window: 1e308 is not a number of seconds",
        ),
        (
            "prometheus:\n  url: http://p:9090\n  timeout: -5\n",
            "prometheus.timeout: -5 is not",
        ),
        ("judge: oracle\n", "line 1, column"),
        (
            "validator:\n  progressive_weights: [50, 10]\n",
            "progressive_weights",
        ),
        (
            "slack:\n  webhook_url: ${CANARY_CLI_TEST_UNSET}\n",
            "CANARY_CLI_TEST_UNSET is not set",
        ),
        (
            "prometheus:\n  bearer_token_file: /nonexistent/t\n",
            "cannot read bearer_token_file /nonexistent/t",
        ),
    ] {
        let out = check(text);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{text}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains("canary.yaml: "),
            "{err}"
        );
        assert!(err.contains(expected), "{text}: {err}");
    }
    let missing = canary(&["config", "check", "/nonexistent/canary.yaml"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(stderr(&missing).contains("cannot read the config /nonexistent/canary.yaml"));
}

#[test]
fn flags_override_the_file_and_the_file_overrides_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canary.yaml");
    std::fs::write(
        &file,
        format!(
            "helm:\n  release: shop\n  chart: {}\n  namespace: staging\n",
            root().join("examples/chart").display()
        ),
    )
    .unwrap();
    let fake = FakeHelm::new();
    let dry = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--config",
            file.to_str().unwrap(),
            "--version",
            "v2",
            "--production-version",
            "v1",
            "--dry-run",
        ];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_canary"))
            .args(&args)
            .env("PATH", fake.path_env())
            .env("PROMETHEUS_URL", "http://127.0.0.1:9")
            .env_remove("SLACK_WEBHOOK_URL")
            .output()
            .unwrap()
    };
    let from_file = String::from_utf8_lossy(&dry(&[]).stdout).into_owned();
    assert!(
        from_file.contains("helm upgrade --install shop-canary"),
        "{from_file}"
    );
    assert!(from_file.contains("--namespace staging"), "{from_file}");
    let overridden = String::from_utf8_lossy(&dry(&["--release", "other"]).stdout).into_owned();
    assert!(
        overridden.contains("helm upgrade --install other-canary"),
        "{overridden}"
    );
    assert!(
        overridden.contains("--namespace staging"),
        "the rest still from the file"
    );
}

#[test]
fn analyze_takes_prometheus_and_the_policy_from_the_file() {
    let (prometheus, end) = common::prometheus();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canary.yaml");
    let at = end.to_string();
    let run = |thresholds: &str| {
        std::fs::write(
            &file,
            format!("prometheus:\n  url: {}\n{thresholds}", prometheus.url),
        )
        .unwrap();
        canary(&[
            "analyze",
            "--config",
            file.to_str().unwrap(),
            "--baseline",
            "v1",
            "--canary",
            "v3",
            "--at",
            &at,
            "--json",
        ])
    };
    let default = run("");
    assert_eq!(
        default.status.code(),
        Some(1),
        "8 × the errors: rollback ({})",
        stderr(&default)
    );
    // A file that tolerates 10 × the baseline's errors only sends it to a person.
    let lenient = run("thresholds:\n  error_rate_threshold: 10\n  error_rate_warning: 5\n");
    assert_eq!(lenient.status.code(), Some(2), "{}", stderr(&lenient));
}

/// What editors would check: the schema printed by `canary config schema` accepts the example,
/// the README's snippets and a file using every section, and rejects what `config check`
/// rejects for its shape (unknown keys, wrong types, unknown judges).
#[test]
fn the_schema_accepts_valid_files_and_rejects_the_same_mistakes() {
    let out = canary(&["config", "schema"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "canary.yaml");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let as_json = |yaml: &str| -> serde_json::Value {
        serde_yaml::from_str::<Option<serde_json::Value>>(yaml)
            .unwrap()
            .unwrap_or(serde_json::json!({}))
    };
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut good: Vec<String> = readme
        .split("```yaml\n")
        .skip(1)
        .map(|s| s.split("```").next().unwrap().to_owned())
        .collect();
    good.push(std::fs::read_to_string(root().join("examples/canary.yaml")).unwrap());
    good.push(
        "prometheus:\n  url: http://p:9090\n  bearer_token_file: /var/run/secrets/token\n\
         regions:\n  - name: eu\n    kube_context: eu-1\n\
         webhooks:\n  - name: audit\n    url_file: /var/run/secrets/hook\n    payload: evaluation\n\
         alertmanager:\n  url: http://am:9093\n  labels:\n    team: ml\n\
         judge: sequential\n"
            .into(),
    );
    for text in &good {
        let errors: Vec<String> = validator
            .iter_errors(&as_json(text))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{text}\n{errors:?}");
    }
    for bad in [
        "prometheus:\n  url: http://p:9090\n  urll: x\n",
        "helm:\n  release: [1, 2]\n",
        "judge: oracle\n",
        "validator:\n  warmup: ten minutes\n",
        "regions:\n  - kube_context: eu-1\n",
        "webhooks:\n  - name: audit\n    url: http://h\n    payload: xml\n",
        "thresholds:\n  latency_p99_threshold: high\n",
    ] {
        assert!(
            !validator.is_valid(&as_json(bad)),
            "the schema accepts {bad}"
        );
        assert_eq!(
            check(bad).status.code(),
            Some(3),
            "config check accepts {bad}"
        );
    }
}
