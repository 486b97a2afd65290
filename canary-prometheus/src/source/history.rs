//! A production version's per-pod history for backtests: each raw series fetched once for the
//! period, in range queries of bounded length, and written onto the judge's step grid.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use canary_core::backtest::{History, PodHistory};
use canary_core::observation::ObservationQuery;
use canary_core::{Arm, Version};
use chrono::{DateTime, TimeZone, Utc};

use super::{agrees, PrometheusSource};
use crate::error::{Error, Result};
use crate::observe::{parse_bound, FALLBACK_INSTANCE_LABEL};
use crate::query::QueryTemplate;

/// Points per series per range query: below Prometheus' limit of 11,000.
pub const MAX_POINTS_PER_QUERY: usize = 10_000;

/// The shortest query: an answer this short that is still over `max_body_bytes` is an error.
const MIN_POINTS_PER_QUERY: usize = 100;

/// Which column of a pod a raw series adds to.
#[derive(Clone, Copy, PartialEq)]
enum Column {
    Bucket(usize),
    Requests,
    Errors,
}

/// A pod's columns over the whole grid while they are filled: increments (summed into
/// cumulative values at the end, so a series that stops counts at its last value), and which
/// instants had a fresh requests sample.
struct Pending {
    requests: Vec<f64>,
    errors: Vec<f64>,
    buckets: Vec<f64>,
    confidence: Vec<f64>,
    fresh: Vec<bool>,
    bounds_seen: Vec<bool>,
}

/// One raw series' reset correction, carried from one chunk to the next.
struct Carry {
    pod: usize,
    column: Column,
    previous: Option<f64>,
    offset: f64,
    corrected: f64,
}

