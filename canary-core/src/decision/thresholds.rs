//! The guide's `RollbackThresholds`: when to roll back, warn or proceed.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::Plausible;

/// Thresholds of the default policy, as ratios of canary to baseline.
///
/// The defaults are the integration guide's numbers. Keep them in YAML or TOML: every field
/// has a default, and unknown fields are refused so that a typo is not silently ignored.
///
/// | field | default | meaning |
/// |---|---|---|
/// | `latency_p99_threshold` | 1.5 | roll back when p99 > 150% of baseline |
/// | `error_rate_threshold` | 2.0 | roll back when the error rate > 200% of baseline |
/// | `confidence_threshold` | 0.8 | roll back when confidence < 80% of baseline |
/// | `proceed_tolerance` | 1.1 | proceed only if every critical metric is within 110% |
/// | `latency_p95_warning` | 1.3 | p95 beyond 130% needs manual review |
/// | `error_rate_warning` | 1.5 | error rate beyond 150% needs manual review |
/// | `latency_p50_warning` | 1.3 | p50 beyond 130% needs manual review |
/// | `min_sample_count` | 100 | fewer requests per arm is insufficient data |
/// | `latency_floor_ms` | 1.0 | latencies are compared against at least 1 ms |
/// | `error_rate_floor_percent` | 0.5 | error rates are compared against at least 0.5% |
/// | `confidence_floor` | 0.01 | confidences are compared against at least 0.01 |
///
/// Ratio thresholds are at most [`MAX_RATIO`] (100); the sample minimum at most 1e12; each floor
/// within its metric's plausible range. Beyond those a value is a mistake, and refused.
///
/// The floors decide the zero-baseline case: a baseline error rate of 0% makes any ratio
/// infinite, and so meaningless. The ratio is taken against `max(baseline, floor)`, so 0% to
/// 0.3% is stable while 0% to 1.2% (2.4 × the 0.5% floor) rolls back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RollbackThresholds {
    /// Roll back when canary p99 / baseline p99 exceeds this. Must be > 1.0.
    pub latency_p99_threshold: f64,
    /// Roll back when canary / baseline error rate exceeds this. Must be > 1.0.
    pub error_rate_threshold: f64,
    /// Roll back when canary / baseline confidence falls below this. Between 0 and 1.
    pub confidence_threshold: f64,
    /// Critical metrics within this ratio (either way) count as stable. Must be > 1.0.
    pub proceed_tolerance: f64,
    /// p95 beyond this ratio needs manual review. Must be > 1.0.
    pub latency_p95_warning: f64,
    /// Error rate beyond this ratio needs manual review. Must be > 1.0.
    pub error_rate_warning: f64,
    /// p50 beyond this ratio needs manual review. Must be > 1.0. (After the reference
    /// implementation's six fields, so positional arguments mean the same in both.)
    pub latency_p50_warning: f64,
    /// Fewer requests than this in either arm is insufficient data. Must be >= 0.
    pub min_sample_count: f64,
    /// Latency ratios are taken against at least this many ms. Must be > 0.
    pub latency_floor_ms: f64,
    /// Error-rate ratios are taken against at least this many percent. Must be > 0.
    pub error_rate_floor_percent: f64,
    /// Confidence ratios are taken against at least this confidence. Must be > 0.
    pub confidence_floor: f64,
}

impl Default for RollbackThresholds {
    fn default() -> Self {
        RollbackThresholds {
            latency_p99_threshold: 1.5,
            error_rate_threshold: 2.0,
            confidence_threshold: 0.8,
            proceed_tolerance: 1.1,
            latency_p95_warning: 1.3,
            error_rate_warning: 1.5,
            latency_p50_warning: 1.3,
            min_sample_count: 100.0,
            latency_floor_ms: 1.0,
            error_rate_floor_percent: 0.5,
            confidence_floor: 0.01,
        }
    }
}

/// The largest ratio threshold: beyond 100× a threshold no longer protects anything (a
/// `proceed_tolerance` of 1e308 would promote every canary), so it is refused as absurd.
pub const MAX_RATIO: f64 = 100.0;

/// "must be > 1.0": the requirement of every ratio threshold.
pub(crate) const RATIO_REQUIREMENT: &str =
    "must be > 1.0 and at most 100 (a ratio of canary to baseline)";
/// The requirement of a lower bound on a ratio, such as the confidence threshold.
pub(crate) const FRACTION_REQUIREMENT: &str = "must be between 0 and 1 (0 < value <= 1)";
const FLOOR_REQUIREMENT: &str = "must be > 0 and within the metric's plausible range";

