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

/// The environment variable that scales every wait of [`ScaledClock::from_env`].
pub const TIME_SCALE_ENV: &str = "CANARY_TIME_SCALE";

/// The wall clock with every wait multiplied by a factor: 0 never waits (tests, dry runs),
/// 0.01 turns a 15-minute warm-up into 9 seconds. Time is still read from the wall clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaledClock {
    factor: f64,
}

impl ScaledClock {
    /// A clock whose waits last `factor` times as long. The factor must be finite and >= 0.
    pub fn new(factor: f64) -> crate::Result<Self> {
        if !(factor.is_finite() && factor >= 0.0) {
            return Err(crate::Error::InvalidConfig {
                field: TIME_SCALE_ENV.into(),
                reason: format!("{} is not a finite number >= 0", crate::format::Num(factor)),
            });
        }
        Ok(ScaledClock { factor })
    }

    /// The factor from `CANARY_TIME_SCALE`, or 1 when it is unset.
    pub fn from_env() -> crate::Result<Self> {
        match std::env::var(TIME_SCALE_ENV) {
            Err(_) => Ok(ScaledClock { factor: 1.0 }),
            Ok(text) => {
                let factor =
                    text.trim()
                        .parse::<f64>()
                        .map_err(|_| crate::Error::InvalidConfig {
                            field: TIME_SCALE_ENV.into(),
                            reason: format!("{text:?} is not a number"),
                        })?;
                Self::new(factor)
            }
        }
    }

    /// The factor.
    pub fn factor(&self) -> f64 {
        self.factor
    }
}

#[async_trait]
impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep(&self, duration: Duration) {
        if self.factor > 0.0 {
            // `mul_f64` panics on overflow; an absurd wait saturates instead.
            let scaled = Duration::try_from_secs_f64(duration.as_secs_f64() * self.factor)
                .unwrap_or(Duration::MAX);
            tokio::time::sleep(scaled).await;
        }
    }
}

/// The whole-seconds difference `later - earlier`, clamped at zero, as a `Duration`.
pub(crate) fn elapsed(earlier: DateTime<Utc>, later: DateTime<Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_are_checked() {
        assert!(ScaledClock::new(0.0).is_ok());
        assert!(ScaledClock::new(-1.0).is_err());
        assert!(ScaledClock::new(f64::NAN).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_are_scaled() {
        let start = tokio::time::Instant::now();
        ScaledClock::new(0.5)
            .unwrap()
            .sleep(Duration::from_secs(60))
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        ScaledClock::new(0.0)
            .unwrap()
            .sleep(Duration::from_secs(3600))
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(30), "0 never waits");
    }
}
