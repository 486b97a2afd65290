//! How to reach Prometheus: URL, auth, TLS, timeouts, retries, queries.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use canary_core::RetryPolicy;
use canary_core::{Redactor, Secret};
use serde::{Deserialize, Serialize};

/// HTTP method for queries. POST carries long queries that a GET URL could not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum QueryMethod {
    /// `GET` with URL parameters.
    Get,
    /// `POST` with a form body (Prometheus, Thanos, Mimir and Cortex all accept it).
    #[default]
    Post,
}

/// Basic auth credentials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BasicAuth {
    /// The user.
    pub username: String,
    /// The password; redacted everywhere.
    pub password: Secret,
}

/// The raw series an [`Observation`](canary_core::observation::Observation) is built from, as
/// query templates: `{version}` is the arm's label value (escaped). The defaults are the
/// guide's instrumentation. Counters and buckets are fetched as raw cumulative series, one per
/// instance (and per bucket), so resets are undone per series before they are summed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ObservationQueries {
    /// The latency histogram's buckets (in seconds), with their `le` label.
    pub latency_buckets: String,
    /// All requests.
    pub requests: String,
    /// Failed requests.
    pub errors: String,
    /// Model confidence, one series (aggregate it).
    pub model_confidence: String,
    /// The label that tells an arm's instances apart in the series above (`pod` by default;
    /// a series without it is grouped by its `instance` label instead). Each instance's own
    /// observations are kept next to the arm's sum, for judges that treat the pod as the unit.
    pub instance_label: String,
    /// At most this many instances per arm are kept (0 to 1000, 0 for none): a larger arm
    /// keeps a fixed sample, chosen by a hash of each instance's name so that every look sees
    /// the same instances. The sums are over every instance either way.
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 1000)))]
    pub max_instances: usize,
}

impl Default for ObservationQueries {
    fn default() -> Self {
        ObservationQueries {
            latency_buckets: r#"http_request_duration_seconds_bucket{version="{version}"}"#.into(),
            requests: r#"http_requests_total{version="{version}"}"#.into(),
            errors: r#"http_requests_total{version="{version}",status=~"5.."}"#.into(),
            model_confidence: r#"avg(model_prediction_confidence{version="{version}"})"#.into(),
            instance_label: "pod".into(),
            max_instances: ObservationQueries::DEFAULT_MAX_INSTANCES,
        }
    }
}

impl ObservationQueries {
    /// The default `max_instances`: enough for the spread of production's pods, bounded so
    /// that a production of hundreds of pods costs the judge no more than this many.
    pub const DEFAULT_MAX_INSTANCES: usize = 64;
    /// The largest `max_instances`.
    pub const MAX_INSTANCES: usize = 1000;
}

