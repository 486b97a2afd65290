//! What a scenario is made of: latency distributions, effects, traffic, noise, gaps.

use std::time::Duration;

use canary_core::observation::GUIDE_BUCKETS;
use canary_core::source::Arm;
use serde::{Deserialize, Serialize};

use crate::Pods;

/// z at the 90th and 99th percentiles of the standard normal (where a tail-only effect starts
/// and where it reaches its full size).
const Z90: f64 = 1.281_551_565_544_600_5;
const Z99: f64 = 2.326_347_874_040_841;

/// A latency distribution. Every request draws one standard normal `z` and one uniform `u`;
/// a distribution maps them to seconds monotonically in `z`, so that two arms that differ only
/// in a parameter move the same request the same way (common random numbers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Latency {
    /// `median × e^(σ·z)`.
    LogNormal {
        /// The median, in seconds.
        median_s: f64,
        /// σ of the underlying normal.
        sigma: f64,
    },
    /// Heavy-tailed: a Pareto distribution with shape `alpha` (its variance is infinite for
    /// `alpha` ≤ 2), scaled to the given median.
    Pareto {
        /// The median, in seconds.
        median_s: f64,
        /// The tail index.
        alpha: f64,
    },
    /// Two lognormal modes (e.g. cache hits and misses): a request is slow with probability
    /// `slow_fraction`.
    Bimodal {
        /// The fast mode's median, in seconds.
        fast_median_s: f64,
        /// The slow mode's median, in seconds.
        slow_median_s: f64,
        /// σ of both modes.
        sigma: f64,
        /// The probability of the slow mode.
        slow_fraction: f64,
    },
}

impl Latency {
    /// Seconds for a standard normal draw `z` and a uniform draw `u`.
    pub(crate) fn at(&self, z: f64, u: f64) -> f64 {
        match *self {
            Latency::LogNormal { median_s, sigma } => median_s * (sigma * z).exp(),
            Latency::Pareto { median_s, alpha } => {
                // Quantile of Pareto(x_m, α) at p = Φ(z); x_m puts the median where asked.
                let x_m = median_s / 2f64.powf(1.0 / alpha);
                let upper = canary_core::stats::normal_sf(z).max(f64::MIN_POSITIVE);
                x_m * upper.powf(-1.0 / alpha)
            }
            Latency::Bimodal {
                fast_median_s,
                slow_median_s,
                sigma,
                slow_fraction,
            } => {
                let median = if u < slow_fraction {
                    slow_median_s
                } else {
                    fast_median_s
                };
                median * (sigma * z).exp()
            }
        }
    }

    fn check(&self) -> Result<(), String> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let ok = match *self {
            Latency::LogNormal { median_s, sigma } => {
                positive(median_s) && sigma.is_finite() && sigma >= 0.0
            }
            Latency::Pareto { median_s, alpha } => positive(median_s) && positive(alpha),
            Latency::Bimodal {
                fast_median_s,
                slow_median_s,
                sigma,
                slow_fraction,
            } => {
                positive(fast_median_s)
                    && positive(slow_median_s)
                    && sigma.is_finite()
                    && sigma >= 0.0
                    && (0.0..=1.0).contains(&slow_fraction)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(
                "latency parameters must be finite and positive (σ >= 0, fractions in [0, 1])"
                    .into(),
            )
        }
    }
}

/// When an [`Effect`] is in force.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Onset {
    /// From the start.
    #[default]
    Immediate,
    /// From `at` into the run on (a bad config pushed mid-run).
    Step {
        /// When it starts.
        #[serde(with = "canary_core::seconds")]
        at: Duration,
    },
    /// Growing linearly from nothing at the start to its full size at the end (a leak).
    Drift,
    /// Growing linearly from nothing at the start to its full size at `over`, then staying.
    Ramp {
        /// When it reaches its full size.
        #[serde(with = "canary_core::seconds")]
        over: Duration,
    },
}

