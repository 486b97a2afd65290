//! The validator's own metrics, in a `prometheus-client` registry that the caller owns.
//!
//! | series | type | meaning |
//! |---|---|---|
//! | `canary_validation_success` | gauge | 1 after a promotion, 0 after anything else; absent before the first validation |
//! | `canary_rollback_total` | counter | validations that rolled the canary back |
//! | `canary_promotion_total` | counter | validations that promoted the canary |
//! | `canary_manual_review_total` | counter | validations that ended in `rollback_manual` |
//! | `canary_analysis_duration_seconds` | histogram | deploy to decision, waits included |
//!
//! The guide's alert rules `increase(canary_rollback_total[1h]) > 0` and
//! `canary_validation_success == 0` work on these names.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Handles to the validator's series. Clones share the same series.
#[derive(Clone, Debug)]
pub struct ValidationMetrics {
    /// `canary_validation_success`: absent until the first validation ends, so that an idle
    /// process (a `canary serve` that never validates) does not fire `== 0` alerts.
    pub success: ValidationSuccess,
    /// `canary_rollback_total`.
    pub rollbacks: Counter,
    /// `canary_promotion_total`.
    pub promotions: Counter,
    /// `canary_manual_review_total`.
    pub manual_reviews: Counter,
    /// `canary_analysis_duration_seconds`.
    pub analysis_duration: Histogram,
}

/// The `canary_validation_success` gauge, exposed from the first [`set`](Self::set) on.
#[derive(Clone, Debug, Default)]
pub struct ValidationSuccess(Gauge, std::sync::Arc<std::sync::atomic::AtomicBool>);

impl ValidationSuccess {
    /// 1 if the validation that just ended promoted the canary, else 0.
    pub fn set(&self, promoted: bool) {
        self.0.set(i64::from(promoted));
        self.1.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The value, `None` before any validation ended.
    pub fn get(&self) -> Option<i64> {
        self.1
            .load(std::sync::atomic::Ordering::Acquire)
            .then(|| self.0.get())
    }
}

impl EncodeMetric for ValidationSuccess {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // No sample at all until a validation ends: the family's HELP and TYPE only.
        match self.get() {
            Some(v) => encoder.encode_gauge(&v),
            None => Ok(()),
        }
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Buckets for analyses that last from seconds to hours.
const DURATION_BUCKETS: [f64; 10] = [
    1.0, 10.0, 60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

impl ValidationMetrics {
    /// Creates the series and registers them in `registry`.
    ///
    /// To tell services apart, register into `registry.sub_registry_with_label(...)`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ValidationMetrics {
            success: ValidationSuccess::default(),
            rollbacks: Counter::default(),
            promotions: Counter::default(),
            manual_reviews: Counter::default(),
            analysis_duration: Histogram::new(DURATION_BUCKETS),
        };
        registry.register(
            "canary_validation_success",
            "1 if the last canary validation promoted the canary, else 0",
            metrics.success.clone(),
        );
        // prometheus-client appends `_total` to counters.
        registry.register(
            "canary_rollback",
            "Canary validations that rolled the canary back",
            metrics.rollbacks.clone(),
        );
        registry.register(
            "canary_promotion",
            "Canary validations that promoted the canary",
            metrics.promotions.clone(),
        );
        registry.register(
            "canary_manual_review",
            "Canary validations that ended in manual review",
            metrics.manual_reviews.clone(),
        );
        registry.register(
            "canary_analysis_duration_seconds",
            "Time from canary deploy to decision, waits included",
            metrics.analysis_duration.clone(),
        );
        metrics
    }
}

/// Renders a registry in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)
        .expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_have_the_names_the_alert_rules_use() {
        let mut registry = Registry::default();
        let m = ValidationMetrics::register(&mut registry);
        m.rollbacks.inc();
        assert!(
            !encode(&registry).contains("canary_validation_success 0"),
            "no value before any validation: an idle process must not fire `== 0` alerts"
        );
        assert_eq!(m.success.get(), None);
        m.success.set(false);
        assert_eq!(m.success.get(), Some(0));
        m.analysis_duration.observe(42.0);
        let text = encode(&registry);
        assert!(text.contains("# TYPE canary_rollback counter"), "{text}");
        assert!(text.contains("canary_rollback_total 1"), "{text}");
        assert!(text.contains("canary_validation_success 0"), "{text}");
        assert!(text.contains("canary_promotion_total 0"), "{text}");
        assert!(text.contains("canary_manual_review_total 0"), "{text}");
        assert!(
            text.contains("canary_analysis_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
