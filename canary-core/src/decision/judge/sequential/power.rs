//! Power at the traffic seen: whether a test would have caught what matters, the question
//! the early promotion asks, and the smallest regression it would have caught, which the
//! evaluation states.

use super::parameters::Detection;

/// z(0.95): a regression is caught with 95 % power when its estimate, 1.645 standard errors
/// below the truth, still clears what the test needs.
pub(super) const Z_POWER: f64 = 1.644_853_626_951_472_2;

/// What one test would have caught at the traffic (and dispersion) seen so far.
#[derive(Clone, Debug)]
pub(super) enum Seen {
    /// A rate test: its detection at the counts seen (margin, placement allowance and noise
    /// included); for a latency bound, the baseline's distribution that carries a latency
    /// factor to the bound's share.
    Rate {
        detection: Detection,
        shape: Option<BoundShape>,
    },
    /// A gauge's mean paired difference: what is needed (the margin, the confidence radius
    /// and 1.645 standard errors), and the baseline's mean that a ratio is taken of.
    Gauge {
        needed: f64,
        margin: f64,
        baseline_mean: f64,
        higher_is_better: bool,
    },
}

impl Seen {
    /// Whether a regression of `matters` (a ratio on the metric's own scale, in the worse
    /// direction) would have been found worse with 95 % power.
    pub(super) fn catches(&self, matters: f64) -> bool {
        match self {
            Seen::Rate { detection, shape } => {
                let d = on_statistic(shape.as_ref(), matters);
                d > 0.0 && detection.catches(d)
            }
            Seen::Gauge {
                needed,
                baseline_mean,
                ..
            } => {
                baseline_mean.is_finite() && (matters - 1.0).abs() * baseline_mean.abs() >= *needed
            }
        }
    }

    /// Whether a regression of `d` (`|ln|` of a ratio on the metric's own scale, in the worse
    /// direction) would have been found worse with 95 % power: [`catches`](Self::catches)
    /// with the ratio's log.
    pub(super) fn catches_log(&self, d: f64) -> bool {
        let higher_is_better = matches!(
            self,
            Seen::Gauge {
                higher_is_better: true,
                ..
            }
        );
        self.catches(if higher_is_better {
            (-d).exp()
        } else {
            d.exp()
        })
    }

    /// The smallest regression caught with 95 % power on the test's own statistic (`|ln|`
    /// of a rate test's ratio; a gauge's on its own scale), finite; `None` beyond × 1000 or
    /// without evidence. Unlike [`limit`](Self::limit) it is not carried to latency, which a
    /// coarse bucket bound cannot show beyond its neighbour.
    pub(super) fn own_limit(&self) -> Option<f64> {
        match self {
            Seen::Rate { detection, .. } => detection.log_ratio(),
            Seen::Gauge { .. } => self.limit().filter(|d| d.is_finite()),
        }
    }

    /// Whether a regression of `d` on the test's own statistic (as [`own_limit`](Self::own_limit))
    /// would have been found worse with 95 % power.
    pub(super) fn catches_own(&self, d: f64) -> bool {
        match self {
            Seen::Rate { detection, .. } => detection.catches(d),
            Seen::Gauge { .. } => self.catches_log(d),
        }
    }

    /// Whether `reach` (the worst regression a test's counts do not exclude, a log ratio of
    /// its statistic) lies on the good side of `matters` carried to that statistic.
    pub(super) fn excludes(&self, matters: f64, reach: Option<f64>) -> bool {
        let Seen::Rate { shape, .. } = self else {
            return false;
        };
        let d = on_statistic(shape.as_ref(), matters);
        d > 0.0 && reach.is_some_and(|r| r < d)
    }