/// How an arm differs from its model: the ground truth of a regression or an improvement.
/// The neutral effect (all factors 1, delta 0) changes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Effect {
    /// Every request's latency is multiplied by this (a location shift on the log scale).
    pub latency_factor: f64,
    /// Tail only: requests above the distribution's p90 are slowed progressively, those at and
    /// beyond its p99 by this factor; the median and p90 do not move.
    pub tail_factor: f64,
    /// Variance only: `z` is multiplied by this, so the median stays and the spread grows.
    pub spread_factor: f64,
    /// The error probability is multiplied by this (capped at 1).
    pub error_factor: f64,
    /// Added to the model-confidence gauge (negative: a drop).
    pub confidence_delta: f64,
    /// When it is in force.
    pub onset: Onset,
}

impl Default for Effect {
    fn default() -> Self {
        Effect {
            latency_factor: 1.0,
            tail_factor: 1.0,
            spread_factor: 1.0,
            error_factor: 1.0,
            confidence_delta: 0.0,
            onset: Onset::Immediate,
        }
    }
}

impl Effect {
    /// How much of the effect is in force at `t` seconds into a run of `duration` seconds.
    pub(crate) fn strength(&self, t: f64, duration: f64) -> f64 {
        match self.onset {
            Onset::Immediate => 1.0,
            Onset::Step { at } => f64::from(u8::from(t >= at.as_secs_f64())),
            Onset::Drift => (t / duration).clamp(0.0, 1.0),
            Onset::Ramp { over } => (t / over.as_secs_f64().max(1e-9)).clamp(0.0, 1.0),
        }
    }

    /// The effect at strength `s` on a request's draw: the transformed `z` and the factor its
    /// latency is multiplied by.
    pub(crate) fn latency(&self, z: f64, s: f64) -> (f64, f64) {
        let z = z * (1.0 + s * (self.spread_factor - 1.0));
        let ramp = ((z - Z90) / (Z99 - Z90)).clamp(0.0, 1.0);
        let factor =
            (1.0 + s * (self.latency_factor - 1.0)) * (1.0 + s * ramp * (self.tail_factor - 1.0));
        (z, factor)
    }

    fn check(&self) -> Result<(), String> {
        let factor = |v: f64| v.is_finite() && v > 0.0;
        if [
            self.latency_factor,
            self.tail_factor,
            self.spread_factor,
            self.error_factor,
        ]
        .into_iter()
        .all(factor)
            && self.confidence_delta.is_finite()
        {
            Ok(())
        } else {
            Err("effect factors must be finite and > 0".into())
        }
    }
}

/// New pods start slow (cold caches, JIT): latency is multiplied by `factor` at the start,
/// fading linearly to 1 over `duration` (or, `flat`, held for `duration` and then gone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// The factor at the start.
    pub factor: f64,
    /// How long it takes to fade.
    #[serde(with = "canary_core::seconds")]
    pub duration: Duration,
    /// Held at `factor` for the whole `duration` instead of fading.
    #[serde(default)]
    pub flat: bool,
}

impl Warmup {
    /// The latency factor `age` seconds after the pod started.
    pub(crate) fn factor_at(&self, age: f64) -> f64 {
        let duration = self.duration.as_secs_f64();
        match self.flat {
            true if age < duration => self.factor,
            true => 1.0,
            false => {
                let fade = (1.0 - age / duration.max(f64::MIN_POSITIVE)).max(0.0);
                1.0 + (self.factor - 1.0) * fade
            }
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
    /// The model-confidence gauge's mean value.
    pub confidence: f64,
    /// Its standard deviation from scrape to scrape.
    #[serde(default)]
    pub confidence_sd: f64,
    /// A warm-up after the arm starts.
    #[serde(default)]
    pub warmup: Option<Warmup>,
    /// A regression or improvement (neutral by default).
    #[serde(default)]
    pub effect: Effect,
}

impl ArmModel {
    /// A healthy arm: the `aa-guide` parameters (lognormal, median 120 ms, σ 0.5; 1 % errors;
    /// confidence 0.85).
    pub fn guide(version: &str) -> Self {
        ArmModel {
            version: version.into(),
            latency: Latency::LogNormal {
                median_s: 0.120,
                sigma: 0.5,
            },
            error_rate: 0.01,
            confidence: 0.85,
            confidence_sd: 0.0,
            warmup: None,
            effect: Effect::default(),
        }
    }

    fn check(&self, arm: &str) -> Result<(), String> {
        self.latency.check().map_err(|e| format!("{arm}.{e}"))?;
        self.effect.check().map_err(|e| format!("{arm}.{e}"))?;
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!("{arm}.error_rate must be in [0, 1]"));
        }
        if !(self.confidence.is_finite()
            && self.confidence_sd >= 0.0
            && self.confidence_sd.is_finite())
        {
            return Err(format!("{arm}.confidence must be finite and its sd >= 0"));
        }
        if let Some(w) = &self.warmup {
            if !(w.factor.is_finite() && w.factor > 0.0) {
                return Err(format!("{arm}.warmup.factor must be finite and > 0"));
            }
        }
        canary_core::Version::new(&self.version).map_err(|e| format!("{arm}.version: {e}"))?;
        Ok(())
    }
}

