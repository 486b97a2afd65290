//! The oracle: the physical limit of a scenario's evidence.
//!
//! For a question "is the canary the null model, or the alternative?", the oracle is the
//! most powerful fixed-horizon test at level α that knows every generating parameter (the
//! latency distributions, the rates, the traffic's shape, the pods' spread τ, the noise's
//! autocorrelation) but none of the draws. It still needs production's requests: what both
//! arms share (a traffic swing, shared noise) is a draw too, and only the contrast cancels it.
//!
//! Per metric it takes the Neyman–Pearson direction, and reads its power from the normal
//! approximation:
//!
//! - **errors**: the log ratio of the arms' error rates, its variance `1/E_c + 1/E_b` (the
//!   events expected in each arm);
//! - **latency**: each request scores `ln(q_j / p_j)` for the bucket `j` it lands in (`p` the
//!   null's bucket shares, `q` the alternative's: the likelihood ratio of the binned data, the
//!   whole histogram as one multinomial); the statistic is the canary's mean score less
//!   production's, whose variance adds to the requests' the pods' placement (`g²τ²(1/k + 1/m)`,
//!   `g` the score's response to a shift of every latency) and the per-arm noise's long-run
//!   variance (an AR(1)'s sum);
//! - **model confidence**: the mean paired difference per scrape.
//!
//! It uses the metric that best separates the two models. Each effect in the catalog moves one
//! metric, so nothing is lost by not combining them.

use std::time::Duration;

use canary_core::stats::{normal_cdf, normal_quantile};

use crate::model::{Effect, Latency, Scenario};
use crate::pods::Pods;
use canary_core::source::Arm;

/// The oracle's level: the sequential judge's α over a whole run, one-sided.
pub const ORACLE_ALPHA: f64 = 0.01;

/// The power "time to reach" asks for.
pub const ORACLE_POWER: f64 = 0.95;

/// What the oracle is asked to tell apart from the scenario's canary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Alternative {
    /// The scenario's canary with its effect removed (null) against the canary as it is: the
    /// question a regression scenario asks.
    ItsEffect,
    /// The canary as it is (null) against its error rate times this.
    Errors(f64),
    /// The canary as it is (null) against every latency times this.
    Latency(f64),
    /// The canary as it is (null) against its model confidence times this.
    Confidence(f64),
}

/// What the oracle can do on one scenario.
#[derive(Clone, Debug)]
pub struct Oracle {
    alpha: f64,
    /// Per scrape interval: the arms' expected requests.
    requests: Vec<[f64; 2]>,
    /// Per scrape interval: the null's and the alternative's canary error probability, and
    /// production's.
    errors: Vec<[f64; 3]>,
    /// Per scrape interval: the latency contrast's mean under the alternative, its variance
    /// per canary request under the null and the alternative, and per production request.
    latency: Vec<[f64; 4]>,
    /// The score's response to a shift of every latency (per log unit), at full strength.
    elasticity: f64,
    /// `τ²(1/k + 1/m)`: the pods' placement variance of a shift.
    placement: f64,
    /// The per-arm noise: (σ², φ, arms it moves apart: 0 or 2).
    noise: (f64, f64, f64),
    /// Per scrape: the confidence difference the alternative adds, and the paired sd.
    confidence: (f64, f64, f64),
    interval: f64,
}

/// Standard normal grid for the latency integrals: points and weights.
fn grid() -> Vec<(f64, f64)> {
    const N: usize = 4001;
    let (lo, hi) = (-8.5, 8.5);
    let h = (hi - lo) / (N - 1) as f64;
    (0..N)
        .map(|i| {
            let z = lo + h * i as f64;
            (z, canary_core::stats::normal_pdf(z) * h)
        })
        .collect()
}

