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

#[cfg(test)]
mod tests {
    use super::*;

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
