//! canary's judge as an HTTP service, for controllers that already run canaries: Argo
//! Rollouts' `web` metric provider and Flagger's webhooks call it during their analysis, and
//! it answers with canary's decision and its evidence.
//!
//! | route | what it does |
//! |---|---|
//! | `GET /v1/analysis?baseline=V1&canary=V2[&since=…][&window=5m][&at=…]` (or `POST` with the same as JSON) | one analysis; `{"decision": "proceed" \| "rollback_auto" \| "rollback_manual" \| "continue", "reason", "evaluation", "queries"}` |
//! | `POST /v1/flagger/gate` | Flagger's rollout hook: 200 lets the canary advance (`continue` only with `confirm_promotion: "true"` in the metadata), 403 with the reason is a failed check |
//! | `POST /v1/flagger/confirm-promotion` | Flagger's confirm-promotion hook: 200 only on `proceed`; otherwise 403 and Flagger waits |
//! | `POST /v1/flagger/rollback` | Flagger's rollback hook: 200 only on `rollback_auto` (Flagger rolls back on 2xx), 409 otherwise |
//! | `GET /metrics` | the service's and the judge's metrics, all named `canary_…` |
//! | `GET /healthz`, `GET /readyz` | alive; ready only when Prometheus answers |
//! | `GET /openapi.json` | the API's OpenAPI 3.1 document ([`openapi::document`]) |
//!
//! With a judge (`--judge sequential`, `kayenta`, ...), every request replays the canary's run
//! from its start: the request's `since`, else the canary's first sample in Prometheus within
//! `serve.start_lookback`. The warm-up, minimum evidence and maximum duration
//! (`validator.max_duration`) count from that start, and at the maximum duration the judge
//! must decide, so `continue` is never the last word. A `window` shorter than the judge can
//! decide in is refused (400, naming the shortest); a longer one is replaced by the run since
//! its start. A canary with no series, no traffic after the judge's earliest decision time, or
//! a baseline with no series is `rollback_manual` with a reason that says so.
//!
//! An invalid version (empty, or one that would not stay a single label value) is a 400 with
//! the reason, never a decision. A failed query is a 502 (Argo counts it as a measurement
//! error), an analysis past its deadline a 504, and more analyses than the service runs at once
//! wait up to a limit, then get a 503 with `Retry-After`. The service keeps no state: everything
//! it needs is in Prometheus and its configuration, so it scales by adding replicas.

mod analysis;
mod api;
mod awaiting;
mod metrics;
pub mod openapi;
mod routes;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use canary_core::judge::JudgeFactory;
use canary_core::{RollbackPolicy, Secret};
use canary_prometheus::PrometheusSource;
use serde::{Deserialize, Serialize};

pub use api::{Analysis, Decision, Queries, CONFIRM_PROMOTION_KEY};
pub use routes::router;
pub use server::{serve, Server};

/// The service's own settings (the `serve` section of `canary.yaml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// A bearer token every `/v1/` request must carry (compared in constant time); `None`
    /// leaves the API open. Give it as `${ENV}` or `auth_token_file`.
    pub auth_token: Option<Secret>,
    /// A PEM certificate chain: with `tls_key_file`, the service speaks HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// The largest request body accepted (bytes).
    pub body_limit_bytes: usize,
    /// The longest an analysis may take (seconds); past it, 504.
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub deadline: Duration,
    /// Analyses run at once; more wait.
    pub max_concurrent_analyses: usize,
    /// How long an analysis waits for its turn (seconds) before a 503 with `Retry-After`.
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub queue_timeout: Duration,
    /// The analysis window when a request names none (seconds).
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub default_window: Duration,
    /// How long in-flight requests may finish after SIGTERM or SIGHUP (seconds).
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub shutdown_grace: Duration,
    /// With a judge and no `since`: how far back the canary's first sample is searched
    /// (seconds). At least the judge's maximum duration, so a run older than it still ends.
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub start_lookback: Duration,
    /// A connection must send a complete request head within this (seconds) of opening, of
    /// its TLS handshake, or of its previous response (keep-alive), or it is closed: idle
    /// connections cannot hold the service's file descriptors.
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 65536)))]
    pub max_connections: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            auth_token: None,
            tls_cert_file: None,
            tls_key_file: None,
            body_limit_bytes: 64 * 1024,
            deadline: Duration::from_secs(60),
            max_concurrent_analyses: 256,
            queue_timeout: Duration::from_secs(10),
            default_window: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            start_lookback: Duration::from_secs(2 * 3600),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

