//! Deterministic traffic in OpenMetrics, shaped like the guide's instrumentation:
//! `http_request_duration_seconds` (histogram), `http_requests_total` (counter, with
//! `status`) and `model_prediction_confidence` (gauge), all labelled with `version`.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The guide's histogram buckets, in seconds.
pub const BUCKETS: [f64; 7] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// One version's steady traffic.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// The `version` label value (any string: injection tests use hostile ones).
    pub version: String,
    /// Requests per second.
    pub rps: f64,
    /// Share of requests with status 500, 0..1.
    pub error_ratio: f64,
    /// Cumulative share of requests at or under each of [`BUCKETS`]; the last is 1.
    pub cumulative: [f64; 7],
    /// The confidence gauge's value; `None` exports no gauge.
    pub confidence: Option<f64>,
    /// A `pod` label, for production versions on several pods (backtests).
    pub pod: Option<String>,
}

impl Traffic {
    /// Healthy traffic: p99 of 944 ms, 1 % errors, confidence 0.9.
    pub fn healthy(version: &str, rps: f64) -> Self {
        Traffic {
            version: version.into(),
            rps,
            error_ratio: 0.01,
            cumulative: [0.5, 0.8, 0.95, 0.995, 1.0, 1.0, 1.0],
            confidence: Some(0.9),
            pod: None,
        }
    }

