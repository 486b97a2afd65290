//! Anytime-valid inference: e-values and confidence sequences that stay valid however often
//! they are looked at, and whenever the looking stops.
//!
//! - [`dirichlet_multinomial_log_odds`]: the Dirichlet-multinomial mixture Bayes factor against
//!   a point null of multinomial probabilities (Lindon and Malek, "Anytime-Valid Inference for
//!   Multinomial Count Data", NeurIPS 2022), as the PyPI package `savvi` computes its
//!   `Multinomial.odds`. Under the null its value is a nonnegative martingale with mean 1, so
//!   by Ville's inequality it exceeds `1/α` at any time with probability at most `α`.
//! - [`RateRatio`]: two time-inhomogeneous Poisson processes that share their intensity's shape
//!   (baseline and canary events under common traffic). Conditioned on the total, each event is
//!   the canary's with probability `ρ_C θ / (ρ_B + ρ_C θ)`, where `ρ` is the traffic split and `θ`
//!   the canary's rate relative to the baseline's. [`RateRatio::interval`] is the confidence
//!   sequence for `θ` that `savvi`'s `InhomogeneousPoissonProcess` gives for the contrast
//!   `δ_C − δ_B`, with one segment per traffic split (the product of the segments' test
//!   martingales is one test martingale, so evidence carries across progressive steps).
//! - [`normal_mixture_radius`]: Robbins' normal-mixture boundary (Howard, Ramdas, McAuliffe and
//!   Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Stat.
//!   2021, eq. (3.7) two-sided), for sums with a sub-Gaussian variance process.

/// `ln B(a)` of the multivariate beta function: `Σ ln Γ(a_i) − ln Γ(Σ a_i)`.
pub fn log_beta(a: &[f64]) -> f64 {
    a.iter().map(|&x| libm::lgamma(x)).sum::<f64>() - libm::lgamma(a.iter().sum())
}

/// `ln` of the Dirichlet-multinomial mixture's posterior odds against the point null `theta0`
/// after `counts`, with the prior `Dirichlet(k · theta0)`:
/// `ln B(k θ0 + x) − ln B(k θ0) − Σ x_i ln θ0_i`. This is `ln` of `savvi`'s `Multinomial.odds`.
/// `None` if the lengths differ, `theta0` is not a probability vector with positive entries, `k`
/// is not positive, or a count is negative or not finite.
pub fn dirichlet_multinomial_log_odds(counts: &[f64], theta0: &[f64], k: f64) -> Option<f64> {
    let sum: f64 = theta0.iter().sum();
    if counts.len() != theta0.len()
        || counts.is_empty()
        || !(k > 0.0 && k.is_finite())
        || (sum - 1.0).abs() > 1e-9
        || theta0.iter().any(|&t| !(t > 0.0 && t <= 1.0))
        || counts.iter().any(|&x| !(x >= 0.0 && x.is_finite()))
    {
        return None;
    }
    let prior: Vec<f64> = theta0.iter().map(|t| k * t).collect();
    let posterior: Vec<f64> = prior.iter().zip(counts).map(|(a, x)| a + x).collect();
    let null: f64 = counts.iter().zip(theta0).map(|(x, t)| x * t.ln()).sum();
    Some(log_beta(&posterior) - log_beta(&prior) - null)
}

/// Events of one traffic split: the baseline's and the canary's counts, and the canary's share
/// of the traffic they came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    /// The baseline's events.
    pub baseline: f64,
    /// The canary's events.
    pub canary: f64,
    /// The canary's share of the traffic, in (0, 1).
    pub canary_share: f64,
}

impl Segment {
    fn usable(&self) -> bool {
        self.canary_share > 0.0
            && self.canary_share < 1.0
            && self.baseline >= 0.0
            && self.canary >= 0.0
            && self.baseline.is_finite()
            && self.canary.is_finite()
    }

    /// The canary's probability of the next event when its rate is `e^d` times the baseline's.
    pub fn canary_probability(&self, d: f64) -> f64 {
        let (b, c) = (1.0 - self.canary_share, self.canary_share);
        // A logistic in d, written to stay finite for large |d|.
        let z = d + (c / b).ln();
        if z >= 0.0 {
            1.0 / (1.0 + (-z).exp())
        } else {
            let e = z.exp();
            e / (1.0 + e)
        }
    }
}

