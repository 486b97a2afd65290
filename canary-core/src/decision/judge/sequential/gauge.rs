//! Gauges: the paired difference per scrape, with batch means for its long-run variance.

use super::*;
use crate::policy::{AnytimeInterval, Direction};
use crate::stats::anytime::normal_mixture_radius;

/// A gauge's paired differences: their running sum and the batch means' running variance.
#[derive(Clone, Debug, Default)]
pub(super) struct Paired {
    n: f64,
    sum: f64,
    sum_baseline: f64,
    sum_canary: f64,
    batch_sum: f64,
    batch_n: u32,
    batches: f64,
    batch_mean: f64,
    batch_m2: f64,
}

impl Paired {
    pub(super) fn push(&mut self, baseline: f64, canary: f64, batch: u32) {
        let d = canary - baseline;
        self.n += 1.0;
        self.sum += d;
        self.sum_baseline += baseline;
        self.sum_canary += canary;
        self.batch_sum += d;
        self.batch_n += 1;
        if self.batch_n == batch {
            // Welford's update over the batch means.
            let x = self.batch_sum / f64::from(batch);
            self.batches += 1.0;
            let delta = x - self.batch_mean;
            self.batch_mean += delta / self.batches;
            self.batch_m2 += delta * (x - self.batch_mean);
            self.batch_sum = 0.0;
            self.batch_n = 0;
        }
    }

    /// `(estimate, lower, upper)` of the mean difference, or `None` before two batches.
    pub(super) fn interval(&self, alpha: f64, batch: u32, min_sd: f64) -> Option<(f64, f64, f64)> {
        let (r, _) = self.precision(alpha, batch, min_sd)?;
        let mean = self.sum / self.n;
        Some((mean, mean - r, mean + r))
    }

    /// The confidence sequence's radius and the mean's standard error, or `None` before two
    /// batches.
    pub(super) fn precision(&self, alpha: f64, batch: u32, min_sd: f64) -> Option<(f64, f64)> {
        if self.batches < 2.0 {
            return None;
        }
        let batch = f64::from(batch);
        // The long-run variance per scrape: batch size times the batch means' variance.
        let lrv = (batch * self.batch_m2 / (self.batches - 1.0)).max(min_sd * min_sd);
        let rho = lrv * 4.0 * batch;
        let r = normal_mixture_radius(self.n * lrv, rho, alpha) / self.n;
        Some((r, (lrv / self.n).sqrt()))
    }
}

impl SequentialJudge {
    pub(super) fn assess_gauge(&mut self, i: usize, direction: Direction) -> Finding {
        let mut finding = empty_finding();
        let metric = self.parameters.metrics[i].clone();
        let (batch, min_sd) = (self.parameters.batch_scrapes, self.parameters.gauge_min_sd);
        let name = metric.name().to_owned();
        let margin = metric.margin();
        let alpha = self.alphas[i];
        let paired = self.paired[i].clone();
        let Some((mean, lo, hi)) = paired.interval(alpha, batch, min_sd) else {
            finding.waiting = paired.n > 0.0;
            finding.no_data = Some(format!(
                "{} paired scrapes; two batches of {batch} are needed",
                paired.n
            ));
            finding.rows.push(pending_row(
                &name,
                "",
                metric.critical(),
                &format!(
                    "{} paired scrapes so far; two batches of {batch} are needed",
                    paired.n
                ),
            ));
            return finding;
        };
        let standing = match direction {
            Direction::HigherIsBetter if hi < -margin => Standing::Worse,
            Direction::HigherIsBetter if lo > -margin => Standing::Within,
            Direction::LowerIsBetter if lo > margin => Standing::Worse,
            Direction::LowerIsBetter if hi < margin => Standing::Within,
            _ => Standing::Open,
        };
        let baseline_mean = paired.sum_baseline / paired.n;
        let seen =
            paired
                .precision(alpha, batch, min_sd)
                .map(|(r, se)| super::power::Seen::Gauge {
                    needed: margin + r + super::power::Z_POWER * se,
                    margin,
                    baseline_mean,
                    higher_is_better: direction == Direction::HigherIsBetter,
                });
        // What matters is a ratio of production's mean: the difference it allows.
        let allowed = (self.parameters.matters_for(i) - 1.0) * baseline_mean;
        let beyond_matters = baseline_mean > 0.0
            && match direction {
                Direction::HigherIsBetter => hi < allowed,
                Direction::LowerIsBetter => lo > allowed,
            };
        let tested = Tested {
            row: name.clone(),
            standing,
            power: None,
            seen,
            beyond_matters,
            reach: None,
            floor_excluded: None,
            interval: AnytimeInterval {
                statistic: "mean paired difference per scrape, canary − baseline".into(),
                estimate: Some(mean),
                lower: Some(lo),
                upper: Some(hi),
                margin: match direction {
                    Direction::HigherIsBetter => -margin,
                    Direction::LowerIsBetter => margin,
                },
                confidence: 1.0 - alpha,
                pods: None,
                caught: None,
            },
        };
        let (b, c) = (
            Some(paired.sum_baseline / paired.n),
            Some(paired.sum_canary / paired.n),
        );
        let mut r = row(
            &name,
            "",
            direction,
            metric.critical(),
            b,
            c,
            &tested,
            "the gauge's paired difference per scrape since the warm-up (computed by the judge, not PromQL)".into(),
        );
        // The ratio of a difference test says little; the interval carries the evidence.
        r.ratio = None;
        r.change_percent = None;
        finding.rows.push(r);
        finding.tests.push(tested);
        finding
    }
}
