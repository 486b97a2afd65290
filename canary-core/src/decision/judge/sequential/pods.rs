//! Pods as units: the spread between production's pods, a baseline that sets an outlying pod
//! aside, the allowance the spread adds to a margin, and each canary pod on its own.

use super::counts::{Counting, Placement};
use super::*;
use crate::policy::PodEvidence;
use crate::stats::{between_unit_variance, normal_quantile, student_t_quantile, UnitEstimate};

/// A production pod this many expected deviations (the spread and its own sampling noise)
/// from the median of production's pods is set aside: not in the baseline, not in the spread.
const OUTLIER_Z: f64 = 5.0;
/// Production needs this many pods with traffic before one can be told to be the odd one.
const OUTLIER_MIN_PODS: usize = 4;
/// At most this share of production's pods is set aside (always one at least, when allowed).
const OUTLIER_MAX_SHARE: f64 = 0.25;
/// Production pods enough to estimate the spread from production alone; with fewer, the
/// canary's pods (when it has several) add their spread around their own mean, if clear.
const SPREAD_MIN_PODS: usize = 3;
/// With fewer production pods, both arms' spread around their own means is pooled, but only
/// when Cochran's Q shows it at this level: a spread on two or three degrees of freedom
/// needs a large allowance, which homogeneous pods should not pay for.
const POOLED_SIGNIFICANCE: f64 = 0.01;
/// The level of Cochran's Q test that decides whether a spread is worth stating.
const SPREAD_SIGNIFICANCE: f64 = 0.05;
/// The power the design limit is stated at.
const DESIGN_POWER: f64 = 0.95;

/// A spread known from elsewhere, that a test's own estimate may not fall below.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Floor {
    pub(super) tau: f64,
    pub(super) df: u32,
    /// The latency scale's own spread, when the floor was carried from it.
    pub(super) latency: Option<f64>,
    /// Whether the spread it came from is beyond sampling noise.
    pub(super) significant: bool,
    /// For a latency bound: how much the statistic's log moves per unit of log latency.
    pub(super) elasticity: Option<f64>,
}

/// One pod's events and traffic over the judged time.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct PodCount {
    pub(super) name: String,
    pub(super) events: f64,
    pub(super) traffic: f64,
}

impl PodCount {
    /// The log of its rate and that log's sampling variance (binomial, half an event added so
    /// that a pod without events stays finite).
    fn estimate(&self) -> UnitEstimate {
        let (e, t) = (self.events + 0.5, self.traffic + 1.0);
        UnitEstimate {
            value: (e / t).ln(),
            variance: (1.0 / e - 1.0 / t).max(1e-9),
        }
    }
}

/// What the pods say about one test.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Spread {
    /// The between-pod standard deviation of the log rate (0 when none is seen or known).
    pub(super) tau: f64,
    /// Its degrees of freedom (0: unknown, and no allowance).
    pub(super) df: u32,
    /// Production's pods in the baseline and the spread.
    pub(super) baseline: Vec<PodCount>,
    /// Production's pods set aside as outliers.
    pub(super) excluded: Vec<PodCount>,
    /// The canary's pods.
    pub(super) canary: Vec<PodCount>,
    /// For a latency bound: the latency scale's spread.
    pub(super) latency_spread: Option<f64>,
    /// Whether production's pods differ beyond their sampling noise (Cochran's Q at 5 %).
    pub(super) significant: bool,
    /// For a latency bound: the statistic's log change per unit of log latency.
    pub(super) elasticity: Option<f64>,
}

impl Spread {
    /// The spread of production's pods (at least [`SPREAD_MIN_PODS`] with traffic; with
    /// fewer it is unknown), its outliers set aside, and at least `floor` (a spread and its
    /// degrees of freedom known from elsewhere, e.g. from the latency scale).
    pub(super) fn of(
        baseline: Vec<PodCount>,
        canary: Vec<PodCount>,
        floor: Option<Floor>,
    ) -> Spread {
        let (baseline, excluded) = set_aside_outliers(baseline, floor.map_or(0.0, |f| f.tau));
        let estimates: Vec<UnitEstimate> = baseline.iter().map(PodCount::estimate).collect();
        let between = if baseline.len() >= SPREAD_MIN_PODS {
            between_unit_variance(&[estimates])
        } else {
            let canary_estimates = canary.iter().map(PodCount::estimate).collect();
            pooled_spread(estimates, canary_estimates)
        };
        let (mut tau, mut df) = between.map_or((0.0, 0), |b| (b.tau2.sqrt(), b.df));
        let mut significant = between.is_some_and(|b| b.significant(SPREAD_SIGNIFICANCE));
        let latency_spread = floor.and_then(|f| f.latency);
        let elasticity = floor.and_then(|f| f.elasticity);
        if let Some(f) = floor {
            if f.df > 0 && f.tau > tau {
                (tau, df) = (f.tau, f.df);
                significant |= f.significant;
            }
        }
        Spread {
            tau,
            df,
            baseline,
            excluded,
            canary,
            latency_spread,
            significant,
            elasticity,
        }
    }

