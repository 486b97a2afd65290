//! Count tests: a rate ratio per count, and the dispersion that widens it.

use super::parameters::Detection;
use super::pods::{Spread, STATED_HORIZON, STATED_PODS};
use super::*;
use crate::observation::{names, Observation};
use crate::policy::{AnytimeInterval, Detectable, Direction};
use crate::stats::anytime::{RateRatio, Segment};

/// What a rate test counts between two observations of both arms.
#[derive(Clone, Copy, Debug)]
pub(super) enum Counting<'a> {
    /// Events of one counter per events of another.
    Count { events: &'a str, per: &'a str },
    /// Requests beyond (`slow`) or within bucket `k` of a histogram, per request.
    Bound {
        histogram: &'a str,
        k: usize,
        slow: bool,
    },
}

impl Counting<'_> {
    /// `(events, traffic)` of one arm from `a` to `z`, from zero when `a` is `None` (an
    /// instance that started in between); `None` where a series is missing or changed.
    pub(super) fn of_arm(&self, a: Option<&Observation>, z: &Observation) -> Option<(f64, f64)> {
        match *self {
            Counting::Count { events, per } => {
                let start = |name: &str| a.map_or(Some(0.0), |a| a.counters.get(name).copied());
                Some((
                    z.counters.get(events)? - start(events)?,
                    z.counters.get(per)? - start(per)?,
                ))
            }
            Counting::Bound { histogram, k, slow } => {
                // Only bucket `k` and the total matter: read them without building the
                // difference (this runs for every pod and bound at every look).
                let end = z.histograms.get(histogram)?.buckets();
                let (bound, within_end) = *end.get(k)?;
                let total_end = end.last()?.1;
                let (within_start, total_start) = match a {
                    Some(a) => {
                        let start = a.histograms.get(histogram)?.buckets();
                        let (b, w) = *start.get(k)?;
                        if start.len() != end.len() || b != bound {
                            return None;
                        }
                        (w, start.last()?.1)
                    }
                    None => (0.0, 0.0),
                };
                let (within, total) = (within_end - within_start, total_end - total_start);
                Some((if slow { total - within } else { within }, total))
            }
        }
    }

    /// `[baseline events, canary events, baseline traffic, canary traffic]` from `a` to `z`
    /// (each a (baseline, canary) pair); `None` where a series is missing or went down.
    pub(super) fn counts(
        &self,
        a: (&Observation, &Observation),
        z: (&Observation, &Observation),
    ) -> Option<[f64; 4]> {
        let (eb, tb) = self.of_arm(Some(a.0), z.0)?;
        let (ec, tc) = self.of_arm(Some(a.1), z.1)?;
        [eb, ec, tb, tc]
            .iter()
            .all(|v| *v >= 0.0)
            .then_some([eb, ec, tb, tc])
    }
}

/// How a rate test takes the pods into account: production's pods set aside, one canary pod
/// tested alone, and the placement allowance at `alpha`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Placement<'a> {
    pub(super) spread: &'a Spread,
    pub(super) alpha: f64,
    pub(super) pod: Option<&'a str>,
}

/// One arm test's power question: its detection without pods, the placement allowance's level
/// and degrees of freedom, each canary pod count with its placement sd, and, for a latency
/// bound, the elasticity that carries the answer to latency itself.
#[derive(Clone, Debug)]
pub(super) struct PowerQuestion {
    detection: Detection,
    placement_alpha: f64,
    df: u32,
    pods: Vec<(usize, f64)>,
    elasticity: Option<f64>,
}

impl PowerQuestion {
    /// The smallest regression caught with 95 % power, per canary pod count (the canary's own
    /// first): the margin, the placement allowance, the placement's own noise and the
    /// interval's sampling width together. A count for which nothing is caught is left out.
    pub(super) fn answer(&self) -> Vec<Detectable> {
        // Only here, not at every look: the quantile is a bisection.
        let t = crate::stats::student_t_quantile(1.0 - self.placement_alpha, self.df);
        self.pods
            .iter()
            .filter_map(|&(canary_pods, sd)| {
                let d = Detection {
                    edge: self.detection.edge + t * sd,
                    placement_sd: sd,
                    ..self.detection
                }
                .log_ratio()?;
                let on_scale = self.elasticity.map_or(d, |e| d / e);
                Some(Detectable {
                    canary_pods,
                    ratio: on_scale.exp(),
                })
            })
            .collect()
    }
}

