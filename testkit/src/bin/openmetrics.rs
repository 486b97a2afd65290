//! Prints deterministic OpenMetrics traffic for other languages' tests (the Python suite).
//!
//! `openmetrics SPAN_S STEP_S END_UNIX 'JSON'`, where JSON is a list of
//! `{"version", "rps", "error_ratio"?, "confidence"?, "cumulative"?, "pod"?}`.

use testkit::traffic::{openmetrics, Traffic};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [span, step, end, spec] = args.as_slice() else {
        eprintln!("usage: openmetrics SPAN_S STEP_S END_UNIX JSON");
        std::process::exit(2);
    };
    let number = |s: &str| {
        s.parse::<i64>()
            .unwrap_or_else(|_| panic!("{s} is not an integer"))
    };
    let spec: serde_json::Value = serde_json::from_str(spec).expect("a JSON list of traffic");
    let traffic: Vec<Traffic> = spec
        .as_array()
        .expect("a JSON list")
        .iter()
        .map(|t| {
            let mut x = Traffic::healthy(
                t["version"].as_str().expect("version"),
                t["rps"].as_f64().expect("rps"),
            );
            if let Some(e) = t["error_ratio"].as_f64() {
                x.error_ratio = e;
            }
            match &t["confidence"] {
                serde_json::Value::Null if t.get("confidence").is_some() => x.confidence = None,
                v => {
                    if let Some(c) = v.as_f64() {
                        x.confidence = Some(c);
                    }
                }
            }
            if let Some(p) = t["pod"].as_str() {
                x.pod = Some(p.to_owned());
            }
            if let Some(c) = t["cumulative"].as_array() {
                for (slot, v) in x.cumulative.iter_mut().zip(c) {
                    *slot = v.as_f64().expect("a share");
                }
            }
            x
        })
        .collect();
    print!(
        "{}",
        openmetrics(&traffic, number(span), number(step), number(end))
    );
}
