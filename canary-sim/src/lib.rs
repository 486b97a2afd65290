//! # canary-sim
//!
//! Canary scenarios, simulated: raw request streams per arm, rendered into what Prometheus
//! would hold, as [`Observation`]s at every scrape (and as OpenMetrics text that promtool
//! backfills into a real Prometheus), so that judges can be measured on data whose ground
//! truth is known.
//!
//! Requests arrive per instance as a Poisson process whose rate follows the scenario's traffic
//! shape (diurnal swings and bursts shared by both arms, by thinning); each draws a latency
//! from the arm's distribution, an error, and is counted by the next scrape into cumulative
//! histograms and counters, per pod and summed over pods ([`Simulation::pods`]; with [`Pods`],
//! production and the canary have their own pod counts, a pod can be broken, and pods can
//! join, leave or restart mid-run). Latency can carry per-instance offsets,
//! autocorrelated AR(1) noise (shared or per arm), a warm-up, and an [`Effect`] (the ground
//! truth of a regression) with an onset. Scrapes can go missing and gauges read NaN.
//!
//! Every run is reproducible from its scenario and seed, and the random numbers are common:
//! each request draws the same fixed set of numbers from a stream that depends only on the
//! seed, the arm and the instance, so two scenarios that differ in one parameter differ only
//! there, and every judge sees the same data.
//!
//! [`catalog`] lists the scenario families the judge-quality benchmark runs, each labelled with
//! its ground truth.
//!
//! ```
//! use canary_sim::{simulate, Scenario};
//! let run = simulate(&Scenario::aa_guide(7))?;
//! assert_eq!(run.canary.len(), 41); // 10 minutes of 15 s scrapes, both ends
//! let requests = run.canary.last().unwrap().counters["requests"];
//! assert!((requests - 4.4 * 600.0).abs() < 300.0); // 10 % of 44 req/s
//! # Ok::<_, canary_core::Error>(())
//! ```

mod families;
mod model;
mod openmetrics;
mod oracle;
mod pods;

use canary_core::backtest::{History, PodHistory};
use canary_core::observation::{names, Histogram, Observation};
use canary_core::source::Arm;
use canary_core::Version;
use chrono::{DateTime, TimeZone, Utc};

pub use canary_core::observation::GUIDE_BUCKETS;
pub use families::{catalog, Case, Family, RUN};
pub use model::{Ar1, ArmModel, Burst, Effect, Gaps, Latency, Onset, Scenario, Traffic, Warmup};
pub use openmetrics::MetricNames;
pub use oracle::{time_to_promote, Alternative, Oracle, ORACLE_ALPHA, ORACLE_POWER, WHAT_MATTERS};
use pods::PodLife;
pub use pods::{pod_name, PodChange, PodEvent, PodFault, Pods, MAX_PODS};

/// Finer buckets than the guide's: 5 ms to 10 s, about eight per decade (as a service that
/// wants tail latency would configure).
pub const FINE_BUCKETS: [f64; 26] = [
    0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3,
    0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0,
];

/// Both arms' observations at every scrape that did not go missing, from the start to the end
/// of the run; the two vectors hold the same instants.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    /// Production's observations, each holding its pods' own ([`Observation::instances`]).
    pub baseline: Vec<Observation>,
    /// The canary's observations, at the same instants.
    pub canary: Vec<Observation>,
    /// Each pod's own series, as Prometheus would scrape them (empty for a run built by hand).
    pub pods: PodsSeries,
}

/// Every pod's series, per arm.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodsSeries {
    /// Production's pods.
    pub baseline: Vec<PodSeries>,
    /// The canary's pods.
    pub canary: Vec<PodSeries>,
}

/// One pod's observations: its own cumulative counters (from zero again after a restart), at
/// the scrapes while it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSeries {
    /// The pod's name (its `pod` label).
    pub pod: String,
    /// Its observations, in time order.
    pub observations: Vec<Observation>,
}

