//! Backtests on simulated production history: the pseudo-canary's A/A rates and power agree
//! with the benchmark's on the same generating parameters, and what the backtest needs is
//! said plainly when it is missing.

use std::sync::Arc;
use std::time::Duration;

use canary_core::backtest::{
    backtest, calibrate, BacktestConfig, Contender, Injection, Rate, Tunable,
};
use canary_core::judge::replay::{replay, ReplayBounds, Replayed};
use canary_core::judge::{JudgeFactory, SequentialParameters, ThresholdParameters};
use canary_core::RollbackDecision;
use canary_sim::{simulate, Effect, Pods, Scenario};

const STEP: Duration = Duration::from_secs(15);
const HOUR: Duration = Duration::from_secs(3600);

/// Production: four identical pods at the guide's 44 req/s; as a canary run, one of them is
/// the canary (a quarter of the traffic).
fn scenario(seed: u64, duration: Duration, canary_version: &str) -> Scenario {
    let mut s = Scenario::aa_guide(seed);
    s.name = "backtest".into();
    s.duration = duration;
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

/// The benchmark's way: a fresh simulated canary run per seed, replayed over an hour.
fn benchmark(factory: &dyn JudgeFactory, seeds: std::ops::Range<u64>, effect: Effect) -> Rate {
    let mut caught = 0;
    let n = seeds.end - seeds.start;
    for seed in seeds {
        let mut s = scenario(seed, HOUR, "v2");
        s.canary.effect = effect.clone();
        let run = simulate(&s).unwrap();
        let start = run.canary[0].at;
        let bounds = ReplayBounds {
            start,
            at: start + chrono::Duration::seconds(3600),
            max_duration: HOUR,
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

#[test]
fn pseudo_canaries_from_history_agree_with_the_benchmark() {
    let t = std::time::Instant::now();
    let run = simulate(&scenario(11, Duration::from_secs(2 * 86400), "v1")).unwrap();
    let history = run.history("v1", STEP).unwrap();
    assert_eq!(history.pods.len(), 4);
    eprintln!("sim {:?}", t.elapsed());
    let config = BacktestConfig {
        runs: 150,
        injections: vec![Injection::parse("latency+25%").unwrap()],
        ..BacktestConfig::default()
    };
    let report = backtest(&history, &contenders(), &config, &|_, _| {}).unwrap();
    eprintln!("backtest {:?}", t.elapsed());
    eprintln!("{}", report.to_text());
    assert_eq!(report.runs, 150);
    assert!(
        (report.canary_share - 0.25).abs() < 0.02,
        "{}",
        report.canary_share
    );
    for (j, c) in report.judges.iter().zip(contenders()) {
        let aa = benchmark(c.factory.as_ref(), 0..150, Effect::default());
        let power = benchmark(
            c.factory.as_ref(),
            1000..1150,
            Effect {
                latency_factor: 1.25,
                ..Effect::default()
            },
        );
        eprintln!("{}: bench A/A {aa:?} power {power:?}", j.judge);
        assert!(
            overlap(&j.healthy.false_rollback, &aa),
            "{}: backtest {:?} vs benchmark {aa:?}",
            j.judge,
            j.healthy.false_rollback
        );
        assert!(
            overlap(&j.injected[0].caught, &power),
            "{}: backtest {:?} vs benchmark {power:?}",
            j.judge,
            j.injected[0].caught
        );
    }
    eprintln!("all {:?}", t.elapsed());
}

#[test]
fn calibration_holds_part_out_and_meets_its_target_on_it() {
    let run = simulate(&scenario(23, Duration::from_secs(2 * 86400), "v1")).unwrap();
    let history = run.history("v1", STEP).unwrap();
    let config = BacktestConfig {
        runs: 120,
        injections: vec![Injection::parse("latency+25%").unwrap()],
        ..BacktestConfig::default()
    };
    let tunable = Tunable::Threshold(ThresholdParameters::default());
    let c = calibrate(&history, &tunable, 0.05, &config, &|_, _| {}).unwrap();
    eprintln!("{c:#?}");
    // The guide's policy holds ~30 % of healthy canaries; the target forces a wider band.
    assert!(
        c.native.healthy.false_rollback.rate > 0.1,
        "{:?}",
        c.native.healthy
    );
    assert!(c.sensitivity > 1.0, "{}", c.sensitivity);
    assert!(c.calibration.false_rollback.rate <= 0.05);
    // Measured on the held-out half only: its runs start after the split.
    assert!(c.calibrated.healthy.runs > 0);
    assert!(c.calibrated.healthy.false_rollback.rate < c.native.healthy.false_rollback.rate);
    assert!(c.held_out_from > history.start);
    // Power on the injected regression is reported, and less than or equal to the native's.
    assert_eq!(c.calibrated.injected.len(), 1);
    assert!(c.calibrated.injected[0].caught.rate <= c.native.injected[0].caught.rate + 1e-9);

    let bad = calibrate(&history, &tunable, 1.5, &config, &|_, _| {}).unwrap_err();
    assert!(bad.to_string().contains("not a rate"), "{bad}");
}

#[test]
fn too_little_history_or_one_pod_says_what_is_needed() {
    let run = simulate(&scenario(5, Duration::from_secs(1800), "v1")).unwrap();
    let history = run.history("v1", STEP).unwrap();
    let err = backtest(
        &history,
        &contenders(),
        &BacktestConfig::default(),
        &|_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("too little history"), "{err}");

    // One pod left of four: no split possible.
    let mut history = simulate(&scenario(5, Duration::from_secs(3 * 3600), "v1"))
        .unwrap()
        .history("v1", STEP)
        .unwrap();
    history.pods.truncate(1);
    assert_eq!(history.pods.len(), 1);
    let err = backtest(
        &history,
        &contenders(),
        &BacktestConfig::default(),
        &|_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("pod"), "{err}");
}

/// A judge that starts once (the backtest's parameter check) and panics on every run after.
#[derive(Debug, Default)]
struct PanicsOnRuns(std::sync::atomic::AtomicUsize);

impl JudgeFactory for PanicsOnRuns {
    fn name(&self) -> &str {
        "panics"
    }

    fn start(&self) -> canary_core::Result<Box<dyn canary_core::judge::Judge>> {
        if self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0 {
            panic!("a bug in the judge");
        }
        ThresholdParameters::default().start()
    }
}

#[test]
fn a_judge_that_panics_is_held_for_a_person_and_the_others_are_unchanged() {
    let history = simulate(&scenario(3, Duration::from_secs(6 * 3600), "v1"))
        .unwrap()
        .history("v1", STEP)
        .unwrap();
    let config = BacktestConfig {
        runs: 12,
        threads: 2,
        ..BacktestConfig::default()
    };
    let threshold = contenders().remove(0);
    let alone = backtest(
        &history,
        std::slice::from_ref(&threshold),
        &config,
        &|_, _| {},
    )
    .unwrap();
    let with_panics = backtest(
        &history,
        &[
            threshold,
            Contender {
                name: "panics".into(),
                factory: Arc::new(PanicsOnRuns::default()),
                configured: true,
            },
        ],
        &config,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(with_panics.runs, 12);
    assert_eq!(with_panics.judges[0], alone.judges[0]);
    let panics = &with_panics.judges[1];
    assert_eq!(panics.healthy.manual_review.count, 12);
    assert_eq!(panics.healthy.false_rollback.count, 12);
    assert!(
        panics
            .failures
            .iter()
            .all(|f| f.reason == "the judge panicked: a bug in the judge"),
        "{:?}",
        panics.failures
    );
}
