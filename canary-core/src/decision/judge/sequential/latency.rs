//! Latency: the share of requests beyond each histogram bound that brackets a quantile.

use std::collections::BTreeMap;

use super::counts::Counting;
use super::pods::Floor;
use super::power::{BoundShape, Seen};
use super::*;
use crate::observation::{Histogram, Observation};
use crate::policy::{ComparisonStatus, Direction};
use crate::stats::{between_unit_variance, UnitEstimate};

impl SequentialJudge {
    pub(super) fn assess_latency(
        &mut self,
        i: usize,
        histogram: &str,
        quantiles: &[f64],
    ) -> Finding {
        let spans = self.spans();
        let mut finding = empty_finding();
        // Per span: (baseline, canary) histograms of what happened in it.
        let mut diffs: Vec<(Histogram, Histogram)> = Vec::new();
        for [b0, c0, b1, c1] in spans {
            let since = |a: &Observation, z: &Observation| {
                z.histograms
                    .get(histogram)?
                    .since(a.histograms.get(histogram)?)
            };
            match (since(b0, b1), since(c0, c1)) {
                (Some(b), Some(c)) if b.buckets().len() == c.buckets().len() => diffs.push((b, c)),
                _ => {
                    let either = [b0, c0, b1, c1]
                        .iter()
                        .all(|o| o.histograms.contains_key(histogram));
                    if either {
                        finding.fault = Some(format!(
                            "the {histogram} histogram went down or changed its buckets between observations"
                        ));
                    } else {
                        finding.no_data = Some(format!("no {histogram} histogram in both arms"));
                    }
                    return finding;
                }
            }
        }
        let Some(bounds) = diffs
            .first()
            .map(|(b, _)| b.buckets().iter().map(|x| x.0).collect::<Vec<f64>>())
        else {
            finding.no_data = Some("no judged observations yet".into());
            return finding;
        };
        if diffs.iter().any(|(b, c)| {
            [b, c]
                .iter()
                .any(|h| h.buckets().iter().map(|x| x.0).ne(bounds.iter().copied()))
        }) {
            finding.fault = Some(format!("the {histogram} histogram changed its buckets"));
            return finding;
        }
        let name = self.parameters.metrics[i].name().to_owned();
        let critical = self.parameters.metrics[i].critical();
        let margin = self.parameters.metrics[i].margin();
        let finite_bounds = bounds.len() - 1;
        // Two tails at every finite bound, whichever are looked at.
        let alpha = self.alphas[i] / (2.0 * finite_bounds.max(1) as f64);
        let sum = |arm: usize| -> Histogram {
            let mut counts = vec![0.0; bounds.len()];
            for d in &diffs {
                let h = if arm == 0 { &d.0 } else { &d.1 };
                for (k, (_, c)) in h.buckets().iter().enumerate() {
                    counts[k] += c;
                }
            }
            Histogram::new(bounds.iter().copied().zip(counts).collect())
                .expect("sums of valid histograms with the same bounds")
        };
        let (hb, hc) = (sum(0), sum(1));
        let (total_b, total_c) = (hb.total(), hc.total());
        if total_b < self.parameters.min_requests || total_c < self.parameters.min_requests {
            finding.no_data = Some(format!(
                "{} baseline and {} canary requests in the {histogram} histogram since the warm-up; {} per arm are needed",
                crate::format::Num(total_b),
                crate::format::Num(total_c),
                crate::format::Num(self.parameters.min_requests)
            ));
        }
        let pooled: Vec<f64> = hb
            .buckets()
            .iter()
            .zip(hc.buckets())
            .map(|(b, c)| b.1 + c.1)
            .collect();
        let total = total_b + total_c;
        let baseline_cdf: Vec<f64> = hb.buckets()[..finite_bounds].iter().map(|b| b.1).collect();
        // Every bound's dispersion is tracked at every look, so a bound has its history when
        // the quantiles come to lie next to it.
        for k in 0..finite_bounds {
            let slow = true;
            self.track_dispersion(
                &format!("{name}/{k}"),
                Counting::Bound { histogram, k, slow },
            );
        }
        let scale = self.latency_scale(histogram, &bounds, &pooled, total);
        // A bound that brackets two quantiles is tested once.
        let mut done: BTreeMap<String, Vec<Tested>> = BTreeMap::new();
        // Where the pods landed is drawn once and moves every bound by the same shift of the
        // latency scale (`LatencyScale`): exceeding its allowance is one event, whichever bounds
        // are tested, so the placement keeps the metric's whole α.
        let placement_alpha = self.alphas[i];
        // A quantile is cleared only when every bound that brackets it excludes what
        // matters, so a false clearing of one quantile needs all its tests wrong: the
        // promotion risk is split over the quantiles, not over the bounds.
        let beta = self.parameters.promotion_risk / quantiles.len().max(1) as f64;
        for &q in quantiles {
            let row_name = format!("{name}_p{}", quantile_label(q));
            let mut tests = Vec::new();
            if total > 0.0 {
                // The bounds that bracket the pooled q-quantile.
                let upper = (0..finite_bounds).find(|&k| pooled[k] / total >= q);
                let lower = match upper {
                    Some(0) => None,
                    Some(k) => Some(k - 1),
                    None => finite_bounds.checked_sub(1),
                };
                for k in [lower, upper].into_iter().flatten() {
                    let below = pooled[k] / total;
                    let slow = below >= 0.5;
                    let ms = crate::format::Num(bounds[k] * 1000.0);
                    let statistic = if slow {
                        format!("share of requests slower than {ms} ms, canary / baseline")
                    } else {
                        format!("share of requests at most {ms} ms, canary / baseline")
                    };
                    let key = format!("{name}/{k}/{}", if slow { "slow" } else { "fast" });
                    let tested = match done.get(&key) {
                        Some(t) => t.clone(),
                        None => {
                            let mut t = self.pod_aware_tests(
                                &format!("{name}/{k}"),
                                &row_name,
                                &statistic,
                                Counting::Bound { histogram, k, slow },
                                (alpha, placement_alpha, beta),
                                margin,
                                slow,
                                scale.and_then(|sc| sc.at(k, slow)),
                            );
                            let shape = BoundShape::new(
                                &bounds[..finite_bounds],
                                &baseline_cdf,
                                total_b,
                                k,
                                slow,
                            );
                            for x in &mut t {
                                // A bound's power is about latency: without the baseline's
                                // shape there is no answer.
                                match (&mut x.seen, &shape) {
                                    (Some(Seen::Rate { shape: s, .. }), Some(b)) => {
                                        *s = Some(b.clone())
                                    }
                                    _ => x.seen = None,
                                }
                            }
                            t
                        }
                    };
                    let tested: Vec<Tested> = tested
                        .into_iter()
                        .map(|mut t| {
                            t.row.clone_from(&row_name);
                            t
                        })
                        .collect();
                    done.insert(key, tested.clone());
                    tests.extend(tested);
                }
            }
            // The row shows the test nearest to "worse".
            let shown = tests
                .iter()
                .min_by(|a, b| {
                    a.standing
                        .cmp(&b.standing)
                        .then(adversity(b).total_cmp(&adversity(a)))
                })
                .cloned();
            let ms = |h: &Histogram| h.quantile(q).map(|s| s * 1000.0);
            let mut r = match &shown {
                Some(t) => row(
                    &row_name,
                    "ms",
                    Direction::LowerIsBetter,
                    critical,
                    ms(&hb),
                    ms(&hc),
                    t,
                    format!("quantile {q} of the {histogram} histogram's counts since the warm-up (computed by the judge, not PromQL)"),
                ),
                None => no_data_row(&row_name, "ms", critical, "no requests"),
            };
            if shown.is_none() {
                r.status = ComparisonStatus::NoData;
            }
            finding.rows.push(r);
            finding.tests.extend(tests);
        }
        finding
    }
}

