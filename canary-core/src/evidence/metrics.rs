//! What is measured about one version: the guide's `CanaryMetrics`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Names of the built-in metrics, as used in policies, queries and reports.
pub mod names {
    /// Median latency, in milliseconds.
    pub const LATENCY_P50: &str = "latency_p50";
    /// 95th percentile latency, in milliseconds.
    pub const LATENCY_P95: &str = "latency_p95";
    /// 99th percentile latency, in milliseconds.
    pub const LATENCY_P99: &str = "latency_p99";
    /// Share of requests that failed, in percent (0..100).
    pub const ERROR_RATE: &str = "error_rate";
    /// Mean model prediction confidence (0..1).
    pub const MODEL_CONFIDENCE: &str = "model_confidence";
    /// Requests per second.
    pub const REQUEST_RATE: &str = "request_rate";
    /// Requests observed in the analysis window.
    pub const SAMPLE_COUNT: &str = "sample_count";

    /// Every built-in name, in report order.
    pub const ALL: [&str; 7] = [
        LATENCY_P50,
        LATENCY_P95,
        LATENCY_P99,
        ERROR_RATE,
        MODEL_CONFIDENCE,
        REQUEST_RATE,
        SAMPLE_COUNT,
    ];
}

/// The values a measurement can plausibly take. Outside them a value is not data but a fault
/// (a broken exporter, a unit mistake, a hostile server), and it is refused with an error that
/// names the metric, the value and the bound, never judged.
///
/// | metric | plausible range | why |
/// |---|---|---|
/// | `latency_p50`, `latency_p95`, `latency_p99` | 0 ..= 3,600,000 ms | no request waits an hour; histograms end far below |
/// | `error_rate` | 0 ..= 100 % | a percentage |
/// | `model_confidence` | 0 ..= 1 | a probability |
/// | `request_rate` | 0 ..= 1e9 req/s | a thousand times the largest services |
/// | `sample_count` | 0 ..= 1e12 requests | a window of a thousand billion requests |
/// | a user metric | its [`MetricSpec::plausible_range`](crate::MetricSpec::plausible_range), default ±1e15 | configurable |
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Plausible {
    /// The smallest plausible value.
    pub min: f64,
    /// The largest plausible value.
    pub max: f64,
}

impl Plausible {
    /// Latencies, in milliseconds: up to one hour.
    pub const LATENCY_MS: Plausible = Plausible::new(0.0, 3_600_000.0);
    /// Error rates, in percent.
    pub const PERCENT: Plausible = Plausible::new(0.0, 100.0);
    /// Confidences and other probabilities.
    pub const PROBABILITY: Plausible = Plausible::new(0.0, 1.0);
    /// Request rates, in requests per second.
    pub const REQUEST_RATE: Plausible = Plausible::new(0.0, 1e9);
    /// Requests in one analysis window.
    pub const SAMPLE_COUNT: Plausible = Plausible::new(0.0, 1e12);
    /// The default range of a user metric.
    pub const USER_DEFAULT: Plausible = Plausible::new(-1e15, 1e15);

    /// The range `min ..= max`.
    pub const fn new(min: f64, max: f64) -> Self {
        Plausible { min, max }
    }

    /// The range of a built-in metric; `None` for a user metric.
    pub fn of_builtin(name: &str) -> Option<Plausible> {
        Some(match name {
            names::LATENCY_P50 | names::LATENCY_P95 | names::LATENCY_P99 => Self::LATENCY_MS,
            names::ERROR_RATE => Self::PERCENT,
            names::MODEL_CONFIDENCE => Self::PROBABILITY,
            names::REQUEST_RATE => Self::REQUEST_RATE,
            names::SAMPLE_COUNT => Self::SAMPLE_COUNT,
            _ => return None,
        })
    }

    /// Whether `v` is a finite number inside the range.
    pub fn contains(&self, v: f64) -> bool {
        v.is_finite() && v >= self.min && v <= self.max
    }