impl Simulation {
    /// The same run moved in time so that it starts at `start` (to backfill it just before
    /// now, within a Prometheus's retention).
    pub fn starting_at(mut self, start: DateTime<Utc>) -> Self {
        let shift = start - epoch();
        let pods = self
            .pods
            .baseline
            .iter_mut()
            .chain(self.pods.canary.iter_mut());
        let pods = pods.flat_map(|p| p.observations.iter_mut());
        for o in self
            .baseline
            .iter_mut()
            .chain(self.canary.iter_mut())
            .chain(pods)
        {
            o.at += shift;
            for p in o.instances.values_mut() {
                p.at += shift;
            }
        }
        self
    }
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
    let (baseline, baseline_pods) = arm(scenario, &scenario.baseline, Arm::Baseline, 1.0 - share);
    let (mut canary, mut canary_pods) = arm(scenario, &scenario.canary, Arm::Canary, share);

    // Gaps: one stream for the run, so both arms lose the same scrapes.
    let mut rng = fastrand::Rng::with_seed(stream(scenario.seed, GAPS, 0));
    let mut keep = Vec::with_capacity(canary.len());
    for (k, o) in canary.iter_mut().enumerate() {
        let missing = rng.f64() < scenario.gaps.missing && k > 0;
        if rng.f64() < scenario.gaps.nan {
            o.gauges.insert(names::MODEL_CONFIDENCE.into(), f64::NAN);
            for pod in &mut canary_pods {
                if let Some(p) = pod.observations.iter_mut().find(|p| p.at == o.at) {
                    p.gauges.insert(names::MODEL_CONFIDENCE.into(), f64::NAN);
                }
            }
        }
        keep.push(!missing);
    }
    // A lost scrape is lost for every pod too.
    let lost: Vec<DateTime<Utc>> = canary
        .iter()
        .zip(&keep)
        .filter(|(_, kept)| !**kept)
        .map(|(o, _)| o.at)
        .collect();
    let mut pods = PodsSeries {
        baseline: baseline_pods,
        canary: canary_pods,
    };
    for pod in pods.baseline.iter_mut().chain(pods.canary.iter_mut()) {
        pod.observations.retain(|o| !lost.contains(&o.at));
    }
    let (mut baseline, mut canary): (Vec<Observation>, Vec<Observation>) = baseline
        .into_iter()
        .zip(canary)
        .zip(keep)
        .filter_map(|(pair, kept)| kept.then_some(pair))
        .unzip();
    with_instances(&mut baseline, &pods.baseline);
    with_instances(&mut canary, &pods.canary);
    Ok(Simulation {
        baseline,
        canary,
        pods,
    })
}

/// Each sum's pods, as a source that tells pods apart holds them: reset-corrected (a restart
/// adds what the pod had counted to everything after it), from its first sample on, at its
/// last sample after it stops.
fn with_instances(sums: &mut [Observation], pods: &[PodSeries]) {
    for pod in pods {
        let corrected = reset_corrected(&pod.observations);
        let mut next = 0;
        for o in sums.iter_mut() {
            while corrected.get(next).is_some_and(|p| p.at <= o.at) {
                next += 1;
            }
            if let Some(p) = next.checked_sub(1).and_then(|i| corrected.get(i)) {
                o.instances.insert(pod.pod.clone(), p.clone());
            }
        }
    }
}

/// A pod's observations with its restarts undone: once its request count goes down, the
/// counts before are added to every later counter and bucket.
fn reset_corrected(observations: &[Observation]) -> Vec<Observation> {
    let mut offset: Option<Observation> = None;
    let mut previous: Option<&Observation> = None;
    let mut out = Vec::with_capacity(observations.len());
    for o in observations {
        let restarted = previous
            .is_some_and(|p| o.counters.get(names::REQUESTS) < p.counters.get(names::REQUESTS));
        if restarted {
            let p = previous.expect("a previous observation");
            offset = Some(match offset.take() {
                None => p.clone(),
                Some(before) => add(&before, p),
            });
        }
        out.push(match &offset {
            None => o.clone(),
            Some(off) => add(off, o),
        });
        previous = Some(o);
    }
    out
}