/// Bucket shares of `latency` under `effect` at `strength`, every latency times `scale`.
fn shares(
    latency: &Latency,
    effect: &Effect,
    strength: f64,
    scale: f64,
    bounds: &[f64],
    grid: &[(f64, f64)],
) -> Vec<f64> {
    let mut out = vec![0.0; bounds.len() + 1];
    let modes: Vec<(f64, f64)> = match latency {
        Latency::Bimodal { slow_fraction, .. } => {
            vec![(0.0, *slow_fraction), (1.0, 1.0 - slow_fraction)]
        }
        _ => vec![(0.5, 1.0)],
    };
    for &(z, w) in grid {
        let (z, factor) = effect.latency(z, strength);
        for &(u, wm) in &modes {
            if wm <= 0.0 {
                continue;
            }
            let x = latency.at(z, u) * factor * scale;
            let j = bounds.partition_point(|&b| b < x);
            out[j] += w * wm;
        }
    }
    let total: f64 = out.iter().sum();
    out.iter().map(|v| (v / total).max(1e-12)).collect()
}

fn mean_var(p: &[f64], s: &[f64]) -> (f64, f64) {
    let m: f64 = p.iter().zip(s).map(|(p, s)| p * s).sum();
    let v: f64 = p.iter().zip(s).map(|(p, s)| p * (s - m).powi(2)).sum();
    (m, v)
}

