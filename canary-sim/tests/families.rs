//! The scenario families' generated data against their parameters: quantiles, rates,
//! autocorrelation, onsets, gaps.

use std::time::Duration;

use canary_core::observation::{names, Histogram, Observation};
use canary_sim::{
    catalog, simulate, Ar1, Burst, Effect, Family, Latency, Onset, Scenario, Warmup, FINE_BUCKETS,
};

/// A busy, finely bucketed run of `minutes`, half the traffic on each arm.
fn busy(minutes: u64) -> Scenario {
    let mut s = Scenario::aa_guide(5);
    s.duration = Duration::from_secs(minutes * 60);
    s.total_rps = 200.0;
    s.canary_share = 0.5;
    s.buckets = (1..=400).map(|i| f64::from(i) * 0.005).collect();
    s
}

fn latency(o: &Observation) -> &Histogram {
    &o.histograms[names::LATENCY]
}

/// The histogram of what arrived between observations `from` and `to`.
fn between(arm: &[Observation], from: usize, to: usize) -> Histogram {
    latency(&arm[to]).since(latency(&arm[from])).unwrap()
}

fn close(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance * want.abs(),
        "{what}: {got}, expected {want} (± {:.0} %)",
        tolerance * 100.0
    );
}

#[test]
fn heavy_tailed_and_bimodal_latency_have_their_quantiles() {
    let mut s = busy(30);
    s.canary.latency = Latency::Pareto {
        median_s: 0.120,
        alpha: 2.5,
    };
    s.baseline.latency = Latency::Bimodal {
        fast_median_s: 0.080,
        slow_median_s: 0.400,
        sigma: 0.3,
        slow_fraction: 0.1,
    };
    let run = simulate(&s).unwrap();
    let pareto = latency(run.canary.last().unwrap());
    close("Pareto median", pareto.quantile(0.5).unwrap(), 0.120, 0.03);
    // p90 = x_m · 10^(1/α), x_m = median / 2^(1/α).
    let x_m = 0.120 / 2f64.powf(0.4);
    close(
        "Pareto p90",
        pareto.quantile(0.9).unwrap(),
        x_m * 10f64.powf(0.4),
        0.03,
    );
    let bimodal = latency(run.baseline.last().unwrap());
    // 90 % fast around 80 ms: the median is just above it.
    let median = bimodal.quantile(0.5).unwrap();
    assert!(median > 0.080 && median < 0.095, "bimodal median {median}");
    // The slow mode holds the tail: p95 is near its median (400 ms · e^(0.3·Φ⁻¹(0.5))).
    close("bimodal p95", bimodal.quantile(0.95).unwrap(), 0.400, 0.08);
}

#[test]
fn ar1_noise_is_autocorrelated_as_asked() {
    let lag1 = |phi: f64| {
        let mut s = busy(120);
        s.noise = Some(Ar1 {
            phi,
            sigma: 0.2,
            shared: false,
        });
        let run = simulate(&s).unwrap();
        let medians: Vec<f64> = (1..run.canary.len())
            .map(|k| between(&run.canary, k - 1, k).quantile(0.5).unwrap().ln())
            .collect();
        let mean = medians.iter().sum::<f64>() / medians.len() as f64;
        let d: Vec<f64> = medians.iter().map(|m| m - mean).collect();
        let var: f64 = d.iter().map(|x| x * x).sum();
        let sd = (var / d.len() as f64).sqrt();
        (d.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / var, sd)
    };
    for phi in [0.0, 0.5, 0.8] {
        let (r, sd) = lag1(phi);
        assert!(
            (r - phi).abs() < 0.12,
            "phi {phi}: lag-1 autocorrelation {r}"
        );
        // The per-interval log median moves by about the noise's σ (plus sampling noise).
        assert!(sd > 0.15 && sd < 0.26, "phi {phi}: sd {sd}");
    }
}

#[test]
fn shared_noise_moves_both_arms_together() {
    let mut s = busy(30);
    s.noise = Some(Ar1 {
        phi: 0.5,
        sigma: 0.3,
        shared: true,
    });
    let run = simulate(&s).unwrap();
    for k in 1..run.canary.len() {
        let b = between(&run.baseline, k - 1, k).quantile(0.5).unwrap();
        let c = between(&run.canary, k - 1, k).quantile(0.5).unwrap();
        close(&format!("interval {k}"), c, b, 0.1);
    }
}

