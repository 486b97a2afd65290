//! # canary-sim
//!
//! Canary scenarios, simulated: raw request streams per arm, rendered into what Prometheus
//! would hold, as [`Observation`]s at every scrape, so that judges can be measured on data whose
//! ground truth is known.
//!
//! This is the first slice of the simulator: independent requests arriving as a Poisson
//! process, split between the arms by a traffic share and over instances; lognormal latency;
//! independent errors; a constant model-confidence gauge; cumulative histograms and counters
//! scraped at a fixed interval. Every scenario is reproducible from its seed, and the random
//! numbers are common: a request's arrival, latency and error draws depend only on the seed,
//! the arm and the instance, so two scenarios that differ in one parameter differ only there.
//!
//! ```
//! use canary_sim::{simulate, Scenario};
//! let run = simulate(&Scenario::aa_guide(7))?;
//! assert_eq!(run.canary.len(), 41); // 10 minutes of 15 s scrapes, both ends
//! let requests = run.canary.last().unwrap().counters["requests"];
//! assert!((requests - 4.4 * 600.0).abs() < 300.0); // 10 % of 44 req/s
//! # Ok::<_, canary_core::Error>(())
//! ```

use std::time::Duration;

use canary_core::observation::{names, Histogram, Observation};
use canary_core::Version;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

pub use canary_core::observation::GUIDE_BUCKETS;

/// A latency distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Latency {
    /// `median × e^(σ·Z)`, Z standard normal.
    LogNormal {
        /// The median, in seconds.
        median_s: f64,
        /// σ of the underlying normal.
        sigma: f64,
    },
}

impl Latency {
    /// The latency for a standard normal draw `z` (a quantile transform, so that a shifted
    /// distribution moves every request the same way: common random numbers).
    fn at(&self, z: f64) -> f64 {
        match *self {
            Latency::LogNormal { median_s, sigma } => median_s * (sigma * z).exp(),
        }
    }
}

/// How one arm behaves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmModel {
    /// The version label.
    pub version: String,
    /// Request latency.
    pub latency: Latency,
    /// The probability that a request fails.
    pub error_rate: f64,
    /// The model-confidence gauge's value.
    pub confidence: f64,
}

/// A canary scenario: its traffic, its two arms, and how it is observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The scenario's name (with the seed, it reproduces the run).
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// How long the run lasts.
    pub duration: Duration,
    /// How often Prometheus scrapes.
    pub scrape_interval: Duration,
    /// Requests per second over both arms.
    pub total_rps: f64,
    /// The canary's share of the requests, in (0, 1).
    pub canary_share: f64,
    /// Instances per arm; requests are spread evenly over them.
    pub instances: usize,
    /// Finite histogram bucket bounds, in seconds, increasing; `+Inf` is added.
    pub buckets: Vec<f64>,
    /// Production.
    pub baseline: ArmModel,
    /// The new version.
    pub canary: ArmModel,
}

impl Scenario {
    /// The calibration scenario `aa-guide`: both arms lognormal with a median of 120 ms and
    /// σ 0.5, 1 % errors, confidence 0.85; 44 req/s in all with 10 % to the canary; the guide's
    /// buckets; 15 s scrapes; ten minutes, so the threshold judge looks once, over the last
    /// five.
    pub fn aa_guide(seed: u64) -> Self {
        let arm = |version: &str| ArmModel {
            version: version.into(),
            latency: Latency::LogNormal {
                median_s: 0.120,
                sigma: 0.5,
            },
            error_rate: 0.01,
            confidence: 0.85,
        };
        Scenario {
            name: "aa-guide".into(),
            seed,
            duration: Duration::from_secs(600),
            scrape_interval: Duration::from_secs(15),
            total_rps: 44.0,
            canary_share: 0.10,
            instances: 2,
            buckets: GUIDE_BUCKETS.to_vec(),
            baseline: arm("v1"),
            canary: arm("v2"),
        }
    }

    /// Checks the scenario; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(self.canary_share > 0.0 && self.canary_share < 1.0) {
            return Err("canary_share must be in (0, 1)".into());
        }
        if !positive(self.total_rps) || self.instances == 0 {
            return Err("total_rps must be > 0 and instances at least 1".into());
        }
        if self.scrape_interval.is_zero() || self.scrape_interval > self.duration {
            return Err("scrape_interval must be > 0 and at most the duration".into());
        }
        if self.buckets.is_empty()
            || !self.buckets.iter().all(|&b| positive(b))
            || self.buckets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err("buckets must be finite, positive and increasing".into());
        }
        for (arm, m) in [("baseline", &self.baseline), ("canary", &self.canary)] {
            let Latency::LogNormal { median_s, sigma } = m.latency;
            if !(positive(median_s) && sigma.is_finite() && sigma >= 0.0) {
                return Err(format!("{arm}.latency must have a median > 0 and σ >= 0"));
            }
            if !(0.0..=1.0).contains(&m.error_rate) || !m.confidence.is_finite() {
                return Err(format!(
                    "{arm}.error_rate must be in [0, 1] and its confidence finite"
                ));
            }
            canary_core::Version::new(&m.version).map_err(|e| format!("{arm}.version: {e}"))?;
        }
        Ok(())
    }
}