/// A burst of traffic shared by both arms: the request rate is multiplied by `factor` from
/// `start` for `duration`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    /// When it starts.
    #[serde(with = "canary_core::seconds")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "canary_core::seconds")]
    pub duration: Duration,
    /// The rate's multiplier.
    pub factor: f64,
}

/// The shape of the request rate over time, shared by both arms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Traffic {
    /// A sinusoidal swing: the rate is `1 + amplitude · sin(2πt / period)` times the mean.
    pub diurnal_amplitude: f64,
    /// The swing's period.
    #[serde(with = "canary_core::seconds")]
    pub diurnal_period: Duration,
    /// Bursts.
    pub bursts: Vec<Burst>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            diurnal_amplitude: 0.0,
            diurnal_period: Duration::from_secs(86_400),
            bursts: Vec::new(),
        }
    }
}

impl Traffic {
    /// The rate's multiplier at `t` seconds.
    pub(crate) fn multiplier(&self, t: f64) -> f64 {
        let period = self.diurnal_period.as_secs_f64();
        let mut m = 1.0 + self.diurnal_amplitude * (std::f64::consts::TAU * t / period).sin();
        for b in &self.bursts {
            let start = b.start.as_secs_f64();
            if t >= start && t < start + b.duration.as_secs_f64() {
                m *= b.factor;
            }
        }
        m
    }

    /// An upper bound of [`multiplier`](Traffic::multiplier), for thinning.
    pub(crate) fn max_multiplier(&self) -> f64 {
        let bursts: f64 = self.bursts.iter().map(|b| b.factor.max(1.0)).product();
        (1.0 + self.diurnal_amplitude) * bursts
    }

