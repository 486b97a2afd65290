//! A run as OpenMetrics text, for `promtool tsdb create-blocks-from openmetrics`.

use std::fmt::Write as _;

use canary_core::observation::{names, Observation};

use crate::Simulation;

/// The metric names a run is rendered under. The defaults are the ones
/// `canary-prometheus`'s default queries read: `http_request_duration_seconds` (histogram),
/// `http_requests_total` with a `status` label (`200` and `500`; the errors are the `5..`
/// series), and `model_prediction_confidence`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricNames {
    /// The latency histogram's family (its series end in `_bucket`).
    pub latency: String,
    /// The requests counter's family (its series end in `_total`).
    pub requests: String,
    /// The confidence gauge.
    pub confidence: String,
}

impl Default for MetricNames {
    fn default() -> Self {
        MetricNames {
            latency: "http_request_duration_seconds".into(),
            requests: "http_requests".into(),
            confidence: "model_prediction_confidence".into(),
        }
    }
}

impl Simulation {
    /// Both arms as OpenMetrics text, every sample timestamped, ending in `# EOF`: one series
    /// per pod (labelled `version`, and `pod` and `instance` with the pod's name; a restarted
    /// pod's counters start again from zero, a pod that is not running has no sample), or, for
    /// a run built by hand without pods, one series per arm with `instance="sim"`. Successful
    /// and failed requests are separate `status` series, both always present, so a canary with
    /// no errors still has an error series at 0.
    pub fn to_openmetrics(&self, names: &MetricNames) -> String {
        let pods = &self.pods;
        let arms: Vec<Vec<(&Observation, &str)>> =
            if pods.baseline.is_empty() && pods.canary.is_empty() {
                [&self.baseline, &self.canary]
                    .iter()
                    .map(|a| a.iter().map(|o| (o, "")).collect())
                    .collect()
            } else {
                pods.baseline
                    .iter()
                    .chain(&pods.canary)
                    .map(|p| p.observations.iter().map(|o| (o, p.pod.as_str())).collect())
                    .collect()
            };
        let mut text = format!("# TYPE {} histogram\n", names.latency);
        // An observation built by hand may lack a metric: it is left out, never a panic.
        for &(o, pod) in arms.iter().flat_map(|a| a.iter()) {
            let Some(h) = o.histograms.get(names::LATENCY) else {
                continue;
            };
            for &(le, count) in h.buckets() {
                let le = if le.is_infinite() {
                    "+Inf".to_owned()
                } else {
                    format!("{le}")
                };
                line(
                    &mut text,
                    &format!("{}_bucket", names.latency),
                    o,
                    pod,
                    &[("le", &le)],
                    count,
                );
            }
        }
        let _ = writeln!(text, "# TYPE {} counter", names.requests);
        let total = format!("{}_total", names.requests);
        for &(o, pod) in arms.iter().flat_map(|a| a.iter()) {
            let (Some(&requests), Some(&errors)) = (
                o.counters.get(names::REQUESTS),
                o.counters.get(names::ERRORS),
            ) else {
                continue;
            };
            line(
                &mut text,
                &total,
                o,
                pod,
                &[("status", "200")],
                requests - errors,
            );
            // As every official client: `status="500"` exists from the first failure on.
            if errors > 0.0 {
                line(&mut text, &total, o, pod, &[("status", "500")], errors);
            }
        }
        let _ = writeln!(text, "# TYPE {} gauge", names.confidence);
        for &(o, pod) in arms.iter().flat_map(|a| a.iter()) {
            if let Some(&c) = o.gauges.get(names::MODEL_CONFIDENCE) {
                line(&mut text, &names.confidence, o, pod, &[], c);
            }
        }
        text.push_str("# EOF\n");
        text
    }
}

fn line(
    text: &mut String,
    name: &str,
    o: &Observation,
    pod: &str,
    extra: &[(&str, &str)],
    value: f64,
) {
    let version = escape(o.version.as_str());
    let mut labels = if pod.is_empty() {
        format!("instance=\"sim\",version=\"{version}\"")
    } else {
        let pod = escape(pod);
        format!("instance=\"{pod}\",pod=\"{pod}\",version=\"{version}\"")
    };
    for (k, v) in extra {
        let _ = write!(labels, ",{k}=\"{}\"", escape(v));
    }
    let value = if value.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{value}")
    };
    let ms = o.at.timestamp_millis();
    let _ = writeln!(
        text,
        "{name}{{{labels}}} {value} {}.{:03}",
        ms.div_euclid(1000),
        ms.rem_euclid(1000)
    );
}

/// OpenMetrics label-value escaping.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}
