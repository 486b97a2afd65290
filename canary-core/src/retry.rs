//! The one retry and backoff policy every adapter shares (Prometheus queries, notifications).
//!
//! It only computes: the adapter makes the attempts and sleeps. That keeps the rules in one
//! place, testable without a clock or a network.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// When to try again: exponential backoff with jitter, a maximum backoff, a maximum number of
/// attempts and a deadline. A server's `Retry-After` is honoured, within the deadline.
///
/// ```
/// use std::time::Duration;
/// use canary_core::RetryPolicy;
/// let p = RetryPolicy::default();
/// // After the first failure: wait about the initial backoff (jittered down to half).
/// let d = p.delay(1, Duration::ZERO, None).unwrap();
/// assert!(d <= p.initial_backoff && d >= p.initial_backoff / 2);
/// // A Retry-After beyond the deadline ends the retries.
/// assert_eq!(p.delay(1, Duration::ZERO, Some(Duration::from_secs(3600))), None);
/// // No attempt after the last one.
/// assert_eq!(p.delay(p.max_attempts, Duration::ZERO, None), None);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. 1 disables retries.
    pub max_attempts: u32,
    /// The first backoff; it doubles after each failure, with jitter.
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub initial_backoff: Duration,
    /// The longest backoff.
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub max_backoff: Duration,
    /// No retry starts after this long since the first attempt, and no wait ends after it.
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// Checks the policy; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, reason: &str| Error::InvalidConfig {
            field: format!("retry.{field}"),
            reason: reason.to_owned(),
        };
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "must be at least 1"));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(invalid(
                "initial_backoff",
                "must not be longer than max_backoff",
            ));
        }
        Ok(())
    }

    /// How long to wait before the next attempt, after `attempts` attempts that took `elapsed`
    /// since the first began; `None` means give up. `retry_after` is the server's
    /// `Retry-After`: it replaces the backoff (a server that asks for more time gets it), but
    /// never beyond the deadline.
    pub fn delay(
        &self,
        attempts: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let wait = match retry_after {
            Some(asked) => asked,
            None => {
                let doublings = attempts.saturating_sub(1).min(31);
                let base = self
                    .initial_backoff
                    .saturating_mul(1u32 << doublings)
                    .min(self.max_backoff);
                // Jitter in [50 %, 100 %] spreads clients that failed together.
                base.mul_f64(0.5 + fastrand::f64() * 0.5)
            }
        };
        (elapsed.saturating_add(wait) <= self.deadline).then_some(wait)
    }
}

/// Reads an HTTP `Retry-After` value: delay seconds or an HTTP date, relative to `now`.
/// Anything else, or a date in the past, is `None` (use the backoff).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&Utc) - now).to_std().ok()
}

/// The most redirects any adapter follows for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Why a redirect must not be followed, or `None` to follow it. `hops` is the number of
/// redirects already followed; `from` and `to` are origins (`scheme://host:port`).
///
/// Only same-origin redirects are followed: a redirect to another scheme, host or port would
/// have the other server's data judged, and may carry credentials to it.
pub fn redirect_refusal(hops: usize, from: &str, to: &str) -> Option<String> {
    if from != to {
        Some(format!(
            "a redirect from {from} to another origin ({to}) is not followed; point the URL at the server itself"
        ))
    } else if hops >= MAX_REDIRECTS {
        Some(format!("more than {MAX_REDIRECTS} redirects within {from}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let p = RetryPolicy {
            max_attempts: 20,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            deadline: Duration::from_secs(3600),
        };
        for (attempts, ceiling) in [(1, 100), (2, 200), (3, 400), (4, 700), (19, 700)] {
            let d = p.delay(attempts, Duration::ZERO, None).unwrap();
            let ceiling = Duration::from_millis(ceiling);
            assert!(d <= ceiling && d >= ceiling / 2, "{attempts}: {d:?}");
        }
    }

    #[test]
    fn the_deadline_and_the_attempt_count_end_retries() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, p.deadline, None), None);
        assert_eq!(p.delay(3, Duration::ZERO, None), None);
        assert_eq!(RetryPolicy::never().delay(1, Duration::ZERO, None), None);
        let asked = Some(Duration::from_secs(2));
        assert_eq!(p.delay(1, Duration::ZERO, asked), asked);
        assert_eq!(p.delay(1, Duration::from_secs(59), asked), None);
    }

    #[test]
    fn invalid_policies_are_named() {
        let p = RetryPolicy {
            max_attempts: 0,
            ..Default::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_attempts"));
        let p = RetryPolicy {
            initial_backoff: Duration::from_secs(10),
            ..Default::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("initial_backoff"));
    }

    #[test]
    fn only_same_origin_redirects_are_followed() {
        assert_eq!(redirect_refusal(0, "http://p:9090", "http://p:9090"), None);
        let cross = redirect_refusal(0, "http://p:9090", "http://evil:9090").unwrap();
        assert!(
            cross.contains("another origin") && cross.contains("evil"),
            "{cross}"
        );
        assert!(redirect_refusal(0, "http://p:9090", "https://p:9090").is_some());
        assert!(redirect_refusal(0, "http://p:9090", "http://p:9091").is_some());
        assert!(redirect_refusal(MAX_REDIRECTS, "http://p:1", "http://p:1").is_some());
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 11:00:00 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
