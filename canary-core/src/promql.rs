//! Prometheus's own arithmetic, in process: `rate`/`increase` over counter samples and
//! `histogram_quantile` over cumulative buckets.
//!
//! Judges that work on the distributions Prometheus holds (cumulative bucket counts over time)
//! must derive point estimates exactly as Prometheus would, or the same canary would be judged
//! differently in process and through a query. These functions follow Prometheus 2.42 (the
//! version Debian ships and the tests run against): the algorithms of `extrapolatedRate` in
//! `promql/functions.go` and `bucketQuantile` in `promql/quantile.go`. A test backfills data
//! into a real Prometheus and compares its answers with these, to a relative 1e-9.
//!
//! Two differences from later Prometheus versions, documented so that nobody is surprised:
//! Prometheus 3 selects a range as `(start, end]` (2.42: `[start, end]`), and from 2.51 on
//! `histogram_quantile` first merges bucket counts that differ by a relative 1e-12 or less.

use std::time::Duration;

/// One sample: a timestamp in milliseconds since the Unix epoch, and a value.
pub type Sample = (i64, f64);

/// The samples of `series` inside the range `[end - window, end]`, as a range selector picks
/// them in Prometheus 2.x (both ends included). `series` must be sorted by time.
pub fn select_range(series: &[Sample], end_ms: i64, window: Duration) -> &[Sample] {
    let start_ms = end_ms.saturating_sub(duration_ms(window));
    let from = series.partition_point(|&(t, _)| t < start_ms);
    let to = series.partition_point(|&(t, _)| t <= end_ms);
    &series[from..to.max(from)]
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Prometheus's `increase(series[window])` evaluated at `end_ms`, or `None` where Prometheus
/// returns no sample (fewer than two samples in the range).
pub fn increase(series: &[Sample], end_ms: i64, window: Duration) -> Option<f64> {
    extrapolated_delta(series, end_ms, window, true, false)
}

/// Prometheus's `rate(series[window])` evaluated at `end_ms` (per second), or `None`.
pub fn rate(series: &[Sample], end_ms: i64, window: Duration) -> Option<f64> {
    extrapolated_delta(series, end_ms, window, true, true)
}

/// Prometheus's `delta(series[window])` for a gauge, evaluated at `end_ms`, or `None`.
pub fn delta(series: &[Sample], end_ms: i64, window: Duration) -> Option<f64> {
    extrapolated_delta(series, end_ms, window, false, false)
}

/// The shared body of `rate`, `increase` and `delta`: the change over the samples in range
/// (for counters, each reset adds the value before it, as a counter restarting from 0 does),
/// extrapolated towards the range's edges when the first and last samples lie within 1.1
/// average sample intervals of them, and never below a counter's zero point.
fn extrapolated_delta(
    series: &[Sample],
    end_ms: i64,
    window: Duration,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let samples = select_range(series, end_ms, window);
    if samples.len() < 2 {
        return None;
    }
    let range_start_ms = end_ms.saturating_sub(duration_ms(window));
    let (first_t, first_v) = samples[0];
    let (last_t, last_v) = samples[samples.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        let mut previous = first_v;
        for &(_, v) in &samples[1..] {
            if v < previous {
                result += previous;
            }
            previous = v;
        }
    }
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let mut to_start = seconds(first_t - range_start_ms);
    let to_end = seconds(end_ms - last_t);
    let sampled = seconds(last_t - first_t);
    let average_step = sampled / (samples.len() - 1) as f64;
    if is_counter && result > 0.0 && first_v >= 0.0 {
        // A counter does not go below zero: extrapolate at most to where it would be 0.
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_step * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average_step / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average_step / 2.0
    };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= window.as_secs_f64();
    }
    Some(result * factor)
}

/// Prometheus's `avg_over_time` of the values in a range: the running mean it computes
/// (`mean += v/n - mean/n`), which keeps a constant series exactly constant. `None` for no
/// values.
pub fn avg_over_time(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut mean = 0.0;
    let mut count = 0.0;
    for v in values {
        count += 1.0;
        mean += v / count - mean / count;
    }
    (count > 0.0).then_some(mean)
}

