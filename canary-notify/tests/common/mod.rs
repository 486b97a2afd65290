#![allow(dead_code)] // each test file uses some of these helpers
//! Real decision events, made by running the validator on in-memory fakes.

use std::sync::Arc;

use canary_core::test_util::{
    healthy_metrics, ManualClock, RecordingDeployer, RecordingNotifier, ScriptedSource,
};
use canary_core::{CanaryMetrics, CanaryValidator, DecisionEvent, ValidationRequest, Version};

pub(crate) async fn event_for(canary: CanaryMetrics) -> DecisionEvent {
    let source = Arc::new(ScriptedSource::new());
    source.set("v1.0.0", healthy_metrics("v1.0.0"));
    source.set("v1.1.0", canary);
    let recorder = Arc::new(RecordingNotifier::new("recorder"));
    let validator = CanaryValidator::new(
        source,
        Arc::new(RecordingDeployer::with_production("v1.0.0")),
    )
    .with_clock(Arc::new(ManualClock::default()))
    .with_notifier(recorder.clone());
    validator
        .validate(ValidationRequest::new(Version::new("v1.1.0").unwrap()))
        .await;
    recorder.events().remove(0)
}

pub(crate) async fn rollback_event() -> DecisionEvent {
    event_for(
        healthy_metrics("v1.1.0")
            .with_latency_p99_ms(512.0)
            .with_error_rate_percent(1.0),
    )
    .await
}

pub(crate) async fn promotion_event() -> DecisionEvent {
    event_for(healthy_metrics("v1.1.0")).await
}

pub(crate) async fn review_event() -> DecisionEvent {
    event_for(healthy_metrics("v1.1.0").with_latency_p99_ms(400.0)).await
}
