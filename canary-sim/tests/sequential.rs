//! The sequential judge on simulated runs: what it catches, on which statistic, how soon; that
//! history rebuilds it; and that its memory does not grow with the run. How soon it decides
//! (issue 19): catastrophes at once, warm-up or not; warm-ups that pass are not rolled back;
//! healthy canaries promoted once what matters would have been caught with 95 % power, and the
//! evaluation says what that was.

use std::time::Duration;

use canary_core::judge::{Judge, SequentialJudge, SequentialParameters, Verdict};
use canary_core::{Evaluation, RollbackDecision, Rule};
use canary_sim::{catalog, simulate, Case, Scenario, Simulation};

fn case(scenario: &str, effect: &str) -> Case {
    catalog()
        .into_iter()
        .find(|c| c.scenario == scenario && c.effect == effect)
        .unwrap_or_else(|| panic!("no case {scenario} {effect}"))
}

/// Judges `run` at every scrape: the decision and when (seconds into the run).
fn judge(parameters: SequentialParameters, run: &Simulation) -> (Evaluation, f64) {
    let mut j = SequentialJudge::new(parameters).unwrap();
    let first = run.canary[0].at;
    for (b, c) in run.baseline.iter().zip(&run.canary) {
        if let Verdict::Decided(e) = j.observe(b, c) {
            return (*e, (c.at - first).num_seconds() as f64);
        }
    }
    let last = run.canary.last().unwrap().at;
    (j.finish(), (last - first).num_seconds() as f64)
}

fn run(scenario: &str, effect: &str, seed: u64) -> Simulation {
    simulate(&case(scenario, effect).run(seed)).unwrap()
}

#[test]
fn a_fivefold_error_rate_rolls_back_within_minutes_on_the_error_rate() {
    let (e, at) = judge(SequentialParameters::default(), &run("error-rate", "x5", 1));
    assert_eq!(
        e.decision,
        RollbackDecision::RollbackAuto,
        "{}",
        e.primary_reason
    );
    // A catastrophe (× 3 or more): before the ordinary evidence's first chance at 360 s.
    assert!(at < 360.0, "decided at {at} s");
    let c = &e.triggered_conditions[0];
    assert_eq!(
        (c.rule, c.metric.as_deref()),
        (Rule::RollbackThreshold, Some("error_rate"))
    );
    let row = e
        .comparisons
        .iter()
        .find(|c| c.metric == "error_rate")
        .unwrap();
    let i = row.interval.as_ref().unwrap();
    assert!(i.lower.unwrap() > 1.1 && i.estimate.unwrap() > 3.0, "{i:?}");
}

#[test]
fn a_tail_only_regression_is_caught_at_the_tail() {
    let (e, _) = judge(
        SequentialParameters::default(),
        &run("tail-only", "p99+50%", 2),
    );
    assert_eq!(
        e.decision,
        RollbackDecision::RollbackAuto,
        "{}",
        e.primary_reason
    );
    let metric = e.triggered_conditions[0].metric.clone().unwrap();
    assert!(
        metric == "latency_p95" || metric == "latency_p99",
        "{metric}"
    );
    assert!(
        e.primary_reason.contains("slower than"),
        "{}",
        e.primary_reason
    );
}

#[test]
fn a_variance_only_regression_is_caught() {
    let (e, _) = judge(
        SequentialParameters::default(),
        &run("variance-only", "sigma x1.3", 3),
    );
    assert_eq!(
        e.decision,
        RollbackDecision::RollbackAuto,
        "{}",
        e.primary_reason
    );
}

#[test]
fn a_confidence_drop_goes_to_review_as_a_non_critical_metric() {
    let (e, at) = judge(
        SequentialParameters::default(),
        &run("confidence-drop", "-0.05", 4),
    );
    assert_eq!(
        e.decision,
        RollbackDecision::RollbackManual,
        "{}",
        e.primary_reason
    );
    let c = &e.triggered_conditions[0];
    assert_eq!(
        (c.rule, c.metric.as_deref()),
        (Rule::WarningThreshold, Some("model_confidence"))
    );
    assert!(at < 600.0, "decided at {at} s");
}