    /// What the test would see with `factor` times the evidence at the same rate (a step that
    /// runs on): a rate test's expected counts scale, placement and margin stay; a gauge's
    /// radius and standard error shrink as `1 / √factor` (the radius a little faster than it
    /// does, so the projection errs towards power, which keeps the judge waiting).
    pub(super) fn projected(&self, factor: f64) -> Seen {
        let factor = factor.max(1.0);
        match self {
            Seen::Rate { detection, shape } => Seen::Rate {
                detection: Detection {
                    baseline_events: detection.baseline_events * factor,
                    canary_events: detection.canary_events * factor,
                    ..*detection
                },
                shape: shape.clone(),
            },
            Seen::Gauge {
                needed,
                margin,
                baseline_mean,
                higher_is_better,
            } => Seen::Gauge {
                needed: margin + (needed - margin) / factor.sqrt(),
                margin: *margin,
                baseline_mean: *baseline_mean,
                higher_is_better: *higher_is_better,
            },
        }
    }

    /// [`caught`](Self::caught) as `|ln|` of the ratio, infinite when the test has evidence
    /// but catches nothing within × 1000 (its bounds cannot show it, or the pods' allowance
    /// swallows it); `None` when it has no evidence to say.
    pub(super) fn limit(&self) -> Option<f64> {
        let usable = match self {
            Seen::Rate { detection, .. } => detection.usable(),
            Seen::Gauge {
                needed,
                baseline_mean,
                ..
            } => baseline_mean.is_finite() && *baseline_mean != 0.0 && needed.is_finite(),
        };
        usable.then(|| self.caught().map_or(f64::INFINITY, |c| c.ln().abs()))
    }

    /// The smallest regression (a ratio on the metric's own scale) caught with 95 % power;
    /// `None` if none is, within a factor of 1000.
    pub(super) fn caught(&self) -> Option<f64> {
        match self {
            Seen::Rate { detection, shape } => {
                let d = detection.log_ratio()?;
                match shape {
                    Some(s) => s.factor_for(d),
                    None => Some(d.exp()),
                }
            }
            Seen::Gauge {
                needed,
                baseline_mean,
                higher_is_better,
                ..
            } => {
                let b = baseline_mean.abs();
                if !(b > 0.0 && needed.is_finite()) {
                    return None;
                }
                let r = needed / b;
                if *higher_is_better {
                    (r < 1.0).then_some(1.0 - r)
                } else {
                    Some(1.0 + r)
                }
            }
        }
    }
}

/// `matters` (a ratio on the metric's own scale) as a log ratio of a rate test's statistic:
/// for a latency bound, the change in its share that a latency factor makes.
fn on_statistic(shape: Option<&BoundShape>, matters: f64) -> f64 {
    match shape {
        Some(s) => s.log_share_ratio(matters),
        None => matters.ln().abs(),
    }
}

/// One row's power at the traffic seen.
#[derive(Clone, Debug)]
pub(super) struct Line {
    pub(super) row: String,
    /// What matters, a ratio on the row's scale.
    pub(super) matters: f64,
    /// The smallest regression caught with 95 % power, if any within × 1000.
    pub(super) caught: Option<f64>,
    /// What matters was excluded by the row's counts instead (the promotion's reason says
    /// so): not a shortfall.
    pub(super) excluded: bool,
}

impl Line {
    fn reached(&self) -> bool {
        self.caught.is_some_and(|c| {
            if self.matters >= 1.0 {
                c <= self.matters
            } else {
                c >= self.matters
            }
        })
    }
}

fn ratio(r: f64) -> String {
    format!("× {}", crate::format::Num((r * 100.0).round() / 100.0))
}

/// The evaluation's sentence about power: what the judge would have caught with 95 % power
/// at the traffic seen, and which rows have not reached what matters. `None` without lines.
pub(super) fn statement(lines: &[Line]) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let caught: Vec<String> = lines
        .iter()
        .filter_map(|l| Some(format!("{} {}", l.row, ratio(l.caught?))))
        .collect();
    let short: Vec<String> = lines
        .iter()
        .filter(|l| !l.reached() && !l.excluded)
        .map(|l| format!("{} {}", l.row, ratio(l.matters)))
        .collect();
    let mut out = String::from("power at the traffic seen: ");
    if caught.is_empty() {
        out.push_str("no regression within × 1000 would have been caught with 95% power");
    } else {
        out.push_str(&format!(
            "would have caught {} or worse with 95% power (each alone; a power statement, not a proof that nothing smaller is there)",
            caught.join(", ")
        ));
    }
    if !short.is_empty() {
        out.push_str(&format!(
            "; not reached for what matters: {}",
            short.join(", ")
        ));
    }
    Some(out)
}