/// Each arm's expected events at a ratio of 1, given the segments' totals and splits.
fn expected_at_parity(segments: &[Segment]) -> [f64; 2] {
    let (mut b, mut c) = (0.0, 0.0);
    for seg in segments {
        let m = seg.baseline + seg.canary;
        b += m * (1.0 - seg.canary_share);
        c += m * seg.canary_share;
    }
    [b, c]
}

/// The dispersion estimate is shrunk towards `DISPERSION_PRIOR` (independent events) with the
/// weight of `DISPERSION_PRIOR_DF` pseudo-terms, so that a few residuals cannot swing it.
pub(super) const DISPERSION_PRIOR: f64 = 1.0;
pub(super) const DISPERSION_PRIOR_DF: f64 = 4.0;

/// Pearson residuals of one test's counts, per scrape and per batch of scrapes.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Dispersion {
    /// Σ r², Σ r_k r_(k−1), terms, and the last residual, per scrape.
    scrape: [f64; 4],
    /// Σ r² and terms, per batch.
    batch: [f64; 2],
    /// The estimate (ln θ) at the previous look and at the batch's start: residuals are taken
    /// against what was known before their data, so that a fit cannot hide its own noise.
    before: [Option<f64>; 2],
}

impl Dispersion {
    pub(super) fn shrunk(x2: f64, terms: f64) -> f64 {
        let df = (terms - 1.0).max(0.0);
        (x2.max(0.0) + DISPERSION_PRIOR * DISPERSION_PRIOR_DF) / (df + DISPERSION_PRIOR_DF)
    }

    /// The long-run dispersion. Per scrape: the residuals' variance `v`, shrunk towards 1,
    /// stretched by its persistence: the residuals' lag-1 autocorrelation `ρ` read as an AR(1)
    /// excess with coefficient `a = ρ / (1 − 1/v)`, whose sum has `(1 + a) / (1 − a)` times its
    /// variance (and at least the lag-1 estimate `v + 2ρv`). Per batch: the batch residuals'
    /// variance, which also sees noise that lasts longer. The per-scrape estimate counts only
    /// once its lag-1 long-run χ² is clearly above its degrees of freedom (three standard
    /// deviations), so that independent events are not penalised by the estimate's own
    /// noise; the larger of the two, never below 1.
    pub(super) fn factor(&self) -> f64 {
        let [x2, lagged, terms, _] = self.scrape;
        let df = terms - 1.0;
        let long_run = x2 + 2.0 * lagged.max(0.0);
        let per_scrape = if df >= 1.0 && long_run - df > 3.0 * (2.0 * df).sqrt() {
            let v = Self::shrunk(x2, terms).max(1.0);
            let excess = (1.0 - 1.0 / v).max(1e-9);
            let a = ((lagged / x2).max(0.0) / excess).min(0.9);
            (1.0 + (v - 1.0) * (1.0 + a) / (1.0 - a)).max(Self::shrunk(long_run, terms))
        } else {
            1.0
        };
        let [b2, batches] = self.batch;
        let per_batch =
            if batches >= 2.0 && b2 - (batches - 1.0) > 2.0 * (2.0 * (batches - 1.0)).sqrt() {
                Self::shrunk(b2, batches)
            } else {
                1.0
            };
        per_scrape.max(per_batch).max(1.0)
    }
}

impl SequentialJudge {
    /// One segment per step of what `counting` counts, each with the traffic split it had.
    pub(super) fn segments(&self, counting: Counting<'_>) -> Vec<Segment> {
        self.segments_with(counting, &[], None)
    }