/// `b`'s counters and histograms added to `a`'s (same bounds), at `b`'s time, gauges `b`'s.
fn add(a: &Observation, b: &Observation) -> Observation {
    let mut out = b.clone();
    for (name, v) in &mut out.counters {
        *v += a.counters.get(name).copied().unwrap_or(0.0);
    }
    for (name, h) in &mut out.histograms {
        if let Some(before) = a.histograms.get(name) {
            let sum = h
                .buckets()
                .iter()
                .zip(before.buckets())
                .map(|(&(bound, x), &(_, y))| (bound, x + y))
                .collect();
            *h = Histogram::new(sum).expect("sums of valid histograms with the same bounds");
        }
    }
    out
}

// Stream identifiers for what is drawn per run rather than per request.
const NOISE_SHARED: u64 = 0xA0;
const NOISE_ARM: u64 = 0xA1; // + arm
const OFFSETS: u64 = 0xB0; // + arm
const GAUGE: u64 = 0xC0; // + arm
const GAPS: u64 = 0xD0;

/// One arm: each pod's request stream, scraped; summed over pods, and per pod.
fn arm(
    s: &Scenario,
    model: &ArmModel,
    which: Arm,
    share: f64,
) -> (Vec<Observation>, Vec<PodSeries>) {
    let arm_id = match which {
        Arm::Baseline => 0,
        Arm::Canary => 1,
    };
    let scrapes = (s.duration.as_secs_f64() / s.scrape_interval.as_secs_f64()).floor() as usize;
    let interval = s.scrape_interval.as_secs_f64();
    let duration = s.duration.as_secs_f64();
    let bounds: Vec<f64> = s.buckets.iter().copied().chain([f64::INFINITY]).collect();
    let n = s.pods_of(which);
    let lives = match &s.pods {
        Some(p) => p.lives(which, n, duration),
        None => Pods::default().lives(which, n, duration),
    };
    let live = LiveCount::new(&lives, duration);
    // What arrives between scrapes (per bucket, not cumulative), per pod.
    let mut buckets = vec![vec![vec![0.0f64; bounds.len()]; scrapes + 1]; n];
    let mut requests = vec![vec![0.0f64; scrapes + 1]; n];
    let mut errors = vec![vec![0.0f64; scrapes + 1]; n];

    // The latency noise's log factor per scrape interval (index k: the interval ending at k).
    let noise: Vec<f64> = match &s.noise {
        None => vec![0.0; scrapes + 1],
        Some(noise) => {
            let id = if noise.shared {
                stream(s.seed, NOISE_SHARED, 0)
            } else {
                stream(s.seed, NOISE_ARM + arm_id, 0)
            };
            let mut rng = fastrand::Rng::with_seed(id);
            let innovation = (1.0 - noise.phi * noise.phi).sqrt() * noise.sigma;
            let mut x = noise.sigma * normal(&mut rng);
            (0..=scrapes)
                .map(|_| {
                    let now = x;
                    x = noise.phi * x + innovation * normal(&mut rng);
                    now
                })
                .collect()
        }
    };

    // Candidates arrive at the rate a pod has when fewest pods run, and are thinned to the
    // rate at t (the arm's traffic spread over the pods running then); with a fixed set of
    // pods the thinning by pod count is exactly 1.
    let fewest = live.fewest();
    let rate = s.total_rps * share / fewest as f64;
    let max_multiplier = s.traffic.max_multiplier();
    let warm = |age: f64| model.warmup.as_ref().map_or(1.0, |w| w.factor_at(age));
    for (instance, life) in lives.iter().enumerate() {
        let mut offsets =
            fastrand::Rng::with_seed(stream(s.seed, OFFSETS + arm_id, instance as u64));
        let offset = (s.instance_offset_sigma * normal(&mut offsets)).exp();
        let mut rng = fastrand::Rng::with_seed(stream(s.seed, arm_id, instance as u64));
        let mut t = 0.0;
        loop {
            // Poisson arrivals at the peak rate, thinned to the rate at t; every candidate
            // draws the same numbers, so streams stay aligned across scenarios.
            t += -(1.0 - rng.f64()).ln() / (rate * max_multiplier);
            let thin = if life.alive(t) {
                s.traffic.multiplier(t) * (fewest as f64 / live.at(t) as f64)
            } else {
                0.0
            };
            let accept = rng.f64() * max_multiplier < thin;
            let z = normal(&mut rng);
            let u_mode = rng.f64();
            let u_error = rng.f64();
            // The first scrape at or after the request sees it.
            let k = (t / interval).ceil() as usize;
            if k > scrapes {
                break;
            }
            if !accept {
                continue;
            }
            let strength = model.effect.strength(t, duration);
            let (z, factor) = model.effect.latency(z, strength);
            let latency = model.latency.at(z, u_mode)
                * factor
                * warm(t - life.from)
                * offset
                * life.latency_factor
                * noise[k].exp();
            let error_rate = (model.error_rate
                * (1.0 + strength * (model.effect.error_factor - 1.0))
                * life.error_factor)
                .min(1.0);
            let bucket = bounds
                .iter()
                .position(|&b| latency <= b)
                .unwrap_or(bounds.len() - 1);
            requests[instance][k] += 1.0;
            errors[instance][k] += f64::from(u8::from(u_error < error_rate));
            buckets[instance][k][bucket] += 1.0;
        }
    }
    let mut gauge = fastrand::Rng::with_seed(stream(s.seed, GAUGE + arm_id, 0));
    let version = Version::new(&model.version).expect("validated");
    let at = |k: usize| {
        epoch() + chrono::Duration::from_std(s.scrape_interval * k as u32).unwrap_or_default()
    };
    let confidence: Vec<f64> = (0..=scrapes)
        .map(|k| {
            let t = interval * k as f64;
            model.confidence
                + model.effect.strength(t, duration) * model.effect.confidence_delta
                + model.confidence_sd * normal(&mut gauge)
        })
        .collect();
    let observation = |k: usize, requests: f64, errors: f64, buckets: &[f64]| {
        let mut cumulative = 0.0;
        let h = bounds
            .iter()
            .zip(buckets)
            .map(|(&b, &c)| {
                cumulative += c;
                (b, cumulative)
            })
            .collect();
        Observation::new(version.clone(), at(k))
            .with_histogram(names::LATENCY, Histogram::new(h).expect("valid buckets"))
            .with_counter(names::REQUESTS, requests)
            .with_counter(names::ERRORS, errors)
            .with_gauge(names::MODEL_CONFIDENCE, confidence[k])
    };

    // Per pod: cumulative over time, from zero again after a restart; a scrape before the pod
    // starts or after it has gone has no sample.
    let mut pods = Vec::with_capacity(n);
    for (i, life) in lives.iter().enumerate() {
        let (mut r, mut e, mut b) = (0.0, 0.0, vec![0.0; bounds.len()]);
        let mut samples = Vec::new();
        for k in 0..=scrapes {
            let (t0, t1) = (interval * k.saturating_sub(1) as f64, interval * k as f64);
            if k > 0 && life.restarts.iter().any(|&x| x > t0 && x <= t1) {
                (r, e) = (0.0, 0.0);
                b.iter_mut().for_each(|v| *v = 0.0);
            }
            r += requests[i][k];
            e += errors[i][k];
            for (v, add) in b.iter_mut().zip(&buckets[i][k]) {
                *v += add;
            }
            // Scraped while it runs, and once more after it stops (while it terminates), so
            // that nothing it served is lost.
            if life.from <= t1 && t0 < life.until {
                samples.push(observation(k, r, e, &b));
            }
        }
        pods.push(PodSeries {
            pod: pod_name(which, i),
            observations: samples,
        });
    }
    // The arm: every pod's arrivals summed (what a reset-corrected sum over pods shows).
    let mut total = (0.0, 0.0, vec![0.0; bounds.len()]);
    let sums = (0..=scrapes)
        .map(|k| {
            for i in 0..n {
                total.0 += requests[i][k];
                total.1 += errors[i][k];
                for (v, add) in total.2.iter_mut().zip(&buckets[i][k]) {
                    *v += add;
                }
            }
            observation(k, total.0, total.1, &total.2)
        })
        .collect();
    (sums, pods)
}