    /// The latency quantile `q` (ms) exactly as `histogram_quantile` interpolates it.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut lower_bound = 0.0;
        let mut lower_share = 0.0;
        for (i, &share) in self.cumulative.iter().enumerate() {
            if share >= q {
                let upper = BUCKETS[i];
                return 1000.0
                    * (lower_bound
                        + (upper - lower_bound) * (q - lower_share) / (share - lower_share));
            }
            lower_bound = BUCKETS[i];
            lower_share = share;
        }
        f64::NAN
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Production (`v1`, 50 req/s, confidence 0.85) from 100 minutes before `end`, and from 80
/// minutes before it the canaries the controllers' tests judge: healthy (`c-healthy`), latency
/// doubled (`c-latency`), errors tripled (`c-errors`), confidence 0.60 (`c-confidence`) and no
/// traffic at all (`c-silent`), and too little to judge (`c-thin`, ten requests a minute);
/// `c-missing` has no series. Returns the text and the canaries' start.
pub fn controller_canaries(end: i64) -> (String, i64) {
    let start = end - 80 * 60;
    let healthy = |v: &str, rps: f64| Traffic {
        confidence: Some(0.85),
        ..Traffic::healthy(v, rps)
    };
    let runs = vec![
        (healthy("v1", 50.0), end - 100 * 60),
        (healthy("c-healthy", 10.0), start),
        (
            Traffic {
                // Every latency doubled, through the histogram (p99 944 ms -> 1.89 s).
                cumulative: [0.25, 0.55, 0.8, 0.95, 0.9958, 1.0, 1.0],
                ..healthy("c-latency", 10.0)
            },
            start,
        ),
        (
            Traffic {
                error_ratio: 0.03,
                ..healthy("c-errors", 10.0)
            },
            start,
        ),
        (
            Traffic {
                confidence: Some(0.60),
                ..healthy("c-confidence", 10.0)
            },
            start,
        ),
        (healthy("c-silent", 0.0), start),
        (healthy("c-thin", 10.0 / 60.0), start),
    ];
    (openmetrics_runs(&runs, 15, end), start)
}

/// Production (`v1`, 50 req/s), a healthy canary (`v2`, 10 req/s) and one failing 8 % of
/// its requests (`v3`): the binary's and the service's tests judge these.
pub fn production_and_two_canaries() -> Vec<Traffic> {
    vec![
        Traffic::healthy("v1", 50.0),
        Traffic::healthy("v2", 10.0),
        Traffic {
            error_ratio: 0.08,
            ..Traffic::healthy("v3", 10.0)
        },
    ]
}

/// `,pod="..."` when the traffic names its pod.
fn pod_label(t: &Traffic) -> String {
    t.pod
        .as_deref()
        .map(|p| format!(",pod=\"{}\"", escape(p)))
        .unwrap_or_default()
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// OpenMetrics text for `traffic`, one sample every `step_s` seconds for `span_s` seconds
/// up to `end` (seconds since the epoch). Counters start at 0 at the beginning of the span.
pub fn openmetrics(traffic: &[Traffic], span_s: i64, step_s: i64, end: i64) -> String {
    let runs: Vec<(Traffic, i64)> = traffic.iter().map(|t| (t.clone(), end - span_s)).collect();
    openmetrics_runs(&runs, step_s, end)
}

/// Like [`openmetrics`], each traffic from its own start (seconds since the epoch) to `end`:
/// a canary deployed after production, whose series begin when it starts.
pub fn openmetrics_runs(runs: &[(Traffic, i64)], step_s: i64, end: i64) -> String {
    let times_of = |start: i64| -> Vec<i64> {
        (0..=(end - start) / step_s)
            .map(|i| start + i * step_s)
            .collect()
    };
    let mut out = String::new();
    out.push_str("# HELP http_request_duration_seconds HTTP request latency\n");
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (t, start) in runs {
        let (start, times) = (*start, times_of(*start));
        let v = escape(&t.version);
        let p = pod_label(t);
        for (i, le) in BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_owned()])
            .enumerate()
        {
            let share = t.cumulative.get(i).copied().unwrap_or(1.0);
            for &ts in &times {
                let n = t.rps * (ts - start) as f64 * share;
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{le=\"{le}\",version=\"{v}\"{p}}} {n} {ts}"
                );
            }
        }
        for &ts in &times {
            let n = t.rps * (ts - start) as f64;
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{version=\"{v}\"{p}}} {n} {ts}"
            );
        }
        for &ts in &times {
            let n = t.rps * (ts - start) as f64 * 0.2;
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{version=\"{v}\"{p}}} {n} {ts}"
            );
        }
    }
    out.push_str("# HELP http_requests_total Total HTTP requests\n");
    out.push_str("# TYPE http_requests_total counter\n");
    for (t, start) in runs {
        let (start, times) = (*start, times_of(*start));
        let v = escape(&t.version);
        let p = pod_label(t);
        for (status, share) in [("200", 1.0 - t.error_ratio), ("500", t.error_ratio)] {
            for &ts in &times {
                let n = t.rps * (ts - start) as f64 * share;
                // As every official client: a status's series exists from its first request.
                if status == "500" && n <= 0.0 {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "http_requests_total{{status=\"{status}\",version=\"{v}\"{p}}} {n} {ts}"
                );
            }
        }
    }
    out.push_str("# HELP model_prediction_confidence Model prediction confidence\n");
    out.push_str("# TYPE model_prediction_confidence gauge\n");
    for (t, start) in runs {
        let times = times_of(*start);
        if let Some(c) = t.confidence {
            let v = escape(&t.version);
            let p = pod_label(t);
            for &ts in &times {
                let _ = writeln!(
                    out,
                    "model_prediction_confidence{{version=\"{v}\"{p}}} {c} {ts}"
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let t = Traffic::healthy("v1", 10.0);
        // p99 lies in (0.5, 1.0]: 0.5 + 0.5 * (0.99 - 0.95) / 0.045
        assert!((t.quantile_ms(0.99) - 944.444).abs() < 0.001);
        assert!((t.quantile_ms(0.5) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn output_is_openmetrics() {
        let text = openmetrics(&[Traffic::healthy("a\"b", 1.0)], 60, 15, 1000);
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains(r#"version="a\"b""#));
        assert!(text.contains("http_requests_total{status=\"500\",version=\"a\\\"b\"} 0.6 1000"));
    }
}