/// The baseline's latency distribution as a latency bound's test sees it: what share of its
/// requests a latency `f` times as large would put beyond (or within) bound `k`.
#[derive(Clone, Debug)]
pub(super) struct BoundShape {
    /// The finite bounds' logs and the baseline's cumulative share at each.
    log_bounds: Vec<f64>,
    cdf: Vec<f64>,
    k: usize,
    slow: bool,
}

impl BoundShape {
    /// From finite `bounds` (seconds, increasing, positive) and the baseline's cumulative
    /// `counts` at each out of `total`; `None` without requests or with a bound not positive.
    pub(super) fn new(
        bounds: &[f64],
        counts: &[f64],
        total: f64,
        k: usize,
        slow: bool,
    ) -> Option<Self> {
        // NaN is not positive either.
        let positive = |x: f64| x > 0.0;
        if !positive(total) || k >= bounds.len() || bounds.iter().any(|b| !positive(*b)) {
            return None;
        }
        Some(BoundShape {
            log_bounds: bounds.iter().map(|b| b.ln()).collect(),
            cdf: counts.iter().map(|c| (c / total).clamp(0.0, 1.0)).collect(),
            k,
            slow,
        })
    }

    /// The baseline's share beyond (`slow`) or within bound `ln x`, interpolated between
    /// bounds so that a latency factor's effect is understated, never overstated, for a
    /// distribution log-concave in log latency (lognormal, and the body of most): beyond, the
    /// share's log linear in log latency (a chord under a concave curve); within, at bounds
    /// below the median, the share itself (a chord over a convex curve). Below the first
    /// bound it is the first bound's share.
    fn share_at(&self, v: f64) -> f64 {
        let x = &self.log_bounds;
        let share = |i: usize| {
            if self.slow {
                1.0 - self.cdf[i]
            } else {
                self.cdf[i]
            }
        };
        let i = x.partition_point(|b| *b <= v);
        if i == 0 {
            return share(0);
        }
        if i >= x.len() {
            return share(x.len() - 1);
        }
        let t = (v - x[i - 1]) / (x[i] - x[i - 1]);
        let (y0, y1) = (share(i - 1), share(i));
        if self.slow {
            if y0 <= 0.0 || y1 <= 0.0 {
                return y1.max(0.0);
            }
            (y0.ln() + (y1.ln() - y0.ln()) * t).exp()
        } else {
            y0 + (y1 - y0) * t
        }
    }

    /// `|ln|` of the ratio a latency `f` times the baseline's gives the bound's share: beyond
    /// the bound `S(b/f) / S(b)`, within it `F(b) / F(b/f)`; 0 where the share is empty.
    pub(super) fn log_share_ratio(&self, f: f64) -> f64 {
        if !(f > 1.0 && f.is_finite()) {
            return 0.0;
        }
        let at = self.share_at(self.log_bounds[self.k]);
        let shifted = self.share_at(self.log_bounds[self.k] - f.ln());
        let r = if self.slow {
            shifted / at
        } else {
            at / shifted
        };
        if r.is_finite() && r > 1.0 {
            r.ln()
        } else {
            0.0
        }
    }

