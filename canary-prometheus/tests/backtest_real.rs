//! A week of a four-pod production version, simulated by canary-sim, backfilled into a real
//! Prometheus and read back as a backtest's history: the history equals the simulator's, the
//! backtest through Prometheus equals the in-memory one, and both agree with the benchmark.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use canary_core::backtest::{backtest, BacktestConfig, Contender, History, Injection, Rate};
use canary_core::judge::replay::{replay, ReplayBounds, Replayed};
use canary_core::judge::{JudgeFactory, SequentialParameters, ThresholdParameters};
use canary_core::{Arm, RollbackDecision, Version};
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use canary_sim::{simulate, Effect, MetricNames, PodChange, PodEvent, Pods, Scenario};
use chrono::{TimeZone, Utc};
use testkit::traffic::now_secs;

const STEP: Duration = Duration::from_secs(30);
const DAY: i64 = 86_400;

fn scenario(seed: u64, duration: Duration, canary_version: &str) -> Scenario {
    let mut s = Scenario::aa_guide(seed);
    s.name = "backtest".into();
    s.duration = duration;
    s.scrape_interval = STEP;
    s.gaps.missing = 0.0;
    s.canary_share = 0.25;
    s.canary.version = canary_version.into();
    s.pods = Some(Pods {
        baseline: 3,
        canary: 1,
        faults: Vec::new(),
        changes: Vec::new(),
    });
    s
}

fn contenders() -> Vec<Contender> {
    vec![
        Contender {
            name: "threshold".into(),
            factory: Arc::new(ThresholdParameters::default()),
            configured: false,
        },
        Contender {
            name: "sequential".into(),
            factory: Arc::new(SequentialParameters::default()),
            configured: true,
        },
    ]
}

/// The benchmark's way on the same generating parameters: a fresh simulated canary run per
/// seed (one of four pods), replayed over an hour.
fn benchmark(factory: &dyn JudgeFactory, seeds: std::ops::Range<u64>, effect: Effect) -> Rate {
    let n = seeds.end - seeds.start;
    let mut caught = 0;
    for seed in seeds {
        let mut s = scenario(seed, Duration::from_secs(3600), "v2");
        s.canary.effect = effect.clone();
        let run = simulate(&s).unwrap();
        let start = run.canary[0].at;
        let bounds = ReplayBounds {
            start,
            at: start + chrono::Duration::seconds(3600),
            max_duration: Duration::from_secs(3600),
            step: s.scrape_interval,
        };
        let mut judge = factory.start().unwrap();
        let decision = match replay(judge.as_mut(), &run.baseline, &run.canary, bounds) {
            Replayed::Decided { evaluation, .. } => evaluation.decision,
            other => panic!("{other:?}"),
        };
        caught += u64::from(decision != RollbackDecision::Proceed);
    }
    Rate::of(caught, n)
}