/// Everything needed to query one Prometheus-compatible server.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus:9090` (the guide's default).
    pub url: String,
    /// Per-request timeout (the guide's `timeout=30`), in seconds: over 0, at most a day.
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "f64", range(min = 0.001, max = 86400.0))
    )]
    pub timeout: Duration,
    /// GET or POST.
    pub method: QueryMethod,
    /// `Authorization: Bearer …`.
    pub bearer_token: Option<Secret>,
    /// `Authorization: Basic …`.
    pub basic_auth: Option<BasicAuth>,
    /// Extra headers, e.g. `X-Scope-OrgID` for Mimir and Cortex. Values are redacted in output.
    pub headers: BTreeMap<String, Secret>,
    /// A PEM file of extra CA certificates to trust.
    pub ca_cert_file: Option<PathBuf>,
    /// Accept any server certificate. Only for tests and trusted networks.
    pub insecure_skip_verify: bool,
    /// A proxy URL for all requests; may hold credentials, so it is redacted.
    pub proxy: Option<Secret>,
    /// The largest response body accepted, in bytes: 1 KiB to 1 GiB.
    #[cfg_attr(feature = "schema", schemars(range(min = 1024, max = 1073741824)))]
    pub max_body_bytes: usize,
    /// Queries in flight at once, over both arms: 1 to 4096.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 4096)))]
    pub max_concurrency: usize,
    /// Retries: on timeouts, 5xx, 429 and connection errors only; `Retry-After` is honoured
    /// within the deadline.
    pub retry: RetryPolicy,
    /// The version label value of the canary arm; `{version}` is the canary's version.
    pub canary_label_template: String,
    /// The version label value of the baseline arm; `{version}` is the baseline's version.
    pub baseline_label_template: String,
    /// Extra label matchers (label, value) for the baseline arm, added next to every
    /// `version="{version}"` matcher: `{track: baseline}` selects a deployed baseline's pods
    /// (`validator.baseline: deployed`) apart from production's, which run the same version.
    /// Empty by default. Every template must then have such a matcher, or it is refused.
    pub baseline_matchers: BTreeMap<String, String>,
    /// Query templates by metric, replacing or adding to the defaults.
    pub queries: BTreeMap<String, String>,
    /// The series observations are built from.
    pub observation_queries: ObservationQueries,
    /// Sharing identical queries between concurrent analyses (single flight and a short
    /// cache): on by default.
    pub coalesce: crate::CoalesceConfig,
    /// Warnings the server may send that do not mean its answer is incomplete, as substrings
    /// of the warning's text. By default only Prometheus's `PromQL info:` annotations (e.g.
    /// "metric might not be a counter"; Prometheus 2.52 and later send them apart, as
    /// `infos`): every other warning (Thanos's and Mimir's "partial response", a `PromQL
    /// warning:`) keeps a run from being promoted. A warning named here is dropped from the
    /// evidence and logged at debug level.
    pub harmless_warnings: Vec<String>,
    /// How far behind "now" the store's answers are complete, e.g. `30s`: a question about
    /// now is asked about `now - query_delay`, and observations end there. 0 for Prometheus,
    /// which answers with what it has scraped. VictoriaMetrics hides the samples of its last
    /// `-search.latencyOffset` (30 s by default) and repeats the last older value in their
    /// place, so a counter looks flat there and a series that appeared in it is not there:
    /// set its offset here. At most an hour.
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "f64", range(min = 0.0, max = 3600.0))
    )]
    pub query_delay: Duration,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: "http://prometheus:9090".into(),
            timeout: Duration::from_secs(30),
            method: QueryMethod::Post,
            bearer_token: None,
            basic_auth: None,
            headers: BTreeMap::new(),
            ca_cert_file: None,
            insecure_skip_verify: false,
            proxy: None,
            max_body_bytes: 10 * 1024 * 1024,
            max_concurrency: 16,
            retry: RetryPolicy::default(),
            canary_label_template: "{version}".into(),
            baseline_label_template: "{version}".into(),
            baseline_matchers: BTreeMap::new(),
            queries: BTreeMap::new(),
            observation_queries: ObservationQueries::default(),
            coalesce: crate::CoalesceConfig::default(),
            harmless_warnings: vec!["PromQL info:".into()],
            query_delay: Duration::ZERO,
        }
    }
}

impl PrometheusConfig {
    /// The most queries in flight at once.
    pub const MAX_CONCURRENCY: usize = 4096;
    /// The largest response body limit: 1 GiB.
    pub const MAX_BODY_BYTES: usize = 1 << 30;

    /// Checks the numeric settings against their documented ranges (`timeout` over 0 and at
    /// most a day, `max_body_bytes` 1 KiB to 1 GiB, `max_concurrency` 1 to 4096); the error
    /// names the field.
    pub fn check_limits(&self) -> crate::Result<()> {
        let invalid = |field, reason: String| crate::Error::InvalidConfig { field, reason };
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(86_400) {
            return Err(invalid(
                "timeout",
                "must be over 0 s and at most a day".into(),
            ));
        }
        if self.query_delay > Duration::from_secs(3600) {
            return Err(invalid("query_delay", "must be at most an hour".into()));
        }
        if !(1024..=Self::MAX_BODY_BYTES).contains(&self.max_body_bytes) {
            return Err(invalid(
                "max_body_bytes",
                format!(
                    "{} is not between 1024 and {}",
                    self.max_body_bytes,
                    Self::MAX_BODY_BYTES
                ),
            ));
        }
        let o = &self.observation_queries;
        if o.max_instances > ObservationQueries::MAX_INSTANCES {
            return Err(invalid(
                "observation_queries.max_instances",
                format!(
                    "{} is more than {}",
                    o.max_instances,
                    ObservationQueries::MAX_INSTANCES
                ),
            ));
        }
        let label_name = |l: &str| {
            let mut c = l.chars();
            c.next()
                .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        };
        if let Some(bad) = self.baseline_matchers.keys().find(|k| !label_name(k)) {
            return Err(invalid(
                "baseline_matchers",
                format!("{bad:?} is not a Prometheus label name"),
            ));
        }
        if !label_name(&o.instance_label) {
            return Err(invalid(
                "observation_queries.instance_label",
                format!("{:?} is not a Prometheus label name", o.instance_label),
            ));
        }
        if !(1..=Self::MAX_CONCURRENCY).contains(&self.max_concurrency) {
            return Err(invalid(
                "max_concurrency",
                format!(
                    "{} is not between 1 and {}",
                    self.max_concurrency,
                    Self::MAX_CONCURRENCY
                ),
            ));
        }
        Ok(())
    }

