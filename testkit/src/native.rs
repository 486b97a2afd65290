//! Native histograms, exposed as a client library does: Prometheus's protobuf exposition format
//! (`io.prometheus.client.MetricFamily`, length-delimited), which is the only one that carries
//! them. A [`NativePod`] records latencies into exponential buckets (schema 3: each bucket
//! about 9 % wide) and, when a scraper asks for protobuf, answers with them; asked for text, it
//! answers with the classic buckets it keeps beside them, as a client that exposes both does.
//!
//! The encoder writes only what these tests expose (counters, gauges, histograms with labels);
//! field numbers and types follow `metrics.proto` (proto2: repeated scalars unpacked).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::services::Service;

/// The media type a scraper asks for to get native histograms.
pub const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// The classic buckets kept beside the native ones: the guide's.
pub const CLASSIC_BOUNDS: [f64; 7] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A histogram with both an exponential (native) and a classic layout.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NativeHistogram {
    /// The schema: bucket `i` holds `(2^((i-1)·2^-schema), 2^(i·2^-schema)]`.
    pub schema: i32,
    /// Observations at or below this are in the zero bucket.
    pub zero_threshold: f64,
    /// The zero bucket's count.
    pub zero_count: u64,
    /// Positive buckets by index.
    pub positive: BTreeMap<i32, u64>,
    /// Observations.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Cumulative counts at [`CLASSIC_BOUNDS`].
    pub classic: [u64; 7],
}

impl NativeHistogram {
    /// Empty, at `schema`.
    pub fn new(schema: i32) -> NativeHistogram {
        NativeHistogram {
            schema,
            zero_threshold: 2f64.powi(-128),
            ..NativeHistogram::default()
        }
    }

    /// The bucket index of `value` (> the zero threshold).
    pub fn index(&self, value: f64) -> i32 {
        (value.log2() * 2f64.powi(self.schema)).ceil() as i32
    }

    /// The upper bound of bucket `index`.
    pub fn upper(&self, index: i32) -> f64 {
        2f64.powf(f64::from(index) * 2f64.powi(-self.schema))
    }

    /// Records `n` observations of `value`.
    pub fn observe(&mut self, value: f64, n: u64) {
        self.count += n;
        self.sum += value * n as f64;
        if value <= self.zero_threshold {
            self.zero_count += n;
        } else {
            *self.positive.entry(self.index(value)).or_default() += n;
        }
        for (i, bound) in CLASSIC_BOUNDS.iter().enumerate() {
            if value <= *bound {
                self.classic[i] += n;
            }
        }
    }
}

/// Protobuf's wire format, as much of it as the exposition needs.
#[derive(Default)]
struct Wire(Vec<u8>);

impl Wire {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }
    fn uint(&mut self, field: u32, v: u64) {
        self.key(field, 0);
        self.varint(v);
    }
    fn sint(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
    fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
    }
    fn message(&mut self, field: u32, m: Wire) {
        self.bytes(field, &m.0);
    }
}

/// One series of a family: its labels and its value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A counter.
    Counter(f64),
    /// A gauge.
    Gauge(f64),
    /// A histogram, native and classic.
    Histogram(NativeHistogram),
}

fn labels(w: &mut Wire, labels: &[(String, String)]) {
    for (name, value) in labels {
        let mut pair = Wire::default();
        pair.bytes(1, name.as_bytes());
        pair.bytes(2, value.as_bytes());
        w.message(1, pair);
    }
}

fn histogram(h: &NativeHistogram) -> Wire {
    let mut w = Wire::default();
    w.uint(1, h.count);
    w.double(2, h.sum);
    for (i, bound) in CLASSIC_BOUNDS.iter().enumerate() {
        let mut b = Wire::default();
        b.uint(1, h.classic[i]);
        b.double(2, *bound);
        w.message(3, b);
    }
    w.sint(5, i64::from(h.schema));
    w.double(6, h.zero_threshold);
    w.uint(7, h.zero_count);
    // Spans of consecutive indices, then each bucket's count as a delta from the previous one.
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut next: Option<i32> = None;
    for &i in h.positive.keys() {
        match (next, spans.last_mut()) {
            (Some(n), Some(last)) if n == i => last.1 += 1,
            (Some(n), _) => spans.push((i - n, 1)),
            (None, _) => spans.push((i, 1)),
        }
        next = Some(i + 1);
    }
    for (offset, length) in spans {
        let mut s = Wire::default();
        s.sint(1, i64::from(offset));
        s.uint(2, u64::from(length));
        w.message(12, s);
    }
    let mut previous = 0i64;
    for &c in h.positive.values() {
        let c = c as i64;
        w.sint(13, c - previous);
        previous = c;
    }
    w
}