#[test]
fn traffic_follows_its_shape_in_both_arms() {
    let mut s = busy(60);
    s.traffic.diurnal_amplitude = 0.5;
    s.traffic.diurnal_period = Duration::from_secs(3600);
    s.traffic.bursts = vec![Burst {
        start: Duration::from_secs(2400),
        duration: Duration::from_secs(120),
        factor: 4.0,
    }];
    let run = simulate(&s).unwrap();
    let rate = |arm: &[Observation], from: usize, to: usize| {
        (arm[to].counters[names::REQUESTS] - arm[from].counters[names::REQUESTS])
            / ((to - from) as f64 * 15.0)
    };
    for arm in [&run.baseline, &run.canary] {
        // Peak of the swing (t ≈ 15 min), trough (≈ 45 min), and the burst (40–42 min).
        close("peak", rate(arm, 56, 64), 100.0 * 1.5, 0.1);
        close("trough", rate(arm, 176, 184), 100.0 * 0.5, 0.15);
        let swing = 1.0 + 0.5 * (std::f64::consts::TAU * 2460.0 / 3600.0).sin();
        close("burst", rate(arm, 160, 168), 100.0 * swing * 4.0, 0.12);
    }
}

#[test]
fn effects_move_what_they_say_and_nothing_else() {
    let quantiles = |effect: Effect| {
        let mut s = busy(30);
        s.canary.effect = effect;
        let run = simulate(&s).unwrap();
        let h = latency(run.canary.last().unwrap()).clone();
        let b = latency(run.baseline.last().unwrap()).clone();
        let q = |h: &Histogram, p| h.quantile(p).unwrap();
        let last = run.canary.last().unwrap();
        (
            [q(&h, 0.5), q(&h, 0.9), q(&h, 0.99)],
            [q(&b, 0.5), q(&b, 0.9), q(&b, 0.99)],
            last.counters[names::ERRORS] / last.counters[names::REQUESTS],
        )
    };
    let (tail, base, _) = quantiles(Effect {
        tail_factor: 1.2,
        ..Effect::default()
    });
    close("tail-only median", tail[0], base[0], 0.02);
    close("tail-only p90", tail[1], base[1], 0.02);
    close("tail-only p99", tail[2], base[2] * 1.2, 0.04);
    let (spread, base, _) = quantiles(Effect {
        spread_factor: 1.3,
        ..Effect::default()
    });
    close("variance-only median", spread[0], base[0], 0.02);
    // p99 = median · e^(2.326 · 0.5 · 1.3).
    close(
        "variance-only p99",
        spread[2],
        0.120 * (2.326 * 0.65f64).exp(),
        0.05,
    );
    let (shift, base, errors) = quantiles(Effect {
        latency_factor: 1.25,
        error_factor: 3.0,
        ..Effect::default()
    });
    for i in 0..3 {
        close("shifted quantile", shift[i], base[i] * 1.25, 0.04);
    }
    close("error rate ×3", errors, 0.03, 0.08);
}

#[test]
fn onsets_start_and_grow_when_they_say() {
    let mut s = busy(20);
    s.canary.effect = Effect {
        latency_factor: 2.0,
        confidence_delta: -0.2,
        onset: Onset::Step {
            at: Duration::from_secs(600),
        },
        ..Effect::default()
    };
    let run = simulate(&s).unwrap();
    let median = |arm: &[Observation], from, to| between(arm, from, to).quantile(0.5).unwrap();
    close(
        "before the step",
        median(&run.canary, 0, 39),
        median(&run.baseline, 0, 39),
        0.03,
    );
    close(
        "after the step",
        median(&run.canary, 41, 80),
        2.0 * median(&run.baseline, 41, 80),
        0.04,
    );
    assert_eq!(run.canary[39].gauges[names::MODEL_CONFIDENCE], 0.85);
    assert!((run.canary[41].gauges[names::MODEL_CONFIDENCE] - 0.65).abs() < 1e-12);

    s.canary.effect.onset = Onset::Drift;
    let run = simulate(&s).unwrap();
    // Halfway, the drift is half done: ×1.5 around minute 10.
    close(
        "drift at half",
        median(&run.canary, 38, 42),
        1.5 * median(&run.baseline, 38, 42),
        0.06,
    );
    close(
        "drift at the start",
        median(&run.canary, 0, 4),
        median(&run.baseline, 0, 4),
        0.06,
    );
}

#[test]
fn warmup_and_instance_offsets_slow_what_they_should() {
    let mut s = busy(20);
    s.canary.warmup = Some(Warmup {
        factor: 2.0,
        duration: Duration::from_secs(600),
        flat: false,
    });
    let run = simulate(&s).unwrap();
    let ratio = |from, to| {
        between(&run.canary, from, to).quantile(0.5).unwrap()
            / between(&run.baseline, from, to).quantile(0.5).unwrap()
    };
    // The first minute runs at ×2 fading to ×1.9; after ten minutes it is gone.
    close("warm-up start", ratio(0, 4), 1.95, 0.04);
    close("warmed up", ratio(44, 80), 1.0, 0.03);

    // Held flat: × 3 for the first minute, then gone at once.
    let mut s = busy(20);
    s.canary.warmup = Some(Warmup {
        factor: 3.0,
        duration: Duration::from_secs(60),
        flat: true,
    });
    let run = simulate(&s).unwrap();
    let ratio = |from, to| {
        between(&run.canary, from, to).quantile(0.5).unwrap()
            / between(&run.baseline, from, to).quantile(0.5).unwrap()
    };
    close("flat warm-up", ratio(0, 3), 3.0, 0.06);
    close("after a flat warm-up", ratio(6, 40), 1.0, 0.03);

    let mut s = busy(20);
    s.instances = 4;
    s.instance_offset_sigma = 0.3;
    let a = simulate(&s).unwrap();
    let mut seeds_differ = false;
    for seed in 6..10 {
        let b = simulate(&s.clone().with_seed(seed)).unwrap();
        let m =
            |r: &canary_sim::Simulation| latency(r.canary.last().unwrap()).quantile(0.5).unwrap();
        seeds_differ |= (m(&a) / m(&b) - 1.0).abs() > 0.03;
    }
    assert!(
        seeds_differ,
        "per-instance offsets change a run's median from seed to seed"
    );
}

