//! Statistics the judges and the benchmark share: the normal distribution, the Wilcoxon rank-sum
//! (Mann-Whitney) test as R's `wilcox.test` computes it with the normal approximation, and the
//! Wilson score interval; and [`anytime`], e-values and confidence sequences for the sequential
//! judge. Pure functions, no I/O.

pub mod anytime;
mod pods;
mod wilcoxon;

pub use pods::{
    between_unit_variance, pod_design_limit, pod_design_limit_estimated, student_t_cdf,
    student_t_quantile, BetweenUnits, UnitEstimate,
};
pub use wilcoxon::{rank_sum, RankSum};

/// The standard normal CDF, Φ(x), to full double precision (through `erfc`).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// The upper tail, 1 − Φ(x), without cancellation for large x.
pub fn normal_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x / std::f64::consts::SQRT_2)
}

/// The standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (std::f64::consts::TAU).sqrt()
}

/// The standard normal quantile, Φ⁻¹(p), for p in (0, 1); NaN outside.
///
/// A rational first guess (Acklam's) refined by Newton steps on [`normal_cdf`], so it agrees
/// with R's `qnorm` to about 1e-15.
pub fn normal_quantile(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    let mut x = acklam(p);
    for _ in 0..3 {
        // Newton on the tail nearer to p, to keep precision in both tails.
        let step = if p < 0.5 {
            (normal_cdf(x) - p) / normal_pdf(x)
        } else {
            ((1.0 - p) - normal_sf(x)) / normal_pdf(x)
        };
        if !step.is_finite() {
            break;
        }
        x -= step;
    }
    x
}

/// Acklam's rational approximation (relative error about 1e-9).
fn acklam(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The Wilson score interval for `successes` out of `n` at the two-sided confidence whose
/// normal quantile is `z` (1.96 for 95 %). `(0, 1)` when `n` is 0.
pub fn wilson_interval(successes: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_distribution_matches_published_values() {
        // From R: pnorm(1.96), qnorm(0.99), qnorm(1e-10), pnorm(-8).
        assert!((normal_cdf(1.96) - 0.975_002_104_851_780_1).abs() < 1e-15);
        assert!((normal_quantile(0.99) - 2.326_347_874_040_841).abs() < 1e-13);
        assert!((normal_quantile(1e-10) + 6.361_340_902_404_056).abs() < 1e-10);
        assert!((normal_cdf(-8.0) - 6.220_960_574_271_785e-16).abs() < 1e-28);
        assert!((normal_quantile(0.5)).abs() < 1e-15);
        assert!(normal_quantile(0.0).is_nan() && normal_quantile(f64::NAN).is_nan());
        for p in [1e-6, 0.01, 0.3, 0.7, 0.999_999] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-14 * p.max(1e-2));
        }
    }

    #[test]
    fn wilson_intervals_match_a_worked_example() {
        // 36 of 1,000 at 95 %: R's prop.test(36, 1000, correct = FALSE) says (0.026116, 0.049436).
        let (lo, hi) = wilson_interval(36, 1000, 1.959_963_984_540_054);
        assert!(
            (lo - 0.026_115_571).abs() < 1e-8 && (hi - 0.049_435_660).abs() < 1e-8,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_interval(0, 50, 1.96);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.05 && hi < 0.08);
        assert_eq!(wilson_interval(0, 0, 1.96), (0.0, 1.0));
    }
}
