//! Canaries asked about before their first scrape: when each was first asked, so that one that
//! never appears is held for a person within a bounded time.
//!
//! The service keeps no state about a run; this is the one exception, and it only ever delays
//! a "no series" answer: a canary with no series and no `since` is awaited for the first-scrape
//! grace counted from the first question this replica got about it. A restart or another
//! replica counts from its own first question, so the bound is the grace after the first
//! question each replica gets (give `since` for one bound across replicas).

use std::collections::HashMap;
use std::sync::Mutex;

use canary_core::Version;
use chrono::{DateTime, Utc};

/// At most this many canaries are awaited at once; the oldest is forgotten first (it is then
/// held at its next question, the safe side).
const CAPACITY: usize = 10_000;

/// When each awaited (baseline, canary) pair was first asked about.
#[derive(Debug, Default)]
pub(crate) struct FirstAsked {
    pairs: Mutex<HashMap<(Version, Version), DateTime<Utc>>>,
}

impl FirstAsked {
    /// When `(baseline, canary)` was first asked about, `now` if this is the first time.
    pub(crate) fn since(
        &self,
        baseline: &Version,
        canary: &Version,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let mut pairs = self.pairs.lock().unwrap_or_else(|e| e.into_inner());
        let key = (baseline.clone(), canary.clone());
        if let Some(&first) = pairs.get(&key) {
            return first;
        }
        if pairs.len() >= CAPACITY {
            if let Some(oldest) = pairs
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            {
                pairs.remove(&oldest);
            }
        }
        pairs.insert(key, now);
        now
    }

    /// The canary has series now: it is no longer awaited.
    pub(crate) fn forget(&self, baseline: &Version, canary: &Version) {
        let mut pairs = self.pairs.lock().unwrap_or_else(|e| e.into_inner());
        pairs.remove(&(baseline.clone(), canary.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_question_counts_until_the_canary_appears() {
        let asked = FirstAsked::default();
        let (b, c) = (Version::new("v1").unwrap(), Version::new("v2").unwrap());
        let t0 = Utc::now();
        assert_eq!(asked.since(&b, &c, t0), t0);
        let later = t0 + chrono::Duration::minutes(1);
        assert_eq!(
            asked.since(&b, &c, later),
            t0,
            "counted from the first question"
        );
        asked.forget(&b, &c);
        assert_eq!(asked.since(&b, &c, later), later);
    }
}
