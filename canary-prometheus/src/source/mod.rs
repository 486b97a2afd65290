//! [`PrometheusSource`]: canary's `MetricsSource` over the Prometheus HTTP API.

use std::sync::{Arc, RwLock};
use std::time::Duration;

pub mod history;
mod observations;
mod queries;
mod transport;
mod versions;
pub use versions::KnownVersions;

use observations::agrees;
pub(crate) use transport::same_origin_redirects;
use transport::{chain_text, scrub, unix};

use canary_core::MetricsQuery;
use chrono::Utc;
use tokio::sync::Semaphore;

use crate::config::{url_credentials, BasicAuth, PrometheusConfig};
use crate::error::{Error, Result};
use crate::query::{QuerySet, QueryTemplate};
use canary_core::Redactor;

/// Reads canary metrics from Prometheus (or Thanos, Mimir, Cortex).
///
/// Every query of both arms runs concurrently, at most `max_concurrency` at once, over one
/// pooled HTTP client. Queries are evaluated at the analysis time (`MetricsQuery::at`), so a
/// past analysis can be replayed exactly.
pub struct PrometheusSource {
    client: reqwest::Client,
    config: PrometheusConfig,
    base: reqwest::Url,
    queries: RwLock<QuerySet>,
    limiter: Arc<Semaphore>,
    url_auth: Option<BasicAuth>,
    redactor: Redactor,
    observation_templates: ObservationTemplates,
    coalescer: crate::coalesce::Coalescer,
    sent: std::sync::atomic::AtomicU64,
}

/// The checked templates of `PrometheusConfig::observation_queries`.
struct ObservationTemplates {
    latency_buckets: QueryTemplate,
    requests: QueryTemplate,
    errors: QueryTemplate,
    model_confidence: QueryTemplate,
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PrometheusSource {
    /// The latest instant the store answers completely: now less `query_delay`.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        let delay = chrono::Duration::from_std(self.config.query_delay).unwrap_or_default();
        Utc::now() - delay
    }

