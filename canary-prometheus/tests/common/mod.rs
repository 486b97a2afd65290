#![allow(dead_code)] // each test file uses some of these helpers
//! What the fault and hostile-network tests share: a one-sample answer and a fast config.

use std::time::Duration;

use canary_prometheus::{PrometheusConfig, RetryPolicy};

/// A Prometheus answer with one sample of `value`.
pub(crate) fn vector(value: &str) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000,"{value}"]}}]}}}}"#
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
