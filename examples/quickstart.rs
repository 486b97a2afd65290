//! A whole canary validation on built-in metrics: no Prometheus, no cluster.
//!
//! Two canaries are validated one after the other. v1.5.0 is healthy and is promoted over
//! production v1.4.0; v1.6.0, validated against the new production v1.5.0, regresses its p99
//! latency and error rate and is rolled back. The deployer and notifier are in-memory
//! stand-ins, and the clock is virtual, so the 10-minute warm-ups take no time.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Arc;

use canary::test_util::{
    healthy_metrics, ManualClock, RecordingDeployer, RecordingNotifier, ScriptedSource,
};
use canary::{CanaryValidator, ValidationRequest, Version};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), canary::Error> {
    // What Prometheus would answer, per version.
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

    // Production runs v1.4.0; the deployer records what a helm deployer would do.
    let deployer = Arc::new(RecordingDeployer::with_production("v1.4.0"));
    let notifier = Arc::new(RecordingNotifier::new("console"));
    let validator = CanaryValidator::new(metrics, deployer.clone())
        .with_notifier(notifier.clone())
        .with_clock(Arc::new(ManualClock::starting_at(chrono::Utc::now())));

    for version in ["v1.5.0", "v1.6.0"] {
        let request =
            ValidationRequest::new(Version::new(version)?).with_values_file("values-canary.yaml");
        let report = validator.validate(request).await;
        println!("{}", report.to_markdown());
        println!(
            "=> {version}: {} (production now runs {})\n",
            report.outcome.as_str(),
            deployer
                .production()
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
    }
    println!("{} notifications sent.", notifier.events().len());
    Ok(())
}
