//! [`PrometheusSource`]: canary's `MetricsSource` over the Prometheus HTTP API.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub mod history;

use async_trait::async_trait;
use canary_core::{CanaryMetrics, MetricSeries, MetricsQuery, MetricsSource};
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::config::{redact_url, url_credentials, BasicAuth, PrometheusConfig, QueryMethod};
use crate::error::{Error, Result, TransportError};
use crate::query::{QuerySet, QueryTemplate};
use crate::response::{
    parse_instant, parse_instant_expecting, parse_matrix, parse_range, Answer, Expected,
    MatrixAnswer, RangeAnswer,
};
use canary_core::observation::{Observation, ObservationQuery, ObservationSource};
use canary_core::retry::{parse_retry_after, redirect_refusal};
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

/// One HTTP answer: status, `Retry-After` if any, body.
struct Reply {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

/// Follows redirects within the configured origin only (see
/// [`canary_core::retry::redirect_refusal`]).
pub(crate) fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let from = attempt
            .previous()
            .first()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let to = attempt.url().origin().ascii_serialization();
        match redirect_refusal(attempt.previous().len().saturating_sub(1), &from, &to) {
            Some(reason) => attempt.error(reason),
            None => attempt.follow(),
        }
    })
}

impl std::fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PrometheusSource {
    /// Checks `config` (URL, templates, TLS files) and builds the client.
    pub fn new(config: PrometheusConfig) -> Result<Self> {
        let invalid = |field, reason: String| Error::InvalidConfig { field, reason };
        let mut base = reqwest::Url::parse(&config.url).map_err(|e| {
            invalid(
                "url",
                format!("{} is not a URL: {e}", redact_url(&config.url)),
            )
        })?;
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

    /// Runs one range query over `[start, end]` every `step`, keeping every series.
    pub async fn range_matrix(
        &self,
        metric: &str,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<MatrixAnswer> {
        let (status, body) = self.send_range(metric, query, start, end, step).await?;
        parse_matrix(metric, query, status, &body).map_err(|e| e.scrub(&self.redactor))
    }

    /// Sends one `/api/v1/query_range` over `[start, end]` every `step`, with retries.
    async fn send_range(
        &self,
        metric: &str,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<(u16, Vec<u8>)> {
        let params = vec![
            ("query", query.to_owned()),
            ("start", unix(start)),
            ("end", unix(end)),
            ("step", format!("{}", step.as_secs_f64().max(0.001))),
        ];
        self.send("/api/v1/query_range", metric, query, &params)
            .await
    }

    /// The arm's observations at `start`, `start + step`, ... `end`, built from the raw
    /// cumulative series of `PrometheusConfig::observation_queries`: each bucket and counter
    /// series reset-corrected, then summed over instances, an instance that has stopped
    /// counted at its last value ([`carried_sum_at`](canary_core::observation::carried_sum_at),
    /// so a scale-down is not a counter going down); the confidence as its query aggregates
    /// it. Each observation also holds its instances' own histograms and counters
    /// ([`Observation::instances`]), grouped by `instance_label` (or `instance`), at most
    /// `max_instances` of them (a fixed sample of a larger arm). An instant with nothing at
    /// all is left out.
    pub async fn observations(&self, q: &ObservationQuery) -> Result<Vec<Observation>> {
        let step_ms = i64::try_from(q.step.as_millis()).unwrap_or(i64::MAX);
        if step_ms < 1 || q.end < q.start {
            return Err(Error::InvalidConfig {
                field: "observation query",
                reason: "the step must be at least 1 ms and the end not before the start".into(),
            });
        }
        let label = self.label_for(&q.version, q.arm);
        let t = &self.observation_templates;
        let fetch = |metric: &'static str, template: &QueryTemplate| {
            let query = self.render(metric, template, &label, q.arm, q.step);
            let names = template.version_labels().to_vec();
            let label = &label;
            async move {
                let query = query?;
                let m = self
                    .range_matrix(metric, &query, q.start, q.end, q.step)
                    .await?;
                agrees(metric, &query, &m, &names, label, q, step_ms)?;
                Ok::<_, Error>(m)
            }
        };
        let (buckets, requests, errors, confidence) = futures::join!(
            fetch("latency_buckets", &t.latency_buckets),
            fetch("requests", &t.requests),
            fetch("errors", &t.errors),
            fetch("model_confidence", &t.model_confidence),
        );
        let (buckets, requests, errors, confidence) = (buckets?, requests?, errors?, confidence?);
        let o = &self.config.observation_queries;
        let instances = crate::observe::Instances {
            label: &o.instance_label,
            max: o.max_instances,
        };
        Ok(crate::observe::assemble(
            q,
            step_ms,
            [&buckets, &requests, &errors],
            &confidence,
            &instances,
        ))
    }

    /// Runs one instant query at `at`, with retries.
    pub async fn instant(&self, metric: &str, query: &str, at: DateTime<Utc>) -> Result<Answer> {
        let params = vec![("query", query.to_owned()), ("time", unix(at))];
        let (status, body) = self.send("/api/v1/query", metric, query, &params).await?;
        parse_instant(metric, query, status, &body)
            .map(|a| self.scrub_answer(a))
            .map_err(|e| e.scrub(&self.redactor))
    }

    /// Runs one instant query at `at` and checks that the answer agrees with the question
    /// ([`Expected`]): another version's series, a sample from another time, or a scalar the
    /// query cannot return is an error.
    pub async fn instant_expecting(
        &self,
        metric: &str,
        query: &str,
        at: DateTime<Utc>,
        expected_labels: &[(String, String)],
        scalar: bool,
    ) -> Result<Answer> {
        let params = vec![("query", query.to_owned()), ("time", unix(at))];
        let (status, body) = self.send("/api/v1/query", metric, query, &params).await?;
        let expected = Expected {
            labels: expected_labels,
            at_unix: at.timestamp_millis() as f64 / 1000.0,
            scalar,
        };
        parse_instant_expecting(metric, query, status, &body, &expected)
            .map(|a| self.scrub_answer(a))
            .map_err(|e| e.scrub(&self.redactor))
    }

    /// Runs one range query over `[at - window, at]` every `step`, with retries.
    pub async fn range(
        &self,
        metric: &str,
        query: &str,
        at: DateTime<Utc>,
        window: Duration,
        step: Duration,
    ) -> Result<RangeAnswer> {
        let start = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| at.checked_sub_signed(w))
            .ok_or_else(|| Error::InvalidConfig {
                field: "window",
                reason: format!("{window:?} reaches before any representable time"),
            })?;
        let (status, body) = self.send_range(metric, query, start, at, step).await?;
        parse_range(metric, query, status, &body).map_err(|e| e.scrub(&self.redactor))
    }

    /// The series of one configured metric of one version over the window, for reports and
    /// judges that need more than a single number.
    pub async fn metric_range(
        &self,
        metric: &str,
        query: &MetricsQuery,
        step: Duration,
    ) -> Result<RangeAnswer> {
        let template = self
            .queries()
            .get(metric)
            .cloned()
            .ok_or_else(|| Error::InvalidConfig {
                field: "queries",
                reason: format!("no query is configured for {metric}"),
            })?;
        let q = self.render(
            metric,
            &template,
            &self.label_value(query),
            query.arm,
            query.window,
        )?;
        self.range(
            metric,
            &q,
            query.at.unwrap_or_else(Utc::now),
            query.window,
            step,
        )
        .await
    }

    /// Sends with retries; every error is scrubbed of secrets before it is logged or returned.
    async fn send(
        &self,
        path: &str,
        metric: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<(u16, Vec<u8>)> {
        let _permit = self
            .limiter
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let retry = &self.config.retry;
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let result = self.send_once(path, metric, query, params).await;
            let (result, retry_after) = match result {
                Ok(reply) if reply.status >= 500 || reply.status == 429 => {
                    // Parse now so the error carries Prometheus' own message.
                    let parsed = parse_instant(metric, query, reply.status, &reply.body)
                        .map(|_| (reply.status, reply.body));
                    (parsed, reply.retry_after)
                }
                Ok(reply) => (Ok((reply.status, reply.body)), None),
                Err(e) => (Err(e), None),
            };
            let e = match result {
                Ok(ok) => {
                    // Let the connection go back to the pool before the permit is released,
                    // so the next query reuses it instead of opening one more.
                    tokio::task::yield_now().await;
                    return Ok(ok);
                }
                Err(e) => e.scrub(&self.redactor),
            };
            let elapsed = started.elapsed();
            let wait = if e.is_retryable() {
                retry.delay(attempts, elapsed, retry_after)
            } else {
                None
            };
            let Some(wait) = wait else {
                return Err(e.with_attempts(attempts, elapsed));
            };
            warn!(metric, attempt = attempts, error = %e, "query failed; retrying in {wait:?}");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(
        &self,
        path: &str,
        metric: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<Reply> {
        let mut url = self.base.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        let mut request = match self.config.method {
            QueryMethod::Get => self.client.get(url).query(params),
            QueryMethod::Post => self.client.post(url).form(params),
        };
        if let Some(token) = &self.config.bearer_token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(auth) = self.config.basic_auth.as_ref().or(self.url_auth.as_ref()) {
            request = request.basic_auth(&auth.username, Some(auth.password.expose()));
        }
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), value.expose());
        }
        debug!(metric, query, "querying Prometheus");
        let transport = |e: reqwest::Error| self.transport_error(metric, query, e);
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        let limit = self.config.max_body_bytes;
        let too_large = || Error::BodyTooLarge {
            metric: metric.to_owned(),
            query: query.to_owned(),
            limit_bytes: limit,
        };
        if response
            .content_length()
            .is_some_and(|n| n as usize > limit)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    /// Warnings come from the server too, so they are scrubbed like errors.
    fn scrub_answer(&self, mut answer: Answer) -> Answer {
        if !self.redactor.is_empty() {
            for w in &mut answer.warnings {
                *w = self.redactor.scrub(w);
            }
            answer.no_data = answer.no_data.map(|r| self.redactor.scrub(&r));
        }
        answer
    }

    fn transport_error(&self, metric: &str, query: &str, e: reqwest::Error) -> Error {
        if e.is_redirect() {
            return Error::Redirect {
                metric: metric.to_owned(),
                query: query.to_owned(),
                reason: scrub(
                    &self.config.url,
                    &self.redactor,
                    &chain_text(&e.without_url()),
                ),
            };
        }
        if e.is_timeout() {
            return Error::Timeout {
                metric: metric.to_owned(),
                query: query.to_owned(),
                timeout: self.config.timeout,
                attempts: 1,
                elapsed: Duration::ZERO,
            };
        }
        Error::Unreachable {
            metric: metric.to_owned(),
            query: query.to_owned(),
            attempts: 1,
            elapsed: Duration::ZERO,
            source: TransportError(scrub(
                &self.config.url,
                &self.redactor,
                &chain_text(&e.without_url()),
            )),
        }
    }

    /// Fetches every configured metric of one version, concurrently.
    pub async fn fetch_metrics(&self, query: &MetricsQuery) -> Result<CanaryMetrics> {
        let coalesce = &self.config.coalesce;
        let at = match query.at {
            Some(at) => at,
            None if coalesce.enabled => crate::coalesce::round_down(Utc::now(), coalesce.step),
            None => Utc::now(),
        };
        let label = self.label_value(query);
        let queries = self.queries();
        let mut rendered = Vec::new();
        for (metric, template) in queries.iter() {
            rendered.push(self.render(metric, template, &label, query.arm, query.window)?);
        }
        let results = futures::future::join_all(queries.iter().zip(rendered).map(
            |((metric, template), q)| {
                let expected: Vec<(String, String)> = template
                    .version_labels()
                    .iter()
                    .map(|name| (name.clone(), label.clone()))
                    .collect();
                let scalar = template.can_be_scalar();
                async move {
                    let ask = || self.instant_expecting(metric, &q, at, &expected, scalar);
                    let answer = if coalesce.enabled {
                        self.coalescer.get(&q, at, coalesce.ttl, ask).await
                    } else {
                        ask().await
                    };
                    (metric, q, answer)
                }
            },
        ))
        .await;
        let mut metrics = CanaryMetrics::at(&query.version, at);
        for (metric, q, answer) in results {
            let answer = answer?;
            metrics.set_value(metric, answer.value);
            metrics.warnings.extend(
                answer
                    .warnings
                    .into_iter()
                    .map(|w| format!("{metric}: {w}")),
            );
            if let Some(reason) = answer.no_data {
                metrics
                    .warnings
                    .push(format!("{metric}: no data: {reason}"));
            }
            metrics.queries.insert(metric.to_owned(), q);
        }
        Ok(metrics)
    }
}

#[async_trait]
impl MetricsSource for PrometheusSource {
    async fn fetch(&self, query: &MetricsQuery) -> canary_core::Result<CanaryMetrics> {
        let metrics = self
            .fetch_metrics(query)
            .await
            .map_err(|e| canary_core::Error::source_failed(&query.version, e.is_retryable(), e))?;
        metrics.validate()?;
        Ok(metrics)
    }

    async fn fetch_series(
        &self,
        query: &MetricsQuery,
        step: Duration,
    ) -> canary_core::Result<Vec<MetricSeries>> {
        self.series(query, step)
            .await
            .map_err(|e| canary_core::Error::source_failed(&query.version, e.is_retryable(), e))
    }
}

impl PrometheusSource {
    /// Every configured metric of one version as range queries: `query.window` ending at
    /// `query.at`, one point per `step`, rates over four steps (at least a minute) so the
    /// chart shows movement the analysis window would smooth away.
    async fn series(&self, query: &MetricsQuery, step: Duration) -> Result<Vec<MetricSeries>> {
        let at = query.at.unwrap_or_else(Utc::now);
        let rate_window = (step * 4).max(Duration::from_secs(60));
        let label = self.label_value(query);
        let queries = self.queries();
        let ranges = queries.iter().map(|(metric, template)| {
            let q = self.render(metric, template, &label, query.arm, rate_window);
            async move {
                let q = q?;
                let answer = self.range(metric, &q, at, query.window, step).await?;
                Ok::<_, Error>(MetricSeries {
                    metric: metric.to_owned(),
                    points: answer
                        .points
                        .into_iter()
                        .filter_map(|(t, v)| v.filter(|v| v.is_finite()).map(|v| [t, v]))
                        .collect(),
                })
            }
        });
        futures::future::try_join_all(ranges).await
    }
}

#[async_trait]
impl ObservationSource for PrometheusSource {
    async fn observe(&self, query: &ObservationQuery) -> canary_core::Result<Vec<Observation>> {
        self.observations(query).await.map_err(|e| {
            canary_core::Error::source_failed(query.version.as_str(), e.is_retryable(), e)
        })
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

/// A range answer agrees with its question: no series labelled with another version, no
/// point outside the range asked for (a step of slack each side). Otherwise an error naming it.
fn agrees(
    metric: &str,
    query: &str,
    m: &MatrixAnswer,
    names: &[String],
    label: &str,
    q: &ObservationQuery,
    step_ms: i64,
) -> Result<()> {
    let invalid = |reason: String| Error::InvalidResponse {
        metric: metric.to_owned(),
        query: query.to_owned(),
        reason,
    };
    let (lo, hi) = (
        q.start.timestamp_millis().saturating_sub(step_ms),
        q.end.timestamp_millis().saturating_add(step_ms),
    );
    for s in &m.series {
        for name in names {
            if let Some(got) = s.labels.get(name).filter(|got| *got != label) {
                return Err(invalid(format!(
                    "a series is labelled {name}={got:?}, but the query selects {name}={label:?}"
                )));
            }
        }
        if let Some(&(t, _)) = s.points.iter().find(|(t, _)| *t < lo || *t > hi) {
            return Err(invalid(format!(
                "a point is stamped {} ms since the epoch, outside the range asked for ({}..{})",
                t, q.start, q.end
            )));
        }
    }
    Ok(())
}

/// Unix seconds with milliseconds, as Prometheus' `time` parameter.
fn unix(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    canary_core::error::chain(e)
}

/// `text` (a transport error, which may echo the URL) with the URL redacted and every secret
/// `redactor` knows removed.
fn scrub(url: &str, redactor: &Redactor, text: &str) -> String {
    redactor.scrub(&text.replace(url, &redact_url(url)))
}