pub(super) fn quantile_label(q: f64) -> String {
    let pct = q * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{}", pct.round())
    } else {
        format!("{pct}").replace('.', "_")
    }
}

/// Pods that differ in latency differ at every bound, by how steeply the share beyond it
/// changes with latency: the spread of the pods' latency, measured on all of each pod's
/// requests, carried to each bound by its elasticity. A tail bound has few events per pod, so
/// its own spread estimate is mostly noise.
#[derive(Clone, Copy, Debug)]
pub(super) struct LatencyScale {
    /// The between-pod sd of log latency, and its degrees of freedom.
    tau: f64,
    df: u32,
    /// Each finite bound's elasticities: d ln S / d ln b and d ln F / d ln b (absolute).
    elasticity: [[f64; 2]; MAX_SCALE_BOUNDS],
    bounds: usize,
    significant: bool,
}

/// Histograms with more finite bounds than this get no latency scale.
const MAX_SCALE_BOUNDS: usize = 64;

impl LatencyScale {
    /// The spread floor at bound `k` for the slow (or fast) share.
    pub(super) fn at(&self, k: usize, slow: bool) -> Option<Floor> {
        (k < self.bounds).then(|| Floor {
            tau: self.tau * self.elasticity[k][usize::from(!slow)],
            df: self.df,
            latency: Some(self.tau),
            significant: self.significant,
            elasticity: Some(self.elasticity[k][usize::from(!slow)]),
        })
    }
}

