//! Live scraping: pods that expose the guide's metrics through a real client library, and
//! Prometheus and VictoriaMetrics scraping them as they run; and VictoriaMetrics loaded with a
//! history, as promtool loads Prometheus.
//!
//! A [`Pod`] serves `/metrics` from a `prometheus-client` registry, so its label values are
//! created on first use as in every official client: `status="500"` exists from the first
//! failure on, a pod that has served nothing has no requests series. [`Pod::kill`] stops it
//! answering, as a crashed or evicted pod would; the scraper then marks its series stale.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tempfile::TempDir;

use crate::free_port;
use crate::services::Service;

type Labels = Vec<(String, String)>;

/// The guide's instrumentation of one pod.
struct Instruments {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    confidence: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

/// One pod of a version, serving `/metrics` on its own loopback port until killed.
pub struct Pod {
    /// The pod's name (its `pod` label, set by the scrape config).
    pub name: String,
    /// The version label its series carry.
    pub version: String,
    /// Where it listens.
    pub port: u16,
    instruments: Arc<Mutex<Instruments>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Pod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pod")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("port", &self.port)
            .finish()
    }
}

impl Instruments {
    /// The guide's instruments, nothing recorded yet.
    fn new() -> Instruments {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let confidence = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register("http_requests", "Total HTTP requests", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        registry.register(
            "model_prediction_confidence",
            "Model prediction confidence",
            confidence.clone(),
        );
        Instruments {
            registry,
            requests,
            latency,
            confidence,
        }
    }
}

impl Pod {
    /// Starts a pod of `version` named `name` that has served nothing yet.
    pub fn start(name: &str, version: &str) -> Pod {
        let mut pod = Pod {
            name: name.to_owned(),
            version: version.to_owned(),
            port: 0,
            instruments: Arc::new(Mutex::new(Instruments::new())),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        pod.listen();
        pod
    }

    /// Listens on `self.port` (any free port if 0) in a thread of its own.
    fn listen(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        self.port = listener.local_addr().expect("its address").port();
        self.stop = Arc::new(AtomicBool::new(false));
        let (instruments, stop) = (self.instruments.clone(), self.stop.clone());
        self.thread = Some(std::thread::spawn(move || {
            serve(listener, instruments, stop)
        }));
    }

    /// The process restarts: down for `down`, then back on the same target with every
    /// counter from zero (a reset, as after a crash loop or an OOM kill).
    pub fn restart(&mut self, down: Duration) {
        self.kill();
        std::thread::sleep(down);
        *self.instruments.lock().unwrap_or_else(|e| e.into_inner()) = Instruments::new();
        self.listen();
    }

    /// Records `n` requests of `status` taking `seconds` each, with the model's `confidence`.
    pub fn serve(&self, n: u64, status: &str, seconds: f64, confidence: f64) {
        let i = self.instruments.lock().unwrap_or_else(|e| e.into_inner());
        let version = ("version".to_owned(), self.version.clone());
        let with_status = vec![version.clone(), ("status".to_owned(), status.to_owned())];
        i.requests.get_or_create(&with_status).inc_by(n);
        let latency = i.latency.get_or_create(&vec![version.clone()]);
        for _ in 0..n {
            latency.observe(seconds);
        }
        i.confidence.get_or_create(&vec![version]).set(confidence);
    }

    /// Stops answering scrapes, as a crashed or evicted pod.
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// The scrape target, `127.0.0.1:PORT`.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(listener: TcpListener, instruments: Arc<Mutex<Instruments>>, stop: Arc<AtomicBool>) {
    answer_scrapes(listener, &stop, |_| {
        let mut body = String::new();
        let i = instruments.lock().unwrap_or_else(|e| e.into_inner());
        let _ = encode(&mut body, &i.registry);
        (
            body.into_bytes(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    });
}

/// Answers every scrape on `listener` with `respond(request head)`: the body and its media
/// type. Until `stop`.
pub(crate) fn answer_scrapes(
    listener: TcpListener,
    stop: &AtomicBool,
    respond: impl Fn(&str) -> (Vec<u8>, &'static str),
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok((mut stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut request = [0u8; 8192];
        let n = stream.read(&mut request).unwrap_or(0);
        let (body, media) = respond(&String::from_utf8_lossy(&request[..n]));
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {media}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(&body);
    }
}

/// A scrape config for `targets` (address, pod name), every `interval`, each target's `pod`
/// label its pod's name.
pub(crate) fn scrape_config(targets: &[(String, &str)], interval: Duration) -> String {
    let mut config = format!(
        "global:\n  scrape_interval: {0}ms\n  scrape_timeout: {0}ms\nscrape_configs:\n  - job_name: pods\n    static_configs:\n",
        interval.as_millis()
    );
    for (target, name) in targets {
        config.push_str(&format!(
            "      - targets: ['{target}']\n        labels:\n          pod: '{name}'\n"
        ));
    }
    config
}

fn targets<'a>(pods: &[&'a Pod]) -> Vec<(String, &'a str)> {
    pods.iter().map(|p| (p.target(), p.name.as_str())).collect()
}

/// Prometheus scraping `pods` live every `interval`.
pub fn prometheus_scraping(pods: &[&Pod], interval: Duration) -> Service {
    prometheus_scraping_targets(&targets(pods), interval, &[])
}

/// Prometheus scraping `targets` (address, pod name) every `interval`, with `flags` besides.
pub(crate) fn prometheus_scraping_targets(
    targets: &[(String, &str)],
    interval: Duration,
    flags: &[&str],
) -> Service {
    let dir = TempDir::new().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, scrape_config(targets, interval)).expect("write config");
    let data = dir.path().join("data");
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    Service::start("prometheus", dir, "/-/ready", move || {
        let port = free_port();
        let mut args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        args.extend(flags.iter().cloned());
        (port, args)
    })
}

/// VictoriaMetrics (Debian's `victoria-metrics`) scraping `pods` live every `interval`, with
/// its defaults (`search.latencyOffset` 30 s among them).
pub fn victoria_metrics_scraping(pods: &[&Pod], interval: Duration) -> Service {
    let dir = TempDir::new().expect("temp dir");
    let config = dir.path().join("scrape.yml");
    std::fs::write(&config, scrape_config(&targets(pods), interval)).expect("write config");
    let data = dir.path().join("data");
    Service::start("victoria-metrics", dir, "/health", move || {
        let port = free_port();
        let args = vec![
            format!("-promscrape.config={}", config.display()),
            format!("-storageDataPath={}", data.display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-loggerLevel=ERROR".into(),
        ];
        (port, args)
    })
}

/// VictoriaMetrics (Debian's `victoria-metrics`) holding `openmetrics` as [`crate::traffic`]
/// writes it, imported through its Prometheus text endpoint and flushed so that it answers.
pub fn victoria_metrics(openmetrics: &str) -> Service {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("data");
    let service = Service::start("victoria-metrics", dir, "/health", move || {
        let port = free_port();
        let args = vec![
            format!("-storageDataPath={}", data.display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-retentionPeriod=100y".into(),
            "-loggerLevel=ERROR".into(),
        ];
        (port, args)
    });
    // OpenMetrics stamps in seconds, Prometheus's text format in milliseconds.
    let mut text = String::new();
    for line in openmetrics.lines().filter(|l| !l.starts_with('#')) {
        let (sample, at) = line.rsplit_once(' ').expect("a stamped sample");
        let ms = (at.parse::<f64>().expect("seconds since the epoch") * 1000.0).round() as i64;
        text.push_str(&format!("{sample} {ms}\n"));
    }
    let (status, body) = crate::services::post(service.port, "/api/v1/import/prometheus", &text)
        .expect("VictoriaMetrics takes the import");
    assert!(status < 300, "import: {status} {body}");
    let (status, body) =
        crate::services::get(service.port, "/internal/force_flush").expect("flush");
    assert!(status < 300, "flush: {status} {body}");
    service
}
