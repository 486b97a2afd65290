#![allow(dead_code)] // each test file uses some of these helpers
//! What the fault and hostile-network tests share: a one-sample answer and a fast config.

use std::time::Duration;

use canary_prometheus::{PrometheusConfig, RetryPolicy};

/// A Prometheus answer with one sample of `value`, stamped now (as Prometheus stamps an
/// instant answer with its evaluation time).
pub(crate) fn vector(value: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[{now},"{value}"]}}]}}}}"#
    )
}

/// The defaults at `url`, with a short timeout and fast retries.
pub(crate) fn config(url: &str) -> PrometheusConfig {
    PrometheusConfig {
        timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            deadline: Duration::from_secs(10),
        },
        ..PrometheusConfig::new(url)
    }
}

/// A small deterministic generator (64-bit LCG), so generated data is the same on every run.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    /// The next number in [0, 1).
    pub(crate) fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Prometheus's answer and ours agree to a relative 1e-9.
pub(crate) fn assert_close(what: &str, prometheus: f64, ours: f64) {
    let scale = prometheus.abs().max(ours.abs()).max(f64::MIN_POSITIVE);
    assert!(
        (prometheus - ours).abs() / scale <= 1e-9,
        "{what}: Prometheus {prometheus} vs in process {ours}"
    );
}