impl PrometheusSource {
    /// `version`'s history from `since` to `until`, every `step` (the judge's), per pod: the
    /// raw buckets, requests and errors of `observation_queries` (as the baseline selects
    /// them), each series fetched once in range queries of at most
    /// [`MAX_POINTS_PER_QUERY`] points (halved while an answer is over `max_body_bytes`),
    /// reset-corrected across queries and summed per
    /// instance label; the confidence per pod when its query is a plain `avg(...)` (rewritten
    /// to `avg by (pod)`), otherwise one gauge every pod shares (said in `History::notes`).
    /// `progress(done, total)` is called after each query, in grid instants fetched.
    ///
    /// Memory: the history itself (see [`History`]) plus one query's answer.
    pub async fn history(
        &self,
        version: &Version,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        step: Duration,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<History> {
        let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
        if step_ms < 1000 || until <= since {
            return Err(Error::InvalidConfig {
                field: "history",
                reason: "the step must be at least 1 s and the period must end after it starts"
                    .into(),
            });
        }
        // The grid on multiples of the step, so that two backtests of one period agree.
        let start_ms = since.timestamp_millis().div_euclid(step_ms) * step_ms;
        let len = usize::try_from((until.timestamp_millis() - start_ms) / step_ms + 1)
            .unwrap_or(usize::MAX);
        let start =
            Utc.timestamp_millis_opt(start_ms)
                .single()
                .ok_or_else(|| Error::InvalidConfig {
                    field: "history",
                    reason: "the period's start is out of range".into(),
                })?;
        let o = &self.config.observation_queries;
        let label = self.label_for(version, Arm::Baseline);
        let t = &self.observation_templates;
        let (confidence, per_pod) = per_pod_confidence(&t.model_confidence, &o.instance_label)?;
        let total = len * 4;
        let mut done = 0;

        let mut bounds: Vec<f64> = Vec::new();
        let mut pods: Vec<(String, Pending)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut carries: HashMap<String, Carry> = HashMap::new();
        let mut shared_confidence = vec![f64::NAN; len];
        let mut confidence_series = 0usize;
        let instance_of = |labels: &BTreeMap<String, String>| -> Option<String> {
            labels
                .get(&o.instance_label)
                .or_else(|| labels.get(FALLBACK_INSTANCE_LABEL))
                .cloned()
        };
        let at = |i: usize| start + chrono::Duration::milliseconds(step_ms * i as i64);

        for (metric, template) in [
            ("latency_buckets", &t.latency_buckets),
            ("requests", &t.requests),
            ("errors", &t.errors),
            ("model_confidence", &confidence),
        ] {
            let query = self.render(metric, template, &label, Arm::Baseline, step)?;
            let names = template.version_labels().to_vec();
            let (mut a, mut size) = (0, MAX_POINTS_PER_QUERY);
            while a < len {
                let b = (a + size).min(len) - 1;
                let q = ObservationQuery {
                    version: version.clone(),
                    arm: Arm::Baseline,
                    start: at(a),
                    end: at(b),
                    step,
                };
                let m = match self
                    .range_matrix(metric, &query, q.start, q.end, step)
                    .await
                {
                    // Many pods or buckets: shorter queries until an answer fits.
                    Err(Error::BodyTooLarge { .. }) if size > MIN_POINTS_PER_QUERY => {
                        size /= 2;
                        continue;
                    }
                    other => other?,
                };
                agrees(metric, &query, &m, &names, &label, &q, step_ms)?;
                done += b + 1 - a;
                progress(done, total);
                for s in &m.series {
                    let grid = |t: i64| -> Option<usize> {
                        let d = t - start_ms;
                        (d >= 0 && d % step_ms == 0)
                            .then(|| (d / step_ms) as usize)
                            .filter(|&i| i < len)
                    };
                    if metric == "model_confidence" {
                        let target = match (per_pod, instance_of(&s.labels)) {
                            (true, Some(pod)) => {
                                index.get(&pod).map(|&p| &mut pods[p].1.confidence)
                            }
                            _ => {
                                confidence_series = confidence_series.max(1);
                                Some(&mut shared_confidence)
                            }
                        };
                        if let Some(column) = target {
                            for &(t, v) in &s.points {
                                if let Some(i) = grid(t) {
                                    column[i] = v;
                                }
                            }
                        }
                        continue;
                    }
                    let Some(pod) = instance_of(&s.labels) else {
                        return Err(Error::InvalidResponse {
                            metric: metric.into(),
                            query: query.clone(),
                            reason: format!(
                                "a series has neither the {:?} nor the {FALLBACK_INSTANCE_LABEL:?} \
                                 label, so it cannot be told to a pod; a backtest needs the raw \
                                 per-pod series",
                                o.instance_label
                            ),
                        });
                    };
                    let column = match metric {
                        "requests" => Column::Requests,
                        "errors" => Column::Errors,
                        _ => {
                            let Some(bound) = s.labels.get("le").and_then(|le| parse_bound(le))
                            else {
                                continue;
                            };
                            let j = match bounds.iter().position(|&b| b == bound) {
                                Some(j) => j,
                                None => {
                                    bounds.push(bound);
                                    bounds.len() - 1
                                }
                            };
                            Column::Bucket(j)
                        }
                    };
                    let p = *index.entry(pod.clone()).or_insert_with(|| {
                        pods.push((pod.clone(), Pending::new(len)));
                        pods.len() - 1
                    });
                    let key = format!("{metric}{:?}", s.labels);
                    let carry = carries.entry(key).or_insert(Carry {
                        pod: p,
                        column,
                        previous: None,
                        offset: 0.0,
                        corrected: 0.0,
                    });
                    let pending = &mut pods[carry.pod].1;
                    for &(t, v) in &s.points {
                        let Some(i) = grid(t) else { continue };
                        if carry.previous.is_some_and(|prev| v < prev) {
                            carry.offset += carry.previous.unwrap_or(0.0);
                        }
                        carry.previous = Some(v);
                        let corrected = v + carry.offset;
                        let delta = corrected - carry.corrected;
                        carry.corrected = corrected;
                        match carry.column {
                            Column::Requests => {
                                pending.requests[i] += delta;
                                pending.fresh[i] = true;
                            }
                            Column::Errors => pending.errors[i] += delta,
                            Column::Bucket(j) => pending.buckets_at(i, j, delta),
                        }
                        if let Column::Bucket(j) = carry.column {
                            pending.see(j);
                        }
                    }
                }
                a = b + 1;
            }
        }

        let mut notes = Vec::new();
        if !pods.is_empty() && confidence_series > 0 {
            notes.push(format!(
                "the confidence query gives no per-pod series (it is not a plain avg(...) of \
                     the {:?} label's series): every pod shares one gauge, so the pseudo-canary's \
                     confidence equals the baseline's and a confidence regression is seen only \
                     when injected",
                o.instance_label
            ));
        }
        let mut order: Vec<usize> = (0..bounds.len()).collect();
        order.sort_by(|&x, &y| bounds[x].total_cmp(&bounds[y]));
        let sorted: Vec<f64> = order.iter().map(|&j| bounds[j]).collect();
        if !sorted.is_empty() && sorted.last() != Some(&f64::INFINITY) {
            return Err(Error::InvalidResponse {
                metric: "latency_buckets".into(),
                query: self.render(
                    "latency_buckets",
                    &t.latency_buckets,
                    &label,
                    Arm::Baseline,
                    step,
                )?,
                reason: "the buckets have no le=\"+Inf\" series".into(),
            });
        }
        let mut out = Vec::new();
        for (name, p) in pods {
            if p.bounds_seen.iter().take(bounds.len()).any(|s| !s) && !bounds.is_empty() {
                notes.push(format!(
                    "pod {name:?} left out: its latency histogram lacks some of the others' bucket \
                     bounds"
                ));
                continue;
            }
            if let Some(h) = p.finish(name, &order, &shared_confidence) {
                out.push(h);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let history = History {
            version: version.clone(),
            start,
            step,
            len,
            bounds: sorted,
            pods: out,
            notes,
        };
        history.validate().map_err(|e| Error::InvalidConfig {
            field: "history",
            reason: e.to_string(),
        })?;
        Ok(history)
    }

    /// A link to Prometheus' graph of the pseudo-canary's pods from `start` to `end`, one
    /// panel per pod, of the `metric` that decided (credentials left out): a latency row's
    /// quantile (`latency_p99`: the 0.99 quantile), the model confidence, or else the error
    /// rate.
    pub fn graph_link(
        &self,
        version: &Version,
        pods: &[String],
        metric: Option<&str>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Option<String> {
        let mut url = self.base.clone();
        url.set_username("").ok()?;
        url.set_password(None).ok()?;
        url.set_query(None);
        url.set_fragment(None);
        let path = format!("{}/graph", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let label = self.label_for(version, Arm::Baseline);
        let t = &self.observation_templates;
        let instance = &self.config.observation_queries.instance_label;
        let range = (end - start).num_seconds().max(60);
        let window = Duration::from_secs(60);
        {
            let mut q = url.query_pairs_mut();
            for (g, pod) in pods.iter().enumerate() {
                let narrow = BTreeMap::from([(instance.clone(), pod.clone())]);
                let expr = match metric {
                    Some(m) if m.starts_with("latency") => {
                        let q = m
                            .strip_prefix("latency_p")
                            .and_then(|p| p.parse::<f64>().ok())
                            .map_or(0.99, |p| p / 10f64.powi(p.log10().floor() as i32 + 1));
                        let buckets = t
                            .latency_buckets
                            .render_selecting(&label, window, &narrow)?;
                        format!("histogram_quantile({q}, sum by (le) (rate({buckets}[1m])))")
                    }
                    Some("model_confidence") => {
                        let c = t
                            .model_confidence
                            .render_selecting(&label, window, &narrow)?;
                        format!("avg({c})")
                    }
                    _ => {
                        let requests = t.requests.render_selecting(&label, window, &narrow)?;
                        let errors = t.errors.render_selecting(&label, window, &narrow)?;
                        format!("sum(rate({errors}[1m])) / sum(rate({requests}[1m]))")
                    }
                };
                q.append_pair(&format!("g{g}.expr"), &expr);
                q.append_pair(&format!("g{g}.tab"), "0");
                q.append_pair(&format!("g{g}.range_input"), &format!("{range}s"));
                q.append_pair(
                    &format!("g{g}.end_input"),
                    &end.format("%Y-%m-%d %H:%M:%S").to_string(),
                );
            }
        }
        Some(url.to_string())
    }
}

/// The confidence template for per-pod gauges: a plain `avg(...)` becomes `avg by (label)
/// (...)`; anything else runs as written (`false`: shared).
fn per_pod_confidence(template: &QueryTemplate, label: &str) -> Result<(QueryTemplate, bool)> {
    let text = template.as_str().trim();
    let inner = text
        .strip_prefix("avg(")
        .or_else(|| text.strip_prefix("avg ("))
        .and_then(|rest| rest.strip_suffix(')'));
    match inner {
        // Only when the brackets pair up: `avg(a) + avg(b)` is not a plain average.
        Some(inner) if balanced(inner) => Ok((
            QueryTemplate::new("model_confidence", &format!("avg by ({label}) ({inner})"))?,
            true,
        )),
        _ => Ok((template.clone(), false)),
    }
}

/// Whether `s`'s round brackets pair up without going below zero.
fn balanced(s: &str) -> bool {
    let mut depth = 0i64;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

impl Pending {
    fn new(len: usize) -> Self {
        Pending {
            requests: vec![0.0; len],
            errors: vec![0.0; len],
            buckets: Vec::new(),
            confidence: vec![f64::NAN; len],
            fresh: vec![false; len],
            bounds_seen: Vec::new(),
        }
    }

    /// Adds `delta` to bucket `j` at instant `i`; bucket columns are grown as bounds appear.
    fn buckets_at(&mut self, i: usize, j: usize, delta: f64) {
        let len = self.requests.len();
        if self.buckets.len() < (j + 1) * len {
            self.buckets.resize((j + 1) * len, 0.0);
        }
        self.buckets[j * len + i] += delta;
    }

    fn see(&mut self, j: usize) {
        if self.bounds_seen.len() <= j {
            self.bounds_seen.resize(j + 1, false);
        }
        self.bounds_seen[j] = true;
    }

    /// The pod's history from its first fresh instant to its last: increments summed into
    /// cumulative values, NaN where it had no fresh sample; `order` sorts its buckets by bound.
    fn finish(mut self, name: String, order: &[usize], shared: &[f64]) -> Option<PodHistory> {
        let len = self.requests.len();
        let first = self.fresh.iter().position(|&f| f)?;
        let last = self.fresh.iter().rposition(|&f| f)?;
        let nb = order.len();
        self.buckets.resize(nb * len, 0.0);
        let mut h = PodHistory::new(name, first);
        let n = last + 1 - first;
        h.requests = Vec::with_capacity(n);
        h.errors = Vec::with_capacity(n);
        h.confidence = Vec::with_capacity(n);
        h.buckets = Vec::with_capacity(n * nb);
        let (mut r, mut e) = (0.0, 0.0);
        let mut b = vec![0.0; nb];
        for (i, &shared_at) in shared.iter().enumerate().take(last + 1) {
            r += self.requests[i];
            e += self.errors[i];
            for (k, &j) in order.iter().enumerate() {
                b[k] += self.buckets[j * len + i];
            }
            if i < first {
                continue;
            }
            let fresh = self.fresh[i];
            let or_nan = |v: f64| if fresh { v } else { f64::NAN };
            h.requests.push(or_nan(r));
            h.errors.push(or_nan(e));
            let c = if self.confidence[i].is_nan() {
                shared_at
            } else {
                self.confidence[i]
            };
            h.confidence.push(or_nan(c));
            h.buckets.extend(b.iter().map(|&v| or_nan(v)));
        }
        // The increments are no longer needed; free them before the next pod is finished.
        self.buckets = Vec::new();
        Some(h)
    }
}