    fn check(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.diurnal_amplitude)
            || self.diurnal_period.is_zero()
            || self
                .bursts
                .iter()
                .any(|b| !(b.factor.is_finite() && b.factor > 0.0))
        {
            return Err(
                "traffic: diurnal_amplitude must be in [0, 1), the period > 0, burst factors > 0"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Autocorrelated latency noise: per scrape interval, latency is multiplied by `e^(x_k)` where
/// `x` is a stationary AR(1) series with coefficient `phi` and standard deviation `sigma`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ar1 {
    /// The lag-1 autocorrelation, in [0, 1).
    pub phi: f64,
    /// The stationary standard deviation of the log factor.
    pub sigma: f64,
    /// One series for both arms (a shared dependency slowing down), or one per arm.
    pub shared: bool,
}

/// What goes missing: scrapes that fail (the instant is absent from both arms' observations)
/// and a canary gauge that reads NaN.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gaps {
    /// The probability that a scrape is missing.
    pub missing: f64,
    /// The probability that the canary's confidence gauge is NaN at a scrape.
    pub nan: f64,
}

/// A canary scenario: its traffic, its two arms, and how it is observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The scenario's name (with the seed, it reproduces the run).
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// How long the run lasts.
    #[serde(with = "canary_core::seconds")]
    pub duration: Duration,
    /// How often Prometheus scrapes.
    #[serde(with = "canary_core::seconds")]
    pub scrape_interval: Duration,
    /// Mean requests per second over both arms.
    pub total_rps: f64,
    /// The canary's share of the requests, in (0, 1).
    pub canary_share: f64,
    /// Instances per arm; requests are spread evenly over them.
    pub instances: usize,
    /// Each instance's latency is multiplied by `e^(σ·z)`, one z per instance (σ here).
    #[serde(default)]
    pub instance_offset_sigma: f64,
    /// Finite histogram bucket bounds, in seconds, increasing; `+Inf` is added.
    pub buckets: Vec<f64>,
    /// The request rate's shape over time.
    #[serde(default)]
    pub traffic: Traffic,
    /// Autocorrelated latency noise.
    #[serde(default)]
    pub noise: Option<Ar1>,
    /// Missing scrapes and NaN gauges.
    #[serde(default)]
    pub gaps: Gaps,
    /// Production.
    pub baseline: ArmModel,
    /// The new version.
    pub canary: ArmModel,
    /// Each arm's pods, when they differ from `instances` identical pods.
    #[serde(default)]
    pub pods: Option<Pods>,
}

impl Scenario {
    /// The calibration scenario `aa-guide`: both arms [`ArmModel::guide`]; 44 req/s in all with
    /// 10 % to the canary over two instances per arm; the guide's buckets; 15 s scrapes; ten
    /// minutes, so the threshold judge looks once, over the last five.
    pub fn aa_guide(seed: u64) -> Self {
        Scenario {
            name: "aa-guide".into(),
            seed,
            duration: Duration::from_secs(600),
            scrape_interval: Duration::from_secs(15),
            total_rps: 44.0,
            canary_share: 0.10,
            instances: 2,
            instance_offset_sigma: 0.0,
            buckets: GUIDE_BUCKETS.to_vec(),
            traffic: Traffic::default(),
            noise: None,
            gaps: Gaps::default(),
            baseline: ArmModel::guide("v1"),
            canary: ArmModel::guide("v2"),
            pods: None,
        }
    }

    /// The scenario with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
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
        if self.duration.as_secs_f64() / self.scrape_interval.as_secs_f64() > 1e6 {
            return Err("duration: at most a million scrapes".into());
        }
        if self.buckets.is_empty()
            || !self.buckets.iter().all(|&b| positive(b))
            || self.buckets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err("buckets must be finite, positive and increasing".into());
        }
        if !(self.instance_offset_sigma >= 0.0 && self.instance_offset_sigma.is_finite()) {
            return Err("instance_offset_sigma must be finite and >= 0".into());
        }
        self.traffic.check()?;
        if let Some(n) = &self.noise {
            if !((0.0..1.0).contains(&n.phi) && n.sigma >= 0.0 && n.sigma.is_finite()) {
                return Err("noise: phi must be in [0, 1) and sigma finite and >= 0".into());
            }
        }
        if !((0.0..1.0).contains(&self.gaps.missing) && (0.0..=1.0).contains(&self.gaps.nan)) {
            return Err("gaps: missing must be in [0, 1) and nan in [0, 1]".into());
        }
        if let Some(p) = &self.pods {
            p.check(self.duration)?;
        }
        let scrapes = self.duration.as_secs_f64() / self.scrape_interval.as_secs_f64();
        let cells = (self.pods_of(Arm::Baseline) + self.pods_of(Arm::Canary)) as f64
            * (scrapes + 1.0)
            * (self.buckets.len() as f64 + 3.0);
        if cells > 5e7 {
            return Err("pods × scrapes × buckets: at most 50 million series samples".into());
        }
        self.baseline.check("baseline")?;
        self.canary.check("canary")
    }

    /// How many pods `arm` has: `pods`' count, or `instances`.
    pub fn pods_of(&self, arm: Arm) -> usize {
        self.pods.as_ref().map_or(self.instances, |p| p.count(arm))
    }
}