    /// [`segments`](Self::segments) with production's pods `excluded` taken out of the
    /// baseline, and the canary replaced by its pod `pod` alone, if given.
    pub(super) fn segments_with(
        &self,
        counting: Counting<'_>,
        excluded: &[String],
        pod: Option<&str>,
    ) -> Vec<Segment> {
        let spans = self.spans_for(counting);
        spans
            .into_iter()
            .filter_map(|[b0, c0, b1, c1]| {
                let [mut eb, mut ec, mut tb, mut tc] = counting.counts((b0, c0), (b1, c1))?;
                for name in excluded {
                    if let Some((e, t)) = b1
                        .instances
                        .get(name)
                        .and_then(|z| counting.of_arm(b0.instances.get(name), z))
                    {
                        (eb, tb) = ((eb - e).max(0.0), (tb - t).max(0.0));
                    }
                }
                if let Some(pod) = pod {
                    (ec, tc) = counting.of_arm(c0.instances.get(pod), c1.instances.get(pod)?)?;
                }
                (tb > 0.0 && tc > 0.0 && ec >= 0.0).then(|| Segment {
                    baseline: eb,
                    canary: ec,
                    canary_share: tc / (tb + tc),
                })
            })
            .collect()
    }

    /// Adds this look's (and, at a batch's end, this batch's) Pearson residual of what
    /// `counting` counts to the dispersion kept under `key`. Residuals are taken against the
    /// estimate before the look (half an event added to each arm, so that it stays finite),
    /// so that a fit cannot hide its own noise.
    pub(super) fn track_dispersion(&mut self, key: &str, counting: Counting<'_>) {
        let segments = self.segments(counting);
        let estimate = segments.last().map(|last| {
            let (b, c) = segments
                .iter()
                .fold((0.5, 0.5), |(b, c), s| (b + s.baseline, c + s.canary));
            let share = last.canary_share;
            (c / b).ln() - (share / (1.0 - share)).ln()
        });
        let previous = self.previous.clone();
        self.add_term(key, 0, previous.as_ref(), counting, estimate);
        if self.batch_looks >= self.parameters.batch_scrapes {
            let start = self.batch_start.clone();
            self.add_term(key, 1, start.as_ref(), counting, estimate);
        }
    }

