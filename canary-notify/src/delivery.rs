//! Delivery with retries: one POST of JSON, tried again with backoff on 5xx, 429 and
//! transport errors. Shared by every notifier.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use canary_core::retry::{parse_retry_after, redirect_refusal};
use canary_core::{Redactor, RetryPolicy, Secret};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::error::{Error, Result, TransportError};

/// How hard to try: the shared [`RetryPolicy`] (backoff with jitter, a maximum backoff, a
/// deadline, `Retry-After` honoured) and a per-request timeout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryPolicy {
    /// When to try again: on 5xx, 429 and transport errors.
    pub retry: RetryPolicy,
    /// Per-request timeout.
    #[serde(with = "canary_core::seconds")]
    pub timeout: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(5),
                deadline: Duration::from_secs(30),
            },
            timeout: Duration::from_secs(10),
        }
    }
}

/// Follows redirects within the receiver's origin only (see
/// [`canary_core::retry::redirect_refusal`]).
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let origin = |u: &reqwest::Url| u.origin().ascii_serialization();
        let from = attempt.previous().first().map(origin).unwrap_or_default();
        match redirect_refusal(
            attempt.previous().len().saturating_sub(1),
            &from,
            &origin(attempt.url()),
        ) {
            Some(reason) => attempt.error(reason),
            None => attempt.follow(),
        }
    })
}

/// An HTTP client for one notifier.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    name: String,
    client: reqwest::Client,
    policy: DeliveryPolicy,
}

impl Sender {
    pub(crate) fn new(name: &str, policy: DeliveryPolicy) -> Result<Self> {
        policy.retry.validate().map_err(|e| Error::InvalidConfig {
            notifier: name.into(),
            field: "retry",
            reason: e.to_string(),
        })?;
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| Error::InvalidConfig {
                notifier: name.into(),
                field: "client",
                reason: e.to_string(),
            })?;
        Ok(Sender {
            name: name.into(),
            client,
            policy,
        })
    }

    /// POSTs `body` as JSON to `url` with `headers`, retrying transient failures. Whatever the
    /// receiver answers is scrubbed of the URL and every header value before it is kept.
    pub(crate) async fn post(
        &self,
        url: &Secret,
        headers: &BTreeMap<String, Secret>,
        body: &serde_json::Value,
    ) -> Result<()> {
        let mut redactor = Redactor::default();
        redactor.add_url(url);
        for v in headers.values() {
            redactor.add(v);
        }
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .post(url.expose())
                .header("Content-Type", "application/json")
                .body(body.to_string());
            for (k, v) in headers {
                request = request.header(k.as_str(), v.expose());
            }
            let (error, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if response.status().is_success() {
                        return Ok(());
                    }
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, Utc::now()));
                    let text: String = response
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect();
                    let text = redactor.scrub(&text);
                    if status == 429 || status >= 500 {
                        let e = Error::Unavailable {
                            notifier: self.name.clone(),
                            status,
                            attempts: attempt,
                            body: text,
                        };
                        (e, retry_after)
                    } else {
                        return Err(Error::Rejected {
                            notifier: self.name.clone(),
                            status,
                            body: text,
                        });
                    }
                }
                Err(e) => {
                    let redirect = e.is_redirect();
                    let text = redactor.scrub(&canary_core::error::chain(&e.without_url()));
                    let error = Error::Unreachable {
                        notifier: self.name.clone(),
                        attempts: attempt,
                        source: TransportError(text),
                    };
                    if redirect {
                        // Another origin will not stop being another origin.
                        return Err(error);
                    }
                    (error, None)
                }
            };
            let Some(wait) = self
                .policy
                .retry
                .delay(attempt, started.elapsed(), retry_after)
            else {
                return Err(error);
            };
            warn!(notifier = %self.name, attempt, error = %error, "delivery failed; retrying in {wait:?}");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Checks that a URL is http(s), without echoing it.
pub(crate) fn check_url(notifier: &str, url: &Secret) -> Result<()> {
    match reqwest::Url::parse(url.expose()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(Error::InvalidConfig {
            notifier: notifier.into(),
            field: "url",
            reason: "not an http(s) URL (value redacted)".into(),
        }),
    }
}