#[test]
fn gaps_drop_scrapes_from_both_arms_and_nan_the_gauge() {
    let mut s = Scenario::aa_guide(9);
    s.duration = Duration::from_secs(3600);
    s.gaps.missing = 0.1;
    s.gaps.nan = 0.1;
    let run = simulate(&s).unwrap();
    assert_eq!(run.baseline.len(), run.canary.len());
    let missing = 241 - run.canary.len();
    assert!(
        (10..=45).contains(&missing),
        "{missing} of 240 scrapes missing"
    );
    for (b, c) in run.baseline.iter().zip(&run.canary) {
        assert_eq!(b.at, c.at);
        assert!(!b.gauges[names::MODEL_CONFIDENCE].is_nan());
    }
    let nans = run
        .canary
        .iter()
        .filter(|o| o.gauges[names::MODEL_CONFIDENCE].is_nan())
        .count();
    assert!((8..=45).contains(&nans), "{nans} NaN gauges");
    // Zero errors stay zero.
    let mut s = Scenario::aa_guide(9);
    s.canary.error_rate = 0.0;
    s.canary.effect.error_factor = 5.0;
    let run = simulate(&s).unwrap();
    assert_eq!(run.canary.last().unwrap().counters[names::ERRORS], 0.0);
}

#[test]
fn the_catalog_covers_every_family_and_its_templates_are_valid() {
    let cases = catalog();
    for family in [Family::Aa, Family::Regression, Family::Improvement] {
        assert!(cases.iter().any(|c| c.family == family), "{family:?}");
    }
    for c in &cases {
        c.template.validate().unwrap();
        assert_eq!(
            c.family == Family::Aa,
            c.effect.is_empty(),
            "{}",
            c.scenario
        );
        assert_eq!(c.run(3).seed, 3);
    }
    for name in [
        "aa-heavy-tail",
        "aa-bimodal",
        "aa-ar1-shared-0.8",
        "aa-ar1-per-arm-0.3",
        "aa-diurnal",
        "aa-bursts",
        "aa-instance-offsets",
        "aa-warmup",
        "aa-low-traffic-1rps",
        "aa-zero-errors",
        "aa-gaps",
        "tail-only",
        "variance-only",
        "confidence-drop",
        "step-change",
        "drift",
    ] {
        assert!(cases.iter().any(|c| c.scenario == name), "{name}");
    }
    // The catalog's aa-guide starts as the calibration scenario does.
    let long = simulate(&cases[0].run(4)).unwrap();
    let short = simulate(&Scenario::aa_guide(4)).unwrap();
    assert_eq!(&long.canary[..=40], &short.canary[..]);
    assert!(FINE_BUCKETS.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn openmetrics_leaves_out_what_an_observation_lacks() {
    use canary_core::Version;
    let bare = Observation::new(Version::new("v1").unwrap(), canary_sim::epoch())
        .with_gauge(names::MODEL_CONFIDENCE, 0.9);
    let run = canary_sim::Simulation {
        baseline: vec![bare.clone()],
        canary: vec![bare],
        pods: Default::default(),
    };
    let text = run.to_openmetrics(&canary_sim::MetricNames::default());
    assert!(
        !text.contains("_bucket{") && !text.contains("http_requests_total{"),
        "{text}"
    );
    assert_eq!(text.matches("model_prediction_confidence{").count(), 2);
    assert!(text.ends_with("# EOF\n"));
    // A full run has every series, both status codes included.
    let full = simulate(&Scenario::aa_guide(1)).unwrap();
    let text = full.to_openmetrics(&canary_sim::MetricNames::default());
    // Two pods per arm, each with its own series; status="500" from a pod's first failure on.
    let failed = full
        .pods
        .baseline
        .iter()
        .chain(&full.pods.canary)
        .flat_map(|p| &p.observations)
        .filter(|o| o.counters["errors"] > 0.0)
        .count();
    assert_eq!(text.matches("status=\"500\"").count(), failed);
    assert!(failed > 3 * full.canary.len(), "{failed}");
}