    /// Runs a rate-ratio test on what `counting` counts, its counts divided by the dispersion
    /// kept under `dispersion`. Worse is `θ > 1 + margin` when `higher_is_worse`, `θ < 1 /
    /// (1 + margin)` otherwise; with pods, beyond the margin by more than their placement
    /// allows (and within it by as much), against a baseline without production's outliers.
    /// With `beta`, it also says what its counts exclude at that level ([`Tested::reach`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rate_test(
        &mut self,
        dispersion: &str,
        row: &str,
        statistic: String,
        counting: Counting<'_>,
        alpha: f64,
        margin: f64,
        higher_is_worse: bool,
        placement: Option<Placement<'_>>,
        beta: Option<f64>,
    ) -> Tested {
        let phi = self.dispersion_factor(dispersion);
        let (excluded, pod) =
            placement.map_or((Vec::new(), None), |p| (p.spread.excluded_names(), p.pod));
        let allowance = placement.map_or(0.0, |p| p.spread.allowance(p.alpha, p.pod.is_some()));
        let scaled: Vec<Segment> = self
            .segments_with(counting, &excluded, pod)
            .iter()
            .map(|s| Segment {
                baseline: s.baseline / phi,
                canary: s.canary / phi,
                ..*s
            })
            .collect();
        let r = RateRatio::new(&scaled, self.parameters.prior_concentration);
        let (lo, hi) = r.interval(alpha);
        let edge = (1.0 + margin).ln();
        let standing = if higher_is_worse {
            if lo > edge + allowance {
                Standing::Worse
            } else if hi < edge - allowance {
                Standing::Within
            } else {
                Standing::Open
            }
        } else if hi < -edge - allowance {
            Standing::Worse
        } else if lo > -edge + allowance {
            Standing::Within
        } else {
            Standing::Open
        };
        // The worst regression (a log ratio, positive in the worse direction) the counts do
        // not exclude at level β, however often judged: asked only once a step could promote.
        let reach = beta
            .filter(|b| *b > 0.0 && *b < 1.0)
            .filter(|_| self.step_elapsed() >= self.parameters.min_duration)
            .map(|b| {
                let (lo_b, hi_b) = r.interval(b);
                if higher_is_worse {
                    hi_b + allowance
                } else {
                    allowance - lo_b
                }
            })
            .filter(|v| v.is_finite());
        let finite = |v: f64| v.is_finite().then(|| v.exp());
        // Counts are judged from the run's start, other tests from the warm-up's end.
        let evidence = (
            self.span_seconds(counting),
            match counting {
                Counting::Count { .. } => Duration::ZERO,
                Counting::Bound { .. } => self.parameters.warmup,
            },
        );
        let power = placement
            .filter(|p| p.pod.is_none())
            .and_then(|p| self.power_question(&scaled, evidence, alpha, edge, higher_is_worse, &p));
        let seen = match placement {
            Some(p) if p.pod.is_some() => None,
            _ => {
                let [b, c] = expected_at_parity(&scaled);
                Some(super::power::Seen::Rate {
                    detection: Detection {
                        alpha,
                        edge: edge + allowance,
                        k: self.parameters.prior_concentration,
                        baseline_events: b,
                        canary_events: c,
                        placement_sd: placement.map_or(0.0, |p| p.spread.placement_sd_for(None)),
                        higher_is_worse,
                    },
                    shape: None,
                })
            }
        };
        Tested {
            row: row.to_owned(),
            standing,
            power,
            seen,
            beyond_matters: false,
            reach,
            floor_excluded: None,
            interval: AnytimeInterval {
                statistic,
                estimate: r.log_estimate().and_then(finite),
                lower: finite(lo),
                upper: finite(hi),
                margin: if higher_is_worse {
                    1.0 + margin
                } else {
                    1.0 / (1.0 + margin)
                },
                confidence: 1.0 - alpha,
                pods: placement.map(|p| p.spread.evidence(p.alpha, p.pod)),
                caught: None,
            },
        }
    }

    /// What it takes for the arm's test to catch a regression by [`STATED_HORIZON`] into
    /// the run, at the traffic (and dispersion) seen so far; `None` when the spread is unknown
    /// or nil, or nothing has been judged yet. Answered only for an evaluation
    /// ([`PowerQuestion::answer`]): a search per pod count is too dear for every look.
    fn power_question(
        &self,
        scaled: &[Segment],
        (judged, from): (f64, Duration),
        alpha: f64,
        edge: f64,
        higher_is_worse: bool,
        p: &Placement<'_>,
    ) -> Option<PowerQuestion> {
        let s = p.spread;
        if s.df == 0 || s.tau <= 0.0 || judged <= 0.0 {
            return None;
        }
        let horizon = STATED_HORIZON.saturating_sub(from);
        let scale = horizon.as_secs_f64() / judged;
        let [b, c] = expected_at_parity(scaled);
        let own = s.canary.len().max(1);
        // The canary's own pods as they are weighted, then others as equal pods.
        let pods = std::iter::once((own, s.placement_sd_for(None)))
            .chain(
                STATED_PODS
                    .iter()
                    .filter(|&&k| k != own)
                    .map(|&k| (k, s.placement_sd_for(Some(k)))),
            )
            .collect();
        Some(PowerQuestion {
            detection: Detection {
                alpha,
                edge,
                k: self.parameters.prior_concentration,
                baseline_events: b * scale,
                canary_events: c * scale,
                placement_sd: 0.0,
                higher_is_worse,
            },
            placement_alpha: p.alpha,
            df: s.df,
            pods,
            elasticity: s.elasticity.filter(|e| *e > 0.0),
        })
    }

    /// How overdispersed a test's counts are: Pearson's χ² of the canary's share per scrape
    /// and per batch of scrapes against the share its current estimate predicts, per degree of
    /// freedom, each shrunk towards 1; the larger, never below 1. Independent requests give
    /// about 1; noise that moves one arm and not the other (per-arm autocorrelation,
    /// clustering) gives more, and the test then counts each event as `1/φ` of one
    /// (quasi-likelihood). Per scrape reacts within minutes; per batch also sees the part of
    /// the noise that lasts longer than a scrape.
    pub(super) fn dispersion_factor(&self, key: &str) -> f64 {
        self.dispersion.get(key).map_or(1.0, Dispersion::factor)
    }

    /// Adds what happened between `from` and the latest pair to a test's χ² (`which`: 0 per
    /// scrape, 1 per batch).
    pub(super) fn add_term(
        &mut self,
        key: &str,
        which: usize,
        from: Option<&(Observation, Observation)>,
        counting: Counting<'_>,
        estimate: Option<f64>,
    ) {
        let entry = self.dispersion.entry(key.to_owned()).or_default();
        let before = std::mem::replace(&mut entry.before[which], estimate);
        let (Some((b0, c0)), Some((b1, c1)), Some(d)) = (from, &self.last, before) else {
            return;
        };
        let Some([eb, ec, tb, tc]) = counting.counts((b0, c0), (b1, c1)) else {
            return;
        };
        let m = eb + ec;
        if m <= 0.0 || tb <= 0.0 || tc <= 0.0 {
            return;
        }
        let p = Segment {
            baseline: eb,
            canary: ec,
            canary_share: tc / (tb + tc),
        }
        .canary_probability(d.clamp(-20.0, 20.0));
        let r = (ec - m * p) / (m * p * (1.0 - p)).max(1e-12).sqrt();
        if which == 0 {
            let [x2, lagged, terms, last] = &mut entry.scrape;
            if *terms > 0.0 {
                *lagged += r * *last;
            }
            *x2 += r * r;
            *terms += 1.0;
            *last = r;
        } else {
            entry.batch[0] += r * r;
            entry.batch[1] += 1.0;
        }
    }

    /// The spans `counting` is judged over: counts from the run's start, bounds after the
    /// warm-up.
    fn spans_for(&self, counting: Counting<'_>) -> Vec<[&Observation; 4]> {
        match counting {
            Counting::Count { .. } => self.count_spans(),
            Counting::Bound { .. } => self.spans(),
        }
    }

    /// Seconds of evidence the spans of `counting` cover.
    pub(super) fn span_seconds(&self, counting: Counting<'_>) -> f64 {
        let spans = self.spans_for(counting);
        spans
            .iter()
            .map(|[_, c0, _, c1]| (c1.at - c0.at).num_milliseconds() as f64 / 1000.0)
            .sum()
    }

    pub(super) fn assess_count(&mut self, i: usize, events: &str, per: &str) -> Finding {
        let spans = self.count_spans();
        let mut finding = empty_finding();
        let (mut traffic_b, mut traffic_c) = (0.0, 0.0);
        let (mut events_b, mut events_c) = (0.0, 0.0);
        for [b0, c0, b1, c1] in spans {
            let delta = |a: &Observation, z: &Observation, name: &str| -> Option<f64> {
                Some(z.counters.get(name)? - a.counters.get(name)?)
            };
            let (Some(tb), Some(tc)) = (delta(b0, b1, per), delta(c0, c1, per)) else {
                finding.no_data = Some(format!("no {per} counter in both arms"));
                return finding;
            };
            let (Some(eb), Some(ec)) = (delta(b0, b1, events), delta(c0, c1, events)) else {
                finding.no_data = Some(format!("no {events} counter in both arms"));
                return finding;
            };
            if [tb, tc, eb, ec].iter().any(|v| *v < 0.0) {
                finding.fault = Some(format!(
                    "a counter ({events} or {per}) went down between observations: a reset the source did not correct"
                ));
                return finding;
            }
            (traffic_b, traffic_c) = (traffic_b + tb, traffic_c + tc);
            (events_b, events_c) = (events_b + eb, events_c + ec);
        }
        let name = self.parameters.metrics[i].name().to_owned();
        let (alpha, margin) = (self.alphas[i], self.parameters.metrics[i].margin());
        if traffic_b < self.parameters.min_requests || traffic_c < self.parameters.min_requests {
            finding.no_data = Some(format!(
                "{} baseline and {} canary {per} since the run started; {} per arm are needed",
                crate::format::Num(traffic_b),
                crate::format::Num(traffic_c),
                crate::format::Num(self.parameters.min_requests)
            ));
        }
        self.track_dispersion(&name, Counting::Count { events, per });
        let mut tests = self.pod_aware_tests(
            &name,
            &name,
            &format!("{events} per {per}, canary / baseline"),
            Counting::Count { events, per },
            (alpha, alpha, self.parameters.promotion_risk),
            margin,
            true,
            None,
        );
        // A rate below the floor is compared against the floor (the policy's rule): a canary
        // whose own rate is surely below what matters times the floor is not worse than what
        // matters, whatever production's (a service with no errors at all).
        let (floor, phi) = (self.parameters.count_floor, self.dispersion_factor(&name));
        if self.step_elapsed() >= self.parameters.min_duration
            && floor_excludes(
                events_c / phi,
                traffic_c / phi,
                self.parameters.matters_for(i) * floor,
                self.parameters.promotion_risk,
            )
        {
            tests[0].floor_excluded = Some(floor);
        }
        let tested = tests[0].clone();
        let rate = |e: f64, t: f64| (t > 0.0).then(|| e / t * 100.0);
        finding.rows.push(row(
            &name,
            if per == names::REQUESTS { "%" } else { "" },
            Direction::LowerIsBetter,
            self.parameters.metrics[i].critical(),
            rate(events_b, traffic_b),
            rate(events_c, traffic_c),
            &tested,
            format!("{events} ÷ {per}, each counted from the run's start (computed by the judge, not PromQL)"),
        ));
        finding.tests.extend(tests);
        finding
    }
}