    /// Σ of each pod's squared share of its arm's traffic: `1/k` for `k` equal pods.
    fn inverse_pods(pods: &[PodCount]) -> f64 {
        let total: f64 = pods.iter().map(|p| p.traffic).sum();
        if total <= 0.0 {
            return 1.0;
        }
        pods.iter().map(|p| (p.traffic / total).powi(2)).sum()
    }

    /// The placement's standard deviation on the log scale: `τ √(1/k + 1/n)`, with each arm's
    /// pods weighted by their traffic (a test of one canary pod has `k` = 1).
    fn placement_sd(&self, one_pod: bool) -> f64 {
        self.placement_sd_for(one_pod.then_some(1))
    }

    /// [`placement_sd`](Self::placement_sd) with `canary_pods` equal canary pods instead of the
    /// canary's own (`None`).
    pub(super) fn placement_sd_for(&self, canary_pods: Option<usize>) -> f64 {
        let inv_k = match canary_pods {
            Some(k) => 1.0 / k.max(1) as f64,
            None => Self::inverse_pods(&self.canary),
        };
        self.tau * (inv_k + Self::inverse_pods(&self.baseline)).sqrt()
    }

    /// How much of a log difference the pods' placement may explain at level `alpha`: the
    /// upper `alpha` quantile of Student's t on the spread's degrees of freedom times the
    /// placement's sd; 0 when the spread is unknown or nil.
    pub(super) fn allowance(&self, alpha: f64, one_pod: bool) -> f64 {
        if self.df == 0 || self.tau <= 0.0 {
            return 0.0;
        }
        let t = student_t_quantile(1.0 - alpha, self.df);
        if t.is_finite() {
            t * self.placement_sd(one_pod)
        } else {
            f64::INFINITY
        }
    }

    /// The smallest regression (a ratio) that can be told from placement with 95 % power at
    /// level `alpha`, however much traffic; `None` when the spread is unknown.
    pub(super) fn design_limit(&self, alpha: f64, one_pod: bool) -> Option<f64> {
        (self.df > 0).then(|| {
            let t = student_t_quantile(1.0 - alpha, self.df) + normal_quantile(DESIGN_POWER);
            (t * self.placement_sd(one_pod)).exp()
        })
    }

    /// The names of production's pods set aside.
    pub(super) fn excluded_names(&self) -> Vec<String> {
        self.excluded.iter().map(|p| p.name.clone()).collect()
    }

    /// The evidence for a test at placement level `alpha`, of `pod` alone or of the whole arm.
    pub(super) fn evidence(&self, alpha: f64, pod: Option<&str>) -> PodEvidence {
        PodEvidence {
            spread: self.tau,
            degrees_of_freedom: self.df,
            production_pods: self.baseline.len(),
            canary_pods: self.canary.len(),
            excluded: self.excluded_names(),
            allowance: self.allowance(alpha, pod.is_some()).exp(),
            pod: pod.map(str::to_owned),
            design_limit: self.design_limit(alpha, pod.is_some()),
            alpha,
            latency_spread: self.latency_spread,
            significant: self.significant,
            detectable: Vec::new(),
        }
    }
}

/// Both arms' pods' spread, each around its own arm's mean, when it is clearly there (see
/// [`POOLED_SIGNIFICANCE`]); `None` otherwise.
pub(super) fn pooled_spread(
    baseline: Vec<UnitEstimate>,
    canary: Vec<UnitEstimate>,
) -> Option<crate::stats::BetweenUnits> {
    between_unit_variance(&[baseline, canary]).filter(|b| b.significant(POOLED_SIGNIFICANCE))
}

