//! A production version's per-pod history on a fixed time grid, and pseudo-arms built from it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::inject::Injection;
use crate::error::{Error, Result};
use crate::observation::{names, Histogram, Observation};
use crate::version::Version;

/// One pod's series on the history's grid, from the pod's first instant on: cumulative and
/// reset-corrected counters and buckets, its confidence gauge, NaN where the pod had no fresh
/// sample (a missed scrape, or after it stopped).
#[derive(Clone, Debug, PartialEq)]
pub struct PodHistory {
    /// The pod's name (its instance label).
    pub name: String,
    /// The grid index of its first instant.
    pub first: usize,
    /// Requests, cumulative, one per instant from `first`.
    pub requests: Vec<f64>,
    /// Failed requests, cumulative (0 where the pod had requests but no error series yet).
    pub errors: Vec<f64>,
    /// Latency buckets, cumulative, `bounds.len()` per instant, instant after instant.
    pub buckets: Vec<f64>,
    /// The confidence gauge at each instant (NaN: none).
    pub confidence: Vec<f64>,
}

impl PodHistory {
    /// A pod first seen at grid index `first`, with nothing in it yet.
    pub fn new(name: impl Into<String>, first: usize) -> Self {
        PodHistory {
            name: name.into(),
            first,
            requests: Vec::new(),
            errors: Vec::new(),
            buckets: Vec::new(),
            confidence: Vec::new(),
        }
    }

    /// The local index of grid instant `i`, if the pod's series reach it.
    fn local(&self, i: usize) -> Option<usize> {
        i.checked_sub(self.first)
            .filter(|&k| k < self.requests.len())
    }

    /// Whether the pod had a fresh sample at grid instant `i`.
    pub fn fresh_at(&self, i: usize) -> bool {
        self.local(i).is_some_and(|k| self.requests[k].is_finite())
    }

    /// The latest local index at or before grid instant `i` with a fresh sample (its carried
    /// value, as Prometheus sums a pod that stopped at its last value).
    fn carried(&self, i: usize) -> Option<usize> {
        let end = i
            .checked_sub(self.first)?
            .min(self.requests.len().checked_sub(1)?);
        (0..=end).rev().find(|&k| self.requests[k].is_finite())
    }

    /// How many grid instants the pod's columns hold.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// A production version's history: every pod's series on one grid, `start + k × step`.
///
/// Memory: 8 bytes × (buckets + 3) per pod per instant of its life; 14 days of 15 s steps for
/// 10 pods with the guide's 8 buckets is 71 MB.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// The version whose pods these are.
    pub version: Version,
    /// The grid's first instant.
    pub start: DateTime<Utc>,
    /// The grid's step (the judge's).
    pub step: Duration,
    /// Instants on the grid.
    pub len: usize,
    /// The latency histogram's bucket bounds, ending with `+Inf` (empty: no histogram).
    pub bounds: Vec<f64>,
    /// The pods, in name order.
    pub pods: Vec<PodHistory>,
    /// What the history could not hold, for the report (e.g. a confidence gauge shared by
    /// every pod).
    pub notes: Vec<String>,
}

impl History {
    /// The instant of grid index `i`.
    pub fn at(&self, i: usize) -> DateTime<Utc> {
        let ms = (self.step.as_millis() as i64).saturating_mul(i as i64);
        self.start + chrono::Duration::milliseconds(ms)
    }

    /// The grid index of `t` (rounded down), if it is on the grid.
    pub fn index(&self, t: DateTime<Utc>) -> Option<usize> {
        let ms = (t - self.start).num_milliseconds();
        let step = self.step.as_millis() as i64;
        (ms >= 0 && step > 0)
            .then(|| (ms / step) as usize)
            .filter(|&i| i < self.len)
    }

