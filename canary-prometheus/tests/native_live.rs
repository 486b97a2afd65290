//! Native histograms through a real Prometheus: testkit's pod exposes them in the protobuf
//! exposition format, Prometheus 2.42 scrapes them live (`--enable-feature=native-histograms`)
//! and answers them in its own `histogram` field. The exposition is checked against
//! Prometheus's own reading of it, not against a hand-written answer.

use std::time::{Duration, Instant};

use testkit::native::{prometheus_scraping_native, NativePod};

fn query(port: u16, q: &str) -> serde_json::Value {
    let (status, body) =
        testkit::services::get(port, &format!("/api/v1/query?query={}", urlencode(q))).unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_reads_the_pods_native_histogram_as_exposed() {
    let pod = NativePod::start("app-0", "v1", 3);
    pod.serve(100, "200", 0.120, 0.9);
    pod.serve(40, "200", 0.300, 0.9);
    pod.serve(7, "500", 2.0, 0.9);
    let prom = prometheus_scraping_native(&[&pod], Duration::from_secs(1));
    let q = r#"http_request_duration_seconds{version="v1"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    let sample = loop {
        let answer = query(prom.port, q);
        if let Some(h) = answer["data"]["result"][0].get("histogram") {
            break h.clone();
        }
        assert!(Instant::now() < deadline, "no native histogram: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let h = &sample[1];
    assert_eq!(h["count"], "147", "{h}");
    let recorded = pod.latency();
    let buckets = h["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), recorded.positive.len(), "{h}");
    for (b, (&index, &count)) in buckets.iter().zip(&recorded.positive) {
        let upper: f64 = b[2].as_str().unwrap().parse().unwrap();
        let lower: f64 = b[1].as_str().unwrap().parse().unwrap();
        assert!((upper - recorded.upper(index)).abs() < 1e-12, "{b} {index}");
        assert!(
            (lower - recorded.upper(index - 1)).abs() < 1e-12,
            "{b} {index}"
        );
        assert_eq!(b[3].as_str().unwrap(), count.to_string(), "{b}");
    }
    // A series exposed both ways is kept once: with the feature on, this Prometheus (2.42)
    // keeps the native histogram and drops the classic `_bucket` series (3.x can keep both,
    // `scrape_classic_histograms`). A source that only asks for `_bucket` sees nothing.
    let classic = query(prom.port, "http_request_duration_seconds_bucket");
    assert_eq!(
        classic["data"]["result"],
        serde_json::json!([]),
        "{classic}"
    );
    // Counters and gauges come through the protobuf exposition as they do through text.
    let requests = query(prom.port, r#"sum(http_requests_total{version="v1"})"#);
    assert_eq!(
        requests["data"]["result"][0]["value"][1], "147",
        "{requests}"
    );
    let confidence = query(prom.port, r#"model_prediction_confidence{version="v1"}"#);
    assert_eq!(
        confidence["data"]["result"][0]["value"][1], "0.9",
        "{confidence}"
    );
    // Each bucket holds what it should: 0.12 s lies in (2^(-25/8), 2^(-24/8)].
    assert!(recorded.upper(recorded.index(0.120)) >= 0.120);
    assert!(recorded.upper(recorded.index(0.120) - 1) < 0.120);
}