    /// Whether the range itself is usable: finite and not empty.
    pub fn is_valid(&self) -> bool {
        self.min.is_finite() && self.max.is_finite() && self.min <= self.max
    }

    /// `between 0 and 3600000`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "between {} and {}",
            crate::format::num(self.min),
            crate::format::num(self.max)
        )
    }
}

/// The metrics of one version over one analysis window.
///
/// Every value is an `Option`: `None` means "not measured" (no series, no traffic, a NaN
/// quantile), and is never read as 0. [`CanaryMetrics::validate`] rejects impossible values.
///
/// ```
/// use canary_core::CanaryMetrics;
/// let m = CanaryMetrics::new("v1.3.0")
///     .with_latency_p99_ms(120.0)
///     .with_error_rate_percent(0.4)
///     .with_sample_count(5_000.0);
/// assert!(m.validate().is_ok());
/// assert_eq!(m.model_confidence, None); // not measured, not 0
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryMetrics {
    /// The version label the metrics were selected by.
    pub version: String,
    /// When the metrics were taken (the end of the analysis window).
    pub timestamp: DateTime<Utc>,
    /// Median latency in milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile latency in milliseconds.
    pub latency_p95_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// Failed requests in percent, 0..=100.
    pub error_rate_percent: Option<f64>,
    /// Mean model confidence, 0..=1.
    pub model_confidence: Option<f64>,
    /// Requests per second.
    pub request_rate_rps: Option<f64>,
    /// Requests in the window. A float because Prometheus' `increase()` extrapolates.
    pub sample_count: Option<f64>,
    /// A user's own metrics (business KPIs, A/B metrics), by name. Absent means not measured.
    #[serde(default)]
    pub custom: BTreeMap<String, f64>,
    /// Evidence: the query that produced each metric, by metric name.
    #[serde(default)]
    pub queries: BTreeMap<String, String>,
    /// Warnings the source reported (e.g. Prometheus `warnings`), kept for the report.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What the store said with its answers (Prometheus's `warnings`, e.g. Thanos's "partial
    /// response"), each prefixed with its metric: an answer that may leave data out. Any of
    /// them keeps the canary from being promoted. Also listed in `warnings`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store_warnings: Vec<String>,
    /// Set when the arm had requests in the window but no series of them reports at the
    /// window's end (its pods stopped, or its target is down): what the source saw. Keeps the
    /// canary from being promoted on what it sent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reporting: Option<String>,
}

impl CanaryMetrics {
    /// Metrics of `version` with nothing measured yet, timestamped now.
    pub fn new(version: impl Into<String>) -> Self {
        Self::at(version, Utc::now())
    }

    /// Metrics of `version` with nothing measured yet, at `timestamp`.
    pub fn at(version: impl Into<String>, timestamp: DateTime<Utc>) -> Self {
        CanaryMetrics {
            version: version.into(),
            timestamp,
            latency_p50_ms: None,
            latency_p95_ms: None,
            latency_p99_ms: None,
            error_rate_percent: None,
            model_confidence: None,
            request_rate_rps: None,
            sample_count: None,
            custom: BTreeMap::new(),
            queries: BTreeMap::new(),
            warnings: Vec::new(),
            store_warnings: Vec::new(),
            stopped_reporting: None,
        }
    }

