//! The wire: sending a query with retries, redirects within the origin, and every answer
//! and error scrubbed of secrets.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use crate::config::{redact_url, QueryMethod};
use crate::error::{Error, Result, TransportError};
use crate::response::{parse_instant, Answer};
use canary_core::retry::{parse_retry_after, redirect_refusal};
use canary_core::Redactor;

use super::PrometheusSource;

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

/// One HTTP answer: status, `Retry-After` if any, body.
struct Reply {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl PrometheusSource {
    /// Sends with retries; every error is scrubbed of secrets before it is logged or returned.
    pub(super) async fn send(
        &self,
        path: &str,
        metric: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<(u16, Vec<u8>)> {
        self.send_as(self.config.method, path, metric, query, params)
            .await
    }

    /// [`send`](Self::send) with `method`, for the endpoints that take only one (the label
    /// values API is GET only).
    pub(super) async fn send_as(
        &self,
        method: QueryMethod,
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
            let result = self.send_once(method, path, metric, query, params).await;
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
        method: QueryMethod,
        path: &str,
        metric: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<Reply> {
        let mut url = self.base.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        let mut request = match method {
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
    pub(super) fn scrub_answer(&self, mut answer: Answer) -> Answer {
        answer.warnings = self.warnings_that_count(std::mem::take(&mut answer.warnings));
        if !self.redactor.is_empty() {
            answer.no_data = answer.no_data.map(|r| self.redactor.scrub(&r));
        }
        answer
    }

    /// The server's warnings, scrubbed, less those `harmless_warnings` names (each dropped
    /// one is logged): what is left keeps a run from being promoted.
    pub(super) fn warnings_that_count(&self, warnings: Vec<String>) -> Vec<String> {
        warnings
            .into_iter()
            .map(|w| self.redactor.scrub(&w))
            .filter(|w| {
                let harmless = self
                    .config
                    .harmless_warnings
                    .iter()
                    .any(|h| w.contains(h.as_str()));
                if harmless {
                    tracing::debug!(warning = %w, "a warning named harmless in the configuration");
                }
                !harmless
            })
            .collect()
    }

    pub(super) fn transport_error(&self, metric: &str, query: &str, e: reqwest::Error) -> Error {
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
}

/// Unix seconds with milliseconds, as Prometheus' `time` parameter.
pub(super) fn unix(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

pub(super) fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    canary_core::error::chain(e)
}

/// `text` (a transport error, which may echo the URL) with the URL redacted and every secret
/// `redactor` knows removed.
pub(super) fn scrub(url: &str, redactor: &Redactor, text: &str) -> String {
    redactor.scrub(&text.replace(url, &redact_url(url)))
}