#[test]
fn a_healthy_canary_proceeds_by_the_maximum_duration_and_not_before_the_minimum() {
    for seed in 0..5 {
        let (e, at) = judge(SequentialParameters::default(), &run("aa-guide", "", seed));
        assert_eq!(
            e.decision,
            RollbackDecision::Proceed,
            "{}",
            e.primary_reason
        );
        assert!((300.0..=3600.0).contains(&at), "{at}");
    }
}

#[test]
fn too_little_traffic_is_insufficient_data_at_the_end() {
    let mut s = Scenario::aa_guide(7);
    s.duration = Duration::from_secs(3600);
    s.total_rps = 0.02;
    let (e, _) = judge(SequentialParameters::default(), &simulate(&s).unwrap());
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(
        e.primary_reason.starts_with("insufficient data"),
        "{}",
        e.primary_reason
    );
    assert!(e.fired(Rule::InsufficientSamples));
}

#[test]
fn replaying_history_since_the_start_rebuilds_the_same_verdicts() {
    let sim = run("latency-shift", "+25%", 5);
    let mut live = SequentialJudge::new(SequentialParameters::default()).unwrap();
    let mut verdicts = Vec::new();
    for (b, c) in sim.baseline.iter().zip(&sim.canary) {
        verdicts.push(live.observe(b, c));
    }
    // A service asked "judge this canary since T" at look i needs only the history.
    for i in [10, 30, verdicts.len() - 1] {
        let mut rebuilt = SequentialJudge::new(SequentialParameters::default()).unwrap();
        let mut last = Verdict::Continue;
        for (b, c) in sim.baseline[..=i].iter().zip(&sim.canary[..=i]) {
            last = rebuilt.observe(b, c);
        }
        assert_eq!(last, verdicts[i], "look {i}");
    }
    assert!(matches!(verdicts.last(), Some(Verdict::Decided(_))));
}

#[test]
fn memory_does_not_grow_with_the_run() {
    let mut s = Scenario::aa_guide(8);
    s.duration = Duration::from_secs(6 * 3600);
    let sim = simulate(&s).unwrap();
    let parameters = SequentialParameters {
        max_duration: Duration::from_secs(6 * 3600),
        min_duration: Duration::from_secs(6 * 3600),
        ..SequentialParameters::default()
    };
    let mut j = SequentialJudge::new(parameters).unwrap();
    let mut longest = 0;
    for (b, c) in sim.baseline.iter().zip(&sim.canary) {
        j.observe(b, c);
        longest = longest.max(j.sequence().len());
    }
    // 1,440 looks with several statistics each: the trace thins itself instead of growing.
    assert!(longest <= 2000 + 16, "{longest}");
    let points = j.sequence();
    assert!(
        points.first().unwrap().seconds <= 120.0 && points.last().unwrap().seconds >= 5.0 * 3600.0
    );
}

/// The seeds are judged two at a time (the machines have two cores).
fn over_seeds(
    seeds: std::ops::Range<u64>,
    each: impl Fn(u64) -> (Evaluation, f64) + Sync,
) -> Vec<(Evaluation, f64)> {
    let seeds: Vec<u64> = seeds.collect();
    let (a, b) = seeds.split_at(seeds.len() / 2);
    std::thread::scope(|s| {
        let each = &each;
        let first = s.spawn(move || a.iter().map(|&x| each(x)).collect::<Vec<_>>());
        let mut out: Vec<_> = b.iter().map(|&x| each(x)).collect();
        let mut all = first.join().unwrap();
        all.append(&mut out);
        all
    })
}

/// Every seed of a catastrophe is rolled back as one, by `by` seconds, on a metric whose name
/// starts with `metric`.
fn rolled_back_at_once(scenario: &str, effect: &str, seeds: u64, by: f64, metric: &str) {
    let results = over_seeds(0..seeds, |seed| {
        judge(
            SequentialParameters::default(),
            &run(scenario, effect, seed),
        )
    });
    for (e, at) in &results {
        assert_eq!(
            e.decision,
            RollbackDecision::RollbackAuto,
            "{}",
            e.primary_reason
        );
        assert!(*at <= by, "decided at {at} s: {}", e.primary_reason);
        let c = &e.triggered_conditions[0];
        assert_eq!(c.rule, Rule::RollbackThreshold);
        assert!(
            c.metric.as_deref().unwrap().starts_with(metric),
            "{:?}",
            c.metric
        );
        assert!(
            c.message.contains("before the minimum evidence"),
            "{}",
            c.message
        );
    }
}

