//! Many canaries, one Prometheus: identical instant queries in flight at once are sent once and
//! shared (single flight), and answers are kept for a short time, keyed by the query and its
//! evaluation time. A thousand canaries compared with the same production version then ask for
//! the baseline once per step, not a thousand times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::response::Answer;

/// How queries are shared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CoalesceConfig {
    /// Share identical queries (on by default).
    pub enabled: bool,
    /// How long an answer is reused (seconds).
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub ttl: Duration,
    /// "Now" is rounded down to this step (seconds), so analyses asked for at nearly the same
    /// moment evaluate at the same instant and share their queries. An explicit evaluation
    /// time is used as given.
    #[serde(with = "canary_core::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "canary_core::seconds::Schema"))]
    pub step: Duration,
}

impl Default for CoalesceConfig {
    fn default() -> Self {
        CoalesceConfig {
            enabled: true,
            ttl: Duration::from_secs(15),
            step: Duration::from_secs(15),
        }
    }
}

type Key = (String, i64);

/// One shared answer: filled once by whoever asked first; `None` if that attempt failed.
type Slot = Arc<OnceCell<Option<Answer>>>;

/// The single-flight table and the short-lived cache, in one map.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    by_key: HashMap<Key, (Instant, Slot)>,
    /// When expired answers were last dropped: once per TTL, not on every query.
    purged: Option<Instant>,
}

impl Coalescer {
    /// The answer to `query` at `at`: shared with every concurrent or recent identical call.
    /// `send` runs at most once per key and lifetime; a failed attempt is not shared (each
    /// caller then sends its own and gets its own error).
    pub(crate) async fn get<F, Fut, E>(
        &self,
        query: &str,
        at: DateTime<Utc>,
        ttl: Duration,
        send: F,
    ) -> Result<Answer, E>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Answer, E>>,
    {
        let key = (query.to_owned(), at.timestamp_millis());
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let fresh = |born: &Instant| now.duration_since(*born) < ttl;
            if !slots.purged.is_some_and(|t| fresh(&t)) {
                slots.by_key.retain(|_, (born, _)| fresh(born));
                slots.purged = Some(now);
            }
            let entry = slots
                .by_key
                .entry(key.clone())
                .or_insert_with(|| (now, Arc::new(OnceCell::new())));
            if !fresh(&entry.0) {
                *entry = (now, Arc::new(OnceCell::new()));
            }
            entry.1.clone()
        };
        let mut own_error = None;
        let shared = slot
            .get_or_init(|| async {
                match send().await {
                    Ok(a) => Some(a),
                    Err(e) => {
                        own_error = Some(e);
                        None
                    }
                }
            })
            .await
            .clone();
        match (shared, own_error) {
            (Some(answer), _) => Ok(answer),
            (None, Some(e)) => {
                self.forget(&key, &slot);
                Err(e)
            }
            // Someone else's attempt failed: try for ourselves.
            (None, None) => {
                self.forget(&key, &slot);
                send().await
            }
        }
    }

    fn forget(&self, key: &Key, slot: &Slot) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots
            .by_key
            .get(key)
            .is_some_and(|(_, s)| Arc::ptr_eq(s, slot))
        {
            slots.by_key.remove(key);
        }
    }
}

/// `now` rounded down to `step` (unchanged for a zero step).
pub(crate) fn round_down(now: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
    if step_ms <= 0 {
        return now;
    }
    let ms = now.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(step_ms)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn answer(v: f64) -> Answer {
        Answer {
            value: Some(v),
            no_data: None,
            warnings: Vec::new(),
        }
    }

    #[tokio::test]
    async fn concurrent_identical_queries_are_sent_once() {
        let c = Coalescer::default();
        let sent = AtomicUsize::new(0);
        let at = Utc::now();
        let send = || async {
            sent.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, String>(answer(1.0))
        };
        let ttl = Duration::from_secs(15);
        let results = futures::future::join_all((0..50).map(|_| c.get("up", at, ttl, send))).await;
        assert!(results
            .iter()
            .all(|r| r.as_ref().unwrap().value == Some(1.0)));
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        // Another instant or another query is another key.
        c.get("up", at + chrono::Duration::seconds(15), ttl, send)
            .await
            .unwrap();
        c.get("down", at, ttl, send).await.unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn failures_are_not_shared_and_answers_expire() {
        let c = Coalescer::default();
        let sent = AtomicUsize::new(0);
        let at = Utc::now();
        let failing = || async {
            sent.fetch_add(1, Ordering::SeqCst);
            Err::<Answer, _>("boom".to_owned())
        };
        let ttl = Duration::from_millis(50);
        assert!(c.get("up", at, ttl, failing).await.is_err());
        assert!(c.get("up", at, ttl, failing).await.is_err());
        assert_eq!(sent.load(Ordering::SeqCst), 2, "a failure is never cached");
        let ok = || async {
            sent.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(answer(2.0))
        };
        c.get("up", at, ttl, ok).await.unwrap();
        c.get("up", at, ttl, ok).await.unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 3, "cached within the TTL");
        tokio::time::sleep(Duration::from_millis(60)).await;
        c.get("up", at, ttl, ok).await.unwrap();
        assert_eq!(sent.load(Ordering::SeqCst), 4, "expired");
    }

    #[test]
    fn now_rounds_down_to_the_step() {
        let t = DateTime::from_timestamp(1_000_007, 500_000_000).unwrap();
        assert_eq!(
            round_down(t, Duration::from_secs(15)).timestamp(),
            1_000_005
        );
        assert_eq!(round_down(t, Duration::ZERO), t);
    }
}
