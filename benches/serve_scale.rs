//! Many canaries against one Prometheus: `canary serve` answering 1,000 concurrent analyses,
//! one per canary version, all compared with the same production version.
//!
//! ```text
//! cargo bench --bench serve_scale              # 1,000 canaries
//! cargo bench --bench serve_scale -- --canaries 200
//! ```
//!
//! A real Prometheus is loaded (promtool backfill) with ten minutes of one baseline and N canary
//! versions; every tenth canary fails 8 % of its requests (the right answer: rollback_auto), the
//! others are healthy (proceed; the sequential judge may also go on collecting). The service
//! runs in a child process (this binary again), so its peak RSS is its own. The burst is fired
//! three times in the same run by a small Rust client over loopback: the threshold policy with
//! coalescing on and off, then the service's default judge (sequential, replaying each canary's
//! run since its start) with coalescing on.
//! Reported: wall time, p50/p99 latency, errors, wrong decisions, the queries Prometheus
//! answered (its own `prometheus_http_requests_total`, instant and range), the most connections
//! the service had open to Prometheus at once (its established sockets, from `/proc/<pid>/fd`
//! and `/proc/net/tcp`, sampled every 5 ms) against the configured pool, and the service's peak
//! RSS (`VmHWM`).
//! The table goes to stdout and `target/serve_scale.md`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::traffic::{now_secs, openmetrics, Traffic};

/// The pool the service may open to Prometheus (`prometheus.max_concurrency`).
const POOL: usize = 16;

fn main() {
    if let Ok(role) = std::env::var("CANARY_BENCH_SERVE") {
        return serve(&role);
    }
    let args: Vec<String> = std::env::args().collect();
    let canaries: usize = args
        .iter()
        .position(|a| a == "--canaries")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    eprintln!("serve_scale: generating {canaries} canaries and one baseline");
    let started = Instant::now();
    let mut traffic = vec![Traffic::healthy("prod", 50.0)];
    for i in 0..canaries {
        let mut t = Traffic::healthy(&canary(i), 10.0);
        if bad(i) {
            t.error_ratio = 0.08;
        }
        traffic.push(t);
    }
    let data = openmetrics(&traffic, 600, 15, now_secs() - 3);
    eprintln!(
        "serve_scale: {} MB of OpenMetrics; backfilling with promtool",
        data.len() / 1_000_000
    );
    let prometheus = testkit::services::prometheus(&data);
    drop(data);
    eprintln!(
        "serve_scale: Prometheus ready after {:.0?}",
        started.elapsed()
    );
    let mut rows = Vec::new();
    for coalesce in [true, false] {
        rows.push(round(&prometheus, canaries, Judge::Threshold, coalesce));
    }
    // The service's default judge: each analysis replays the canary's run since its start.
    rows.push(round(&prometheus, canaries, Judge::Sequential, true));
    let mut table = format!(
        "{canaries} concurrent analyses, one per canary, against one Prometheus (2-core machine, loopback)\n\n\
         | judge | coalescing | wall time | p50 | p99 | errors | wrong decisions | Prometheus queries | per canary | max connections (pool {POOL}) | service peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {:.2} s | {:.0} ms | {:.0} ms | {} | {} | {} | {:.2} | {} | {:.0} MB |\n",
            r.judge.name(),
            if r.coalesce { "on" } else { "off" },
            r.wall.as_secs_f64(),
            r.p50 * 1000.0,
            r.p99 * 1000.0,
            r.errors,
            r.wrong,
            r.queries,
            r.queries as f64 / canaries as f64,
            r.max_connections,
            r.peak_rss_kb as f64 / 1024.0
        ));
    }
    let (on, off) = (&rows[0], &rows[1]);
    table.push_str(&format!(
        "\nWith coalescing the service sent {:.2} × the queries of the run without it, in {:.2} × its wall time \
         (goal: at most 7 per canary plus 7 for the shared baseline, {}).\n",
        on.queries as f64 / off.queries.max(1) as f64,
        on.wall.as_secs_f64() / off.wall.as_secs_f64(),
        7 * canaries + 7
    ));
    let seq = &rows[2];
    table.push_str(&format!(
        "The sequential judge (the service's default), coalescing on: {:.2} × the threshold policy's wall time, \
         {:.2} × its queries, {:.2} × its p99, {:.2} × its peak RSS.\n",
        seq.wall.as_secs_f64() / on.wall.as_secs_f64(),
        seq.queries as f64 / on.queries.max(1) as f64,
        seq.p99 / on.p99,
        seq.peak_rss_kb as f64 / on.peak_rss_kb.max(1) as f64
    ));
    print!("{table}");
    let _ = std::fs::create_dir_all("target");
    let _ = std::fs::write("target/serve_scale.md", &table);
}

fn canary(i: usize) -> String {
    format!("c{i:04}")
}

/// Every tenth canary fails 8 % of its requests.
fn bad(i: usize) -> bool {
    i.is_multiple_of(10)
}

/// Which judge the service runs.
#[derive(Clone, Copy, PartialEq)]
enum Judge {
    /// The guide's single look at the window (`--judge threshold`).
    Threshold,
    /// The sequential judge over the run since its start (the service's default).
    Sequential,
}

impl Judge {
    fn name(self) -> &'static str {
        match self {
            Judge::Threshold => "threshold",
            Judge::Sequential => "sequential",
        }
    }
}

