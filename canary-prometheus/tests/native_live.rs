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

#[test]
fn a_range_of_native_histograms_reads_as_cumulative_bounds_as_recorded() {
    let pod = NativePod::start("app-0", "v1", 3);
    pod.serve(100, "200", 0.120, 0.9);
    pod.serve(7, "500", 2.0, 0.9);
    let prom = prometheus_scraping_native(&[&pod], Duration::from_secs(1));
    let q = r#"http_request_duration_seconds{version="v1"}"#;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let deadline = Instant::now() + Duration::from_secs(30);
    while query(prom.port, q)["data"]["result"][0]
        .get("histogram")
        .is_none()
    {
        assert!(Instant::now() < deadline, "no native histogram");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A bucket that appears later: earlier samples count nothing at or below it.
    pod.serve(20, "200", 0.050, 0.9);
    std::thread::sleep(Duration::from_millis(3500));
    let end = start + 40;
    let path = format!(
        "/api/v1/query_range?query={}&start={}&end={end}&step=1",
        urlencode(q),
        start - 5
    );
    let (status, body) = testkit::services::get(prom.port, &path).unwrap();
    let m = canary_prometheus::response::parse_matrix("latency", q, status, body.as_bytes())
        .unwrap_or_else(|e| panic!("{e}: {body}"));
    let recorded = pod.latency();
    // Prometheus computes a bound its own way: the same to within an ulp or so.
    let at = |bound: f64| {
        m.series
            .iter()
            .find(|s| {
                s.labels.get("le").is_some_and(|le| {
                    le.parse::<f64>()
                        .is_ok_and(|b| b == bound || ((b - bound) / bound).abs() < 1e-12)
                })
            })
            .unwrap_or_else(|| panic!("no le={bound}: {m:?}"))
            .points
            .clone()
    };
    let last = |bound: f64| at(bound).last().unwrap().1;
    assert_eq!(last(f64::INFINITY), 127.0);
    for &index in recorded.positive.keys() {
        let bound = recorded.upper(index);
        let expected: u64 = recorded
            .positive
            .iter()
            .filter(|(&i, _)| recorded.upper(i) <= bound)
            .map(|(_, &c)| c)
            .sum();
        assert_eq!(last(bound), expected as f64, "le={bound}");
    }
    // The bucket of 0.05 s was empty at first: its bound counted 0, then 20.
    let low = at(recorded.upper(recorded.index(0.050)));
    assert!(
        low.first().unwrap().1 == 0.0 && low.first().unwrap().1.is_sign_positive(),
        "{low:?}"
    );
    assert_eq!(low.last().unwrap().1, 20.0, "{low:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_reads_native_histograms_per_pod_at_their_own_resolution() {
    use canary_core::observation::{names, ObservationQuery};
    use canary_core::{Arm, Version};
    use canary_prometheus::{PrometheusConfig, PrometheusSource};

    // Two canary pods: their buckets differ (b has a slow tail a has not), and the arm's sum
    // must count each pod at every bound.
    let a = NativePod::start("canary-a", "v2", 3);
    let b = NativePod::start("canary-b", "v2", 3);
    a.serve(50, "200", 0.120, 0.9);
    b.serve(30, "200", 0.130, 0.9);
    b.serve(5, "500", 3.0, 0.9);
    let prom = prometheus_scraping_native(&[&a, &b], Duration::from_secs(1));
    let start = chrono::Utc::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    let q = r#"count(http_request_duration_seconds{version="v2"})"#;
    while query(prom.port, q)["data"]["result"][0]["value"][1] != "2" {
        assert!(Instant::now() < deadline, "both pods not scraped yet");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut config = PrometheusConfig::new(&prom.url);
    // The native histogram itself, not its `_bucket` series (which this Prometheus drops).
    config.observation_queries.latency_buckets =
        r#"http_request_duration_seconds{version="{version}"}"#.into();
    let source = PrometheusSource::new(config).unwrap();
    let observations = source
        .observations(&ObservationQuery::new(
            Version::new("v2").unwrap(),
            Arm::Canary,
            start - chrono::Duration::seconds(5),
            chrono::Utc::now(),
            Duration::from_secs(1),
        ))
        .await
        .unwrap();
    let last = observations.last().expect("observations");
    let latency = &last.histograms[names::LATENCY];
    let count_at = |h: &canary_core::observation::Histogram, x: f64| {
        h.buckets()
            .iter()
            .filter(|(bound, _)| *bound >= x)
            .map(|(_, c)| *c)
            .next()
            .unwrap()
    };
    // At the native resolution: 0.12 s and 0.13 s lie in different buckets (about 9 % wide),
    // which no classic layout of the guide's would tell apart.
    let (ia, ib) = (a.latency().index(0.120), b.latency().index(0.130));
    assert_ne!(ia, ib);
    assert_eq!(
        count_at(latency, a.latency().upper(ia)),
        50.0,
        "{latency:?}"
    );
    assert_eq!(
        count_at(latency, b.latency().upper(ib)),
        80.0,
        "{latency:?}"
    );
    assert_eq!(count_at(latency, f64::INFINITY), 85.0, "{latency:?}");
    // Each pod's own histogram, by its pod label, at the same bounds.
    assert_eq!(last.instances.len(), 2, "{:?}", last.instances.keys());
    let pod_b = &last.instances["canary-b"].histograms[names::LATENCY];
    assert_eq!(count_at(pod_b, a.latency().upper(ia)), 0.0);
    assert_eq!(count_at(pod_b, f64::INFINITY), 35.0);
    assert_eq!(last.counters[names::REQUESTS], 85.0);
}

#[test]
fn a_scraper_that_does_not_ask_for_protobuf_gets_the_classic_buckets() {
    let pod = NativePod::start("app-0", "v1", 3);
    pod.serve(100, "200", 0.120, 0.9);
    pod.serve(7, "500", 2.0, 0.9);
    let (status, text) = testkit::services::get(pod.port, "/metrics").unwrap();
    assert_eq!(status, 200);
    for line in [
        r#"http_request_duration_seconds_bucket{version="v1",le="0.1"} 0"#,
        r#"http_request_duration_seconds_bucket{version="v1",le="0.25"} 100"#,
        r#"http_request_duration_seconds_bucket{version="v1",le="+Inf"} 107"#,
        r#"http_requests_total{version="v1",status="500"} 7"#,
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}
