//! The guide's automatic-rollback triggers hold under every judge we ship as a default (the
//! sequential judge for `canary run`, `canary serve` and the chart; the threshold judge for
//! Python): p99 over 150 % of production's, errors over 200 %, model confidence under 80 %,
//! each shown with confidence (ten times the guide's traffic, effects well past the trigger),
//! is `rollback_auto`, never a manual review.

use std::time::Duration;

use canary_core::judge::{JudgeFactory, SequentialParameters, ThresholdParameters, Verdict};
use canary_core::{Evaluation, RollbackDecision, Rule};
use canary_sim::{simulate, Effect, Scenario};

fn judges() -> Vec<(&'static str, Box<dyn JudgeFactory>)> {
    vec![
        ("sequential", Box::new(SequentialParameters::default())),
        ("threshold", Box::new(ThresholdParameters::default())),
    ]
}

fn triggers() -> Vec<(&'static str, Effect)> {
    vec![
        (
            "p99 at 180 % of production's",
            Effect {
                latency_factor: 1.8,
                ..Effect::default()
            },
        ),
        (
            "errors at 300 %",
            Effect {
                error_factor: 3.0,
                ..Effect::default()
            },
        ),
        (
            "model confidence 0.60 against 0.85 (71 %)",
            Effect {
                confidence_delta: -0.25,
                ..Effect::default()
            },
        ),
    ]
}

/// Ten times the guide's traffic for 30 minutes, the canary carrying `effect`.
fn busy(seed: u64, effect: Effect) -> Scenario {
    let mut s = Scenario::aa_guide(seed);
    s.duration = Duration::from_secs(1800);
    s.total_rps *= 10.0;
    s.baseline.confidence_sd = 0.02;
    s.canary.confidence_sd = 0.02;
    s.canary.effect = effect;
    s
}

fn judged(factory: &dyn JudgeFactory, s: &Scenario) -> Evaluation {
    let run = simulate(s).unwrap();
    let mut judge = factory.start().unwrap();
    for (b, c) in run.baseline.iter().zip(&run.canary) {
        if let Verdict::Decided(e) = judge.observe(b, c) {
            return *e;
        }
    }
    judge.finish()
}

#[test]
fn every_trigger_of_the_guide_rolls_back_automatically_under_every_default_judge() {
    for (judge, factory) in judges() {
        for (trigger, effect) in triggers() {
            for seed in 0..3 {
                let e = judged(factory.as_ref(), &busy(seed, effect.clone()));
                assert_eq!(
                    e.decision,
                    RollbackDecision::RollbackAuto,
                    "{judge}, {trigger}, seed {seed}: {}",
                    e.primary_reason
                );
                assert!(
                    e.fired(Rule::RollbackThreshold),
                    "{judge}, {trigger}: {:?}",
                    e.triggered_conditions
                );
            }
        }
    }
}

#[test]
fn a_confidence_drop_short_of_the_trigger_stays_a_manual_review() {
    // 0.80 against 0.85 (94 %): worse than the sequential judge's margin, not the guide's
    // trigger.
    let drop = Effect {
        confidence_delta: -0.05,
        ..Effect::default()
    };
    let e = judged(&SequentialParameters::default(), &busy(1, drop));
    assert_eq!(
        e.decision,
        RollbackDecision::RollbackManual,
        "{}",
        e.primary_reason
    );
    assert!(
        e.fired(Rule::WarningThreshold),
        "{:?}",
        e.triggered_conditions
    );
}