struct Row {
    judge: Judge,
    coalesce: bool,
    wall: Duration,
    p50: f64,
    p99: f64,
    errors: usize,
    wrong: usize,
    queries: u64,
    max_connections: u64,
    peak_rss_kb: u64,
}

/// One burst: start the service, fire every analysis at once, measure, stop it.
fn round(
    prometheus: &testkit::services::Service,
    canaries: usize,
    judge: Judge,
    coalesce: bool,
) -> Row {
    let port = testkit::free_port();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(
            "CANARY_BENCH_SERVE",
            format!("{}|{port}|{coalesce}|{}", prometheus.url, judge.name()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child);
    let before = prometheus_metric(
        prometheus.port,
        "prometheus_http_requests_total",
        "handler=\"/api/v1/query",
    );
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        let (port, pid) = (prometheus.port, child.id());
        std::thread::spawn(move || {
            let mut max = 0;
            while sampling.load(Ordering::Relaxed) {
                max = max.max(established_to(pid, port));
                std::thread::sleep(Duration::from_millis(5));
            }
            max
        })
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let answers = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(canaries)
            .build()
            .unwrap();
        futures::future::join_all((0..canaries).map(|i| {
            let url = format!(
                "http://127.0.0.1:{port}/v1/analysis?baseline=prod&canary={}&window=5m",
                canary(i)
            );
            let client = client.clone();
            async move {
                let t = Instant::now();
                let r = client.get(url).send().await;
                let decision = match r {
                    Ok(r) if r.status().is_success() => r
                        .text()
                        .await
                        .ok()
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                        .and_then(|v| v["decision"].as_str().map(str::to_owned)),
                    _ => None,
                };
                (i, t.elapsed().as_secs_f64(), decision)
            }
        }))
        .await
    });
    let wall = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let max_connections = sampler.join().unwrap();
    let after = prometheus_metric(
        prometheus.port,
        "prometheus_http_requests_total",
        "handler=\"/api/v1/query",
    );
    let peak_rss_kb = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut latencies: Vec<f64> = answers.iter().map(|(_, l, _)| *l).collect();
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    let errors = answers.iter().filter(|(_, _, d)| d.is_none()).count();
    let wrong = answers
        .iter()
        .filter(|(i, _, d)| {
            // Ten minutes of a healthy canary: the threshold policy proceeds; the sequential
            // judge proceeds or goes on collecting. A failing one is rolled back by both.
            let right: &[&str] = match (bad(*i), judge) {
                (true, _) => &["rollback_auto"],
                (false, Judge::Threshold) => &["proceed"],
                (false, Judge::Sequential) => &["proceed", "continue"],
            };
            d.as_deref().is_some_and(|d| !right.contains(&d))
        })
        .count();
    eprintln!(
        "serve_scale: {} judge, coalescing {}: {:.2} s, {errors} errors, {wrong} wrong",
        judge.name(),
        if coalesce { "on" } else { "off" },
        wall.as_secs_f64()
    );
    Row {
        judge,
        coalesce,
        wall,
        p50: q(0.5),
        p99: q(0.99),
        errors,
        wrong,
        queries: after.saturating_sub(before),
        max_connections,
        peak_rss_kb,
    }
}

/// Sockets of process `pid` established to `port` now: the service's connections to
/// Prometheus, found by matching its file descriptors' socket inodes in `/proc/net/tcp`.
fn established_to(pid: u32, port: u16) -> u64 {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let remote = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9 && f[2].ends_with(&remote) && f[3] == "01" && inodes.contains(f[9])
        })
        .count() as u64
}

fn wait_ready(port: u16, child: &mut Child) {
    testkit::services::wait_until_ready(port, "/readyz", child, Duration::from_secs(30));
}

/// The sum of a Prometheus counter's samples whose labels contain `filter`.
fn prometheus_metric(port: u16, name: &str, filter: &str) -> u64 {
    let Ok((_, text)) = testkit::services::get(port, "/metrics") else {
        return 0;
    };
    text.lines()
        .filter(|l| {
            l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(filter)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The child: `canary serve` in process, with the bench's settings.
fn serve(role: &str) {
    let mut parts = role.split('|');
    let (url, port, coalesce, sequential) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().parse::<u16>().unwrap(),
        parts.next().unwrap() == "true",
        parts.next().unwrap() == "sequential",
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut config = canary_prometheus::PrometheusConfig::new(&url);
        config.coalesce.enabled = coalesce;
        config.max_concurrency = POOL;
        let source = Arc::new(canary_prometheus::PrometheusSource::new(config).unwrap());
        let judging = canary_serve::Judging {
            source,
            policy: canary_core::RollbackPolicy::default(),
            judge: sequential.then(|| {
                Arc::new(canary_core::judge::SequentialParameters::default())
                    as Arc<dyn canary_core::judge::JudgeFactory>
            }),
            judge_step: Duration::from_secs(15),
            max_duration: Duration::from_secs(3600),
        };
        let settings = canary_serve::ServeConfig {
            listen: ([127, 0, 0, 1], port).into(),
            max_concurrent_analyses: 1024,
            queue_timeout: Duration::from_secs(120),
            deadline: Duration::from_secs(120),
            ..Default::default()
        };
        let server = canary_serve::serve(settings, judging).await.unwrap();
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
            term.recv().await;
        };
        server.run(stop).await.unwrap();
    });
}
