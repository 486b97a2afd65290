//! Pods as units: the smallest regression a comparison can tell from where the pods landed.
//!
//! Model: each pod of a version has a persistent effect on a metric's log, drawn once per pod
//! with standard deviation `s` (node type, neighbours, zone, cache state), independently of
//! its version; pods are exchangeable. The canary's `k` pods average to its version's effect
//! plus placement noise of sd `s/√k`, production's `n` pods to theirs plus `s/√n`. However much
//! traffic is observed, the difference of the two arms keeps that noise, so a one-sided test
//! at level `α` with power `1 − β` cannot catch less than `(z₁₋α + z₁₋β) · s · √(1/k + 1/n)`
//! in log terms (the usual two-sample bound, with pods as the sample).

use super::normal_quantile;

/// The smallest regression, as a ratio (e.g. `1.24` for +24 %), that a test at level `alpha`
/// catches with probability `power` when the canary has `canary_pods` pods, production
/// `production_pods`, and pods of one version differ by `spread` (the standard deviation of a
/// pod's log effect; 0.09 for pods about ±9 % apart). `None` for no pods, a spread that is
/// not finite and ≥ 0, or `alpha`/`power` outside (0, 1).
///
/// ```
/// use canary_core::stats::pod_design_limit;
/// // One canary pod against nine, pods ±10 % apart, α 1 %, 95 % power: about +52 %.
/// let one = pod_design_limit(1, 9, 0.10, 0.01, 0.95).unwrap();
/// assert!((one - 1.52).abs() < 0.005);
/// // Three canary pods: about +30 %.
/// let three = pod_design_limit(3, 9, 0.10, 0.01, 0.95).unwrap();
/// assert!((three - 1.30).abs() < 0.005);
/// ```
pub fn pod_design_limit(
    canary_pods: usize,
    production_pods: usize,
    spread: f64,
    alpha: f64,
    power: f64,
) -> Option<f64> {
    let unit = |p: f64| p > 0.0 && p < 1.0;
    if canary_pods == 0
        || production_pods == 0
        || !(spread.is_finite() && spread >= 0.0)
        || !unit(alpha)
        || !unit(power)
    {
        return None;
    }
    let z = normal_quantile(1.0 - alpha) + normal_quantile(power);
    let placement = (1.0 / canary_pods as f64 + 1.0 / production_pods as f64).sqrt();
    Some((z * spread * placement).exp())
}

/// Student's t CDF with `df` degrees of freedom (1 or more), exact for integer `df`: the
/// finite sums of Abramowitz and Stegun 26.7.3 and 26.7.4 in θ = atan(t/√df).
pub fn student_t_cdf(t: f64, df: u32) -> f64 {
    if df == 0 || t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    let nu = f64::from(df);
    let theta = (t.abs() / nu.sqrt()).atan();
    let (sin, cos) = theta.sin_cos();
    let c2 = cos * cos;
    // P(|T| < |t|).
    let within = if df % 2 == 1 {
        let mut term = cos;
        let mut sum = if df > 1 { cos } else { 0.0 };
        let mut k = 3;
        while k < df {
            term *= c2 * f64::from(k - 1) / f64::from(k);
            sum += term;
            k += 2;
        }
        2.0 / std::f64::consts::PI * (theta + sin * sum)
    } else {
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = 2;
        while k < df {
            term *= c2 * f64::from(k - 1) / f64::from(k);
            sum += term;
            k += 2;
        }
        sin * sum
    };
    let upper = 0.5 * (1.0 - within).max(0.0);
    if t >= 0.0 {
        1.0 - upper
    } else {
        upper
    }
}