/// The canary's event rate relative to the baseline's, from counts conditioned on their total:
/// see the [module documentation](self).
#[derive(Clone, Debug, PartialEq)]
pub struct RateRatio {
    segments: Vec<Segment>,
    k: f64,
}

/// Where a confidence sequence's search for `ln θ` stops: a rate ratio beyond `e^±20` is
/// reported as unbounded.
const LOG_RATIO_LIMIT: f64 = 20.0;

impl RateRatio {
    /// Segments of events judged with the Dirichlet prior's concentration `k` (`savvi`'s `k`,
    /// 100 by default there): the prior is `Dirichlet(k ρ)`, centred on equal rates. Segments
    /// that are not usable (a share outside (0, 1), a negative count) are left out.
    pub fn new(segments: &[Segment], k: f64) -> Self {
        RateRatio {
            segments: segments.iter().copied().filter(Segment::usable).collect(),
            k,
        }
    }

    /// Events in all, both arms.
    pub fn events(&self) -> f64 {
        self.segments.iter().map(|s| s.baseline + s.canary).sum()
    }

    /// `ln` of the mixture's odds against the point null `θ = e^d`: an e-value for "the
    /// canary's rate is `e^d` times the baseline's", valid at any stopping time.
    pub fn log_odds(&self, d: f64) -> f64 {
        self.segments
            .iter()
            .map(|s| {
                let p = s.canary_probability(d);
                let prior = [self.k * (1.0 - s.canary_share), self.k * s.canary_share];
                let posterior = [prior[0] + s.baseline, prior[1] + s.canary];
                let null = s.baseline * (1.0 - p).ln() + s.canary * p.ln();
                log_beta(&posterior) - log_beta(&prior) - null
            })
            .sum()
    }

    /// The derivative of `−Σ x ln p(d)` in `d`, increasing in `d`: its root is the estimate.
    fn slope(&self, d: f64) -> f64 {
        self.segments
            .iter()
            .map(|s| (s.baseline + s.canary) * s.canary_probability(d) - s.canary)
            .sum()
    }

    /// The maximum-likelihood `ln θ`; `±∞` when one arm has no events, `None` without events.
    pub fn log_estimate(&self) -> Option<f64> {
        if self.events() <= 0.0 {
            return None;
        }
        if self.segments.iter().all(|s| s.canary == 0.0) {
            return Some(f64::NEG_INFINITY);
        }
        if self.segments.iter().all(|s| s.baseline == 0.0) {
            return Some(f64::INFINITY);
        }
        Some(bisect(
            |d| self.slope(d) < 0.0,
            -LOG_RATIO_LIMIT,
            LOG_RATIO_LIMIT,
        ))
    }

    /// The confidence sequence for `ln θ` at level `1 − alpha`: every `d` whose odds stay below
    /// `1/alpha`, as `(lower, upper)`; an end is `±∞` where the evidence does not bound it.
    /// Without events it is `(−∞, ∞)`.
    pub fn interval(&self, alpha: f64) -> (f64, f64) {
        let limit = -alpha.ln();
        let centre = match self.log_estimate() {
            Some(d) => d.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT),
            None => return (f64::NEG_INFINITY, f64::INFINITY),
        };
        if self.log_odds(centre) >= limit {
            // Cannot happen for a proper mixture (the odds at the estimate are its minimum and
            // at most the prior's evidence), but an empty set must not read as "anything goes".
            return (centre, centre);
        }
        let inside = |d: f64| self.log_odds(d) < limit;
        let lower = if inside(-LOG_RATIO_LIMIT) {
            f64::NEG_INFINITY
        } else {
            bisect(|d| !inside(d), -LOG_RATIO_LIMIT, centre)
        };
        let upper = if inside(LOG_RATIO_LIMIT) {
            f64::INFINITY
        } else {
            bisect(inside, centre, LOG_RATIO_LIMIT)
        };
        (lower, upper)
    }
}

