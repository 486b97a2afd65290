//! Synthetic regressions applied to a pseudo-canary's own evidence.
//!
//! An injection changes each pod's increments between two scrapes, then the increments are
//! added up again, so counters stay counters:
//!
//! - **Latency** (`latency+25%`, `latency*1.25`): every request is made slower by the factor.
//!   The pod's histogram over the whole run gives the distribution's shape within each bucket
//!   (a monotone cubic through the cumulative shares at the bounds, in probit space over log
//!   latency, where a lognormal is a straight line). From it, each bucket's share that a shift
//!   pushes past each bound is known, and each scrape's increments are moved by those shares,
//!   so the scrape's own noise is kept. Within a bucket the shape is the curve's, not the
//!   truth's; a distribution far from smooth (e.g. two narrow modes within one bucket) is
//!   shifted less faithfully. Requests already in `+Inf` stay there (their latency is
//!   unknown).
//! - **Tail only** (`tail+20%`): as the simulator's tail effect, requests above the scrape's
//!   p90 are slowed progressively, those at and beyond its p99 by the factor; median and p90
//!   stay.
//! - **Errors** (`errors*2`, `errors+1%`): failed requests multiplied, or a share of requests
//!   added as failures; never more than the requests. Multiplying zero errors leaves zero: a
//!   service with no errors needs the `+` form.
//! - **Confidence** (`confidence-0.05`, `confidence*0.9`): the arm's gauge lowered, within
//!   [0, 1].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What an injection changes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Change {
    /// Every request's latency × factor.
    Latency {
        /// The factor (1.25 for + 25 %).
        factor: f64,
    },
    /// Requests above p90 slowed progressively to × factor at p99.
    Tail {
        /// The factor at and beyond p99.
        factor: f64,
    },
    /// Failed requests × factor.
    ErrorsTimes {
        /// The factor.
        factor: f64,
    },
    /// A share of requests added as failures.
    ErrorsPlus {
        /// The share (0.01 for 1 %).
        share: f64,
    },
    /// The confidence gauge minus a value.
    ConfidenceMinus {
        /// What is subtracted.
        delta: f64,
    },
    /// The confidence gauge × factor.
    ConfidenceTimes {
        /// The factor.
        factor: f64,
    },
}

/// One synthetic regression, as written on the command line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Injection {
    /// Its text, e.g. `latency+25%`.
    pub label: String,
    /// What it does.
    pub change: Change,
}

impl Injection {
    /// Parses `latency+25%`, `latency*1.25`, `tail+20%`, `errors*2`, `errors+1%`,
    /// `confidence-0.05` or `confidence*0.9`; the error says what is accepted.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let bad = |why: &str| Error::InvalidConfig {
            field: "inject".into(),
            reason: format!(
                "{t:?}: {why} (write latency+25%, latency*1.25, tail+20%, errors*2, errors+1%, \
                 confidence-0.05 or confidence*0.9)"
            ),
        };
        let split = t.find(['+', '*', '-']).ok_or_else(|| bad("no +, * or -"))?;
        let (what, rest) = t.split_at(split);
        let (op, value) = rest.split_at(1);
        let (number, percent) = match value.strip_suffix('%') {
            Some(n) => (n, true),
            None => (value, false),
        };
        let v: f64 = number
            .trim()
            .parse()
            .map_err(|_| bad("the amount is not a number"))?;
        if !v.is_finite() || v < 0.0 {
            return Err(bad("the amount must be finite and not negative"));
        }
        let factor = |v: f64, percent: bool| if percent { 1.0 + v / 100.0 } else { v };
        let change = match (what.trim(), op, percent) {
            ("latency", "+", true) | ("latency", "*", false) => Change::Latency {
                factor: factor(v, percent),
            },
            ("tail", "+", true) | ("tail", "*", false) => Change::Tail {
                factor: factor(v, percent),
            },
            ("errors", "*", false) => Change::ErrorsTimes { factor: v },
            ("errors", "+", true) => Change::ErrorsPlus { share: v / 100.0 },
            ("confidence", "-", false) => Change::ConfidenceMinus { delta: v },
            ("confidence", "*", false) => Change::ConfidenceTimes { factor: v },
            _ => return Err(bad("not a known injection")),
        };
        match change {
            Change::Latency { factor } | Change::Tail { factor }
                if factor.is_nan() || factor <= 0.0 =>
            {
                return Err(bad("the factor must be positive"))
            }
            Change::ErrorsPlus { share } if share > 1.0 => {
                return Err(bad("more than 100 % of requests"))
            }
            _ => {}
        }
        Ok(Injection {
            label: t.to_owned(),
            change,
        })
    }

    /// A comma-separated list of injections.
    pub fn parse_list(text: &str) -> Result<Vec<Self>> {
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Injection::parse)
            .collect()
    }

    /// How a latency change moves the requests of a distribution shaped like `cumulative`
    /// (by `bounds`; a pod's whole run): `None` for other changes.
    pub fn transfer(&self, bounds: &[f64], cumulative: &[f64]) -> Option<Transfer> {
        Transfer::new(&self.change, bounds, cumulative)
    }

    /// One pod's increments between two scrapes, changed: `(requests, errors, buckets)`,
    /// buckets cumulative by `bounds`; a latency change moves them by `transfer` (from
    /// [`transfer`](Self::transfer)), or by the scrape's own shape without one.
    pub fn increment(
        &self,
        bounds: &[f64],
        requests: f64,
        errors: f64,
        buckets: &[f64],
        transfer: Option<&Transfer>,
    ) -> (f64, f64, Vec<f64>) {
        let requests = requests.max(0.0);
        let errors = errors.max(0.0);
        match self.change {
            Change::Latency { .. } | Change::Tail { .. } => {
                let own;
                let t = match transfer {
                    Some(t) => Some(t),
                    None => {
                        own = self.transfer(bounds, buckets);
                        own.as_ref()
                    }
                };
                let moved = t.map_or_else(|| buckets.to_vec(), |t| t.apply(buckets));
                (requests, errors, moved)
            }
            Change::ErrorsTimes { factor } => {
                (requests, (errors * factor).min(requests), buckets.to_vec())
            }
            Change::ErrorsPlus { share } => (
                requests,
                (errors + share * requests).min(requests),
                buckets.to_vec(),
            ),
            Change::ConfidenceMinus { .. } | Change::ConfidenceTimes { .. } => {
                (requests, errors, buckets.to_vec())
            }
        }
    }

    /// The arm's confidence gauge, changed.
    pub fn confidence(&self, value: f64) -> f64 {
        match self.change {
            Change::ConfidenceMinus { delta } => (value - delta).clamp(0.0, 1.0),
            Change::ConfidenceTimes { factor } => (value * factor).clamp(0.0, 1.0),
            _ => value,
        }
    }
}

