//! # canary-prometheus
//!
//! [`PrometheusSource`] reads canary metrics from the Prometheus HTTP API (Prometheus,
//! Thanos, Mimir, Cortex) and implements `canary_core::MetricsSource`. [`Pushgateway`]
//! pushes canary's own metrics, because a CI job has no scrape endpoint.
//!
//! ```no_run
//! use canary_core::{Arm, MetricsQuery, MetricsSource, Version};
//! use canary_prometheus::{PrometheusConfig, PrometheusSource};
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = PrometheusConfig::new("http://prometheus:9090");
//! config.headers.insert("X-Scope-OrgID".into(), "team-a".into()); // Mimir / Cortex tenant
//! let source = PrometheusSource::new(config)?;
//! let canary = source
//!     .fetch(&MetricsQuery::new(Version::new("v1.3.0")?, Arm::Canary, Duration::from_secs(300)))
//!     .await?;
//! println!("p99 = {:?} ms over {:?} requests", canary.latency_p99_ms, canary.sample_count);
//! # Ok(()) }
//! ```
//!
//! Every bad answer — an empty result, `NaN` or `±Inf`, several series, an error status, a
//! timeout, a refused connection, invalid or truncated JSON, an oversized body — becomes a
//! typed [`Error`] or "no data", never a 0; a value beyond its plausible range is an error.
//! Retries (canary-core's shared [`RetryPolicy`]: jittered exponential backoff, a maximum
//! backoff, a deadline, and the server's `Retry-After` within it) cover timeouts, 429, 5xx and
//! connection errors only. Redirects are followed within the configured origin only. Every
//! configured secret is scrubbed from what the server sends back (errors, warnings), in the
//! forms a server may echo: plain, percent-encoded, and as a basic-auth header.
//!
//! # Features
//!
//! This crate has no optional features. TLS is rustls with the webpki roots, plus any CA
//! file the configuration names.

pub mod coalesce;
pub mod config;
pub mod error;
mod observe;
pub mod push;
pub mod query;
pub mod response;
pub mod source;

pub use coalesce::CoalesceConfig;
pub use config::{BasicAuth, ObservationQueries, PrometheusConfig, QueryMethod, RetryPolicy};
pub use error::{Error, Result};
pub use push::Pushgateway;
pub use query::{default_templates, escape_label_value, QuerySet, QueryTemplate};
pub use source::{KnownVersions, PrometheusSource};