/// A metric family in the protobuf exposition: `name`, its `help`, and its series.
pub fn family(name: &str, help: &str, series: &[(Vec<(String, String)>, Value)]) -> Vec<u8> {
    let mut f = Wire::default();
    f.bytes(1, name.as_bytes());
    f.bytes(2, help.as_bytes());
    let kind = match series.first().map(|s| &s.1) {
        Some(Value::Counter(_)) => 0,
        Some(Value::Gauge(_)) => 1,
        _ => 4,
    };
    f.uint(3, kind);
    for (l, value) in series {
        let mut m = Wire::default();
        labels(&mut m, l);
        match value {
            Value::Counter(v) => {
                let mut c = Wire::default();
                c.double(1, *v);
                m.message(3, c);
            }
            Value::Gauge(v) => {
                let mut g = Wire::default();
                g.double(1, *v);
                m.message(2, g);
            }
            Value::Histogram(h) => m.message(7, histogram(h)),
        }
        f.message(4, m);
    }
    // Length-delimited: each family after its length.
    let mut out = Wire::default();
    out.varint(f.0.len() as u64);
    out.0.extend_from_slice(&f.0);
    out.0
}

/// What a [`NativePod`] has recorded.
#[derive(Debug)]
struct State {
    requests: BTreeMap<String, f64>,
    latency: NativeHistogram,
    confidence: Option<f64>,
}

/// One pod of a version exposing native histograms (and classic ones to a text scraper), on
/// its own loopback port until dropped.
pub struct NativePod {
    /// The pod's name (its `pod` label, set by the scrape config).
    pub name: String,
    /// The version label its series carry.
    pub version: String,
    /// Where it listens.
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for NativePod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativePod")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("port", &self.port)
            .finish()
    }
}

impl NativePod {
    /// Starts a pod of `version` named `name`, its latency histogram at `schema`.
    pub fn start(name: &str, version: &str, schema: i32) -> NativePod {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("its address").port();
        let state = Arc::new(Mutex::new(State {
            requests: BTreeMap::new(),
            latency: NativeHistogram::new(schema),
            confidence: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, v) = (state.clone(), stop.clone(), version.to_owned());
        let thread = std::thread::spawn(move || serve(listener, s, st, &v));
        NativePod {
            name: name.to_owned(),
            version: version.to_owned(),
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Records `n` requests of `status` taking `seconds` each, with the model's `confidence`.
    pub fn serve(&self, n: u64, status: &str, seconds: f64, confidence: f64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *s.requests.entry(status.to_owned()).or_default() += n as f64;
        s.latency.observe(seconds, n);
        s.confidence = Some(confidence);
    }

    /// The latency histogram as recorded.
    pub fn latency(&self) -> NativeHistogram {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .latency
            .clone()
    }

    /// The scrape target, `127.0.0.1:PORT`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for NativePod {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The pod's exposition: protobuf (native and classic buckets) or OpenMetrics text (classic).
fn exposition(s: &State, version: &str, protobuf: bool) -> (Vec<u8>, &'static str) {
    let v = || vec![("version".to_owned(), version.to_owned())];
    if protobuf {
        let requests: Vec<_> = s
            .requests
            .iter()
            .map(|(status, n)| {
                let mut l = v();
                l.push(("status".to_owned(), status.clone()));
                (l, Value::Counter(*n))
            })
            .collect();
        let mut body = family("http_requests_total", "Total HTTP requests", &requests);
        body.extend(family(
            "http_request_duration_seconds",
            "HTTP request latency",
            &[(v(), Value::Histogram(s.latency.clone()))],
        ));
        if let Some(c) = s.confidence {
            body.extend(family(
                "model_prediction_confidence",
                "Model prediction confidence",
                &[(v(), Value::Gauge(c))],
            ));
        }
        return (body, PROTOBUF);
    }
    let mut text = String::from("# TYPE http_requests counter\n");
    for (status, n) in &s.requests {
        text.push_str(&format!(
            "http_requests_total{{version=\"{version}\",status=\"{status}\"}} {n}\n"
        ));
    }
    let h = &s.latency;
    text.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (i, bound) in CLASSIC_BOUNDS.iter().enumerate() {
        text.push_str(&format!(
            "http_request_duration_seconds_bucket{{version=\"{version}\",le=\"{bound}\"}} {}\n",
            h.classic[i]
        ));
    }
    text.push_str(&format!(
        "http_request_duration_seconds_bucket{{version=\"{version}\",le=\"+Inf\"}} {0}\n\
         http_request_duration_seconds_count{{version=\"{version}\"}} {0}\n\
         http_request_duration_seconds_sum{{version=\"{version}\"}} {1}\n",
        h.count, h.sum
    ));
    if let Some(c) = s.confidence {
        text.push_str(&format!(
            "# TYPE model_prediction_confidence gauge\nmodel_prediction_confidence{{version=\"{version}\"}} {c}\n"
        ));
    }
    text.push_str("# EOF\n");
    (
        text.into_bytes(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
}

fn serve(listener: TcpListener, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>, version: &str) {
    crate::live::answer_scrapes(listener, &stop, |head| {
        let protobuf = head
            .to_ascii_lowercase()
            .contains("application/vnd.google.protobuf");
        let s = state.lock().unwrap_or_else(|e| e.into_inner());
        exposition(&s, version, protobuf)
    });
}

/// Prometheus scraping `pods` live every `interval`, with native histograms turned on
/// (`--enable-feature=native-histograms`: it then asks for protobuf first).
pub fn prometheus_scraping_native(pods: &[&NativePod], interval: Duration) -> Service {
    let targets: Vec<(String, &str)> = pods.iter().map(|p| (p.target(), p.name.as_str())).collect();
    crate::live::prometheus_scraping_targets(
        &targets,
        interval,
        &["--enable-feature=native-histograms"],
    )
}
