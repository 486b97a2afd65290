//! The sequential judge on simulated runs: what it catches, on which statistic, how soon; that
//! history rebuilds it; and that its memory does not grow with the run.

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
    // As soon as the minimum evidence allows: 2 minutes of warm-up and 4 of evidence.
    assert!(at <= 400.0, "decided at {at} s");
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