/// The simulator's tail effect at quantile `u`: 1 up to p90, rising linearly to `factor` at
/// p99, `factor` beyond.
fn tail_multiplier(u: f64, factor: f64) -> f64 {
    let ramp = ((u - 0.90) / 0.09).clamp(0.0, 1.0);
    1.0 + ramp * (factor - 1.0)
}

/// A latency distribution's shape from a histogram: a smooth CDF through the cumulative
/// shares at the finite bounds, drawn as a monotone cubic (Fritsch-Carlson PCHIP) in probit
/// space over log latency. There a lognormal is a straight line, so its shape within a bucket is
/// exact, and other smooth distributions are followed far better than by a uniform-in-bucket
/// reading (which overstates how much of a tail bucket a shift pushes over its bound).
#[derive(Clone, Debug)]
struct Shape {
    /// ln of the finite bounds with some mass at or below them, and their probits.
    x: Vec<f64>,
    p: Vec<f64>,
    d: Vec<f64>,
    /// ln of the largest bound with no mass at or below it.
    empty_below: f64,
    /// The finite buckets' share of all requests.
    finite: f64,
}

/// The slope (probit per log latency) assumed without two points: a lognormal's σ of 0.5.
const DEFAULT_SLOPE: f64 = 2.0;

impl Shape {
    fn new(bounds: &[f64], cumulative: &[f64]) -> Option<Self> {
        let total = *cumulative.last()?;
        let finite = bounds.len().checked_sub(1)?;
        if total.is_nan() || total <= 0.0 || finite == 0 {
            return None;
        }
        let mut empty_below = f64::NEG_INFINITY;
        let (mut x, mut p) = (Vec::new(), Vec::new());
        let mut last = 0.0f64;
        for (b, c) in bounds[..finite].iter().zip(cumulative) {
            let share = (c / total).clamp(last, 1.0);
            last = share;
            if share <= 0.0 {
                empty_below = b.ln();
            } else {
                x.push(b.ln());
                p.push(crate::stats::normal_quantile(share.min(1.0 - 1e-12)));
            }
        }
        let finite_share = last;
        if x.is_empty() {
            return None;
        }
        let n = x.len();
        let mut d = vec![DEFAULT_SLOPE; n];
        if n >= 2 {
            let h: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
            let delta: Vec<f64> = (0..n - 1).map(|k| (p[k + 1] - p[k]) / h[k]).collect();
            for k in 1..n - 1 {
                d[k] = if delta[k - 1] > 0.0 && delta[k] > 0.0 {
                    let (w1, w2) = (2.0 * h[k] + h[k - 1], h[k] + 2.0 * h[k - 1]);
                    (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
                } else {
                    0.0
                };
            }
            // The ends take their secant: a straight line (a lognormal) stays one.
            d[0] = delta[0];
            d[n - 1] = delta[n - 2];
        }
        Some(Shape {
            x,
            p,
            d,
            empty_below,
            finite: finite_share,
        })
    }

    /// The share of requests at or below log latency `v`.
    fn cdf(&self, v: f64) -> f64 {
        let n = self.x.len();
        if v <= self.empty_below {
            return 0.0;
        }
        let probit = if v <= self.x[0] {
            // Below the first point: the line its slope carries down.
            let slope = if self.d[0] > 0.0 {
                self.d[0]
            } else {
                DEFAULT_SLOPE
            };
            self.p[0] - slope * (self.x[0] - v)
        } else if v >= self.x[n - 1] {
            return self.finite;
        } else {
            let k = self.x.partition_point(|&x| x <= v).clamp(1, n - 1) - 1;
            let h = self.x[k + 1] - self.x[k];
            let t = (v - self.x[k]) / h;
            let (t2, t3) = (t * t, t * t * t);
            let value = (2.0 * t3 - 3.0 * t2 + 1.0) * self.p[k]
                + (t3 - 2.0 * t2 + t) * h * self.d[k]
                + (-2.0 * t3 + 3.0 * t2) * self.p[k + 1]
                + (t3 - t2) * h * self.d[k + 1];
            value.clamp(self.p[k], self.p[k + 1])
        };
        crate::stats::normal_cdf(probit).min(self.finite)
    }
}

/// Where each bucket's requests go under a latency change, from the shape of a whole run's
/// histogram: `cumulative[i][j]` is the share of bucket `i`'s requests at or below bound `j`
/// afterwards. Applied to each scrape's increments, so their noise is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    cumulative: Vec<Vec<f64>>,
}

