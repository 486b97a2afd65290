//! Delivery with retries: one POST of JSON, tried again with backoff on 5xx, 429 and
//! transport errors. Shared by every notifier.

use std::collections::BTreeMap;
use std::time::Duration;

use canary_core::Secret;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::error::{Error, Result, TransportError};

/// How hard to try.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryPolicy {
    /// Attempts in all.
    pub max_attempts: u32,
    /// The first backoff, doubled each time, with jitter (milliseconds).
    pub initial_backoff_ms: u64,
    /// Per-request timeout (milliseconds).
    pub timeout_ms: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 500,
            timeout_ms: 10_000,
        }
    }
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
        if policy.max_attempts == 0 {
            return Err(Error::InvalidConfig {
                notifier: name.into(),
                field: "max_attempts",
                reason: "must be at least 1".into(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(policy.timeout_ms))
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

    /// POSTs `body` as JSON to `url` with `headers`, retrying transient failures.
    pub(crate) async fn post(
        &self,
        url: &Secret,
        headers: &BTreeMap<String, Secret>,
        body: &serde_json::Value,
    ) -> Result<()> {
        let mut backoff = Duration::from_millis(self.policy.initial_backoff_ms);
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
            let error = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if response.status().is_success() {
                        return Ok(());
                    }
                    let text: String = response
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect();
                    let text = url.scrub(&text);
                    if status == 429 || status >= 500 {
                        Error::Unavailable {
                            notifier: self.name.clone(),
                            status,
                            attempts: attempt,
                            body: text,
                        }
                    } else {
                        return Err(Error::Rejected {
                            notifier: self.name.clone(),
                            status,
                            body: text,
                        });
                    }
                }
                Err(e) => {
                    let mut text = canary_core::error::chain(&e.without_url());
                    text = url.scrub(&text);
                    for v in headers.values() {
                        text = v.scrub(&text);
                    }
                    Error::Unreachable {
                        notifier: self.name.clone(),
                        attempts: attempt,
                        source: TransportError(text),
                    }
                }
            };
            if attempt >= self.policy.max_attempts {
                return Err(error);
            }
            let wait = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
            warn!(notifier = %self.name, attempt, error = %error, "delivery failed; retrying in {wait:?}");
            tokio::time::sleep(wait).await;
            backoff *= 2;
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