    /// Checks `config` (URL, templates, TLS files) and builds the client.
    pub fn new(config: PrometheusConfig) -> Result<Self> {
        let invalid = |field, reason: String| Error::InvalidConfig { field, reason };
        let mut base = crate::config::parse_http_url(&config.url).map_err(|e| invalid("url", e))?;
        // Credentials in the URL become basic auth, so they never travel in a logged URL.
        // They are percent-decoded: `p%40ss` in a URL is the password `p@ss`.
        let mut url_auth = None;
        if let Some((username, password)) = url_credentials(&config.url) {
            if config.bearer_token.is_some() || config.basic_auth.is_some() {
                return Err(invalid(
                    "url",
                    "credentials are given both in the URL and as bearer_token or basic_auth; keep one".into(),
                ));
            }
            url_auth = Some(BasicAuth { username, password });
            let _ = base.set_username("");
            let _ = base.set_password(None);
        }
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(
                "url",
                format!("scheme {:?} is not http or https", base.scheme()),
            ));
        }
        config.check_limits()?;
        config.retry.validate().map_err(|e| match e {
            canary_core::Error::InvalidConfig { reason, .. } => invalid("retry", reason),
            other => invalid("retry", other.to_string()),
        })?;
        for (field, t) in [
            ("canary_label_template", &config.canary_label_template),
            ("baseline_label_template", &config.baseline_label_template),
        ] {
            if !t.contains("{version}") {
                return Err(invalid(
                    field,
                    format!("{t:?} has no {{version}} placeholder"),
                ));
            }
        }
        let mut queries = QuerySet::default();
        for (metric, template) in &config.queries {
            queries.set(metric, template)?;
        }
        let oq = &config.observation_queries;
        let observation_templates = ObservationTemplates {
            latency_buckets: QueryTemplate::new("latency_buckets", &oq.latency_buckets)?,
            requests: QueryTemplate::new("requests", &oq.requests)?,
            errors: QueryTemplate::new("errors", &oq.errors)?,
            model_confidence: QueryTemplate::new("model_confidence", &oq.model_confidence)?,
        };
        if !config.baseline_matchers.is_empty() {
            let t = &observation_templates;
            for (metric, template) in queries.iter().chain([
                ("latency_buckets", &t.latency_buckets),
                ("requests", &t.requests),
                ("errors", &t.errors),
                ("model_confidence", &t.model_confidence),
            ]) {
                check_narrowable(metric, template, &config.baseline_matchers)?;
            }
        }

        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.max_concurrency)
            .redirect(same_origin_redirects())
            .danger_accept_invalid_certs(config.insecure_skip_verify);
        if let Some(path) = &config.ca_cert_file {
            // A regular file of at most 1 MiB: a FIFO would hang, /dev/zero fill memory.
            // (A missing file falls through to the read, which says why.)
            let regular =
                std::fs::metadata(path).map_or(true, |m| m.is_file() && m.len() <= 1 << 20);
            if !regular {
                return Err(invalid(
                    "ca_cert_file",
                    format!("{} is not a regular file of at most 1 MiB", path.display()),
                ));
            }
            let pem = std::fs::read(path).map_err(|e| {
                invalid(
                    "ca_cert_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                invalid(
                    "ca_cert_file",
                    format!("{} is not PEM: {e}", path.display()),
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(proxy) = &config.proxy {
            let proxy = reqwest::Proxy::all(proxy.expose())
                .map_err(|_| invalid("proxy", "not a proxy URL".into()))?;
            builder = builder.proxy(proxy);
        }
        let client = builder.build().map_err(|e| {
            invalid(
                "tls",
                scrub(&config.url, &config.redactor(), &chain_text(&e)),
            )
        })?;
        Ok(PrometheusSource {
            client,
            url_auth,
            redactor: config.redactor(),
            observation_templates,
            coalescer: crate::coalesce::Coalescer::default(),
            sent: std::sync::atomic::AtomicU64::new(0),
            limiter: Arc::new(Semaphore::new(config.max_concurrency)),
            base,
            queries: RwLock::new(queries),
            config,
        })
    }

    /// HTTP requests sent to Prometheus so far (retries included; shared answers are not
    /// sent again): what a service exports as `canary_prometheus_queries_total`.
    pub fn queries_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether Prometheus answers a trivial query (`vector(1)`) now: a readiness probe.
    pub async fn ready(&self) -> Result<()> {
        self.instant("ready", "vector(1)", Utc::now())
            .await
            .map(drop)
    }

    /// A source with the defaults at `url`.
    pub fn at_url(url: &str) -> Result<Self> {
        Self::new(PrometheusConfig::new(url))
    }

    /// The configuration.
    pub fn config(&self) -> &PrometheusConfig {
        &self.config
    }

    /// A copy of the current queries.
    pub fn queries(&self) -> QuerySet {
        self.queries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces or adds the query of `metric`; the next fetch uses it. Fails if it does not parse.
    pub fn set_query(&self, metric: &str, template: &str) -> Result<()> {
        if !self.config.baseline_matchers.is_empty() {
            let t = QueryTemplate::new(metric, template)?;
            check_narrowable(metric, &t, &self.config.baseline_matchers)?;
        }
        self.queries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set(metric, template)
    }

    /// Stops fetching `metric`.
    pub fn remove_query(&self, metric: &str) {
        self.queries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(metric)
    }

    /// The label value that selects `version` in `arm`.
    pub fn label_value(&self, query: &MetricsQuery) -> String {
        self.label_for(&query.version, query.arm)
    }

    /// `template` for the arm's label value `label`; the baseline's with its
    /// `baseline_matchers` (checked when the source was made, so this only fails for a
    /// template added since that cannot take them).
    fn render(
        &self,
        metric: &str,
        template: &QueryTemplate,
        label: &str,
        arm: canary_core::Arm,
        window: Duration,
    ) -> Result<String> {
        let matchers = &self.config.baseline_matchers;
        if arm != canary_core::Arm::Baseline || matchers.is_empty() {
            return Ok(template.render(label, window));
        }
        template
            .render_selecting(label, window, matchers)
            .ok_or_else(|| unnarrowable(metric, template))
    }

    fn label_for(&self, version: &canary_core::Version, arm: canary_core::Arm) -> String {
        let template = match arm {
            canary_core::Arm::Canary => &self.config.canary_label_template,
            canary_core::Arm::Baseline => &self.config.baseline_label_template,
        };
        template.replace("{version}", version.as_str())
    }
}

/// The error for a template the baseline's matchers cannot be placed in.
fn unnarrowable(metric: &str, template: &QueryTemplate) -> Error {
    Error::InvalidTemplate {
        metric: metric.to_owned(),
        template: template.as_str().to_owned(),
        reason: "baseline_matchers are set, but the template has no name=\"{version}\" matcher to add them to, so it cannot tell the deployed baseline from production".into(),
    }
}

/// Refuses `template` if `matchers` cannot be placed in it.
fn check_narrowable(
    metric: &str,
    template: &QueryTemplate,
    matchers: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    template
        .render_selecting("v1", Duration::from_secs(300), matchers)
        .map(|_| ())
        .ok_or_else(|| unnarrowable(metric, template))
}