/// Both arms' observations at every scrape, from the start to the end of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    /// Production's observations.
    pub baseline: Vec<Observation>,
    /// The canary's observations, at the same instants.
    pub canary: Vec<Observation>,
}

/// When every simulated run starts (observations are timestamped from it).
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid instant")
}

/// Runs `scenario`; an invalid one is an error naming the field ([`Scenario::validate`]).
pub fn simulate(scenario: &Scenario) -> canary_core::Result<Simulation> {
    scenario
        .validate()
        .map_err(|reason| canary_core::Error::InvalidConfig {
            field: format!("scenario {}", scenario.name),
            reason,
        })?;
    let share = scenario.canary_share;
    Ok(Simulation {
        baseline: arm(scenario, &scenario.baseline, 0, 1.0 - share),
        canary: arm(scenario, &scenario.canary, 1, share),
    })
}

/// One arm: each instance's request stream, scraped, summed over instances.
fn arm(s: &Scenario, model: &ArmModel, arm_id: u64, share: f64) -> Vec<Observation> {
    let scrapes = (s.duration.as_secs_f64() / s.scrape_interval.as_secs_f64()).floor() as usize;
    let bounds: Vec<f64> = s.buckets.iter().copied().chain([f64::INFINITY]).collect();
    // What arrives between scrapes (per bucket, not cumulative), summed over instances.
    let mut buckets = vec![vec![0.0f64; bounds.len()]; scrapes + 1];
    let mut requests = vec![0.0f64; scrapes + 1];
    let mut errors = vec![0.0f64; scrapes + 1];
    let rate = s.total_rps * share / s.instances as f64;
    let interval = s.scrape_interval.as_secs_f64();
    for instance in 0..s.instances {
        let mut rng = fastrand::Rng::with_seed(stream(s.seed, arm_id, instance as u64));
        let mut t = 0.0;
        loop {
            // Poisson arrivals: exponential gaps.
            t += -(1.0 - rng.f64()).ln() / rate;
            // The first scrape at or after the request sees it.
            let k = (t / interval).ceil() as usize;
            if k > scrapes {
                break;
            }
            let latency = model.latency.at(normal(&mut rng));
            let failed = rng.f64() < model.error_rate;
            let bucket = bounds
                .iter()
                .position(|&b| latency <= b)
                .unwrap_or(bounds.len() - 1);
            requests[k] += 1.0;
            errors[k] += f64::from(u8::from(failed));
            buckets[k][bucket] += 1.0;
        }
    }
    // Cumulative over time, then over bucket bounds.
    for k in 1..=scrapes {
        requests[k] += requests[k - 1];
        errors[k] += errors[k - 1];
        let (before, from_k) = buckets.split_at_mut(k);
        for (now, then) in from_k[0].iter_mut().zip(&before[k - 1]) {
            *now += then;
        }
    }
    for row in &mut buckets {
        for b in 1..row.len() {
            row[b] += row[b - 1];
        }
    }
    let version = Version::new(&model.version).expect("validated");
    (0..=scrapes)
        .map(|k| {
            let at = epoch()
                + chrono::Duration::from_std(s.scrape_interval * k as u32).unwrap_or_default();
            let h = bounds
                .iter()
                .copied()
                .zip(buckets[k].iter().copied())
                .collect();
            Observation::new(version.clone(), at)
                .with_histogram(names::LATENCY, Histogram::new(h).expect("valid buckets"))
                .with_counter(names::REQUESTS, requests[k])
                .with_counter(names::ERRORS, errors[k])
                .with_gauge(names::MODEL_CONFIDENCE, model.confidence)
        })
        .collect()
}

/// A seed for one (run, arm, instance) stream: SplitMix64 of the three, so streams do not
/// overlap and do not depend on each other.
fn stream(seed: u64, arm: u64, instance: u64) -> u64 {
    let mut x = seed
        ^ arm.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ instance.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A standard normal draw (Box–Muller; one of the pair, so each request uses a fixed number
/// of draws and streams stay aligned across scenarios).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // in (0, 1]
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
