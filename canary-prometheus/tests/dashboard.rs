//! The shipped Grafana dashboard: valid JSON, every query valid PromQL, and the comparison
//! panels select versions the way the default queries do.

use std::path::PathBuf;

fn dashboard() -> serde_json::Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/grafana/canary-dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("the dashboard is JSON")
}

fn exprs(d: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in d["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let d = dashboard();
    let all = exprs(&d);
    assert!(all.len() >= 15, "{}", all.len());
    for (title, expr) in all {
        let concrete = expr
            .replace("$__rate_interval", "5m")
            .replace("$canary", "v2")
            .replace("$baseline", "v1");
        promql_parser::parser::parse(&concrete)
            .unwrap_or_else(|e| panic!("{title}: {concrete}: {e}"));
    }
}

#[test]
fn comparison_panels_match_the_default_queries() {
    let d = dashboard();
    let defaults = canary_prometheus::QuerySet::default();
    let all = exprs(&d);
    for metric in [
        "latency_p50",
        "latency_p95",
        "latency_p99",
        "error_rate",
        "model_confidence",
        "request_rate",
    ] {
        let expected = defaults
            .get(metric)
            .unwrap()
            .render("$canary", std::time::Duration::from_secs(300))
            .replace("[5m]", "[$__rate_interval]");
        assert!(
            all.iter().any(|(_, e)| *e == expected),
            "no panel shows {metric} as {expected}"
        );
    }
}

#[test]
fn decisions_and_rollback_frequency_are_shown() {
    let d = dashboard();
    let titles: Vec<String> = exprs(&d).into_iter().map(|(t, _)| t).collect();
    assert!(titles.iter().any(|t| t == "Decisions over time"));
    assert!(titles.iter().any(|t| t.starts_with("Rollback frequency")));
    let text = d.to_string();
    for series in [
        "canary_rollback_total",
        "canary_promotion_total",
        "canary_manual_review_total",
        "canary_validation_success",
    ] {
        assert!(text.contains(series), "{series}");
    }
}