    /// The latency factor whose share ratio is `e^d`, by bisection; `None` beyond × 1000.
    pub(super) fn factor_for(&self, d: f64) -> Option<f64> {
        let top = 1000f64.ln();
        if self.log_share_ratio(top.exp()) < d {
            return None;
        }
        let (mut lo, mut hi) = (0.0, top);
        for _ in 0..50 {
            let mid = 0.5 * (lo + hi);
            if self.log_share_ratio(mid.exp()) >= d {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi.exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_factor_moves_a_bounds_share_as_the_baseline_says() {
        // Bounds 0.1, 0.2, 0.4, 0.8 s with 20 %, 60 %, 90 %, 99 % of requests within.
        let bounds = [0.1, 0.2, 0.4, 0.8];
        let counts = [20.0, 60.0, 90.0, 99.0];
        let slow = BoundShape::new(&bounds, &counts, 100.0, 2, true).unwrap();
        // Twice as slow: beyond 0.4 s goes what was beyond 0.2 s, 40 % against 10 %.
        assert!((slow.log_share_ratio(2.0) - 4f64.ln()).abs() < 1e-9);
        // The inverse gives the factor back.
        assert!((slow.factor_for(4f64.ln()).unwrap() - 2.0).abs() < 1e-6);
        // Within 0.4 s: 90 % against 60 % at twice the latency.
        let fast = BoundShape::new(&bounds, &counts, 100.0, 2, false).unwrap();
        assert!((fast.log_share_ratio(2.0) - 1.5f64.ln()).abs() < 1e-9);
        // Between bounds the share beyond falls geometrically: × 1.5 puts 0.4 s at 0.267 s,
        // 0.585 of the way from 0.2 s in log latency, where 40 % × (1/4)^0.585 is beyond.
        let between = 0.4f64 * 0.25f64.powf((0.4f64 / 1.5 / 0.2).ln() / 2f64.ln());
        assert!((slow.log_share_ratio(1.5) - (between / 0.1).ln()).abs() < 1e-9);
        // Below the first bound the share is held, so the effect is not overstated.
        let first = BoundShape::new(&bounds, &counts, 100.0, 0, true).unwrap();
        assert_eq!(first.log_share_ratio(4.0), 0.0);
        assert_eq!(slow.log_share_ratio(1.0), 0.0);
    }

    #[test]
    fn waiting_sharpens_a_test_down_to_what_the_pods_allow_and_no_further() {
        use super::super::parameters::Detection;
        let seen = |placement_sd: f64| Seen::Rate {
            detection: Detection {
                alpha: 0.004,
                edge: 0.1f64.ln_1p() + 3.0 * placement_sd,
                k: 30.0,
                baseline_events: 400.0,
                canary_events: 40.0,
                placement_sd,
                higher_is_worse: true,
            },
            shape: None,
        };
        // Without pods, four times the evidence sharpens the limit a lot; with pods far
        // apart, hardly, and never below the margin and the allowance.
        let (quiet, pods) = (seen(0.0), seen(0.2));
        let gain = |s: &Seen, f: f64| s.limit().unwrap() / s.projected(f).limit().unwrap();
        assert!(gain(&quiet, 4.0) > 1.5, "{}", gain(&quiet, 4.0));
        assert!(gain(&pods, 4.0) < 1.25, "{}", gain(&pods, 4.0));
        let far = pods.projected(1e6).limit().unwrap();
        assert!(far > 0.1f64.ln_1p() + 0.6 && far < pods.limit().unwrap());
        // The log form asks the same question.
        for d in [0.3, 0.9, 1.5] {
            assert_eq!(pods.catches_log(d), pods.catches(d.exp()));
        }
        // A gauge's radius shrinks with the evidence, its margin stays.
        let g = Seen::Gauge {
            needed: 0.1,
            margin: 0.02,
            baseline_mean: 0.8,
            higher_is_better: true,
        };
        let Seen::Gauge { needed, .. } = g.projected(4.0) else {
            unreachable!()
        };
        assert!((needed - 0.06).abs() < 1e-12);
        assert_eq!(g.catches_log(-(0.8f64.ln())), g.catches(0.8));
        // Less than today's evidence is today's.
        assert_eq!(g.projected(0.5).caught(), g.caught());
    }

    #[test]
    fn a_gauges_power_is_its_radius_beyond_the_margin() {
        let g = Seen::Gauge {
            needed: 0.1,
            margin: 0.02,
            baseline_mean: 0.8,
            higher_is_better: true,
        };
        assert!(g.catches(0.8) && !g.catches(0.9));
        assert!((g.caught().unwrap() - 0.875).abs() < 1e-12);
    }
}
