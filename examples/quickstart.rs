//! A whole canary validation on built-in metrics: no Prometheus, no cluster.
//!
//! Two canaries are validated one after the other, twice: once by the guide's threshold
//! policy (one look after the 10-minute warm-up: what the Python API does, as the guide
//! says), once by the sequential judge (at every scrape, deciding as soon as it is sure: what
//! `canary run` and `canary serve` do by default). v1.5.0 is healthy and is promoted over
//! production v1.4.0; v1.6.0, validated against the new production v1.5.0, regresses its p99
//! latency and error rate and is rolled back. The deployer and notifier are in-memory
//! stand-ins, and the clock is virtual, so the warm-ups take no time.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Arc;
use std::time::Duration;

use canary::judge::SequentialParameters;
use canary::test_util::{
    healthy_metrics, steady_observations, ManualClock, RecordingDeployer, RecordingNotifier,
    ScriptedObservations, ScriptedSource,
};
use canary::{CanaryValidator, Clock, Region, ValidationReport, ValidationRequest, Version};

/// Cumulative shares of requests at the guide's latency buckets and `+Inf`: p50 near 60 ms,
/// p99 near 700 ms.
const SHARES: [f64; 8] = [0.3, 0.75, 0.93, 0.992, 0.999, 1.0, 1.0, 1.0];

/// A canary twice as slow in its tail (p99 past 1 s).
const SLOW_SHARES: [f64; 8] = [0.45, 0.7, 0.88, 0.97, 0.995, 1.0, 1.0, 1.0];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), canary::Error> {
    // What Prometheus would answer, per version: one look at a window.
    let metrics = Arc::new(ScriptedSource::new());
    metrics.set("v1.4.0", healthy_metrics("v1.4.0"));
    metrics.set(
        "v1.5.0",
        healthy_metrics("v1.5.0")
            .with_latency_p99_ms(305.0)
            .with_error_rate_percent(0.38)
            .with_request_rate_rps(13.0)
            .with_sample_count(3_900.0),
    );
    metrics.set(
        "v1.6.0",
        healthy_metrics("v1.6.0")
            .with_latency_p99_ms(610.0)
            .with_error_rate_percent(1.3)
            .with_request_rate_rps(12.0)
            .with_sample_count(3_600.0),
    );

    println!("# The guide's threshold policy (one look after the warm-up)\n");
    // Production runs v1.4.0; the deployer records what a helm deployer would do.
    let deployer = Arc::new(RecordingDeployer::with_production("v1.4.0"));
    let notifier = Arc::new(RecordingNotifier::new("console"));
    let validator = CanaryValidator::new(metrics.clone(), deployer.clone())
        .with_notifier(notifier.clone())
        .with_clock(Arc::new(ManualClock::starting_at(chrono::Utc::now())));
    for version in ["v1.5.0", "v1.6.0"] {
        let report = validator.validate(request(version)?).await;
        println!("{}", report.to_markdown());
        summary("threshold", version, &report, &deployer);
    }

    println!("# The sequential judge (the `canary` command's default)\n");
    // The same versions as Prometheus holds them over time: cumulative counters and latency
    // histograms every 15 s, production at 40 requests a second, each canary at 13 (as above).
    let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
    let (start, span, scrape) = (
        clock.now(),
        Duration::from_secs(2 * 3600),
        Duration::from_secs(15),
    );
    let over_time = Arc::new(ScriptedObservations::new());
    let steady = |v: &str, rps: f64, errors: f64, shares: [f64; 8]| {
        steady_observations(v, rps, errors, shares, start, span, scrape)
    };
    over_time.set("v1.4.0", steady("v1.4.0", 40.0, 0.01, SHARES));
    over_time.set("v1.5.0", steady("v1.5.0", 13.0, 0.01, SHARES));
    // Once promoted, v1.5.0 is production at production's traffic.
    let v15_as_production = steady("v1.5.0", 40.0, 0.01, SHARES);
    let deployer = Arc::new(RecordingDeployer::with_production("v1.4.0"));
    let region =
        Region::new("quickstart", metrics, deployer.clone()).with_observations(over_time.clone());
    let validator = CanaryValidator::for_region(region)
        .with_judge(Arc::new(SequentialParameters::default()))
        .with_clock(clock);
    let report = validator.validate(request("v1.5.0")?).await;
    println!("{}", report.to_markdown());
    summary("sequential", "v1.5.0", &report, &deployer);

    over_time.set("v1.5.0", v15_as_production);
    over_time.set("v1.6.0", steady("v1.6.0", 13.0, 0.03, SLOW_SHARES));
    let report = validator.validate(request("v1.6.0")?).await;
    println!("{}", report.to_markdown());
    summary("sequential", "v1.6.0", &report, &deployer);

    println!("{} notifications sent.", notifier.events().len());
    Ok(())
}

fn request(version: &str) -> Result<ValidationRequest, canary::Error> {
    Ok(ValidationRequest::new(Version::new(version)?).with_values_file("values-canary.yaml"))
}

/// One line per validation: what happened, after how long, and what production runs now.
fn summary(judge: &str, version: &str, report: &ValidationReport, deployer: &RecordingDeployer) {
    let waited: f64 = report.steps.iter().map(|s| s.waited_seconds).sum();
    println!(
        "=> {version}: {} by the {judge} judge after {waited:.0} s of canary traffic (production now runs {})\n",
        report.outcome.as_str(),
        deployer
            .production()
            .map(|v| v.to_string())
            .unwrap_or_default()
    );
}
