//! `canary backtest`'s budget (issue 20): 14 days × 10 pods of the default metrics at the
//! judge's 15 s step, 500 pseudo-canary runs per judge, every judge, in under 60 s of CPU on 2
//! cores, with bounded memory.
//!
//! The history is simulated (canary-sim) one day at a time and stitched, so the simulator's
//! own memory never counts: the peak is reset (`/proc/self/clear_refs`) once the history is
//! built. CPU is the process's user + system time (`/proc/self/stat`). Each judge's figure is
//! also given as a ratio to the guide's threshold policy measured in the same run, and the
//! whole as a ratio to one pass over the history's samples (the least any replay costs).
//!
//! `cargo bench --bench backtest` (14 days, 500 runs) or `-- --quick` (3 days, 100 runs).
//! Writes a Markdown table to stdout and `target/backtest_bench.md`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use canary_core::backtest::{backtest, BacktestConfig, Contender, History, Injection, Tunable};
use canary_core::judge::{
    ArgoParameters, FlaggerParameters, KayentaParameters, SequentialParameters, ThresholdParameters,
};
use canary_sim::{simulate, Pods, Scenario};
use chrono::{TimeZone, Utc};

const STEP: Duration = Duration::from_secs(15);
const DAY: u64 = 86_400;

/// One simulated day of `pods` production pods, from `start`.
fn day(seed: u64, pods: usize, start: chrono::DateTime<Utc>) -> History {
    let mut s = Scenario::aa_guide(seed);
    s.name = "bench".into();
    s.duration = Duration::from_secs(DAY);
    s.scrape_interval = STEP;
    s.gaps.missing = 0.0;
    s.canary_share = 1.0 / pods as f64;
    s.canary.version = s.baseline.version.clone();
    s.pods = Some(Pods {
        baseline: pods - 1,
        canary: 1,
        faults: Vec::new(),
        changes: Vec::new(),
    });
    let version = s.baseline.version.clone();
    simulate(&s)
        .expect("a valid scenario")
        .starting_at(start)
        .history(&version, STEP)
        .expect("a history")
}

/// Days stitched end to end: each pod's counters continue from the previous day's last value.
fn stitched(days: usize, pods: usize) -> History {
    let start = Utc
        .timestamp_opt(1_790_000_000 / 86_400 * 86_400, 0)
        .unwrap();
    let mut all: Option<History> = None;
    for d in 0..days {
        let at = start + chrono::Duration::seconds((d as u64 * DAY) as i64);
        let mut next = day(1000 + d as u64, pods, at);
        let Some(h) = all.as_mut() else {
            all = Some(next);
            continue;
        };
        // The day's grid starts where the last ended; drop a shared first instant.
        let offset = h.len;
        let skip = usize::from(h.index(next.start).is_some_and(|i| i + 1 == offset));
        let nb = h.bounds.len();
        for (p, q) in h.pods.iter_mut().zip(&mut next.pods) {
            let last = |v: &[f64]| {
                v.iter()
                    .rev()
                    .find(|x| x.is_finite())
                    .copied()
                    .unwrap_or(0.0)
            };
            let (r0, e0) = (last(&p.requests), last(&p.errors));
            let b0: Vec<f64> = (0..nb)
                .map(|k| {
                    (0..p.len())
                        .rev()
                        .map(|i| p.buckets[i * nb + k])
                        .find(|x| x.is_finite())
                        .unwrap_or(0.0)
                })
                .collect();
            p.requests
                .extend(q.requests.iter().skip(skip).map(|x| x + r0));
            p.errors.extend(q.errors.iter().skip(skip).map(|x| x + e0));
            p.confidence.extend(q.confidence.iter().skip(skip));
            for i in skip..q.len() {
                for (k, b) in b0.iter().enumerate() {
                    p.buckets.push(q.buckets[i * nb + k] + b);
                }
            }
        }
        h.len = h.pods.iter().map(|p| p.first + p.len()).max().unwrap_or(0);
    }
    let h = all.expect("at least a day");
    h.validate().expect("a valid stitched history");
    h
}

