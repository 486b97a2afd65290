//! The Wilcoxon rank-sum (Mann-Whitney) test with the normal approximation, continuity and tie
//! corrections, and the Hodges–Lehmann estimate with its confidence interval, computed as R's
//! `wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE)` computes them: the
//! interval's ends and the estimate are roots of the standardized rank statistic as a function of
//! the shift, found by Brent's method with R's tolerance (1e-4), so the numbers agree with R's,
//! not only with the textbook definitions.

use super::{normal_cdf, normal_quantile, normal_sf};

/// The result of [`rank_sum`]: `x` is the treatment (the canary), `y` the control.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankSum {
    /// R's `W`: the rank sum of `x` minus its minimum, `nx(nx+1)/2`.
    pub w: f64,
    /// The two-sided p-value.
    pub p_value: f64,
    /// The interval for the shift `x − y` at the requested confidence: (lower, upper).
    pub interval: (f64, f64),
    /// The Hodges–Lehmann estimate of the shift `x − y` (R's "difference in location").
    pub estimate: f64,
}

/// Tests whether `x` is shifted against `y` at `confidence` (e.g. 0.98). `None` when either
/// sample is empty, a value is not finite, or every value is tied (R stops there too).
pub fn rank_sum(x: &[f64], y: &[f64], confidence: f64) -> Option<RankSum> {
    if x.is_empty()
        || y.is_empty()
        || !(confidence > 0.0 && confidence < 1.0)
        || x.iter().chain(y).any(|v| !v.is_finite())
    {
        return None;
    }
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    let stat = |d: f64, correct: bool| -> Option<(f64, f64)> {
        let (rank_x, ties) = ranks(x, y, d);
        let dz = rank_x - nx * (nx + 1.0) / 2.0 - nx * ny / 2.0;
        let correction = if correct { 0.5 * sign(dz) } else { 0.0 };
        let sigma =
            (nx * ny / 12.0 * ((nx + ny + 1.0) - ties / ((nx + ny) * (nx + ny - 1.0)))).sqrt();
        (sigma > 0.0).then_some((dz, (dz - correction) / sigma))
    };
    let (dz, z) = stat(0.0, true)?;
    let w = dz + nx * ny / 2.0;
    let p_value = (2.0 * normal_cdf(z).min(normal_sf(z))).min(1.0);

    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = (min(x) - max(y), max(x) - min(y));
    let wdiff = |d: f64, zq: f64, correct: bool| stat(d, correct).map_or(f64::NAN, |(_, z)| z - zq);
    let root = |zq: f64| {
        let (f_lo, f_hi) = (wdiff(lo, zq, true), wdiff(hi, zq, true));
        if f_lo <= 0.0 {
            lo
        } else if f_hi >= 0.0 {
            hi
        } else {
            zeroin(lo, hi, f_lo, f_hi, |d| wdiff(d, zq, true), 1e-4, 1000)
        }
    };
    let alpha = 1.0 - confidence;
    let interval = (
        root(normal_quantile(1.0 - alpha / 2.0)),
        root(normal_quantile(alpha / 2.0)),
    );
    // R estimates without the continuity correction.
    let (f_lo, f_hi) = (wdiff(lo, 0.0, false), wdiff(hi, 0.0, false));
    let estimate = if f_lo * f_hi > 0.0 || f_lo.is_nan() || f_hi.is_nan() {
        f64::NAN
    } else {
        zeroin(lo, hi, f_lo, f_hi, |d| wdiff(d, 0.0, false), 1e-4, 1000)
    };
    Some(RankSum {
        w,
        p_value,
        interval,
        estimate,
    })
}

fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The sum of the (average) ranks of `x − d` among `x − d` and `y`, and Σ(t³ − t) over the
/// groups of tied values.
fn ranks(x: &[f64], y: &[f64], d: f64) -> (f64, f64) {
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v - d, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_x, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Positions i..j (1-based i+1..=j) share the average rank.
        let t = (j - i) as f64;
        let rank = (i + 1 + j) as f64 / 2.0;
        rank_x += rank * all[i..j].iter().filter(|e| e.1).count() as f64;
        ties += t * t * t - t;
        i = j;
    }
    (rank_x, ties)
}

/// Brent's root finder as R's `uniroot` runs it (R's `zeroin2`: the bracket's function values
/// are given; the same steps, tolerance test and fallbacks), so roots of step functions land
/// where R's do.
fn zeroin(
    ax: f64,
    bx: f64,
    fa: f64,
    fb: f64,
    f: impl Fn(f64) -> f64,
    tol: f64,
    max_iter: usize,
) -> f64 {
    let (mut a, mut b, mut fa, mut fb) = (ax, bx, fa, fb);
    let (mut c, mut fc) = (a, fa);
    if fa == 0.0 {
        return a;
    }
    if fb == 0.0 {
        return b;
    }
    for _ in 0..=max_iter {
        let prev_step = b - a;
        if fc.abs() < fb.abs() {
            // Make b the best approximation.
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol_act = 2.0 * f64::EPSILON * b.abs() + tol / 2.0;
        let mut new_step = (c - b) / 2.0;
        if new_step.abs() <= tol_act || fb == 0.0 {
            return b;
        }
        if prev_step.abs() >= tol_act && fa.abs() > fb.abs() {
            // Interpolation: linear with two distinct points, inverse quadratic with three.
            let cb = c - b;
            let (mut p, mut q);
            if a == c {
                let t1 = fb / fa;
                p = cb * t1;
                q = 1.0 - t1;
            } else {
                let qa = fa / fc;
                let t1 = fb / fc;
                let t2 = fb / fa;
                p = t2 * (cb * qa * (qa - t1) - (b - a) * (t1 - 1.0));
                q = (qa - 1.0) * (t1 - 1.0) * (t2 - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if p < 0.75 * cb * q - (tol_act * q).abs() / 2.0 && p < (prev_step * q / 2.0).abs() {
                new_step = p / q;
            }
        }
        if new_step.abs() < tol_act {
            new_step = if new_step > 0.0 { tol_act } else { -tol_act };
        }
        a = b;
        fa = fb;
        b += new_step;
        fb = f(b);
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            c = a;
            fc = fa;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases_by_hand() {
        // x all above y: W = nx·ny, and the shift is positive.
        let r = rank_sum(&[10.0, 20.0, 30.0, 40.0], &[1.0, 2.0, 3.0, 4.0], 0.95).unwrap();
        assert_eq!(r.w, 16.0);
        assert!(r.p_value < 0.05, "{r:?}");
        assert!(r.interval.0 > 0.0 && r.estimate > r.interval.0 && r.estimate < r.interval.1);
        // Identical samples: no shift.
        let r = rank_sum(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 0.95).unwrap();
        assert_eq!(r.w, 4.5);
        assert!((r.p_value - 1.0).abs() < 1e-12);
        assert!(r.interval.0 < 0.0 && r.interval.1 > 0.0);
    }

    #[test]
    fn degenerate_input_is_no_answer() {
        assert!(rank_sum(&[], &[1.0], 0.98).is_none());
        assert!(rank_sum(&[1.0, f64::NAN], &[1.0], 0.98).is_none());
        assert!(rank_sum(&[2.0, 2.0], &[2.0], 0.98).is_none(), "all tied");
        assert!(rank_sum(&[1.0], &[2.0], 1.0).is_none());
    }
}