    /// Sets the median latency (ms).
    pub fn with_latency_p50_ms(mut self, v: f64) -> Self {
        self.latency_p50_ms = Some(v);
        self
    }
    /// Sets the p95 latency (ms).
    pub fn with_latency_p95_ms(mut self, v: f64) -> Self {
        self.latency_p95_ms = Some(v);
        self
    }
    /// Sets the p99 latency (ms).
    pub fn with_latency_p99_ms(mut self, v: f64) -> Self {
        self.latency_p99_ms = Some(v);
        self
    }
    /// Sets the error rate (percent).
    pub fn with_error_rate_percent(mut self, v: f64) -> Self {
        self.error_rate_percent = Some(v);
        self
    }
    /// Sets the model confidence (0..1).
    pub fn with_model_confidence(mut self, v: f64) -> Self {
        self.model_confidence = Some(v);
        self
    }
    /// Sets the request rate (req/s).
    pub fn with_request_rate_rps(mut self, v: f64) -> Self {
        self.request_rate_rps = Some(v);
        self
    }
    /// Sets the sample count.
    pub fn with_sample_count(mut self, v: f64) -> Self {
        self.sample_count = Some(v);
        self
    }
    /// Sets a user metric.
    pub fn with_custom(mut self, name: impl Into<String>, v: f64) -> Self {
        self.custom.insert(name.into(), v);
        self
    }

    /// The value of a metric by name, built-in or custom. `None` if it was not measured.
    pub fn value(&self, name: &str) -> Option<f64> {
        match name {
            names::LATENCY_P50 => self.latency_p50_ms,
            names::LATENCY_P95 => self.latency_p95_ms,
            names::LATENCY_P99 => self.latency_p99_ms,
            names::ERROR_RATE => self.error_rate_percent,
            names::MODEL_CONFIDENCE => self.model_confidence,
            names::REQUEST_RATE => self.request_rate_rps,
            names::SAMPLE_COUNT => self.sample_count,
            other => self.custom.get(other).copied(),
        }
    }

    /// Sets a metric by name; unknown names become custom metrics. `None` clears it.
    pub fn set_value(&mut self, name: &str, value: Option<f64>) {
        let slot = match name {
            names::LATENCY_P50 => &mut self.latency_p50_ms,
            names::LATENCY_P95 => &mut self.latency_p95_ms,
            names::LATENCY_P99 => &mut self.latency_p99_ms,
            names::ERROR_RATE => &mut self.error_rate_percent,
            names::MODEL_CONFIDENCE => &mut self.model_confidence,
            names::REQUEST_RATE => &mut self.request_rate_rps,
            names::SAMPLE_COUNT => &mut self.sample_count,
            other => {
                match value {
                    Some(v) => self.custom.insert(other.to_owned(), v),
                    None => self.custom.remove(other),
                };
                return;
            }
        };
        *slot = value;
    }

    /// Checks that every measured value is possible. Missing values are fine: they are "no data".
    ///
    /// Rejects NaN and infinities anywhere, and any built-in value outside its [`Plausible`]
    /// range: a negative latency, an error rate outside 0..=100, a confidence outside 0..=1, a
    /// latency of 1e308 ms. User metrics are checked against their specs' ranges by
    /// [`RollbackPolicy::check`](crate::RollbackPolicy::check). The error names the metric,
    /// the value (shortened) and the bound.
    pub fn validate(&self) -> Result<()> {
        // Field by field, without looking names up: this runs before every evaluation.
        let fields = [
            (
                names::LATENCY_P50,
                self.latency_p50_ms,
                Plausible::LATENCY_MS,
            ),
            (
                names::LATENCY_P95,
                self.latency_p95_ms,
                Plausible::LATENCY_MS,
            ),
            (
                names::LATENCY_P99,
                self.latency_p99_ms,
                Plausible::LATENCY_MS,
            ),
            (
                names::ERROR_RATE,
                self.error_rate_percent,
                Plausible::PERCENT,
            ),
            (
                names::MODEL_CONFIDENCE,
                self.model_confidence,
                Plausible::PROBABILITY,
            ),
            (
                names::REQUEST_RATE,
                self.request_rate_rps,
                Plausible::REQUEST_RATE,
            ),
            (
                names::SAMPLE_COUNT,
                self.sample_count,
                Plausible::SAMPLE_COUNT,
            ),
        ];
        for (name, value, range) in fields {
            let Some(v) = value else { continue };
            if range.contains(v) {
                continue;
            }
            let requirement = if !v.is_finite() {
                "must be a finite number".to_owned()
            } else {
                match name {
                    names::ERROR_RATE => "an error rate is a percentage between 0 and 100".into(),
                    names::MODEL_CONFIDENCE => "a confidence is between 0 and 1".into(),
                    _ if v < 0.0 => "must not be negative".into(),
                    _ => format!("implausible: must be {}", range.describe()),
                }
            };
            return Err(self.invalid(name, v, requirement));
        }
        for (name, &v) in &self.custom {
            if names::ALL.contains(&name.as_str()) {
                return Err(self.invalid(
                    name,
                    v,
                    "a custom metric may not reuse a built-in name".into(),
                ));
            }
            if !v.is_finite() {
                return Err(self.invalid(name, v, "must be a finite number".into()));
            }
        }
        Ok(())
    }