/// The process's CPU time (user + system).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime), counted after the command's name: 12th and 13th.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// The peak resident set since the last reset, in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn reset_peak() {
    // Linux ≥ 4.0: "5" resets the peak RSS to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn contenders() -> Vec<(String, Contender)> {
    let all = [
        Tunable::Threshold(ThresholdParameters::default()),
        Tunable::Sequential(SequentialParameters::default()),
        Tunable::Flagger(FlaggerParameters::default()),
        Tunable::Argo(ArgoParameters::default()),
        Tunable::Kayenta(KayentaParameters::default()),
    ];
    all.iter()
        .map(|t| {
            (
                t.name().to_owned(),
                Contender {
                    name: t.name().to_owned(),
                    factory: t.factory(),
                    configured: false,
                },
            )
        })
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (days, pods, runs) = if quick { (3, 10, 100) } else { (14, 10, 500) };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let history = stitched(days, pods);
    let built = t.elapsed();
    reset_peak();
    let rest = peak_mib();
    let samples: usize = history
        .pods
        .iter()
        .map(|p| p.len() * (3 + history.bounds.len()))
        .sum();
    let bytes = samples * 8;

    // The floor: one pass over every sample.
    let (c0, w0) = (cpu(), Instant::now());
    let mut sum = 0.0;
    for p in &history.pods {
        sum += p
            .requests
            .iter()
            .chain(&p.errors)
            .chain(&p.buckets)
            .chain(&p.confidence)
            .filter(|x| x.is_finite())
            .sum::<f64>();
    }
    let pass = (cpu() - c0).max(w0.elapsed());
    std::hint::black_box(sum);

    let config = BacktestConfig {
        runs,
        injections: Vec::new(),
        ..BacktestConfig::default()
    };
    let mut rows = Vec::new();
    let mut total_cpu = Duration::ZERO;
    let mut total_wall = Duration::ZERO;
    for (name, c) in contenders() {
        let (c0, w0) = (cpu(), Instant::now());
        let report =
            backtest(&history, std::slice::from_ref(&c), &config, &|_, _| {}).expect("a backtest");
        let (used, wall) = (cpu() - c0, w0.elapsed());
        total_cpu += used;
        total_wall += wall;
        let j = &report.judges[0];
        rows.push((name, used, wall, j.healthy.false_rollback, report.runs));
    }
    // With one injection: each run is judged twice per judge.
    let injected = BacktestConfig {
        injections: vec![Injection::parse("latency+25%").expect("an injection")],
        ..config.clone()
    };
    let (c0, w0) = (cpu(), Instant::now());
    let all: Vec<Contender> = contenders().into_iter().map(|(_, c)| c).collect();
    backtest(&history, &all, &injected, &|_, _| {}).expect("a backtest");
    let (inj_cpu, inj_wall) = (cpu() - c0, w0.elapsed());
    let peak = peak_mib();

    let threshold_cpu = rows[0].1.as_secs_f64().max(1e-3);
    let mut out = String::new();
    out += &format!(
        "## Backtest cost ({} mode)\n\n{days} days × {pods} pods at {} s: {} instants, {:.1} MB \
         of samples (history built in {:.1} s, not counted). {runs} runs per judge, {cores} \
         cores. One pass over the samples: {:.3} s.\n\n",
        if quick { "quick" } else { "full" },
        STEP.as_secs(),
        history.len,
        bytes as f64 / 1e6,
        built.as_secs_f64(),
        pass.as_secs_f64(),
    );
    out += "| judge | CPU s | wall s | CPU × threshold | false rollbacks (A/A) |\n|---|---|---|---|---|\n";
    for (name, used, wall, fr, n) in &rows {
        out += &format!(
            "| {name} | {:.2} | {:.2} | {:.2} | {}/{n} ({:.1} %) |\n",
            used.as_secs_f64(),
            wall.as_secs_f64(),
            used.as_secs_f64() / threshold_cpu,
            fr.count,
            fr.rate * 100.0
        );
    }
    let budget = 60.0;
    out += &format!(
        "| **all five** | **{:.2}** | {:.2} | {:.2} | |\n\nAll five judges, A/A only: {:.1} s of CPU \
         against the 60 s budget ({}), {:.0}× one pass over the samples. With `--inject \
         latency+25%` (each run judged twice): {:.1} s CPU, {:.1} s wall ({}).\n\nPeak resident \
         memory during the backtests: {:.0} MiB, of which {:.0} MiB was resident before them \
         (the history and the process).\n",
        total_cpu.as_secs_f64(),
        total_wall.as_secs_f64(),
        total_cpu.as_secs_f64() / threshold_cpu,
        total_cpu.as_secs_f64(),
        if total_cpu.as_secs_f64() <= budget { "met" } else { "MISSED" },
        total_cpu.as_secs_f64() / pass.as_secs_f64().max(1e-6),
        inj_cpu.as_secs_f64(),
        inj_wall.as_secs_f64(),
        if inj_cpu.as_secs_f64() <= budget { "within 60 s" } else { "over 60 s" },
        peak,
        rest,
    );
    print!("{out}");
    let _ = std::fs::create_dir_all("target");
    if let Ok(mut f) = std::fs::File::create("target/backtest_bench.md") {
        let _ = f.write_all(out.as_bytes());
    }
}
