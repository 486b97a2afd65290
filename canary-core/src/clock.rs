//! Time, injectable so that tests never really sleep.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Reads the time and waits. The validator waits only through this trait.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Waits for `duration`. Cancelling the future stops the wait.
    async fn sleep(&self, duration: Duration);
}

/// The wall clock, waiting on tokio's timer (which honours `tokio::time::pause`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The whole-seconds difference `later - earlier`, clamped at zero, as a `Duration`.
pub(crate) fn elapsed(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or_default()
}