    pub(crate) fn invalid(&self, metric: &str, value: f64, requirement: String) -> Error {
        Error::InvalidMetric {
            metric: metric.to_owned(),
            version: self.version.clone(),
            value,
            requirement,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> CanaryMetrics {
        CanaryMetrics::new("v1")
            .with_latency_p50_ms(50.0)
            .with_latency_p95_ms(200.0)
            .with_latency_p99_ms(1000.0)
            .with_error_rate_percent(1.0)
            .with_model_confidence(0.9)
            .with_request_rate_rps(100.0)
            .with_sample_count(6000.0)
    }

    #[test]
    fn unmeasured_metrics_are_none_not_zero() {
        let m = CanaryMetrics::new("v1");
        for name in names::ALL {
            assert_eq!(m.value(name), None, "{name}");
        }
        assert!(m.validate().is_ok());
    }

    #[test]
    fn validation_rejects_impossible_values_and_names_the_metric() {
        let cases: [(&str, f64, &str); 9] = [
            (names::LATENCY_P99, -1.0, "negative"),
            (names::LATENCY_P50, f64::NAN, "finite"),
            (names::LATENCY_P95, f64::INFINITY, "finite"),
            (names::ERROR_RATE, 100.5, "between 0 and 100"),
            (names::ERROR_RATE, -0.1, "between 0 and 100"),
            (names::ERROR_RATE, f64::NAN, "finite"),
            (names::MODEL_CONFIDENCE, 1.01, "between 0 and 1"),
            (names::SAMPLE_COUNT, -5.0, "negative"),
            (names::REQUEST_RATE, f64::NEG_INFINITY, "finite"),
        ];
        for (name, value, needle) in cases {
            let mut m = full();
            m.set_value(name, Some(value));
            let err = m.validate().unwrap_err();
            let text = err.to_string();
            assert!(text.contains(name) && text.contains(needle), "{text}");
        }
        let m = full().with_custom("conversion", f64::NAN);
        assert!(m.validate().unwrap_err().to_string().contains("conversion"));
        let m = full().with_custom("latency_p99", 1.0);
        assert!(m.validate().is_err());
    }

    #[test]
    fn boundaries_are_valid() {
        let m = full()
            .with_error_rate_percent(100.0)
            .with_model_confidence(0.0)
            .with_sample_count(0.0);
        assert!(m.validate().is_ok());
    }

    #[test]
    fn custom_metrics_are_read_and_cleared_by_name() {
        let mut m = full().with_custom("revenue_per_request", 0.3);
        assert_eq!(m.value("revenue_per_request"), Some(0.3));
        m.set_value("revenue_per_request", None);
        assert_eq!(m.value("revenue_per_request"), None);
        m.set_value(names::LATENCY_P99, None);
        assert_eq!(m.latency_p99_ms, None);
    }

    #[test]
    fn serde_keeps_missing_as_null() {
        let m = CanaryMetrics::new("v2").with_latency_p99_ms(3.5);
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["error_rate_percent"].is_null());
        let back: CanaryMetrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }
}
