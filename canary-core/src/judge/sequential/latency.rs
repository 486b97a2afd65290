//! Latency: the share of requests beyond each histogram bound that brackets a quantile.

use std::collections::BTreeMap;

use super::*;
use crate::observation::{Histogram, Observation};
use crate::policy::{ComparisonStatus, Direction};

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
        // Every bound's dispersion is tracked at every look, so a bound has its history when
        // the quantiles come to lie next to it.
        for k in 0..finite_bounds {
            let slow = true;
            self.track_dispersion(
                &format!("{name}/{k}"),
                Counting::Bound { histogram, k, slow },
            );
        }
        // A bound that brackets two quantiles is tested once.
        let mut done: BTreeMap<String, Tested> = BTreeMap::new();
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
                    let mut tested = match done.get(&key) {
                        Some(t) => t.clone(),
                        None => self.rate_test(
                            &format!("{name}/{k}"),
                            &row_name,
                            statistic,
                            Counting::Bound { histogram, k, slow },
                            alpha,
                            margin,
                            slow,
                        ),
                    };
                    tested.row.clone_from(&row_name);
                    done.insert(key, tested.clone());
                    tests.push(tested);
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
                    format!("histogram_quantile({q}) of the {histogram} histogram's increase since the warm-up"),
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