fn overlap(a: &Rate, b: &Rate) -> bool {
    a.low <= b.high && b.low <= a.high
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

fn assert_same_history(got: &History, want: &History) {
    assert_eq!(got.start, want.start);
    assert_eq!(got.bounds, want.bounds);
    assert!(
        got.len.abs_diff(want.len) <= 1,
        "{} vs {}",
        got.len,
        want.len
    );
    let names = |h: &History| h.pods.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(got), names(want));
    for (g, w) in got.pods.iter().zip(&want.pods) {
        assert_eq!(g.first, w.first, "{}", g.name);
        let n = g.len().min(w.len());
        assert!(g.len().abs_diff(w.len()) <= 1, "{}", g.name);
        for k in 0..n {
            assert!(
                same(g.requests[k], w.requests[k]),
                "{} requests at {k}",
                g.name
            );
            assert!(same(g.errors[k], w.errors[k]), "{} errors at {k}", g.name);
            assert!(
                same(g.confidence[k], w.confidence[k]),
                "{} confidence at {k}",
                g.name
            );
        }
        let nb = got.bounds.len();
        for k in 0..n * nb {
            assert!(same(g.buckets[k], w.buckets[k]), "{} bucket {k}", g.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_week_of_production_backtests_the_same_through_prometheus() {
    let t = std::time::Instant::now();
    // A week that ends ten minutes ago, its start on the 30 s grid; one pod restarts (its
    // counters from zero) and one joins on the second day.
    let start_s = (now_secs() - 7 * DAY - 600) / 30 * 30;
    let start = Utc.timestamp_opt(start_s, 0).unwrap();
    let mut s = scenario(41, Duration::from_secs(7 * DAY as u64), "v1");
    if let Some(p) = s.pods.as_mut() {
        p.changes = vec![
            PodEvent {
                arm: Arm::Baseline,
                pod: 1,
                change: PodChange::Restart,
                at: Duration::from_secs(2 * DAY as u64 + 1234),
            },
            PodEvent {
                arm: Arm::Baseline,
                pod: 2,
                change: PodChange::Join,
                at: Duration::from_secs(DAY as u64 + 600),
            },
        ];
    }
    let run = simulate(&s).unwrap().starting_at(start);
    let want = run.history("v1", STEP).unwrap();
    let prometheus = testkit::services::prometheus(&run.to_openmetrics(&MetricNames::default()));
    eprintln!("loaded {:?}", t.elapsed());

    let source = PrometheusSource::new(PrometheusConfig::new(&prometheus.url)).unwrap();
    let version = Version::new("v1").unwrap();
    let until = start + chrono::Duration::seconds(7 * DAY);
    let calls = AtomicUsize::new(0);
    let sent = source.queries_sent();
    let got = source
        .history(&version, start, until, STEP, &|done, total| {
            assert!(done <= total);
            calls.fetch_add(1, Ordering::Relaxed);
        })
        .await
        .unwrap();
    eprintln!("history {:?}", t.elapsed());
    // Each series once: four queries of at most 10,000 points each, for 20,161 instants.
    assert_eq!(source.queries_sent() - sent, 4 * 3);
    assert_eq!(calls.load(Ordering::Relaxed), 4 * 3);
    assert!(got.notes.is_empty(), "{:?}", got.notes);
    assert_eq!(got.pods.len(), 4);
    assert_same_history(&got, &want);

    let config = BacktestConfig {
        runs: 150,
        injections: vec![Injection::parse("latency+25%").unwrap()],
        ..BacktestConfig::default()
    };
    let through = backtest(&got, &contenders(), &config, &|_, _| {}).unwrap();
    let memory = backtest(&want, &contenders(), &config, &|_, _| {}).unwrap();
    eprintln!("{}", through.to_text());
    for (a, b) in through.judges.iter().zip(&memory.judges) {
        assert_eq!(a.healthy, b.healthy, "{}", a.judge);
        assert_eq!(a.injected, b.injected, "{}", a.judge);
    }
    for (j, c) in through.judges.iter().zip(contenders()) {
        let aa = benchmark(c.factory.as_ref(), 0..150, Effect::default());
        let power = benchmark(
            c.factory.as_ref(),
            1000..1150,
            Effect {
                latency_factor: 1.25,
                ..Effect::default()
            },
        );
        eprintln!("{}: benchmark A/A {aa:?}, power {power:?}", j.judge);
        let fr = &j.healthy.false_rollback;
        assert!(
            overlap(fr, &aa),
            "{}: backtest {fr:?} vs benchmark {aa:?}",
            j.judge
        );
        let caught = &j.injected[0].caught;
        assert!(
            overlap(caught, &power),
            "{}: {caught:?} vs {power:?}",
            j.judge
        );
    }
    eprintln!("all {:?}", t.elapsed());

    // Too short a period for one run: what is needed, said.
    let short = source
        .history(
            &version,
            until - chrono::Duration::minutes(30),
            until,
            STEP,
            &|_, _| {},
        )
        .await
        .unwrap();
    let err = backtest(&short, &contenders(), &config, &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("too little history"), "{err}");
    // A version Prometheus has never seen: no pods.
    let none = source
        .history(&Version::new("v9").unwrap(), start, until, STEP, &|_, _| {})
        .await
        .unwrap();
    let err = backtest(&none, &contenders(), &config, &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("pod"), "{err}");
}