#[test]
fn a_canary_failing_half_its_requests_is_rolled_back_in_its_warm_up() {
    // Inside the two-minute warm-up (errors in it are not excused), within a minute.
    rolled_back_at_once("half-failing", "50% errors", 10, 60.0, "error_rate");
}

#[test]
fn a_tripled_latency_is_rolled_back_before_the_minimum_evidence() {
    let p = SequentialParameters::default();
    // Before the ordinary evidence's first chance.
    let ordinary = (p.warmup + p.min_evidence).as_secs_f64();
    rolled_back_at_once("latency-shift", "+200%", 6, ordinary - 1.0, "latency_");
}

#[test]
fn warm_ups_that_pass_are_not_rolled_back() {
    // The two shapes: latency × 1.6 for 90 s, × 3 for 30 s, then normal.
    for family in ["aa-warmup-flat-1.6-90s", "aa-warmup-flat-3-30s"] {
        let results = over_seeds(0..16, |seed| {
            judge(SequentialParameters::default(), &run(family, "", seed))
        });
        for (e, at) in &results {
            assert_eq!(
                e.decision,
                RollbackDecision::Proceed,
                "{family} at {at} s: {}",
                e.primary_reason
            );
        }
    }
}

#[test]
fn ten_times_the_traffic_promotes_within_minutes_and_says_what_it_would_have_caught() {
    let p = SequentialParameters::default();
    let results = over_seeds(0..6, |seed| {
        judge(
            SequentialParameters::default(),
            &run("aa-high-traffic-10x", "", seed),
        )
    });
    for (e, at) in &results {
        assert_eq!(
            e.decision,
            RollbackDecision::Proceed,
            "{}",
            e.primary_reason
        );
        // Not before the minimum duration after the warm-up, and long before the hour.
        assert!(
            *at >= (p.warmup + p.min_duration).as_secs_f64() && *at <= 600.0,
            "promoted at {at} s"
        );
        assert!(
            e.primary_reason
                .contains("would have caught what matters with 95% power")
                && e.primary_reason.contains("a power statement, not a proof"),
            "{}",
            e.primary_reason
        );
        // Each row states the smallest regression it would have caught, within what matters.
        let caught = |row: &str| {
            e.comparisons
                .iter()
                .find(|c| c.metric == row)
                .and_then(|c| c.interval.as_ref())
                .and_then(|i| i.caught)
                .unwrap_or_else(|| panic!("{row} states no power"))
        };
        // Errors are powered for × 2, or excluded at × 2 (the exclusion can come first).
        let errors = caught("error_rate");
        let excluded = e
            .primary_reason
            .contains("excludes, at 95% anytime-valid confidence, error_rate × 2 or worse");
        assert!(
            errors > 1.0 && (errors <= 2.0 || excluded),
            "{errors}: {}",
            e.primary_reason
        );
        // Excluded, its power falling short is not a shortfall, and the statement says none.
        if excluded {
            assert!(
                !e.primary_reason
                    .contains("not reached for what matters: error_rate"),
                "{}",
                e.primary_reason
            );
        }
        let p99 = caught("latency_p99");
        assert!(p99 > 1.0 && p99 <= 1.25, "{p99}");
        // The sentence states the same figure, rounded to two decimals.
        let stated: f64 = e
            .primary_reason
            .rsplit("power at the traffic seen: ")
            .next()
            .unwrap_or_default()
            .split("error_rate × ")
            .nth(1)
            .and_then(|rest| rest.split([',', ' ']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", e.primary_reason));
        assert!((stated - errors).abs() <= 0.006, "{stated} vs {errors}");
    }
}

#[test]
fn what_matters_decides_how_soon_a_healthy_canary_is_promoted() {
    let strict = || {
        let mut p = SequentialParameters::default();
        p.matters.insert("error_rate".into(), 1.5);
        p
    };
    // Finer buckets clear latency within minutes, so errors decide when to promote.
    let results = over_seeds(0..4, |seed| {
        let sim = run("aa-fine-buckets", "", seed);
        let (d, at) = judge(SequentialParameters::default(), &sim);
        let (s, strict_at) = judge(strict(), &sim);
        assert_eq!(
            d.decision,
            RollbackDecision::Proceed,
            "{}",
            d.primary_reason
        );
        assert_eq!(
            s.decision,
            RollbackDecision::Proceed,
            "{}",
            s.primary_reason
        );
        (s, strict_at - at)
    });
    for (e, later) in &results {
        // Errors × 1.5 need more traffic than × 2: the same run promotes later, or only at
        // the maximum duration, where the report says what was not reached.
        assert!(*later > 0.0, "promoted {later} s later");
        if !e.primary_reason.contains("95% power") {
            assert!(
                e.warnings
                    .iter()
                    .any(|w| w.contains("not reached for what matters: error_rate × 1.5")),
                "{:?}",
                e.warnings
            );
        }
    }
}

#[test]
fn thin_traffic_waits_while_waiting_sharpens_and_says_what_was_not_reachable() {
    // What matters is out of reach within the hour, but doubling the evidence sharpens what
    // the judge catches by more than 10 % until late in the hour: it waits until then.
    let (e, at) = judge(
        SequentialParameters::default(),
        &run("aa-low-traffic-1rps", "", 0),
    );
    assert!(
        at > 3000.0,
        "stopped waiting at {at} s: {}",
        e.primary_reason
    );
    assert_eq!(
        e.decision,
        RollbackDecision::Proceed,
        "{}",
        e.primary_reason
    );
    if at < 3600.0 {
        assert!(
            e.primary_reason
                .contains("what matters is out of reach within 60 min"),
            "{}",
            e.primary_reason
        );
    }
    let power = e
        .warnings
        .iter()
        .find(|w| w.starts_with("power at the traffic seen"))
        .unwrap_or_else(|| panic!("{:?}", e.warnings));
    assert!(power.contains("not reached for what matters"), "{power}");
}

#[test]
fn a_canary_at_what_matters_is_promoted_early_in_at_most_the_promotion_risk() {
    // Errors × 2 is exactly what matters: an early promotion by exclusion may happen in at
    // most 5 % of runs, however often the judge looks (Ville). 120 seeds; a share above 10 %
    // would be beyond the Monte Carlo error of a 5 % rate.
    let results = over_seeds(0..120, |seed| {
        judge(
            SequentialParameters::default(),
            &run("error-rate", "x2", seed),
        )
    });
    let early = results
        .iter()
        .filter(|(e, at)| e.decision == RollbackDecision::Proceed && *at < 3600.0)
        .count();
    assert!(early <= 12, "{early} of 120 promoted early");
    // And the exclusion is what promotes healthy canaries sooner than the power statement
    // alone did (1,455 s at the median before it).
    let healthy = over_seeds(0..8, |seed| {
        judge(SequentialParameters::default(), &run("aa-guide", "", seed))
    });
    let mut times: Vec<f64> = healthy.iter().map(|(_, at)| *at).collect();
    times.sort_by(f64::total_cmp);
    assert!(times[4] < 1400.0, "{times:?}");
    assert!(
        healthy
            .iter()
            .any(|(e, _)| e.primary_reason.contains("the evidence excludes")),
        "{:?}",
        healthy
            .iter()
            .map(|(e, _)| &e.primary_reason)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_service_without_errors_is_cleared_against_the_floor() {
    // No errors in either arm: errors × 2 of production's zero says nothing, but the canary's
    // own rate is surely below twice the 0.5 % floor, which clears it.
    let (e, at) = judge(
        SequentialParameters::default(),
        &run("aa-zero-errors", "", 2),
    );
    assert_eq!(
        e.decision,
        RollbackDecision::Proceed,
        "{}",
        e.primary_reason
    );
    assert!(at < 3600.0, "{at}: {}", e.primary_reason);
    assert!(
        e.primary_reason
            .contains("error_rate at × 2 of the 0.5% floor or above"),
        "{}",
        e.primary_reason
    );
}