impl Oracle {
    /// The oracle for `scenario` asked `alternative`, at level `alpha`.
    pub fn new(scenario: &Scenario, alternative: Alternative, alpha: f64) -> Oracle {
        let s = scenario;
        let interval = s.scrape_interval.as_secs_f64();
        let duration = s.duration.as_secs_f64();
        let slices = (duration / interval).round().max(1.0) as usize;
        let (null_effect, alt_effect) = match alternative {
            Alternative::ItsEffect => (Effect::default(), s.canary.effect.clone()),
            _ => (s.canary.effect.clone(), s.canary.effect.clone()),
        };
        let (error_factor, latency_factor) = match alternative {
            Alternative::Errors(x) => (x, 1.0),
            Alternative::Latency(x) => (1.0, x),
            _ => (1.0, 1.0),
        };
        let layout = s.pods.clone().unwrap_or_default();
        let lives = |arm: Arm| {
            let n = s.pods_of(arm);
            if s.pods.is_some() {
                layout.lives(arm, n, duration)
            } else {
                Pods::default().lives(arm, n, duration)
            }
        };
        let (base_lives, canary_lives) = (lives(Arm::Baseline), lives(Arm::Canary));
        // Asked about its effect, the null is the canary without it: no effect, and no pod
        // of its own broken.
        let healthy: Vec<crate::pods::PodLife> = canary_lives
            .iter()
            .cloned()
            .map(|mut l| {
                if alternative == Alternative::ItsEffect {
                    l.error_factor = 1.0;
                }
                l
            })
            .collect();
        // An arm's error factor: the mean over the pods alive (traffic is spread evenly).
        let pod_errors = |l: &[crate::pods::PodLife], t: f64| {
            let alive: Vec<f64> = l
                .iter()
                .filter(|p| p.alive(t))
                .map(|p| p.error_factor)
                .collect();
            alive.iter().sum::<f64>() / alive.len().max(1) as f64
        };
        let bounds = &s.buckets;
        let grid = grid();
        let warm = |age: f64| s.canary.warmup.as_ref().map_or(1.0, |w| w.factor_at(age));
        let full_alt = shares(
            &s.canary.latency,
            &alt_effect,
            1.0,
            latency_factor,
            bounds,
            &grid,
        );
        let full_null = shares(&s.canary.latency, &null_effect, 1.0, 1.0, bounds, &grid);
        let score: Vec<f64> = full_alt
            .iter()
            .zip(&full_null)
            .map(|(q, p)| (q / p).ln())
            .collect();
        // The score's response to a shift of every latency, for the placement and noise.
        let h: f64 = 0.01;
        let up = shares(&s.canary.latency, &null_effect, 1.0, h.exp(), bounds, &grid);
        let down = shares(
            &s.canary.latency,
            &null_effect,
            1.0,
            (-h).exp(),
            bounds,
            &grid,
        );
        let elasticity = (mean_var(&up, &score).0 - mean_var(&down, &score).0) / (2.0 * h);
        let base_shares = shares(
            &s.baseline.latency,
            &s.baseline.effect,
            1.0,
            1.0,
            bounds,
            &grid,
        );
        let base_var = mean_var(&base_shares, &score).1;
        // Latency shares per slice, memoised by what changes them.
        let mut memo: Vec<((u64, u64), [f64; 3])> = Vec::new();
        let mut latency = Vec::with_capacity(slices);
        let mut requests = Vec::with_capacity(slices);
        let mut errors = Vec::with_capacity(slices);
        for k in 0..slices {
            let (t0, t1) = (k as f64 * interval, (k + 1) as f64 * interval);
            let mid = (t0 + t1) / 2.0;
            let steps = 8;
            let traffic = (0..steps)
                .map(|i| {
                    s.traffic
                        .multiplier(t0 + (i as f64 + 0.5) * interval / steps as f64)
                })
                .sum::<f64>()
                / steps as f64;
            let total = s.total_rps * traffic * interval;
            requests.push([total * (1.0 - s.canary_share), total * s.canary_share]);
            let strength_null = null_effect.strength(mid, duration);
            let strength_alt = alt_effect.strength(mid, duration);
            let rate = |e: &Effect, st: f64, l: &[crate::pods::PodLife]| {
                (s.canary.error_rate * (1.0 + st * (e.error_factor - 1.0)) * pod_errors(l, mid))
                    .min(1.0)
            };
            let base_rate = (s.baseline.error_rate
                * (1.0
                    + s.baseline.effect.strength(mid, duration)
                        * (s.baseline.effect.error_factor - 1.0))
                * pod_errors(&base_lives, mid))
            .min(1.0);
            errors.push([
                rate(&null_effect, strength_null, &healthy),
                (rate(&alt_effect, strength_alt, &canary_lives) * error_factor).min(1.0),
                base_rate,
            ]);
            let w = warm(mid);
            let key = (
                strength_alt.to_bits() ^ strength_null.to_bits().rotate_left(7),
                w.to_bits(),
            );
            let cell = match memo.iter().find(|(k, _)| *k == key) {
                Some((_, c)) => *c,
                None => {
                    let p = shares(
                        &s.canary.latency,
                        &null_effect,
                        strength_null,
                        w,
                        bounds,
                        &grid,
                    );
                    let q = shares(
                        &s.canary.latency,
                        &alt_effect,
                        strength_alt,
                        w * (1.0 + strength_alt.min(1.0) * (latency_factor - 1.0)),
                        bounds,
                        &grid,
                    );
                    let (mp, vp) = mean_var(&p, &score);
                    let (mq, vq) = mean_var(&q, &score);
                    let c = [mq - mp, vp, vq];
                    memo.push((key, c));
                    c
                }
            };
            latency.push([cell[0], cell[1], cell[2], base_var]);
        }
        let k = s.pods_of(Arm::Canary) as f64;
        let m = s.pods_of(Arm::Baseline) as f64;
        let tau = s.instance_offset_sigma;
        let noise = match &s.noise {
            Some(n) if !n.shared => (n.sigma * n.sigma, n.phi, 2.0),
            _ => (0.0, 0.0, 0.0),
        };
        let kept = (1.0 - s.gaps.missing) * (1.0 - s.gaps.nan);
        let sd = (s.canary.confidence_sd.powi(2) + s.baseline.confidence_sd.powi(2)).sqrt();
        let confidence = match alternative {
            Alternative::ItsEffect => (s.canary.effect.confidence_delta, sd, kept),
            Alternative::Confidence(x) => (
                (x - 1.0) * (s.canary.confidence + s.canary.effect.confidence_delta),
                sd,
                kept,
            ),
            _ => (0.0, sd, kept),
        };
        Oracle {
            alpha,
            requests,
            errors,
            latency,
            elasticity,
            placement: tau * tau * (1.0 / k + 1.0 / m),
            noise,
            confidence,
            interval,
        }
    }