    /// The defaults, at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PrometheusConfig {
            url: url.into(),
            ..Default::default()
        }
    }
}

impl PrometheusConfig {
    /// Every secret of this configuration, for scrubbing what servers send back: the bearer
    /// token, basic-auth and URL credentials (with their base64 header form), header values
    /// and the proxy URL with its credentials.
    pub fn redactor(&self) -> Redactor {
        let mut r = Redactor::default();
        if let Some(t) = &self.bearer_token {
            r.add(t);
        }
        if let Some(a) = &self.basic_auth {
            r.add_basic_auth(&a.username, &a.password);
        }
        r.add_url_credentials(&self.url);
        for v in self.headers.values() {
            r.add(v);
        }
        if let Some(p) = &self.proxy {
            r.add(p);
            r.add_url_credentials(p.expose());
        }
        r
    }
}

/// The `user:password@` of a URL, percent-decoded (`p%40ss` is `p@ss`), if it has any.
pub fn url_credentials(url: &str) -> Option<(String, Secret)> {
    let u = reqwest::Url::parse(url).ok()?;
    if u.username().is_empty() && u.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((
        decode(u.username()),
        Secret::new(decode(u.password().unwrap_or_default())),
    ))
}

/// Parses an `http://` or `https://` URL; the error shows the value as given (credentials
/// hidden) and suggests the scheme when it is missing, as in `127.0.0.1:9090`.
pub fn parse_http_url(text: &str) -> std::result::Result<reqwest::Url, String> {
    // Whatever precedes an `@` may be a password, however the rest parses.
    let shown = match (reqwest::Url::parse(text), text.rsplit_once('@')) {
        (Ok(u), _) if matches!(u.scheme(), "http" | "https") => redact_url(text),
        (_, Some((_, host))) => format!("[credentials]@{host}"),
        _ => text.to_owned(),
    };
    let hint = if text.contains("://") {
        String::new()
    } else {
        format!("; did you mean http://{shown}?")
    };
    match reqwest::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(u),
        Ok(u) if matches!(u.scheme(), "http" | "https") => {
            Err(format!("{shown:?} is not a URL: it has no host{hint}"))
        }
        Ok(_) => Err(format!("{shown:?} is not an http:// or https:// URL{hint}")),
        Err(e) => Err(format!("{shown:?} is not a URL: {e}{hint}")),
    }
}

/// A URL with any `user:password@` removed, for output.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("redacted");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "[unparsable URL]".into(),
    }
}

impl fmt::Debug for PrometheusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusConfig")
            .field("url", &redact_url(&self.url))
            .field("timeout", &self.timeout)
            .field("method", &self.method)
            .field("bearer_token", &self.bearer_token)
            .field("basic_auth", &self.basic_auth)
            .field("headers", &self.headers)
            .field("ca_cert_file", &self.ca_cert_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("proxy", &self.proxy)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_concurrency", &self.max_concurrency)
            .field("retry", &self.retry)
            .field("canary_label_template", &self.canary_label_template)
            .field("baseline_label_template", &self.baseline_label_template)
            .field("queries", &self.queries)
            .field("observation_queries", &self.observation_queries)
            .field("coalesce", &self.coalesce)
            .field("harmless_warnings", &self.harmless_warnings)
            .field("query_delay", &self.query_delay)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_every_secret() {
        let mut c = PrometheusConfig::new("https://admin:s3cret@mimir.example:443/prometheus");
        c.bearer_token = Some("tok-123".into());
        c.basic_auth = Some(BasicAuth {
            username: "u".into(),
            password: "pw-456".into(),
        });
        c.headers
            .insert("X-Scope-OrgID".into(), "tenant-789".into());
        c.proxy = Some("http://p:proxy-pw@proxy:3128".into());
        let text = format!("{c:?}");
        for secret in ["s3cret", "tok-123", "pw-456", "tenant-789", "proxy-pw"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("mimir.example"));
    }

    #[test]
    fn config_reads_from_json_with_defaults() {
        let c: PrometheusConfig =
            serde_json::from_str(r#"{"url": "http://p:9090", "timeout": 5, "bearer_token": "t"}"#)
                .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.bearer_token.unwrap().expose(), "t");
        assert_eq!(c.retry.max_attempts, 3);
        assert!(serde_json::from_str::<PrometheusConfig>(r#"{"urll": "x"}"#).is_err());
    }
}
