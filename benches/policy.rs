//! Speed of the decision engine and of a whole flow on in-memory fakes.
//!
//! `clone_metrics_pair` is the baseline measured in the same run: figures in the book (Performance) are
//! ratios against it, so they hold across machines. Run with `cargo bench --bench policy`.

use std::sync::Arc;

use canary::test_util::{healthy_metrics, ManualClock, RecordingDeployer, ScriptedSource};
use canary::{
    CanaryMetrics, CanaryValidator, Direction, MetricSpec, RollbackPolicy, ValidationRequest,
    ValidatorConfig, Version,
};
use divan::{black_box, Bencher};

fn main() {
    divan::main();
}

fn pair() -> (CanaryMetrics, CanaryMetrics) {
    let baseline = healthy_metrics("v1");
    let canary = healthy_metrics("v2")
        .with_latency_p99_ms(400.0)
        .with_error_rate_percent(0.5);
    (baseline, canary)
}

/// The baseline: copying the two inputs of an evaluation.
#[divan::bench]
fn clone_metrics_pair(bencher: Bencher) {
    let (b, c) = pair();
    bencher.bench(|| (black_box(&b).clone(), black_box(&c).clone()));
}

/// One evaluation of the six built-in metrics.
#[divan::bench]
fn evaluate_default_policy(bencher: Bencher) {
    let (b, c) = pair();
    let policy = RollbackPolicy::default();
    bencher.bench(|| policy.evaluate(black_box(&b), black_box(&c)));
}

/// One checked evaluation (plausibility of both arms, then the rules), as the bindings and
/// the validator run it.
#[divan::bench]
fn try_evaluate_default_policy(bencher: Bencher) {
    let (b, c) = pair();
    let policy = RollbackPolicy::default();
    bencher.bench(|| policy.try_evaluate(black_box(&b), black_box(&c)));
}

/// One evaluation with 20 user metrics on top of the built-ins.
#[divan::bench]
fn evaluate_with_20_user_metrics(bencher: Bencher) {
    let (mut b, mut c) = pair();
    let mut policy = RollbackPolicy::default();
    for i in 0..20 {
        let name = format!("kpi_{i}");
        policy = policy
            .with_metric(
                MetricSpec::new(&name, Direction::HigherIsBetter)
                    .critical()
                    .with_rollback_ratio(0.9),
            )
            .unwrap();
        b = b.with_custom(&name, 10.0 + i as f64);
        c = c.with_custom(&name, 10.5 + i as f64);
    }
    bencher.bench(|| policy.evaluate(black_box(&b), black_box(&c)));
}

fn validator(progressive: bool) -> CanaryValidator {
    let source = Arc::new(ScriptedSource::new());
    source.set("v1", healthy_metrics("v1"));
    source.set("v2", healthy_metrics("v2"));
    let config = if progressive {
        ValidatorConfig::progressive()
    } else {
        ValidatorConfig::default()
    };
    CanaryValidator::new(source, Arc::new(RecordingDeployer::with_production("v1")))
        .with_clock(Arc::new(ManualClock::default()))
        .with_config(config)
        .unwrap()
}

/// A whole validation (deploy, wait, fetch, evaluate, promote, report) on fakes.
#[divan::bench(args = [false, true])]
fn full_flow_on_fakes(bencher: Bencher, progressive: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let request = ValidationRequest::new(Version::new("v2").unwrap());
    // A fresh validator each time: a promotion changes the fake deployer's state.
    bencher
        .with_inputs(|| validator(progressive))
        .bench_values(|v| rt.block_on(v.validate(request.clone())));
}