    /// The oracle's power with the evidence of the first `horizon` of the run.
    pub fn power(&self, horizon: Duration) -> f64 {
        let n = ((horizon.as_secs_f64() / self.interval).floor() as usize).min(self.requests.len());
        if n == 0 {
            return self.alpha;
        }
        let z = normal_quantile(1.0 - self.alpha);
        let power = |signal: f64, sd0: f64, sd1: f64| {
            if signal.is_nan() || signal <= 0.0 {
                return self.alpha;
            }
            if sd1 <= 0.0 || sd0 <= 0.0 {
                return 1.0;
            }
            normal_cdf((signal - z * sd0) / sd1)
        };
        // Errors: the log ratio of the rates, each arm's events Poisson.
        let (mut nb, mut nc, mut eb, mut e0, mut e1) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for ([b, c], [p0, p1, pb]) in self.requests[..n].iter().zip(&self.errors[..n]) {
            (nb, nc) = (nb + b, nc + c);
            (eb, e0, e1) = (eb + b * pb, e0 + c * p0, e1 + c * p1);
        }
        let errors = if eb > 0.0 && e0 > 0.0 && e1 > 0.0 {
            power(
                (e1 / e0).ln().abs(),
                (1.0 / e0 + 1.0 / eb).sqrt(),
                (1.0 / e1 + 1.0 / eb).sqrt(),
            )
        } else {
            self.alpha
        };
        // Latency: the mean score's contrast over the requests.
        let (mut shift, mut v0, mut v1, mut vb) = (0.0, 0.0, 0.0, 0.0);
        for ([b, c], [d, vp, vq, vbase]) in self.requests[..n].iter().zip(&self.latency[..n]) {
            shift += c * d;
            v0 += c * vp;
            v1 += c * vq;
            vb += b * vbase;
        }
        let (signal, sd0, sd1) = if nc > 0.0 && nb > 0.0 {
            let g2 = self.elasticity * self.elasticity;
            let (sigma2, phi, arms) = self.noise;
            let ar = if arms > 0.0 {
                // The variance of an AR(1)'s mean over n steps.
                let nf = n as f64;
                let mut sum = nf;
                let mut r = phi;
                for lag in 1..n {
                    sum += 2.0 * (nf - lag as f64) * r;
                    r *= phi;
                    if r < 1e-12 {
                        break;
                    }
                }
                arms * sigma2 * sum / (nf * nf)
            } else {
                0.0
            };
            let between = g2 * (self.placement + ar);
            (
                shift / nc,
                (v0 / (nc * nc) + vb / (nb * nb) + between).sqrt(),
                (v1 / (nc * nc) + vb / (nb * nb) + between).sqrt(),
            )
        } else {
            (0.0, 1.0, 1.0)
        };
        let latency = power(signal, sd0, sd1);
        // Model confidence: the mean paired difference over the scrapes kept.
        let (delta, sd, kept) = self.confidence;
        let scrapes = (n as f64 * kept).max(1.0);
        let confidence = power(delta.abs(), sd / scrapes.sqrt(), sd / scrapes.sqrt());
        errors.max(latency).max(confidence)
    }