/// Prometheus's `histogram_quantile(q, buckets)` over cumulative `(upper bound, count)`
/// buckets of one histogram, in any order.
///
/// It interpolates linearly within the bucket holding the rank `q × count`, from 0 (or the
/// previous bound) to the bucket's bound. The results Prometheus gives for edge cases are kept:
/// NaN when `q` is NaN, there is no `+Inf` bucket, fewer than two buckets remain after merging
/// equal bounds, or there are no observations; `-Inf`/`+Inf` for `q` below 0 / above 1; the
/// second-highest bound when the rank falls in the `+Inf` bucket; the lowest bound when it
/// falls in a lowest bucket whose bound is at most 0. Counts that decrease with the bound are
/// raised to the running maximum first, as Prometheus does.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if buckets.is_empty() {
        return f64::NAN;
    }
    let mut sorted: Vec<(f64, f64)> = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    if sorted[sorted.len() - 1].0 != f64::INFINITY {
        return f64::NAN;
    }
    // Buckets with the same bound (from series that differ only in other labels) add up.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(sorted.len());
    for (bound, count) in sorted {
        match merged.last_mut() {
            Some(last) if last.0 == bound => last.1 += count,
            _ => merged.push((bound, count)),
        }
    }
    let mut max = merged[0].1;
    for bucket in merged.iter_mut().skip(1) {
        if bucket.1 > max {
            max = bucket.1;
        } else if bucket.1 < max {
            bucket.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let last = merged.len() - 1;
    let observations = merged[last].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // The first bucket (the +Inf one left out) whose count reaches the rank.
    let b = merged[..last].partition_point(|&(_, count)| count < rank);
    if b == last {
        return merged[last - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (bucket_end, mut count) = merged[b];
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn the_running_mean_keeps_constants_exact() {
        assert_eq!(avg_over_time(std::iter::repeat_n(0.9, 21)), Some(0.9));
        assert_eq!(avg_over_time([1.0, 2.0, 3.0, 4.0]), Some(2.5));
        assert_eq!(avg_over_time([]), None);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        // 100 observations: 50 ≤ 0.1, 40 in (0.1, 0.5], 10 in (0.5, +Inf).
        let b = [(0.1, 50.0), (0.5, 90.0), (INF, 100.0)];
        assert_eq!(histogram_quantile(0.25, &b), 0.05);
        assert!((histogram_quantile(0.7, &b) - 0.3).abs() < 1e-15);
        // The rank lands in +Inf: the second-highest bound.
        assert_eq!(histogram_quantile(0.99, &b), 0.5);
        // Order does not matter.
        let shuffled = [(INF, 100.0), (0.1, 50.0), (0.5, 90.0)];
        assert_eq!(histogram_quantile(0.25, &shuffled), 0.05);
    }

    #[test]
    fn edge_cases_are_prometheus_s() {
        let b = [(0.1, 50.0), (INF, 100.0)];
        assert!(histogram_quantile(f64::NAN, &b).is_nan());
        assert_eq!(histogram_quantile(-0.1, &b), f64::NEG_INFINITY);
        assert_eq!(histogram_quantile(1.1, &b), INF);
        assert!(
            histogram_quantile(0.5, &[(0.1, 50.0), (1.0, 100.0)]).is_nan(),
            "no +Inf"
        );
        assert!(
            histogram_quantile(0.5, &[(INF, 100.0)]).is_nan(),
            "one bucket"
        );
        assert!(
            histogram_quantile(0.5, &[(0.1, 0.0), (INF, 0.0)]).is_nan(),
            "no data"
        );
        assert!(histogram_quantile(0.5, &[]).is_nan());
        // A lowest bound at or below 0 is returned as is.
        assert_eq!(histogram_quantile(0.1, &[(-1.0, 50.0), (INF, 100.0)]), -1.0);
        // Equal bounds add up; decreasing counts are raised to the running maximum.
        let split = [(0.1, 25.0), (0.1, 25.0), (INF, 100.0)];
        assert_eq!(histogram_quantile(0.25, &split), 0.05);
        let dented = [(0.1, 50.0), (0.2, 40.0), (INF, 100.0)];
        assert_eq!(histogram_quantile(0.5, &dented), 0.1);
    }

    fn every_15s(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 15_000, v))
            .collect()
    }

    #[test]
    fn increase_extrapolates_to_the_range_edges() {
        // 0, 10, ..., 200 every 15 s: a steady 10 per 15 s.
        let s = every_15s(&(0..=20).map(|i| i as f64 * 10.0).collect::<Vec<_>>());
        // A 60 s range ending on a sample holds 5 samples (both ends included).
        let w = Duration::from_secs(60);
        assert_eq!(select_range(&s, 300_000, w).len(), 5);
        let inc = increase(&s, 300_000, w).unwrap();
        assert!((inc - 40.0).abs() < 1e-12, "{inc}");
        let r = rate(&s, 300_000, w).unwrap();
        assert!((r - 40.0 / 60.0).abs() < 1e-12, "{r}");
        // Ending between samples: extrapolated by the distance to the edges.
        let inc = increase(&s, 307_500, w).unwrap();
        assert!((inc - 40.0).abs() < 1e-9, "{inc}");
        // Too few samples: no result.
        assert_eq!(increase(&s[..1], 0, w), None);
    }

    #[test]
    fn counter_resets_count_what_was_lost() {
        // 100, 110, 120, restart, 5, 15: an increase of 20 + 15 = 35 over 60 s.
        let s = every_15s(&[100.0, 110.0, 120.0, 5.0, 15.0]);
        let inc = increase(&s, 60_000, Duration::from_secs(60)).unwrap();
        assert!((inc - 35.0).abs() < 1e-12, "{inc}");
        // A gauge's delta does not treat the drop as a reset.
        let d = delta(&s, 60_000, Duration::from_secs(60)).unwrap();
        assert!((d - -85.0).abs() < 1e-12, "{d}");
    }

    #[test]
    fn a_young_counter_is_not_extrapolated_below_zero() {
        // Starts at 1 a little after the range begins, then climbs 10 per 15 s.
        let s: Vec<Sample> = (0..4)
            .map(|i| (20_000 + i * 15_000, 1.0 + 10.0 * i as f64))
            .collect();
        let inc = increase(&s, 65_000, Duration::from_secs(65)).unwrap();
        // Extrapolating back the full 20 s would pass zero; it stops at the zero point.
        let sampled = 45.0;
        let expected = 30.0 * (sampled + 45.0 * (1.0 / 30.0) + 0.0) / sampled;
        assert!((inc - expected).abs() < 1e-9, "{inc} vs {expected}");
    }
}