impl ServeConfig {
    /// The most analyses at once (a semaphore's permits are bounded; more is a typo).
    pub const MAX_CONCURRENT_ANALYSES: usize = 65_536;
    /// The largest request body: 16 MiB.
    pub const MAX_BODY_LIMIT_BYTES: usize = 16 << 20;
    /// The longest of the service's timeouts: a day.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

    /// Checks the settings; the error names the field and its range.
    pub fn validate(&self) -> Result<(), String> {
        let count = |name: &str, v: usize, max: usize| {
            if (1..=max).contains(&v) {
                Ok(())
            } else {
                Err(format!("serve.{name}: {v} is not between 1 and {max}"))
            }
        };
        count(
            "max_concurrent_analyses",
            self.max_concurrent_analyses,
            Self::MAX_CONCURRENT_ANALYSES,
        )?;
        count("max_connections", self.max_connections, 65_536)?;
        if !(256..=Self::MAX_BODY_LIMIT_BYTES).contains(&self.body_limit_bytes) {
            return Err(format!(
                "serve.body_limit_bytes: {} is not between 256 and {}",
                self.body_limit_bytes,
                Self::MAX_BODY_LIMIT_BYTES
            ));
        }
        for (name, d) in [
            ("deadline", self.deadline),
            ("queue_timeout", self.queue_timeout),
            ("shutdown_grace", self.shutdown_grace),
            ("header_timeout", self.header_timeout),
        ] {
            if d < Duration::from_millis(1) || d > Self::MAX_TIMEOUT {
                return Err(format!(
                    "serve.{name}: {} is not between 0.001 s and a day",
                    canary_core::format::duration(d.as_secs_f64())
                ));
            }
        }
        if self.default_window < Duration::from_secs(1)
            || self.default_window > canary_core::duration::MAX_WINDOW
        {
            return Err("serve.default_window: must be between a second and 31 days".into());
        }
        if self.start_lookback < Duration::from_secs(60)
            || self.start_lookback > canary_core::duration::MAX_WINDOW
        {
            return Err("serve.start_lookback: must be between a minute and 31 days".into());
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err("serve: tls_cert_file and tls_key_file go together".into());
        }
        if self
            .auth_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err("serve.auth_token: is empty".into());
        }
        Ok(())
    }
}

/// What the service judges with: the source, the policy, and optionally a judge fed
/// observations over the window (which may answer `continue`).
#[derive(Clone)]
pub struct Judging {
    /// Prometheus.
    pub source: Arc<PrometheusSource>,
    /// The threshold policy (the guide's, or the config's).
    pub policy: RollbackPolicy,
    /// A judge fed observations over the window instead of the policy's single look.
    pub judge: Option<Arc<dyn JudgeFactory>>,
    /// The interval between observations for a judge (the scrape interval).
    pub judge_step: Duration,
    /// A judge must decide this long after the run's start (`validator.max_duration`).
    pub max_duration: Duration,
}

impl std::fmt::Debug for Judging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judging")
            .field("source", &self.source)
            .field("judge", &self.judge.as_ref().map(|j| j.name().to_owned()))
            .field("judge_step", &self.judge_step)
            .field("max_duration", &self.max_duration)
            .finish_non_exhaustive()
    }
}