    /// The first scrape at which the oracle's power reaches `power`; `None` within the run.
    pub fn time_to(&self, power: f64) -> Option<Duration> {
        let n = self.requests.len();
        let at = |k: usize| Duration::from_secs_f64(k as f64 * self.interval);
        if self.power(at(n)) < power {
            return None;
        }
        // Power grows with the evidence: bisect on the scrapes.
        let (mut lo, mut hi) = (0usize, n);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.power(at(mid)) >= power {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(at(hi))
    }
}

/// What matters by default (the sequential judge's `matters`): errors × 2, every latency
/// × 1.25, model confidence × 0.8.
pub const WHAT_MATTERS: [Alternative; 3] = [
    Alternative::Errors(2.0),
    Alternative::Latency(1.25),
    Alternative::Confidence(0.8),
];

/// How soon the oracle could promote a healthy canary: the time by which it has 95 % power
/// against every alternative of `matters` that differs from the canary at all (errors × 2 of
/// no errors is no question). `None` when one is out of reach within the run.
pub fn time_to_promote(scenario: &Scenario, matters: &[Alternative]) -> Option<Duration> {
    let mut latest = Duration::ZERO;
    for a in matters {
        let asked = match a {
            Alternative::Errors(_) => scenario.canary.error_rate > 0.0,
            Alternative::Confidence(_) => scenario.canary.confidence != 0.0,
            _ => true,
        };
        if !asked {
            continue;
        }
        latest = latest.max(Oracle::new(scenario, *a, ORACLE_ALPHA).time_to(ORACLE_POWER)?);
    }
    Some(latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, simulate};

    fn case(name: &str, effect: &str) -> Scenario {
        catalog()
            .into_iter()
            .find(|c| c.scenario == name && c.effect == effect)
            .expect("in the catalog")
            .template
    }

    #[test]
    fn errors_follow_the_textbook_formula() {
        // aa-guide against errors × 2 at 15 minutes: 0.01 × 39.6 req/s and 4.4 req/s.
        let s = case("aa-guide", "");
        let o = Oracle::new(&s, Alternative::Errors(2.0), ORACLE_ALPHA);
        let (eb, e0): (f64, f64) = (0.01 * 39.6 * 900.0, 0.01 * 4.4 * 900.0);
        let z = normal_quantile(0.99);
        let expected = normal_cdf(
            (2f64.ln() - z * (1.0 / e0 + 1.0 / eb).sqrt()) / (1.0 / (2.0 * e0) + 1.0 / eb).sqrt(),
        );
        let got = o.power(Duration::from_secs(900));
        assert!((got - expected).abs() < 1e-6, "{got} {expected}");
        // About 11 minutes of the guide's traffic for 95 %.
        let t = o.time_to(ORACLE_POWER).unwrap().as_secs();
        assert!((600..=780).contains(&t), "{t}");
    }

    #[test]
    fn power_grows_with_time_and_never_starts_above_alpha() {
        for (name, effect) in [
            ("latency-shift", "+10%"),
            ("error-rate", "x2"),
            ("tail-only", "p99+20%"),
            ("pods-broken-canary-pod", "1 pod of 3 errors x10"),
        ] {
            let o = Oracle::new(&case(name, effect), Alternative::ItsEffect, ORACLE_ALPHA);
            let p: Vec<f64> = [0, 60, 300, 900, 1800, 3600]
                .iter()
                .map(|s| o.power(Duration::from_secs(*s)))
                .collect();
            assert!(p.windows(2).all(|w| w[0] <= w[1] + 1e-12), "{name}: {p:?}");
            assert!((p[0] - ORACLE_ALPHA).abs() < 1e-12, "{p:?}");
            assert!(p[5] > 0.9, "{name} {effect}: {p:?}");
        }
        // A healthy canary asked about its own (absent) effect: only α.
        let o = Oracle::new(&case("aa-guide", ""), Alternative::ItsEffect, ORACLE_ALPHA);
        assert!((o.power(Duration::from_secs(3600)) - ORACLE_ALPHA).abs() < 1e-12);
    }

    #[test]
    fn pods_apart_set_a_limit_that_waiting_cannot_pass() {
        // + 25 % with one canary pod among production's nine ±10 %: the placement alone gives
        // δ / (τ √(1/1 + 1/9)) = 0.223 / 0.105 = 2.1 standard errors, short of the 3.97 that
        // 95 % power at α = 1 % needs.
        let s = case("pods-9-1-spread-10", "+25%");
        let o = Oracle::new(&s, Alternative::ItsEffect, ORACLE_ALPHA);
        let limit =
            normal_cdf(1.25f64.ln() / (0.1 * (1.0 + 1.0 / 9.0f64).sqrt()) - normal_quantile(0.99));
        let at_hour = o.power(Duration::from_secs(3600));
        // The oracle reads the shift through the buckets' likelihood ratio, not linearly, so it
        // sits near the linear limit, not on it.
        assert!((at_hour - limit).abs() < 0.1, "{at_hour} {limit}");
        assert_eq!(o.time_to(ORACLE_POWER), None);
        // The same effect with identical pods is reached within minutes.
        let t = Oracle::new(
            &case("latency-shift", "+25%"),
            Alternative::ItsEffect,
            ORACLE_ALPHA,
        )
        .time_to(ORACLE_POWER)
        .unwrap();
        assert!(t < Duration::from_secs(300), "{t:?}");
    }

    #[test]
    fn the_oracle_is_what_a_test_achieves_on_simulated_runs() {
        // Its prediction for latency + 10 % at 5 minutes against the share of 200 simulated
        // runs where its own statistic, computed from the histograms, clears the level.
        let mut s = case("latency-shift", "+10%");
        s.duration = Duration::from_secs(300);
        let o = Oracle::new(&s, Alternative::ItsEffect, ORACLE_ALPHA);
        let predicted = o.power(Duration::from_secs(300));
        let bounds = s.buckets.clone();
        let grid = grid();
        let p = shares(
            &s.canary.latency,
            &Effect::default(),
            1.0,
            1.0,
            &bounds,
            &grid,
        );
        let q = shares(
            &s.canary.latency,
            &s.canary.effect,
            1.0,
            1.0,
            &bounds,
            &grid,
        );
        let score: Vec<f64> = q.iter().zip(&p).map(|(q, p)| (q / p).ln()).collect();
        let (_, v) = mean_var(&p, &score);
        let z = normal_quantile(1.0 - ORACLE_ALPHA);
        let runs = 200;
        let mut rejected = 0;
        for seed in 0..runs {
            let run = simulate(&s.clone().with_seed(seed)).unwrap();
            let mean = |o: &canary_core::observation::Observation| {
                let h = &o.histograms["latency"];
                let mut before = 0.0;
                let (mut sum, mut n) = (0.0, 0.0);
                for (j, &(_, c)) in h.buckets().iter().enumerate() {
                    sum += (c - before) * score[j];
                    n += c - before;
                    before = c;
                }
                (sum / n, n)
            };
            let (mc, nc) = mean(run.canary.last().unwrap());
            let (mb, nb) = mean(run.baseline.last().unwrap());
            if (mc - mb) / (v / nc + v / nb).sqrt() > z {
                rejected += 1;
            }
        }
        let seen = f64::from(rejected) / runs as f64;
        assert!(
            (seen - predicted).abs() < 0.1,
            "predicted {predicted:.3}, seen {seen:.3}"
        );
    }

    #[test]
    fn promotion_is_bounded_by_the_slowest_question() {
        let guide = case("aa-guide", "");
        let t = time_to_promote(&guide, &WHAT_MATTERS).unwrap();
        let errors = Oracle::new(&guide, Alternative::Errors(2.0), ORACLE_ALPHA)
            .time_to(ORACLE_POWER)
            .unwrap();
        assert_eq!(t, errors, "errors × 2 is the slowest at 1 % errors");
        // No errors: that question is not asked.
        let none = case("aa-zero-errors", "");
        assert!(time_to_promote(&none, &WHAT_MATTERS).unwrap() < t);
        // At a tenth of the traffic it takes more than three times as long, and with pods
        // ±15 % apart latency × 1.25 is out of reach for one canary pod.
        let slow = time_to_promote(&case("aa-low-traffic-1rps", ""), &WHAT_MATTERS).unwrap();
        assert!(slow > 3 * t, "{slow:?} {t:?}");
        assert_eq!(
            time_to_promote(&case("aa-pods-9-1-spread-15", ""), &WHAT_MATTERS),
            None
        );
    }

    #[test]
    fn fresh_pods_are_a_regression_to_the_oracle() {
        // The fresh-pods A/A family is generated as the canary's one pod 15 % slower among
        // production's nine ±5 %: the same data as a + 15 % regression. Asked whether the canary
        // is production's version, the oracle says no in about two runs of three.
        let fresh = case("aa-fresh-pods-vs-production", "");
        let hour = Duration::from_secs(3600);
        let no = Oracle::new(&fresh, Alternative::ItsEffect, ORACLE_ALPHA).power(hour);
        assert!((0.6..0.75).contains(&no), "{no}");
    }

    /// `runs` placements of one canary pod among nine production pods of spread `tau`, the
    /// canary shifted by `delta` (log): the shift a judge sees, and τ̂ (the production pods'
    /// sample sd). Placement alone: the requests' own noise is left out, in the judge's favour.
    fn placements(tau: f64, delta: f64, runs: usize, seed: u64) -> Vec<(f64, f64)> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut z = || normal_quantile(rng.f64().clamp(1e-12, 1.0 - 1e-12));
        (0..runs)
            .map(|_| {
                let pods: Vec<f64> = (0..9).map(|_| tau * z()).collect();
                let mean = pods.iter().sum::<f64>() / 9.0;
                let sd = (pods.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / 8.0).sqrt();
                (delta + tau * z() - mean, sd)
            })
            .collect()
    }