/// Whether `events` in `traffic` show, at level `beta` however often it is asked, that the rate
/// is below `rate`: Ville's inequality on the likelihood ratio of a Poisson process at half
/// that rate against it, `2^−E · e^(rate·N/2) ≥ 1/β` (with no events, `N ≥ 2 ln(1/β) / rate`
/// of traffic). Against any higher rate the ratio is larger while `E/N` is below `rate`, so it
/// holds for the whole hypothesis "at least `rate`".
pub(super) fn floor_excludes(events: f64, traffic: f64, rate: f64, beta: f64) -> bool {
    if !(rate > 0.0 && traffic > 0.0 && events >= 0.0 && beta > 0.0) || events / traffic >= rate {
        return false;
    }
    -events * std::f64::consts::LN_2 + rate * traffic / 2.0 >= (1.0 / beta).ln()
}

#[cfg(test)]
mod tests {
    use super::floor_excludes;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_floor_exclusion_is_monotone_and_never_claims_a_rate_at_or_above_it(
            events in 0.0f64..500.0,
            traffic in 1.0f64..1e6,
            more in 0.0f64..1e5,
            rate in 1e-4f64..0.5,
            beta in 1e-4f64..0.5,
        ) {
            let now = floor_excludes(events, traffic, rate, beta);
            if events / traffic >= rate {
                prop_assert!(!now);
            }
            // More traffic with the same events only strengthens it; more events weaken it.
            if now {
                prop_assert!(floor_excludes(events, traffic + more, rate, beta));
            } else {
                prop_assert!(!floor_excludes(events + more, traffic, rate, beta));
            }
            // A smaller risk asks for more.
            if floor_excludes(events, traffic, rate, beta / 2.0) {
                prop_assert!(now);
            }
        }
    }

    #[test]
    fn a_rate_surely_below_the_floor_is_excluded_and_nothing_else() {
        // No errors: ln 20 × 2 / 1 % = 599 requests are needed.
        assert!(!floor_excludes(0.0, 590.0, 0.01, 0.05));
        assert!(floor_excludes(0.0, 610.0, 0.01, 0.05));
        // A rate at or above the bound is never excluded, however much traffic.
        assert!(!floor_excludes(1e4, 1e6, 0.01, 0.05));
        assert!(!floor_excludes(2e4, 1e6, 0.01, 0.05));
        // Well below it, with enough traffic, it is.
        assert!(floor_excludes(20.0, 1e4, 0.01, 0.05));
        assert!(!floor_excludes(f64::NAN, 1e4, 0.01, 0.05));
    }

    #[test]
    fn the_floor_exclusion_is_anytime_valid_on_poisson_counts() {
        // A rate exactly at the bound, looked at after every request for 20,000 requests:
        // excluded on at most β of 2,000 runs (with slack for the estimate's own noise).
        let (rate, beta) = (0.01, 0.05);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut wrong = 0;
        for _ in 0..2000 {
            let mut events = 0.0;
            for n in 1..=20_000 {
                if rng.f64() < rate {
                    events += 1.0;
                }
                if floor_excludes(events, f64::from(n), rate, beta) {
                    wrong += 1;
                    break;
                }
            }
        }
        assert!(wrong <= 130, "{wrong} of 2000");
    }
}