/// Production's pods without its outliers, and the outliers: a pod whose log rate is more
/// than [`OUTLIER_Z`] expected deviations from the pods' median (the spread, from the median
/// absolute deviation less the typical sampling variance, plus the pod's own sampling
/// variance; at least `tau_floor`), the farthest first, at most a quarter of the pods; none
/// with fewer than [`OUTLIER_MIN_PODS`] pods.
fn set_aside_outliers(pods: Vec<PodCount>, tau_floor: f64) -> (Vec<PodCount>, Vec<PodCount>) {
    let estimates: Vec<UnitEstimate> = pods.iter().map(PodCount::estimate).collect();
    let out = outliers(&estimates, tau_floor);
    let (mut kept, mut excluded) = (Vec::new(), Vec::new());
    for (i, p) in pods.into_iter().enumerate() {
        if out.contains(&i) {
            excluded.push(p);
        } else {
            kept.push(p);
        }
    }
    (kept, excluded)
}

/// The indices of the outlying units among `estimates` (see [`set_aside_outliers`]).
pub(super) fn outliers(estimates: &[UnitEstimate], tau_floor: f64) -> Vec<usize> {
    if estimates.len() < OUTLIER_MIN_PODS {
        return Vec::new();
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    };
    let m = median(estimates.iter().map(|u| u.value).collect());
    let mad = median(estimates.iter().map(|u| (u.value - m).abs()).collect());
    let typical_variance = median(estimates.iter().map(|u| u.variance).collect());
    let tau2 = ((1.4826 * mad).powi(2) - typical_variance).max(tau_floor * tau_floor);
    let mut far: Vec<(f64, usize)> = estimates
        .iter()
        .enumerate()
        .map(|(i, u)| ((u.value - m).abs() / (tau2 + u.variance).sqrt(), i))
        .filter(|(z, _)| *z > OUTLIER_Z)
        .collect();
    far.sort_by(|a, b| b.0.total_cmp(&a.0));
    let most = ((estimates.len() as f64 * OUTLIER_MAX_SHARE).floor() as usize).max(1);
    far.truncate(most);
    far.into_iter().map(|(_, i)| i).collect()
}

impl SequentialJudge {
    /// Each pod's events and traffic over the judged spans, in one arm (0 production, 1 the
    /// canary). A pod absent at a span's start started within it, from zero.
    pub(super) fn pod_counts(&self, counting: Counting<'_>, arm: usize) -> Vec<PodCount> {
        let mut by_pod: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for span in self.spans() {
            let (a, z) = (span[arm], span[arm + 2]);
            for (name, end) in &z.instances {
                let Some((e, t)) = counting.of_arm(a.instances.get(name), end) else {
                    continue;
                };
                if e >= 0.0 && t >= 0.0 {
                    let entry = by_pod.entry(name.clone()).or_default();
                    entry.0 += e;
                    entry.1 += t;
                }
            }
        }
        by_pod
            .into_iter()
            .filter(|(_, (_, t))| *t > 0.0)
            .map(|(name, (events, traffic))| PodCount {
                name,
                events,
                traffic,
            })
            .collect()
    }

    /// What the arms' pods say about `counting` (with a spread of at least `floor`); `None`
    /// when neither arm tells its pods apart.
    pub(super) fn spread(&self, counting: Counting<'_>, floor: Option<Floor>) -> Option<Spread> {
        let (baseline, canary) = (self.pod_counts(counting, 0), self.pod_counts(counting, 1));
        (!(baseline.is_empty() && canary.is_empty())).then(|| Spread::of(baseline, canary, floor))
    }
}

impl SequentialJudge {
    /// The arm's rate test with its pods' placement (at `placement_alpha`) and, when the
    /// canary has two pods or more and production's spread is known, each canary pod's own test at `alpha / k` and
    /// `placement_alpha / k` (Bonferroni over the pods). When some pods and not all are found
    /// worse, the worst such pod comes first, so that the decision names it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pod_aware_tests(
        &mut self,
        dispersion: &str,
        row: &str,
        statistic: &str,
        counting: Counting<'_>,
        (alpha, placement_alpha, beta): (f64, f64, f64),
        margin: f64,
        higher_is_worse: bool,
        floor: Option<Floor>,
    ) -> Vec<Tested> {
        let spread = self.spread(counting, floor);
        let placement = |pod| {
            spread.as_ref().map(|s| Placement {
                spread: s,
                alpha: placement_alpha,
                pod,
            })
        };
        let arm = self.rate_test(
            dispersion,
            row,
            statistic.to_owned(),
            counting,
            alpha,
            margin,
            higher_is_worse,
            placement(None),
            Some(beta),
        );
        // Without a known spread a pod alone would be judged on its placement: not tested.
        let Some(s) = spread.as_ref().filter(|s| s.canary.len() >= 2 && s.df > 0) else {
            return vec![arm];
        };
        let k = s.canary.len() as f64;
        let mut pods: Vec<Tested> = s
            .canary
            .iter()
            .map(|p| {
                let one = Placement {
                    spread: s,
                    alpha: placement_alpha / k,
                    pod: Some(&p.name),
                };
                self.rate_test(
                    dispersion,
                    row,
                    statistic.replacen("canary /", &format!("canary pod {} /", p.name), 1),
                    counting,
                    alpha / k,
                    margin,
                    higher_is_worse,
                    Some(one),
                    None,
                )
            })
            .collect();
        let worse = pods
            .iter()
            .filter(|t| t.standing == Standing::Worse)
            .count();
        pods.sort_by(|a, b| {
            a.standing
                .cmp(&b.standing)
                .then(adversity(b).total_cmp(&adversity(a)))
        });
        if worse > 0 && worse < pods.len() {
            pods.insert(1, arm);
        } else {
            pods.insert(0, arm);
        }
        pods
    }
}