/// Student's t quantile for `p` in (0, 1) and `df` ≥ 1 (NaN otherwise): bisection on
/// [`student_t_cdf`] to 1e-12, so it agrees with R's `qt` to about 1e-10. Large `df` is the
/// normal quantile.
pub fn student_t_quantile(p: f64, df: u32) -> f64 {
    if !(p > 0.0 && p < 1.0) || df == 0 {
        return f64::NAN;
    }
    if df > 1000 {
        return normal_quantile(p);
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    while student_t_cdf(hi, df) < p {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    while hi - lo > 1e-12 * hi.max(1.0) {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// [`pod_design_limit`] when the spread is an estimate on `df` degrees of freedom (from
/// production's pods, say `n − 1`), as a judge that uses it must test: Student's t quantile for
/// the level, the normal one for the power.
pub fn pod_design_limit_estimated(
    canary_pods: usize,
    production_pods: usize,
    spread: f64,
    df: u32,
    alpha: f64,
    power: f64,
) -> Option<f64> {
    let plain = pod_design_limit(canary_pods, production_pods, spread, alpha, power)?;
    if df == 0 {
        return None;
    }
    let z = normal_quantile(1.0 - alpha) + normal_quantile(power);
    let t = student_t_quantile(1.0 - alpha, df) + normal_quantile(power);
    Some((plain.ln() * t / z).exp())
}

/// One unit's (pod's) estimate of a log quantity and its sampling variance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnitEstimate {
    /// The estimate, e.g. the log of the pod's error rate.
    pub value: f64,
    /// Its sampling variance (finite, over 0).
    pub variance: f64,
}

/// The between-unit variance of groups of units that share a mean within each group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BetweenUnits {
    /// τ², by the method of moments (0 when the units vary no more than their noise).
    pub tau2: f64,
    /// Degrees of freedom, `Σ (units − 1)`.
    pub df: u32,
    /// Cochran's Q, χ² on `df` under no spread.
    pub q: f64,
}

impl BetweenUnits {
    /// Whether Cochran's Q shows a spread at level `alpha` (its χ² quantile by Wilson and
    /// Hilferty's cube-root approximation, within 1 % of the exact one from 2 degrees of
    /// freedom on).
    pub fn significant(&self, alpha: f64) -> bool {
        let df = f64::from(self.df);
        let c = 2.0 / (9.0 * df);
        let quantile = df * (1.0 - c + normal_quantile(1.0 - alpha) * c.sqrt()).powi(3);
        self.df > 0 && self.q > quantile
    }
}

/// The between-unit variance τ² of groups of units that share a mean within each group, by the
/// method of moments of DerSimonian and Laird (Controlled Clinical Trials 7, 1986), pooled over
/// the groups: `max(0, (Q − df) / C)` with Cochran's `Q = Σ w (y − ȳ_w)²` around each group's
/// weighted mean, `w = 1/variance`, `C = Σ (Σw − Σw²/Σw)`. `None` when no group has two units
/// or a variance is not finite and over 0.
///
/// ```
/// use canary_core::stats::{between_unit_variance, UnitEstimate};
/// let u = |value| UnitEstimate { value, variance: 0.01 };
/// // Units ±0.2 apart with sampling sd 0.1: τ² about 0.2² − 0.1².
/// let b = between_unit_variance(&[vec![u(-0.2), u(0.2), u(0.0), u(0.2), u(-0.2)]]).unwrap();
/// assert_eq!(b.df, 4);
/// assert!((b.tau2 - 0.03).abs() < 1e-9);
/// assert!(b.significant(0.05));
/// ```
pub fn between_unit_variance(groups: &[Vec<UnitEstimate>]) -> Option<BetweenUnits> {
    let (mut q, mut c, mut df) = (0.0, 0.0, 0u32);
    for g in groups.iter().filter(|g| g.len() >= 2) {
        if g.iter()
            .any(|u| !(u.variance.is_finite() && u.variance > 0.0 && u.value.is_finite()))
        {
            return None;
        }
        let w: Vec<f64> = g.iter().map(|u| 1.0 / u.variance).collect();
        let sw: f64 = w.iter().sum();
        let mean = g.iter().zip(&w).map(|(u, w)| w * u.value).sum::<f64>() / sw;
        q += g
            .iter()
            .zip(&w)
            .map(|(u, w)| w * (u.value - mean).powi(2))
            .sum::<f64>();
        c += sw - w.iter().map(|w| w * w).sum::<f64>() / sw;
        df += u32::try_from(g.len() - 1).unwrap_or(u32::MAX);
    }
    (df > 0 && c > 0.0).then(|| BetweenUnits {
        tau2: ((q - f64::from(df)) / c).max(0.0),
        df,
        q,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn student_t_agrees_with_r() {
        // R 4.x: qt(p, df).
        for (p, df, want) in [
            (0.99, 3, 4.540_702_858_568_13),
            (0.995, 8, 3.355_387_331_256_92),
            (0.99, 8, 2.896_459_447_756_77),
            (0.975, 5, 2.570_581_835_636_31),
            (0.9995, 10, 4.586_893_858_951_91),
            (0.995, 2, 9.924_843_200_918_27),
            (0.9, 1, 3.077_683_537_175_25),
        ] {
            let got = student_t_quantile(p, df);
            assert!(
                (got - want).abs() < 1e-8 * want,
                "qt({p}, {df}) = {got}, R {want}"
            );
            assert!((student_t_cdf(got, df) - p).abs() < 1e-10);
        }
        assert!((student_t_cdf(-1.0, 4) - (1.0 - student_t_cdf(1.0, 4))).abs() < 1e-15);
        // Large df: the normal.
        assert!((student_t_cdf(1.3, 999) - super::super::normal_cdf(1.3)).abs() < 1e-3);
        assert!(student_t_quantile(0.0, 3).is_nan());
        assert!(student_t_quantile(0.5, 0).is_nan());
        assert!(student_t_quantile(0.5, 7).abs() < 1e-9);
    }

    #[test]
    fn the_between_pod_variance_is_the_excess_over_sampling_noise() {
        let u = |value, variance| UnitEstimate { value, variance };
        // No spread beyond the sampling noise: 0.
        let same = vec![u(0.0, 1.0), u(0.5, 1.0), u(-0.5, 1.0)];
        let b = between_unit_variance(std::slice::from_ref(&same)).unwrap();
        assert_eq!((b.tau2, b.df, b.q), (0.0, 2, 0.5));
        assert!(!b.significant(0.05));
        // Two groups with different means: each around its own mean.
        let shifted: Vec<UnitEstimate> = same.iter().map(|x| u(x.value + 9.0, 1.0)).collect();
        let b = between_unit_variance(&[same, shifted]).unwrap();
        assert_eq!((b.tau2, b.df), (0.0, 4));
        // Precise units far apart: about their variance.
        let apart = vec![u(-1.0, 1e-6), u(1.0, 1e-6)];
        let b = between_unit_variance(&[apart]).unwrap();
        assert_eq!(b.df, 1);
        assert!((b.tau2 - 2.0).abs() < 1e-3, "{}", b.tau2);
        assert!(b.significant(0.01));
        // Cochran's Q against R's qchisq(0.95, 8) = 15.50731: just under and just over.
        let q = |q| BetweenUnits {
            tau2: 0.0,
            df: 8,
            q,
        };
        assert!(!q(15.4).significant(0.05) && q(15.6).significant(0.05));
        // One unit per group: nothing to say; bad variances: nothing either.
        assert_eq!(between_unit_variance(&[vec![u(0.0, 1.0)]]), None);
        assert_eq!(
            between_unit_variance(&[vec![u(0.0, 0.0), u(1.0, 1.0)]]),
            None
        );
    }

    #[test]
    fn an_estimated_spread_asks_for_more() {
        let plain = pod_design_limit(1, 9, 0.1, 0.01, 0.95).unwrap();
        let estimated = pod_design_limit_estimated(1, 9, 0.1, 8, 0.01, 0.95).unwrap();
        let t = student_t_quantile(0.99, 8) + normal_quantile(0.95);
        assert!((estimated.ln() - t * 0.1 * (1.0f64 + 1.0 / 9.0).sqrt()).abs() < 1e-12);
        assert!(estimated > plain);
        assert_eq!(pod_design_limit_estimated(1, 9, 0.1, 0, 0.01, 0.95), None);
    }

    #[test]
    fn the_limit_is_the_two_sample_bound_over_pods() {
        // z(0.99) + z(0.95) = 2.326 + 1.645 = 3.971: about 4 × the spread with one canary pod
        // against a large production, about 2.3 × with three.
        let log = |k, n| pod_design_limit(k, n, 0.1, 0.01, 0.95).unwrap().ln() / 0.1;
        assert!(
            (log(1, 100_000) - 3.971).abs() < 1e-2,
            "{}",
            log(1, 100_000)
        );
        assert!((log(3, 100_000) - 3.971 / 3f64.sqrt()).abs() < 1e-2);
        // Production's own pods add their placement too.
        assert!(log(1, 9) > log(1, 100_000));
        // More pods, more power, a smaller limit; no spread, no limit.
        assert!(log(3, 9) < log(1, 9));
        assert_eq!(pod_design_limit(1, 9, 0.0, 0.01, 0.95), Some(1.0));
        // Nonsense is refused, never a limit.
        for bad in [
            pod_design_limit(0, 9, 0.1, 0.01, 0.95),
            pod_design_limit(1, 0, 0.1, 0.01, 0.95),
            pod_design_limit(1, 9, f64::NAN, 0.01, 0.95),
            pod_design_limit(1, 9, -0.1, 0.01, 0.95),
            pod_design_limit(1, 9, 0.1, 0.0, 0.95),
            pod_design_limit(1, 9, 0.1, 0.01, 1.0),
        ] {
            assert_eq!(bad, None);
        }
    }
}
