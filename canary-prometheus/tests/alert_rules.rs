//! The shipped alert rules: promtool checks and unit-tests them, and every series they read
//! is one the validator records.

use std::path::PathBuf;
use std::process::Command;

fn alerts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/alerts")
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(alerts_dir())
        .output()
        .expect("promtool runs; ./scripts/test.sh installs it");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_accepts_the_rules() {
    let text = promtool(&["check", "rules", "canary-alerts.yml"]);
    assert!(text.contains("2 rules found"), "{text}");
}

#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    let text = promtool(&["test", "rules", "canary-alerts.test.yml"]);
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn the_rules_read_series_the_validator_records() {
    let rules = std::fs::read_to_string(alerts_dir().join("canary-alerts.yml")).unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    canary_core::ValidationMetrics::register(&mut registry);
    let exported =
        canary_prometheus::push::to_text_format(&canary_core::telemetry::encode(&registry));
    let exprs: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .collect();
    assert_eq!(exprs.len(), 2);
    for expr in exprs {
        promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let name = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("canary_"))
            .unwrap();
        assert!(
            exported.contains(&format!("# TYPE {name} ")),
            "{name} is not exported:\n{exported}"
        );
    }
}
