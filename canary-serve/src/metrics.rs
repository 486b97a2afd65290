//! The service's own metrics and the judge's, all named `canary_…`:
//!
//! | series | type | meaning |
//! |---|---|---|
//! | `canary_http_requests_total{route,code}` | counter | requests answered |
//! | `canary_http_request_duration_seconds{route}` | histogram | time to answer |
//! | `canary_http_requests_in_flight` | gauge | requests being answered |
//! | `canary_analyses_total{decision}` | counter | analyses by decision (`continue` included) |
//! | `canary_analyses_rejected_total{reason}` | counter | analyses refused: `busy`, `deadline` |
//! | `canary_prometheus_queries_total` | counter | HTTP requests sent to Prometheus (shared answers are not sent again) |
//! | the validator's series | | `canary_rollback_total` (rollback_auto verdicts), `canary_manual_review_total`, `canary_promotion_total` (proceed verdicts), `canary_analysis_duration_seconds` |

use std::sync::Arc;

use canary_core::ValidationMetrics;
use canary_prometheus::PrometheusSource;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Handles to the service's series.
pub(crate) struct ServiceMetrics {
    registry: Registry,
    pub(crate) requests: Family<Labels, Counter>,
    pub(crate) latency: Family<Labels, Histogram>,
    pub(crate) in_flight: Gauge,
    pub(crate) analyses: Family<Labels, Counter>,
    pub(crate) rejected: Family<Labels, Counter>,
    pub(crate) judge: ValidationMetrics,
}

impl std::fmt::Debug for ServiceMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceMetrics").finish_non_exhaustive()
    }
}

/// `canary_prometheus_queries_total`, read from the source when scraped.
#[derive(Debug)]
struct QueriesSent(Arc<PrometheusSource>);

impl Collector for QueriesSent {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(self.0.queries_sent());
        let metric = encoder.encode_descriptor(
            "canary_prometheus_queries",
            "HTTP requests sent to Prometheus, retries included",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

impl ServiceMetrics {
    pub(crate) fn new(source: Arc<PrometheusSource>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
        });
        let in_flight = Gauge::default();
        let analyses = Family::<Labels, Counter>::default();
        let rejected = Family::<Labels, Counter>::default();
        registry.register(
            "canary_http_requests",
            "HTTP requests answered, by route and status code",
            requests.clone(),
        );
        registry.register(
            "canary_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        registry.register(
            "canary_http_requests_in_flight",
            "HTTP requests being answered",
            in_flight.clone(),
        );
        registry.register(
            "canary_analyses",
            "Analyses answered, by decision",
            analyses.clone(),
        );
        registry.register(
            "canary_analyses_rejected",
            "Analyses refused: busy (queue timeout) or deadline",
            rejected.clone(),
        );
        registry.register_collector(Box::new(QueriesSent(source)));
        let judge = ValidationMetrics::register(&mut registry);
        ServiceMetrics {
            registry,
            requests,
            latency,
            in_flight,
            analyses,
            rejected,
            judge,
        }
    }

    /// The text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// One label pair.
pub(crate) fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_owned(), value.to_owned())]
}