/// How many of an arm's pods run at each instant, as a step function.
struct LiveCount {
    /// (from this time, this many pods), in time order, from 0.
    steps: Vec<(f64, usize)>,
    duration: f64,
}

impl LiveCount {
    fn new(lives: &[PodLife], duration: f64) -> Self {
        let mut times: Vec<f64> = lives
            .iter()
            .flat_map(|l| [l.from, l.until])
            .filter(|t| t.is_finite() && *t < duration)
            .chain([0.0])
            .collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        let steps = times
            .into_iter()
            .map(|t| (t, lives.iter().filter(|l| l.alive(t)).count()))
            .collect();
        LiveCount { steps, duration }
    }

    fn at(&self, t: f64) -> usize {
        let i = self.steps.partition_point(|&(from, _)| from <= t);
        self.steps[i.saturating_sub(1)].1.max(1)
    }

    fn fewest(&self) -> usize {
        self.steps
            .iter()
            .filter(|(t, _)| *t < self.duration)
            .map(|&(_, n)| n)
            .min()
            .unwrap_or(1)
            .max(1)
    }
}

/// A seed for one (run, stream, instance): SplitMix64 of the three, so streams do not overlap
/// and do not depend on each other.
fn stream(seed: u64, id: u64, instance: u64) -> u64 {
    let mut x = seed
        ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ instance.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A standard normal draw (Box–Muller; one of the pair, so each draw uses a fixed number of
/// uniforms and streams stay aligned across scenarios).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // in (0, 1]
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Simulation {
    /// Every pod of both arms as one version's history, as `canary backtest` reads production's
    /// from Prometheus: each pod reset-corrected, on the grid `start + k × step` from the run's
    /// first scrape (a lost scrape is NaN), named as its `pod` label. A run built by hand,
    /// without pods, is an error.
    pub fn history(
        &self,
        version: &str,
        step: std::time::Duration,
    ) -> canary_core::Result<History> {
        let invalid = |reason: &str| canary_core::Error::InvalidConfig {
            field: "history".into(),
            reason: reason.to_owned(),
        };
        let pods: Vec<&PodSeries> = self.pods.baseline.iter().chain(&self.pods.canary).collect();
        let start = self
            .baseline
            .first()
            .map(|o| o.at)
            .ok_or_else(|| invalid("the run has no scrape"))?;
        if pods.is_empty() || step.is_zero() {
            return Err(invalid(
                "a history needs the run's pods and a positive step",
            ));
        }
        let step_ms = step.as_millis() as i64;
        let index = |at: DateTime<Utc>| ((at - start).num_milliseconds() / step_ms) as usize;
        let len = self.baseline.last().map_or(0, |o| index(o.at) + 1);
        let bounds: Vec<f64> = pods
            .iter()
            .flat_map(|p| p.observations.first())
            .find_map(|o| o.histograms.get(names::LATENCY))
            .map(|h| h.buckets().iter().map(|b| b.0).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for pod in pods {
            let corrected = reset_corrected(&pod.observations);
            let Some(first) = corrected.first().map(|o| index(o.at)) else {
                continue;
            };
            let last = corrected.last().map_or(first, |o| index(o.at));
            let n = last + 1 - first;
            let mut h = PodHistory::new(pod.pod.clone(), first);
            h.requests = vec![f64::NAN; n];
            h.errors = vec![f64::NAN; n];
            h.confidence = vec![f64::NAN; n];
            h.buckets = vec![f64::NAN; n * bounds.len()];
            for o in &corrected {
                let k = index(o.at) - first;
                h.requests[k] = o.counters.get(names::REQUESTS).copied().unwrap_or(f64::NAN);
                h.errors[k] = o.counters.get(names::ERRORS).copied().unwrap_or(0.0);
                h.confidence[k] = o
                    .gauges
                    .get(names::MODEL_CONFIDENCE)
                    .copied()
                    .unwrap_or(f64::NAN);
                if let Some(hist) = o.histograms.get(names::LATENCY) {
                    for (j, &(_, c)) in hist.buckets().iter().enumerate().take(bounds.len()) {
                        h.buckets[k * bounds.len() + j] = c;
                    }
                }
            }
            out.push(h);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let history = History {
            version: Version::new(version)?,
            start,
            step,
            len,
            bounds,
            pods: out,
            notes: Vec::new(),
        };
        history.validate()?;
        Ok(history)
    }
}