/// Canary pod counts the design statement compares.
pub(super) const STATED_PODS: [usize; 3] = [1, 3, 5];
/// How far into the run the power statement looks.
pub(super) const STATED_HORIZON: Duration = Duration::from_secs(30 * 60);

impl SequentialJudge {
    /// One sentence per metric whose pods are spread: the smallest regression the run would
    /// catch with 95 % power by [`STATED_HORIZON`] (margin, placement and sampling together)
    /// with the canary's pods and other counts, the part placement alone hides however long
    /// the run, and how many canary pods would bring that within the margin.
    pub(super) fn pod_statements(&self, findings: &[Finding]) -> Vec<String> {
        let mut out = Vec::new();
        for (m, f) in self.parameters.metrics.iter().zip(findings) {
            let arms = f.tests.iter().filter_map(|t| {
                let p = t.interval.pods.as_ref()?;
                (p.pod.is_none() && p.significant && p.degrees_of_freedom > 0 && p.spread > 0.0)
                    .then_some((p, t.interval.margin))
            });
            // The test that would catch the least regression speaks for the metric.
            let own = |p: &PodEvidence| {
                p.detectable
                    .iter()
                    .find(|d| d.canary_pods == p.canary_pods.max(1))
                    .map_or(f64::INFINITY, |d| d.ratio)
            };
            let Some((p, margin)) = arms.min_by(|a, b| own(a.0).total_cmp(&own(b.0))) else {
                continue;
            };
            let (spread, what) = match p.latency_spread {
                Some(l) => (l, "latency"),
                None => (p.spread, "rate"),
            };
            let n = p.production_pods.max(1) as f64;
            let base = (student_t_quantile(1.0 - p.alpha, p.degrees_of_freedom)
                + normal_quantile(DESIGN_POWER))
                * spread;
            let limit = |k: f64| (base * (1.0 / k + 1.0 / n).sqrt()).exp();
            let pct = |r: f64| format!("+{}%", crate::format::Num((100.0 * (r - 1.0)).round()));
            let k = p.canary_pods.max(1);
            let plural = |c: usize| if c == 1 { "" } else { "s" };
            let mut sentence = format!(
                "{}: production's {} pods differ in {what} by about ±{}%",
                m.name(),
                p.production_pods,
                crate::format::Num((100.0 * (spread.exp() - 1.0)).round()),
            );
            let stated = p.detectable.iter().find(|d| d.canary_pods == k);
            match stated {
                Some(own) => {
                    let others = p.detectable.iter().filter(|d| d.canary_pods != k);
                    let others: Vec<String> = others
                        .map(|d| {
                            let c = d.canary_pods;
                            format!("{} with {c} canary pod{}", pct(d.ratio), plural(c))
                        })
                        .collect();
                    sentence.push_str(&format!(
                        "; with {k} canary pod{}, the smallest {what} regression caught with 95% power within {} minutes at this traffic is about {} ({}); where the pods landed alone hides up to {} however long the run (α {})",
                        plural(k),
                        STATED_HORIZON.as_secs() / 60,
                        pct(own.ratio),
                        others.join(", "),
                        pct(limit(k as f64)),
                        crate::format::Num(p.alpha),
                    ));
                }
                None => sentence.push_str(&format!(
                    ", so with {k} canary pod{} no regression under {} of the {what} can be told from where the pods landed (95% power, α {})",
                    plural(k),
                    pct(limit(k as f64)),
                    crate::format::Num(p.alpha),
                )),
            }
            // The margin is on the statistic's scale, as the design limit is.
            if let Some(d) = p.design_limit.filter(|d| *d > margin.max(1.0 / margin)) {
                let per_unit = d.ln() / (1.0 / k as f64 + 1.0 / n).sqrt();
                let room = margin.max(1.0 / margin).ln();
                let needed =
                    (1..=50).find(|&c| per_unit * (1.0 / c as f64 + 1.0 / n).sqrt() <= room);
                sentence.push_str(&match needed {
                    Some(c) => format!(
                        "; that is beyond the margin: run {c} canary pods or more to judge at the margin"
                    ),
                    None => "; that is beyond the margin even with 50 canary pods: more production pods or a deployed baseline would help".into(),
                });
            }
            out.push(sentence);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, events: f64, traffic: f64) -> PodCount {
        PodCount {
            name: name.into(),
            events,
            traffic,
        }
    }

    #[test]
    fn homogeneous_pods_have_no_spread_and_no_allowance() {
        // Nine pods at 1 % errors, with binomial-sized differences only.
        let counts = [98.0, 103.0, 100.0, 95.0, 104.0, 99.0, 101.0, 97.0, 102.0];
        let production = counts
            .iter()
            .enumerate()
            .map(|(i, &e)| pod(&format!("p{i}"), e, 10_000.0))
            .collect();
        let s = Spread::of(production, vec![pod("c0", 100.0, 10_000.0)], None);
        assert_eq!(s.df, 8);
        assert_eq!(s.tau, 0.0);
        assert_eq!(s.allowance(0.01, false), 0.0);
        assert!(s.excluded.is_empty());
    }

    #[test]
    fn spread_pods_widen_the_margin_and_an_outlier_is_set_aside() {
        // Nine pods ±20 % apart with plenty of traffic, and one broken at × 10.
        let factors = [0.8, 1.2, 1.0, 0.85, 1.15, 1.0, 0.9, 1.1, 10.0];
        let production: Vec<PodCount> = factors
            .iter()
            .enumerate()
            .map(|(i, &f)| pod(&format!("p{i}"), 1000.0 * f, 100_000.0))
            .collect();
        let s = Spread::of(production, vec![pod("c0", 1000.0, 100_000.0)], None);
        assert_eq!(s.excluded_names(), vec!["p8".to_owned()], "the broken pod");
        assert_eq!(s.baseline.len(), 8);
        assert_eq!(s.df, 7);
        assert!(s.tau > 0.1 && s.tau < 0.2, "{}", s.tau);
        // One canary pod against eight: t(0.99, 7) · τ · √(1 + 1/8).
        let want = student_t_quantile(0.99, 7) * s.tau * (1.0f64 + 1.0 / 8.0).sqrt();
        assert!((s.allowance(0.01, false) - want).abs() < 1e-9);
        let e = s.evidence(0.01, None);
        assert_eq!(e.excluded, vec!["p8".to_owned()]);
        assert!(e.design_limit.unwrap() > e.allowance);
    }

    #[test]
    fn fewer_than_three_production_pods_pool_both_arms_only_when_clearly_spread() {
        let two = || vec![pod("p0", 800.0, 100_000.0), pod("p1", 1200.0, 100_000.0)];
        let canary = || vec![pod("c0", 900.0, 100_000.0), pod("c1", 1100.0, 100_000.0)];
        let s = Spread::of(two(), canary(), None);
        assert_eq!(s.df, 2, "±20 % on 1,000 events a pod is clear");
        assert!(s.tau > 0.1 && s.allowance(0.01, false) > 1.0, "{s:?}");
        // Within their noise: unknown, no allowance.
        let near = || vec![pod("p0", 1000.0, 100_000.0), pod("p1", 1030.0, 100_000.0)];
        let s = Spread::of(
            near(),
            vec![pod("c0", 990.0, 100_000.0), pod("c1", 1010.0, 100_000.0)],
            None,
        );
        assert_eq!((s.df, s.allowance(0.01, false)), (0, 0.0));
        assert_eq!(s.design_limit(0.01, false), None);
        // One pod a side: nothing to pool.
        let s = Spread::of(
            vec![pod("p0", 800.0, 100_000.0)],
            vec![pod("c0", 1200.0, 100_000.0)],
            None,
        );
        assert_eq!(s.df, 0);
        let floor = Floor {
            tau: 0.2,
            df: 5,
            latency: None,
            significant: true,
            elasticity: None,
        };
        // A floor known from elsewhere counts where the pods' own spread is unknown.
        let s = Spread::of(near(), vec![pod("c0", 990.0, 100_000.0)], Some(floor));
        assert_eq!((s.tau, s.df), (0.2, 5));
        assert!(s.allowance(0.01, false) > 0.0);
    }
}
