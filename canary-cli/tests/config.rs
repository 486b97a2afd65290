//! `canary config` and `--config`: the example is valid (the book's snippets: `docs.rs`); unknown
//! keys, wrong types and missing variables are one line with the place; flags override the
//! file, the file overrides the defaults.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::stderr;

use testkit::fake_helm::FakeHelm;

fn canary(args: &[&str]) -> Output {
    common::command()
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canary.yaml");
    std::fs::write(&file, text).unwrap();
    canary(&["config", "check", file.to_str().unwrap()])
}

#[test]
fn the_example_is_valid() {
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
            "validator.analysis_window: 1e308 is not a duration: a number of seconds >= 0",
        ),
        (
            "prometheus:\n  url: http://p:9090\n  timeout: -5\n",
            "prometheus.timeout: -5 is not",
        ),
        ("judge: oracle\n", "line 1, column"),
        // What matters lies in the worse direction and names a metric of the judge.
        (
            "sequential:\n  matters:\n    error_rate: 0.5\n",
            "sequential.matters.error_rate: must be a finite ratio",
        ),
        (
            "sequential:\n  matters:\n    errors: 2\n",
            "sequential.matters.errors: names no metric of the judge",
        ),
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
        common::command()
            .args(&args)
            .env("PATH", fake.path_env())
            .env("PROMETHEUS_URL", "http://127.0.0.1:9")
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
         judge: sequential\n\
         sequential:\n  matters:\n    error_rate: 1.5\n  max_duration: 1800\n"
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
        "sequential:\n  matter:\n    error_rate: 1.5\n",
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

/// `canary config check` with `vars` in its environment.
fn check_with_env(text: &str, vars: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canary.yaml");
    std::fs::write(&file, text).unwrap();
    let mut c = common::command();
    c.args(["config", "check", file.to_str().unwrap()]);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn a_variable_is_one_scalar_value_whatever_it_holds() {
    // A newline would have added a key (`timeout: 0.001`), ` #` would have cut the token.
    let file = "prometheus:\n  url: http://p:9090\n  bearer_token: ${CANARY_T_TOK}\n";
    let o = check_with_env(file, &[("CANARY_T_TOK", "abc\ntimeout: 0.001")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = check_with_env(
        "prometheus:\n  url: http://p:9090\n  timeout: ${CANARY_T_NUM}\n",
        &[("CANARY_T_NUM", "5\nmax_concurrency: 0")],
    );
    assert!(!o.status.success(), "a newline cannot smuggle in a key");
    assert!(!stderr(&o).contains("max_concurrency"), "{}", stderr(&o));
    // A number keeps its type.
    let o = check_with_env(
        "prometheus:\n  url: http://p:9090\n  timeout: ${CANARY_T_NUM}\n",
        &[("CANARY_T_NUM", "5")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Embedded in an unquoted value, what YAML would read differently is refused.
    let o = check_with_env(
        "prometheus:\n  url: http://${CANARY_T_HOST}:9090\n",
        &[("CANARY_T_HOST", "p #comment")],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("quote the value"), "{}", stderr(&o));
    // Inside quotes, escaped for the quotes.
    // Inside quotes, escaped for the quotes: a quote and a newline cannot close the string
    // and add a key (`deny_unknown_fields` would refuse `extra`).
    let o = check_with_env(
        "prometheus:\n  url: http://p:9090\n  bearer_token: \"x-${CANARY_T_HOST}\"\n",
        &[("CANARY_T_HOST", "p\"\n  extra: 1\n  y: \"")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_tokens_whole_value_arrives_through_a_variable() {
    // The value holding ` #` reaches the config whole: the Python loader reads the same code.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canary.yaml");
    std::fs::write(&file, "serve:\n  auth_token: ${CANARY_T_TOK2}\n").unwrap();
    std::env::set_var("CANARY_T_TOK2", "secret #tail");
    let c = canary_cli::config::load(&file).unwrap();
    assert_eq!(c.serve.auth_token.unwrap().expose(), "secret #tail");
}

#[test]
fn files_are_read_with_a_limit_and_only_if_regular() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big-token");
    std::fs::write(&big, vec![b'a'; 100_000]).unwrap();
    for (path, says) in [
        ("/dev/zero", "not a regular file"),
        (big.to_str().unwrap(), "larger than"),
    ] {
        let started = std::time::Instant::now();
        let o = check(&format!(
            "prometheus:\n  url: http://p:9090\n  bearer_token_file: {path}\n"
        ));
        assert!(!o.status.success());
        assert!(stderr(&o).contains(says), "{path}: {}", stderr(&o));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    // A FIFO is refused without being opened (opening one blocks).
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let o = check(&format!(
        "prometheus:\n  url: http://p:9090\n  bearer_token_file: {}\n",
        fifo.display()
    ));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    let o = canary(&["report", "/dev/zero"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    let o = canary(&["config", "check", "/dev/zero"]);
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}

#[test]
fn deep_nesting_and_huge_files_fail_fast_in_one_short_line() {
    let started = std::time::Instant::now();
    let nested = format!("judge: {}\n", "[".repeat(100_000));
    let o = check(&nested);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nested deeper"), "{}", stderr(&o));
    let list = format!("regions: [{}]\n", vec!["\"x\""; 400_000].join(","));
    let o = check(&list);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.len() < 1000 && e.lines().count() <= 2,
        "{} bytes: {}",
        e.len(),
        &e[..e.len().min(300)]
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn every_numeric_setting_is_checked_against_its_range() {
    for (file, names) in [
        (
            "prometheus:\n  max_concurrency: 18446744073709551615\n",
            "prometheus.max_concurrency",
        ),
        (
            "prometheus:\n  max_concurrency: 0\n",
            "prometheus.max_concurrency",
        ),
        ("prometheus:\n  timeout: 0\n", "prometheus.timeout"),
        (
            "prometheus:\n  max_body_bytes: 0\n",
            "prometheus.max_body_bytes",
        ),
        (
            "serve:\n  max_concurrent_analyses: 18446744073709551615\n",
            "serve.max_concurrent_analyses",
        ),
        ("serve:\n  body_limit_bytes: 0\n", "serve.body_limit_bytes"),
        ("serve:\n  max_connections: 0\n", "serve.max_connections"),
        ("serve:\n  header_timeout: 0\n", "serve.header_timeout"),
    ] {
        let o = check(file);
        assert_eq!(o.status.code(), Some(3), "{file}: {}", stderr(&o));
        assert!(stderr(&o).contains(names), "{file}: {}", stderr(&o));
    }
    // The schema states the same ranges.
    let schema: serde_json::Value =
        serde_json::from_slice(&canary(&["config", "schema"]).stdout).unwrap();
    let text = schema.to_string();
    assert!(
        text.contains("\"maximum\":4096"),
        "max_concurrency's range is in the schema"
    );
}

#[test]
fn the_command_and_the_service_share_one_window_limit() {
    let o = canary(&[
        "analyze",
        "--prometheus-url",
        "http://127.0.0.1:9",
        "--baseline",
        "v1",
        "--canary",
        "v2",
        "--window",
        "745h",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("longer than the longest window, 31 days"),
        "{}",
        stderr(&o)
    );
}