/// The boundary between `lo` (where `left` holds) and `hi` (where it does not), to 1e-10.
fn bisect(left: impl Fn(f64) -> bool, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if left(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-10 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Robbins' two-sided normal-mixture boundary: with `S_t` a sum whose increments are
/// sub-Gaussian with variance process `v`, `P(∃t: |S_t| ≥ radius(v_t)) ≤ alpha`, where
/// `radius(v) = sqrt((v + ρ) ln((v + ρ) / (ρ α²)))` and `ρ > 0` sets the intrinsic time the
/// boundary is tightest around. For Brownian motion the bound is exact (a continuous
/// martingale), which is what the batch-means use of it relies on.
pub fn normal_mixture_radius(v: f64, rho: f64, alpha: f64) -> f64 {
    let w = v.max(0.0) + rho;
    (w * (w / (rho * alpha * alpha)).ln()).max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odds_start_at_one_and_need_positive_nulls() {
        assert_eq!(
            dirichlet_multinomial_log_odds(&[0.0, 0.0], &[0.5, 0.5], 100.0),
            Some(0.0)
        );
        assert_eq!(
            dirichlet_multinomial_log_odds(&[1.0, 0.0], &[1.0, 0.0], 100.0),
            None
        );
        assert_eq!(
            dirichlet_multinomial_log_odds(&[1.0], &[0.5, 0.5], 100.0),
            None
        );
        assert_eq!(
            dirichlet_multinomial_log_odds(&[f64::NAN, 1.0], &[0.5, 0.5], 100.0),
            None
        );
    }

    #[test]
    fn one_segment_s_odds_are_the_multinomial_s_at_the_implied_null() {
        let s = Segment {
            baseline: 180.0,
            canary: 35.0,
            canary_share: 0.1,
        };
        let r = RateRatio::new(&[s], 100.0);
        for d in [-1.0, 0.0, 0.4, 2.0] {
            let p = s.canary_probability(d);
            // The prior stays at k·ρ whatever null is tested.
            let prior = [90.0, 10.0];
            let posterior = [90.0 + 180.0, 10.0 + 35.0];
            let expected =
                log_beta(&posterior) - log_beta(&prior) - 180.0 * (1.0 - p).ln() - 35.0 * p.ln();
            assert!((r.log_odds(d) - expected).abs() < 1e-9);
        }
        let at_null = dirichlet_multinomial_log_odds(&[180.0, 35.0], &[0.9, 0.1], 100.0).unwrap();
        assert!((r.log_odds(0.0) - at_null).abs() < 1e-9);
    }

    #[test]
    fn the_interval_contains_the_estimate_and_narrows_with_evidence() {
        let small = RateRatio::new(
            &[Segment {
                baseline: 90.0,
                canary: 20.0,
                canary_share: 0.1,
            }],
            100.0,
        );
        let large = RateRatio::new(
            &[Segment {
                baseline: 9000.0,
                canary: 2000.0,
                canary_share: 0.1,
            }],
            100.0,
        );
        for r in [&small, &large] {
            let d = r.log_estimate().unwrap();
            assert!(
                (d - (2.0f64 * 0.9 / 0.1 / 9.0 * 1.0).ln()).abs() < 1e-6,
                "{d}"
            );
            let (lo, hi) = r.interval(0.01);
            assert!(lo < d && d < hi);
        }
        let (a, b) = (small.interval(0.01), large.interval(0.01));
        assert!(b.1 - b.0 < (a.1 - a.0) / 3.0, "{a:?} {b:?}");
    }

    #[test]
    fn no_events_bound_nothing() {
        let r = RateRatio::new(
            &[Segment {
                baseline: 0.0,
                canary: 0.0,
                canary_share: 0.1,
            }],
            100.0,
        );
        assert_eq!(r.log_estimate(), None);
        assert_eq!(r.interval(0.01), (f64::NEG_INFINITY, f64::INFINITY));
    }

    #[test]
    fn the_normal_mixture_radius_is_robbins_closed_form() {
        // v = ρ = 1, α = 0.05: sqrt(2 ln(2 / 0.0025)) = sqrt(2 ln 800).
        let r = normal_mixture_radius(1.0, 1.0, 0.05);
        assert!((r - (2.0 * 800f64.ln()).sqrt()).abs() < 1e-12);
        assert!(normal_mixture_radius(100.0, 1.0, 0.05) > r);
    }
}