impl Transfer {
    /// The move for `change` of a distribution with `cumulative` counts by `bounds`; `None`
    /// when the change is not a latency change or there is nothing to shape.
    fn new(change: &Change, bounds: &[f64], cumulative: &[f64]) -> Option<Self> {
        let shape = Shape::new(bounds, cumulative)?;
        let k = bounds.len();
        // The log latency `v` a request ends at after the change, and its inverse.
        let inverse = |target: f64| -> f64 {
            match *change {
                Change::Latency { factor } => target - factor.ln(),
                Change::Tail { factor } => {
                    let forward = |v: f64| v + tail_multiplier(shape.cdf(v), factor).ln();
                    // forward is increasing; the answer lies within [target - ln f, target].
                    let (mut lo, mut hi) = (target - factor.ln().abs(), target + factor.ln().abs());
                    for _ in 0..50 {
                        let mid = 0.5 * (lo + hi);
                        if forward(mid) <= target {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                    lo
                }
                _ => target,
            }
        };
        if !matches!(change, Change::Latency { .. } | Change::Tail { .. }) {
            return None;
        }
        let ln: Vec<f64> = bounds.iter().map(|b| b.ln()).collect();
        let moved: Vec<f64> = ln[..k - 1].iter().map(|&v| inverse(v)).collect();
        let mut rows = Vec::with_capacity(k);
        for i in 0..k {
            let mut row = vec![1.0; k];
            if i + 1 == k {
                // +Inf: its latency is unknown, so it stays.
                row[..k - 1].fill(0.0);
                rows.push(row);
                continue;
            }
            let low = if i == 0 { f64::NEG_INFINITY } else { ln[i - 1] };
            let (f_low, f_high) = (if i == 0 { 0.0 } else { shape.cdf(low) }, shape.cdf(ln[i]));
            let mass = f_high - f_low;
            for j in 0..k - 1 {
                row[j] = if mass > 1e-12 {
                    let upto = moved[j].min(ln[i]);
                    if upto <= low {
                        0.0
                    } else {
                        ((shape.cdf(upto) - f_low) / mass).clamp(0.0, 1.0)
                    }
                } else {
                    // No mass here in the run as a whole: the bucket moves as its top does.
                    f64::from(u8::from(moved[j] >= ln[i]))
                };
            }
            for j in 1..k {
                row[j] = row[j].max(row[j - 1]);
            }
            rows.push(row);
        }
        Some(Transfer { cumulative: rows })
    }

    /// One scrape's cumulative bucket increments after the move.
    fn apply(&self, buckets: &[f64]) -> Vec<f64> {
        let k = buckets.len().min(self.cumulative.len());
        let mut out = vec![0.0; buckets.len()];
        let mut below = 0.0;
        for (i, &b) in buckets.iter().enumerate().take(k) {
            let n = (b - below).max(0.0);
            below = b.max(below);
            if n == 0.0 {
                continue;
            }
            for (o, share) in out.iter_mut().zip(&self.cumulative[i]) {
                *o += n * share;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: [f64; 4] = [0.1, 0.2, 0.4, f64::INFINITY];

    #[test]
    fn parses_what_the_command_line_gives_and_names_what_is_wrong() {
        let c = |t: &str| Injection::parse(t).unwrap().change;
        assert_eq!(c("latency+25%"), Change::Latency { factor: 1.25 });
        assert_eq!(c("latency*1.5"), Change::Latency { factor: 1.5 });
        assert_eq!(c("tail+20%"), Change::Tail { factor: 1.2 });
        assert_eq!(c("errors*2"), Change::ErrorsTimes { factor: 2.0 });
        assert_eq!(c("errors+1%"), Change::ErrorsPlus { share: 0.01 });
        assert_eq!(
            c("confidence-0.05"),
            Change::ConfidenceMinus { delta: 0.05 }
        );
        for bad in [
            "latency",
            "latency+x%",
            "errors-1",
            "speed*2",
            "latency*-1",
            "errors+200%",
        ] {
            let e = Injection::parse(bad).unwrap_err().to_string();
            assert!(e.contains("inject") && e.contains(bad), "{bad}: {e}");
        }
        assert_eq!(
            Injection::parse_list("latency+10%, errors*2")
                .unwrap()
                .len(),
            2
        );
    }

    /// Cumulative counts of 10,000 lognormal latencies (median `m`, σ 0.5) at `B`.
    fn lognormal(m: f64) -> Vec<f64> {
        B.iter()
            .map(|&b| 10_000.0 * crate::stats::normal_cdf((b / m).ln() / 0.5))
            .collect()
    }

    #[test]
    fn a_latency_shift_moves_requests_as_the_true_shift_does() {
        // The guide's latency (median 120 ms): its p99 sits in a bucket whose density falls
        // steeply, where a uniform-within-bucket reading would overstate the shift.
        let before = lognormal(0.120);
        let truth = lognormal(0.150);
        let inj = Injection::parse("latency+25%").unwrap();
        let (r, e, after) = inj.increment(&B, 10_000.0, 3.0, &before, None);
        assert_eq!((r, e), (10_000.0, 3.0));
        for (j, (a, t)) in after.iter().zip(&truth).enumerate() {
            // A lognormal is a line in probit space: the move is all but exact (a
            // uniform-within-bucket reading is 4 % of requests off at 0.4 s here).
            assert!(
                (a - t).abs() < 2.0,
                "bucket {j}: {a} vs the true {t} ({after:?})"
            );
        }
        assert!(after.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(after[3], 10_000.0, "the total is kept");
        // Requests in +Inf stay there; nothing observed, nothing changes.
        let (_, _, b) = inj.increment(&B, 100.0, 0.0, &[0.0, 60.0, 90.0, 100.0], None);
        assert!(b[2] < 90.0 && b[3] == 100.0, "{b:?}");
        let (_, _, b) = inj.increment(&B, 0.0, 0.0, &[0.0; 4], None);
        assert_eq!(b, vec![0.0; 4]);
    }

    #[test]
    fn a_tail_shift_leaves_the_median_and_slows_the_top() {
        let inj = Injection::parse("tail*2").unwrap();
        let before = lognormal(0.120);
        let (_, _, after) = inj.increment(&B, 100.0, 0.0, &before, None);
        let q = |b: &[f64], u: f64| {
            let pairs: Vec<(f64, f64)> = B.iter().copied().zip(b.iter().copied()).collect();
            crate::promql::histogram_quantile(u, &pairs)
        };
        assert!((q(&after, 0.5) - q(&before, 0.5)).abs() < 1e-3, "{after:?}");
        assert!(
            q(&after, 0.95) > q(&before, 0.95) * 1.1,
            "{after:?} vs {before:?}"
        );
    }

    #[test]
    fn errors_are_never_more_than_requests_and_confidence_stays_a_share() {
        let times = Injection::parse("errors*10").unwrap();
        assert_eq!(times.increment(&B, 10.0, 3.0, &[0.0; 4], None).1, 10.0);
        let plus = Injection::parse("errors+1%").unwrap();
        assert_eq!(plus.increment(&B, 200.0, 0.0, &[0.0; 4], None).1, 2.0);
        assert_eq!(times.increment(&B, 200.0, 0.0, &[0.0; 4], None).1, 0.0);
        let c = Injection::parse("confidence-0.5").unwrap();
        assert_eq!(c.confidence(0.3), 0.0);
        assert_eq!(times.confidence(0.3), 0.3);
    }
}