impl RollbackThresholds {
    /// Checks every field; the error names the first invalid one.
    pub fn validate(&self) -> Result<()> {
        let ratios = [
            ("latency_p99_threshold", self.latency_p99_threshold),
            ("error_rate_threshold", self.error_rate_threshold),
            ("proceed_tolerance", self.proceed_tolerance),
            ("latency_p95_warning", self.latency_p95_warning),
            ("latency_p50_warning", self.latency_p50_warning),
            ("error_rate_warning", self.error_rate_warning),
        ];
        for (field, value) in ratios {
            check(field, value, is_ratio(value), RATIO_REQUIREMENT)?;
        }
        check(
            "confidence_threshold",
            self.confidence_threshold,
            is_fraction(self.confidence_threshold),
            FRACTION_REQUIREMENT,
        )?;
        check(
            "min_sample_count",
            self.min_sample_count,
            Plausible::SAMPLE_COUNT.contains(self.min_sample_count),
            "must be a number >= 0 and at most 1e12",
        )?;
        for (field, value, range) in [
            (
                "latency_floor_ms",
                self.latency_floor_ms,
                Plausible::LATENCY_MS,
            ),
            (
                "error_rate_floor_percent",
                self.error_rate_floor_percent,
                Plausible::PERCENT,
            ),
            (
                "confidence_floor",
                self.confidence_floor,
                Plausible::PROBABILITY,
            ),
        ] {
            check(
                field,
                value,
                is_floor(value) && range.contains(value),
                FLOOR_REQUIREMENT,
            )?;
        }
        Ok(())
    }
}

pub(crate) fn is_ratio(v: f64) -> bool {
    v.is_finite() && v > 1.0 && v <= MAX_RATIO
}

pub(crate) fn is_fraction(v: f64) -> bool {
    v > 0.0 && v <= 1.0
}

pub(crate) fn is_floor(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

pub(crate) fn check(field: &str, value: f64, ok: bool, requirement: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidThreshold {
            field: field.to_owned(),
            value,
            requirement,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_guides_numbers_and_valid() {
        let t = RollbackThresholds::default();
        assert_eq!(
            (
                t.latency_p99_threshold,
                t.error_rate_threshold,
                t.confidence_threshold,
                t.proceed_tolerance
            ),
            (1.5, 2.0, 0.8, 1.1)
        );
        assert_eq!((t.latency_p95_warning, t.error_rate_warning), (1.3, 1.5));
        assert_eq!(t.min_sample_count, 100.0);
        t.validate().unwrap();
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases: Vec<(RollbackThresholds, &str, &str)> = vec![
            (
                RollbackThresholds {
                    latency_p99_threshold: 1.0,
                    ..Default::default()
                },
                "latency_p99_threshold",
                "must be > 1.0",
            ),
            (
                RollbackThresholds {
                    proceed_tolerance: f64::NAN,
                    ..Default::default()
                },
                "proceed_tolerance",
                "must be > 1.0",
            ),
            (
                RollbackThresholds {
                    confidence_threshold: 1.2,
                    ..Default::default()
                },
                "confidence_threshold",
                "between 0 and 1",
            ),
            (
                RollbackThresholds {
                    confidence_threshold: 0.0,
                    ..Default::default()
                },
                "confidence_threshold",
                "between 0 and 1",
            ),
            (
                RollbackThresholds {
                    min_sample_count: -1.0,
                    ..Default::default()
                },
                "min_sample_count",
                ">= 0",
            ),
            (
                RollbackThresholds {
                    error_rate_floor_percent: 0.0,
                    ..Default::default()
                },
                "error_rate_floor_percent",
                "> 0",
            ),
        ];
        for (t, field, needle) in cases {
            let text = t.validate().unwrap_err().to_string();
            assert!(text.contains(field) && text.contains(needle), "{text}");
        }
    }

    #[test]
    fn absurd_thresholds_are_refused() {
        for t in [
            RollbackThresholds {
                proceed_tolerance: 1e308,
                ..Default::default()
            },
            RollbackThresholds {
                latency_p99_threshold: 101.0,
                ..Default::default()
            },
            RollbackThresholds {
                min_sample_count: 1e13,
                ..Default::default()
            },
            RollbackThresholds {
                error_rate_floor_percent: 150.0,
                ..Default::default()
            },
        ] {
            let text = t.validate().unwrap_err().to_string();
            assert!(text.len() < 200 && !text.contains("000000000"), "{text}");
        }
        let most = RollbackThresholds {
            proceed_tolerance: 100.0,
            ..Default::default()
        };
        assert!(most.validate().is_ok());
    }

    #[test]
    fn unknown_fields_are_refused_and_missing_ones_default() {
        let t: RollbackThresholds =
            serde_json::from_str(r#"{"latency_p99_threshold": 1.3}"#).unwrap();
        assert_eq!(t.latency_p99_threshold, 1.3);
        assert_eq!(t.error_rate_threshold, 2.0);
        assert!(serde_json::from_str::<RollbackThresholds>(r#"{"latency_p99": 1.3}"#).is_err());
    }
}
