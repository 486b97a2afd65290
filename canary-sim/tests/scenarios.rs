//! The simulator against its own parameters, and the `aa-guide` calibration: the threshold
//! judge must send 35 % ± 4 % of healthy canaries to manual review, as an independent
//! simulation of the guide's defaults does.

use canary_core::judge::{Judge, ThresholdJudge, ThresholdParameters, Verdict};
use canary_core::observation::names;
use canary_core::RollbackDecision;
use canary_sim::{simulate, Latency, Scenario};

#[test]
fn a_run_is_reproducible_from_its_seed() {
    let a = simulate(&Scenario::aa_guide(11)).unwrap();
    assert_eq!(a, simulate(&Scenario::aa_guide(11)).unwrap());
    assert_ne!(a, simulate(&Scenario::aa_guide(12)).unwrap());
    // Common random numbers: changing the canary leaves the baseline as it was.
    let mut slower = Scenario::aa_guide(11);
    slower.canary.latency = Latency::LogNormal {
        median_s: 0.2,
        sigma: 0.5,
    };
    let b = simulate(&slower).unwrap();
    assert_eq!(a.baseline, b.baseline);
    assert_eq!(
        a.canary.last().unwrap().counters[names::REQUESTS],
        b.canary.last().unwrap().counters[names::REQUESTS],
        "the same arrivals"
    );
}

#[test]
fn generated_data_matches_its_parameters() {
    // A long, busy, finely bucketed run, so the estimates are tight.
    let mut s = Scenario::aa_guide(3);
    s.duration = std::time::Duration::from_secs(3600);
    s.total_rps = 200.0;
    s.canary_share = 0.5;
    s.buckets = (1..=200).map(|i| f64::from(i) * 0.005).collect();
    let run = simulate(&s).unwrap();
    let last = run.canary.last().unwrap();
    let n = last.counters[names::REQUESTS];
    let expected = 100.0 * 3600.0;
    assert!((n - expected).abs() < 4.0 * expected.sqrt(), "{n} requests");
    let errors = last.counters[names::ERRORS] / n;
    assert!((errors - 0.01).abs() < 0.001, "error ratio {errors}");
    let h = &last.histograms[names::LATENCY];
    let median = h.quantile(0.5).unwrap();
    assert!((median - 0.120).abs() < 0.002, "median {median}");
    // The lognormal p99: 0.12 · e^(2.3263 · 0.5) = 0.3841 s.
    let p99 = h.quantile(0.99).unwrap();
    assert!((p99 - 0.3841).abs() < 0.01, "p99 {p99}");
    assert_eq!(last.gauges[names::MODEL_CONFIDENCE], 0.85);
    // Counters only grow, scrape after scrape.
    for w in run.baseline.windows(2) {
        assert!(w[1].counters[names::REQUESTS] >= w[0].counters[names::REQUESTS]);
        assert!(w[1].histograms[names::LATENCY]
            .since(&w[0].histograms[names::LATENCY])
            .is_some());
    }
}

/// The threshold judge's decision on one run.
fn judge(s: &Scenario) -> RollbackDecision {
    let run = simulate(s).unwrap();
    let mut judge = ThresholdJudge::new(ThresholdParameters::default()).unwrap();
    for (b, c) in run.baseline.iter().zip(&run.canary) {
        if let Verdict::Decided(e) = judge.observe(b, c) {
            return e.decision;
        }
    }
    judge.finish().decision
}

#[test]
fn the_threshold_judge_is_calibrated_on_aa_guide() {
    // 2,000 seeds: the rate's standard error is about 1 %.
    let seeds = 2000;
    let mut manual = 0;
    let mut auto = 0;
    for seed in 0..seeds {
        match judge(&Scenario::aa_guide(seed)) {
            RollbackDecision::RollbackManual => manual += 1,
            RollbackDecision::RollbackAuto => auto += 1,
            _ => {}
        }
    }
    let manual = f64::from(manual) / f64::from(seeds as u32);
    let auto = f64::from(auto) / f64::from(seeds as u32);
    eprintln!(
        "aa-guide over {seeds} seeds: manual review {manual:.3}, automatic rollback {auto:.3}"
    );
    // The independent simulation: 35 % manual review (an uncommitted numpy check of the same
    // scenario gave 36.0 % ± 2.1 %).
    assert!(
        (manual - 0.35).abs() <= 0.04,
        "manual review on A/A: {manual}"
    );
    assert!(auto < 0.02, "automatic rollbacks on A/A: {auto}");
}

#[test]
fn a_regression_is_caught_more_often_than_a_healthy_canary_is_flagged() {
    let mut caught = 0;
    for seed in 0..200 {
        let mut s = Scenario::aa_guide(seed);
        s.canary.error_rate = 0.05; // five times the errors
        if judge(&s) != RollbackDecision::Proceed {
            caught += 1;
        }
    }
    assert!(caught >= 190, "{caught} of 200 regressions caught");
}

#[test]
fn invalid_scenarios_are_refused() {
    let mut s = Scenario::aa_guide(1);
    s.canary_share = 1.0;
    assert!(s.validate().unwrap_err().contains("canary_share"));
    let mut s = Scenario::aa_guide(1);
    s.buckets = vec![0.5, 0.1];
    assert!(s.validate().unwrap_err().contains("buckets"));
    let mut s = Scenario::aa_guide(1);
    s.canary.version = String::new();
    assert!(s.validate().unwrap_err().contains("canary.version"));
}