    /// Checks the shape: every pod's columns as long as each other and within the grid, the
    /// buckets `bounds.len()` per instant, bounds ending with `+Inf`.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::InvalidConfig {
            field: "history".into(),
            reason,
        };
        if self.step.is_zero() {
            return Err(invalid("the step must be positive".into()));
        }
        if !self.bounds.is_empty() && self.bounds.last() != Some(&f64::INFINITY) {
            return Err(invalid("the last bucket bound must be +Inf".into()));
        }
        for p in &self.pods {
            let n = p.requests.len();
            if p.errors.len() != n
                || p.confidence.len() != n
                || p.buckets.len() != n * self.bounds.len()
                || p.first + n > self.len
            {
                return Err(invalid(format!(
                    "pod {:?}: its columns differ in length or run past the grid",
                    p.name
                )));
            }
        }
        Ok(())
    }

    /// The pods with a fresh sample at grid instant `i`.
    pub fn pods_at(&self, i: usize) -> Vec<usize> {
        (0..self.pods.len())
            .filter(|&p| self.pods[p].fresh_at(i))
            .collect()
    }

    /// One pseudo-arm over grid instants `from..=to`: the sum of `pods` (each at its carried
    /// value, as [`Observation::instances`] are), each pod kept as an instance, the gauge
    /// their mean; `injection` applied to each pod's increments. An instant where no pod of
    /// the arm was scraped is `None` (a missed scrape).
    pub fn arm(
        &self,
        pods: &[usize],
        from: usize,
        to: usize,
        injection: Option<&Injection>,
    ) -> Vec<Option<Observation>> {
        let k = self.bounds.len();
        let mut out = Vec::with_capacity(to + 1 - from);
        // Per pod: the carried cumulative state before the injection, and after it.
        let mut raw: Vec<Option<(f64, f64, Vec<f64>)>> = vec![None; pods.len()];
        let mut shifted: Vec<(f64, f64, Vec<f64>)> = vec![(0.0, 0.0, vec![0.0; k]); pods.len()];
        // A latency change moves each pod's requests by the shape of its whole run.
        let transfers: Vec<Option<super::inject::Transfer>> = pods
            .iter()
            .map(|&p| {
                let pod = &self.pods[p];
                let inj = injection?;
                let (a, b) = (pod.carried(from)?, pod.carried(to)?);
                let run: Vec<f64> = (0..k)
                    .map(|j| (pod.buckets[b * k + j] - pod.buckets[a * k + j]).max(0.0))
                    .collect();
                inj.transfer(&self.bounds, &run)
            })
            .collect();
        for i in from..=to {
            let at = self.at(i);
            let mut arm = Observation::new(self.version.clone(), at);
            let mut fresh = false;
            let (mut requests, mut errors, mut buckets) = (0.0, 0.0, vec![0.0; k]);
            let mut gauges = Vec::new();
            for (slot, &p) in pods.iter().enumerate() {
                let pod = &self.pods[p];
                let Some(local) = pod.carried(i) else {
                    continue;
                };
                fresh |= pod.fresh_at(i);
                let now = (
                    pod.requests[local],
                    pod.errors[local],
                    pod.buckets[local * k..(local + 1) * k].to_vec(),
                );
                let state = match injection {
                    None => now.clone(),
                    Some(inj) => {
                        // The first instant is the run's zero: increments start after it.
                        let before = raw[slot].clone().unwrap_or_else(|| now.clone());
                        let s = &mut shifted[slot];
                        if raw[slot].is_none() {
                            *s = now.clone();
                        } else {
                            let d = inj.increment(
                                &self.bounds,
                                now.0 - before.0,
                                now.1 - before.1,
                                &now.2
                                    .iter()
                                    .zip(&before.2)
                                    .map(|(a, b)| (a - b).max(0.0))
                                    .collect::<Vec<_>>(),
                                transfers[slot].as_ref(),
                            );
                            s.0 += d.0;
                            s.1 += d.1;
                            for (acc, v) in s.2.iter_mut().zip(&d.2) {
                                *acc += v;
                            }
                        }
                        raw[slot] = Some(now.clone());
                        s.clone()
                    }
                };
                let g = pod.confidence[local];
                if g.is_finite() && pod.fresh_at(i) {
                    gauges.push(g);
                }
                requests += state.0;
                errors += state.1;
                for (acc, v) in buckets.iter_mut().zip(&state.2) {
                    *acc += v;
                }
                let mut instance = Observation::new(self.version.clone(), at);
                fill(&mut instance, &self.bounds, state.0, state.1, state.2);
                arm.instances.insert(pod.name.clone(), instance);
            }
            if !fresh {
                out.push(None);
                continue;
            }
            fill(&mut arm, &self.bounds, requests, errors, buckets);
            if !gauges.is_empty() {
                let mean = gauges.iter().sum::<f64>() / gauges.len() as f64;
                let g = injection.map_or(mean, |inj| inj.confidence(mean));
                arm.gauges.insert(names::MODEL_CONFIDENCE.into(), g);
            }
            out.push(Some(arm));
        }
        out
    }
}

fn fill(o: &mut Observation, bounds: &[f64], requests: f64, errors: f64, buckets: Vec<f64>) {
    o.counters.insert(names::REQUESTS.into(), requests);
    o.counters.insert(names::ERRORS.into(), errors);
    if !bounds.is_empty() {
        let pairs: Vec<(f64, f64)> = bounds.iter().copied().zip(buckets).collect();
        if let Ok(h) = Histogram::new(pairs) {
            o.histograms.insert(names::LATENCY.into(), h);
        }
    }
}