impl SequentialJudge {
    /// The pods' latency scale: each production pod's mean log latency from its histogram
    /// (bucket midpoints on the log scale), divided by how much that grouped mean moves when
    /// the pooled distribution is shifted (so coarse buckets do not shrink the spread), its
    /// between-pod spread by DerSimonian and Laird with outlying pods set aside; and each
    /// bound's elasticity from the pooled histogram (`pooled` cumulative counts, `total`
    /// requests). With fewer than three production pods, both arms' pods pooled when their
    /// spread is clear; `None` without positive bounds or a spread to estimate.
    fn latency_scale(
        &self,
        histogram: &str,
        bounds: &[f64],
        pooled: &[f64],
        total: f64,
    ) -> Option<LatencyScale> {
        let finite = bounds.len().checked_sub(1)?;
        if !(2..=MAX_SCALE_BOUNDS).contains(&finite) || total <= 0.0 || bounds[0] <= 0.0 {
            return None;
        }
        let (b, c) = self.last.as_ref()?;
        if b.instances.is_empty() && c.instances.is_empty() {
            return None;
        }
        let x: Vec<f64> = bounds[..finite].iter().map(|b| b.ln()).collect();
        let cdf: Vec<f64> = pooled[..finite].iter().map(|c| c / total).collect();
        // Bucket midpoints on the log scale; the open buckets as wide as their neighbours.
        let mut mid = Vec::with_capacity(finite + 1);
        mid.push(x[0] - 0.5 * (x[1] - x[0]));
        for k in 1..finite {
            mid.push(0.5 * (x[k - 1] + x[k]));
        }
        mid.push(x[finite - 1] + 0.5 * (x[finite - 1] - x[finite - 2]));
        // The pooled CDF, linear in log latency between the bounds, 0 and 1 a bucket beyond.
        let mut knots: Vec<(f64, f64)> = vec![(x[0] - (x[1] - x[0]), 0.0)];
        knots.extend(x.iter().copied().zip(cdf.iter().copied()));
        knots.push((x[finite - 1] + (x[finite - 1] - x[finite - 2]), 1.0));
        let cdf_at = |v: f64| -> f64 {
            let i = knots.partition_point(|k| k.0 <= v);
            match (i.checked_sub(1).map(|j| knots[j]), knots.get(i)) {
                (None, _) => 0.0,
                (Some(_), None) => 1.0,
                (Some((x0, y0)), Some(&(x1, y1))) => y0 + (y1 - y0) * (v - x0) / (x1 - x0),
            }
        };
        let grouped_mean = |shift: f64| -> f64 {
            let mut previous = 0.0;
            let mut m = 0.0;
            for k in 0..=finite {
                let f = if k < finite {
                    cdf_at(x[k] - shift)
                } else {
                    1.0
                };
                m += (f - previous) * mid[k];
                previous = f;
            }
            m
        };
        let delta = 0.02;
        let gain = (grouped_mean(delta) - grouped_mean(-delta)) / (2.0 * delta);
        if gain < 0.05 {
            return None;
        }
        let shift_of = |counts: Vec<f64>| -> Option<UnitEstimate> {
            let n: f64 = counts.iter().sum();
            if n < 2.0 || counts.len() != mid.len() {
                return None;
            }
            let mean = counts.iter().zip(&mid).map(|(c, m)| c * m).sum::<f64>() / n;
            let var = counts
                .iter()
                .zip(&mid)
                .map(|(c, m)| c * (m - mean).powi(2))
                .sum::<f64>()
                / n;
            let floor = (0.25 * (x[1] - x[0])).powi(2);
            Some(UnitEstimate {
                value: mean / gain,
                variance: var.max(floor) / n / (gain * gain),
            })
        };
        let arm = |i: usize| -> Vec<UnitEstimate> {
            self.pod_histograms(histogram, i)
                .into_iter()
                .filter_map(shift_of)
                .collect()
        };
        let estimates = arm(0);
        let out = super::pods::outliers(&estimates, 0.0);
        let kept: Vec<UnitEstimate> = estimates
            .iter()
            .enumerate()
            .filter(|(i, _)| !out.contains(i))
            .map(|(_, u)| *u)
            .collect();
        let between = if kept.len() >= 3 {
            between_unit_variance(&[kept])?
        } else {
            super::pods::pooled_spread(kept, arm(1))?
        };
        // d ln G / d ln b by differences over the neighbouring bounds that have a finite log.
        let slope = |g: &dyn Fn(f64) -> f64, k: usize| -> f64 {
            let at = |i: usize| {
                let v = g(cdf[i]);
                (v > 0.0).then(|| (x[i], v.ln()))
            };
            let lo = (k > 0).then(|| at(k - 1)).flatten().or_else(|| at(k));
            let hi = (k + 1 < finite)
                .then(|| at(k + 1))
                .flatten()
                .or_else(|| at(k));
            match (lo, hi) {
                (Some((x0, y0)), Some((x1, y1))) if x1 > x0 => ((y1 - y0) / (x1 - x0)).abs(),
                _ => 0.0,
            }
        };
        let survival = |f: f64| 1.0 - f;
        let within = |f: f64| f;
        let mut elasticity = [[0.0; 2]; MAX_SCALE_BOUNDS];
        for (k, e) in elasticity.iter_mut().enumerate().take(finite) {
            *e = [slope(&survival, k), slope(&within, k)];
        }
        Some(LatencyScale {
            tau: between.tau2.sqrt(),
            df: between.df,
            elasticity,
            bounds: finite,
            significant: between.significant(0.05),
        })
    }

    /// Each pod's histogram of what it served over the judged spans (counts per bucket, not
    /// cumulative), in one arm (0 production, 1 the canary).
    fn pod_histograms(&self, histogram: &str, arm: usize) -> Vec<Vec<f64>> {
        let mut by_pod: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let spans = self.spans();
        for span in &spans {
            let (a, z) = (span[arm], span[arm + 2]);
            for (name, end) in &z.instances {
                let Some(h) = end.histograms.get(histogram) else {
                    continue;
                };
                let h = match a
                    .instances
                    .get(name)
                    .and_then(|p| p.histograms.get(histogram))
                {
                    Some(start) => match h.since(start) {
                        Some(d) => d,
                        None => continue,
                    },
                    None => h.clone(),
                };
                let entry = by_pod
                    .entry(name.as_str())
                    .or_insert_with(|| vec![0.0; h.buckets().len()]);
                if entry.len() != h.buckets().len() {
                    continue;
                }
                let mut previous = 0.0;
                for (slot, &(_, cumulative)) in entry.iter_mut().zip(h.buckets()) {
                    *slot += cumulative - previous;
                    previous = cumulative;
                }
            }
        }
        by_pod.into_values().collect()
    }
}
