//! An in-memory [`ObservationSource`] and steady traffic to fill it with.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::observation::{
    names, Histogram, Observation, ObservationQuery, ObservationSource, GUIDE_BUCKETS,
};
use crate::version::Version;

/// Cumulative shares of requests at the guide's buckets and `+Inf` for healthy traffic: p50
/// 100 ms, p99 944.4 ms (as `histogram_quantile` interpolates).
pub const HEALTHY_SHARES: [f64; 8] = [0.5, 0.8, 0.95, 0.995, 1.0, 1.0, 1.0, 1.0];

/// Steady traffic of `version` from `start`, one observation every `step` for `duration`:
/// `rps` requests a second, a share `error_ratio` failing, latency by cumulative `shares` of
/// [`GUIDE_BUCKETS`] and `+Inf`, model confidence 0.9.
pub fn steady_observations(
    version: &str,
    rps: f64,
    error_ratio: f64,
    shares: [f64; 8],
    start: DateTime<Utc>,
    duration: Duration,
    step: Duration,
) -> Vec<Observation> {
    let version = Version::new(version).expect("a valid version");
    let steps = (duration.as_secs_f64() / step.as_secs_f64()).floor() as u32;
    (0..=steps)
        .map(|i| {
            let elapsed = step * i;
            let n = rps * elapsed.as_secs_f64();
            let buckets = GUIDE_BUCKETS
                .iter()
                .chain([&f64::INFINITY])
                .zip(shares)
                .map(|(&b, s)| (b, n * s))
                .collect();
            let at = start + chrono::Duration::from_std(elapsed).unwrap_or_default();
            Observation::new(version.clone(), at)
                .with_counter(names::REQUESTS, n)
                .with_counter(names::ERRORS, n * error_ratio)
                .with_gauge(names::MODEL_CONFIDENCE, 0.9)
                .with_histogram(
                    names::LATENCY,
                    Histogram::new(buckets).expect("valid buckets"),
                )
        })
        .collect()
}

/// An in-memory [`ObservationSource`]: per version, a list of observations (or a failure); a
/// query gets those between its start and end. A version with nothing set has no data.
#[derive(Debug, Default)]
pub struct ScriptedObservations {
    scripts: Mutex<HashMap<String, std::result::Result<Vec<Observation>, String>>>,
}

impl ScriptedObservations {
    /// A source with no data at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// `version`'s observations from now on.
    pub fn set(&self, version: &str, observations: Vec<Observation>) {
        self.lock().insert(version.to_owned(), Ok(observations));
    }

    /// Makes every query of `version` fail with `message`.
    pub fn fail(&self, version: &str, message: &str) {
        self.lock()
            .insert(version.to_owned(), Err(message.to_owned()));
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, std::result::Result<Vec<Observation>, String>>>
    {
        self.scripts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ObservationSource for ScriptedObservations {
    async fn observe(&self, query: &ObservationQuery) -> Result<Vec<Observation>> {
        match self.lock().get(query.version.as_str()) {
            None => Ok(Vec::new()),
            Some(Err(message)) => Err(Error::source_failed(
                query.version.as_str(),
                true,
                super::ScriptedError(message.clone()),
            )),
            Some(Ok(all)) => Ok(all
                .iter()
                .filter(|o| o.at >= query.start && o.at <= query.end)
                .map(|o| Observation {
                    version: query.version.clone(),
                    ..o.clone()
                })
                .collect()),
        }
    }
}

/// Feeds `judge` every pair of `baseline` and `canary` observations in order and returns its
/// evaluation: the first decision it reaches, or
/// [`Judge::finish`](crate::judge::Judge::finish)'s. With `pods` false each observation's pods
/// are dropped first, so the judge sees each arm as one summed series.
pub fn judge_pairs(
    judge: &mut dyn crate::judge::Judge,
    baseline: &[Observation],
    canary: &[Observation],
    pods: bool,
) -> crate::policy::Evaluation {
    for (b, c) in baseline.iter().zip(canary) {
        let verdict = if pods {
            judge.observe(b, c)
        } else {
            let (mut b, mut c) = (b.clone(), c.clone());
            b.instances.clear();
            c.instances.clear();
            judge.observe(&b, &c)
        };
        if let crate::judge::Verdict::Decided(e) = verdict {
            return *e;
        }
    }
    judge.finish()
}

/// Every judge canary offers, each with its default parameters: the threshold policy, the
/// sequential judge, and Flagger's, Argo Rollouts' and Kayenta's. For tests that hold a rule
/// for every judge.
pub fn every_judge() -> Vec<std::sync::Arc<dyn crate::judge::JudgeFactory>> {
    use crate::judge::{
        ArgoParameters, FlaggerParameters, KayentaParameters, SequentialParameters,
        ThresholdParameters,
    };
    vec![
        std::sync::Arc::new(ThresholdParameters::default()),
        std::sync::Arc::new(SequentialParameters::default()),
        std::sync::Arc::new(FlaggerParameters::default()),
        std::sync::Arc::new(ArgoParameters::default()),
        std::sync::Arc::new(KayentaParameters::default()),
    ]
}