    #[test]
    fn with_the_spread_estimated_from_nine_pods_no_margin_rule_reaches_the_pods_goal() {
        // The goal "80 % of the oracle's power on every regression with pods apart" against
        // "A/A at most 1 % in every family". The oracle knows τ; a judge estimates it from
        // production's nine pods (8 degrees of freedom). Over every rule of the judge's form,
        // a margin plus a multiple of τ̂, that keeps the A/A pods families (±5 %, ±10 %,
        // ±15 %, fresh pods) at 1 %, the best catches + 25 % with one canary pod among nine
        // ±10 % in under a fifth of runs: the goal is 80 % of the oracle's 45 %, 36 %. Even
        // without the fresh-pods family the best is about 30 %.
        let runs = 20_000;
        let aa = [
            placements(0.05, 0.0, runs, 1),
            placements(0.10, 0.0, runs, 2),
            placements(0.15, 0.0, runs, 3),
        ];
        let fresh = placements(0.05, 1.15f64.ln(), runs, 4);
        let regression = placements(0.10, 1.25f64.ln(), runs, 5);
        let q99 = |xs: &[(f64, f64)], b: f64| {
            let mut v: Vec<f64> = xs.iter().map(|(d, t)| d - b * t).collect();
            v.sort_by(f64::total_cmp);
            v[(0.99 * v.len() as f64) as usize]
        };
        let best = |with_fresh: bool| {
            (0..=120)
                .map(|i| {
                    let b = 0.05 * f64::from(i);
                    let mut a = aa.iter().map(|f| q99(f, b)).fold(f64::MIN, f64::max);
                    if with_fresh {
                        a = a.max(q99(&fresh, b));
                    }
                    let caught = regression.iter().filter(|(d, t)| d - b * t > a).count();
                    caught as f64 / runs as f64
                })
                .fold(0.0, f64::max)
        };
        let oracle = Oracle::new(
            &case("pods-9-1-spread-10", "+25%"),
            Alternative::ItsEffect,
            ORACLE_ALPHA,
        )
        .power(Duration::from_secs(3600));
        let (with, without) = (best(true), best(false));
        assert!(with < 0.2, "{with:.3}");
        assert!(without < 0.8 * oracle, "{without:.3} {oracle:.3}");
        // Had the judge known τ, a bar per spread reaches it at ±10 % and keeps that family at
        // 1 %; but the fresh pods (±5 %) need a higher bar than the goal allows at ±10 %, so
        // only a rule that rolls back more readily when pods differ more meets both.
        let sd = |tau: f64| tau * (1.0 + 1.0 / 9.0f64).sqrt();
        let z = normal_quantile(1.0 - ORACLE_ALPHA);
        let at_ten = normal_cdf((1.25f64.ln() - z * sd(0.10)) / sd(0.10));
        assert!(at_ten > 0.8 * oracle, "{at_ten:.3} {oracle:.3}");
        let fresh_needs = 1.15f64.ln() + z * sd(0.05);
        let goal_allows = 1.25f64.ln() - normal_quantile(0.8 * oracle) * sd(0.10);
        assert!(
            fresh_needs > goal_allows,
            "{fresh_needs:.3} {goal_allows:.3}"
        );
    }
}
