//! Evidence over time: the arms' histograms, counters and confidence at every step
//! (`ObservationSource`), checked to agree with each other.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};

use crate::error::{Error, Result};
use crate::query::QueryTemplate;
use crate::response::MatrixAnswer;
use canary_core::observation::{Observation, ObservationQuery, ObservationSource};

use super::PrometheusSource;

impl PrometheusSource {
    /// The arm's observations at the multiples of `step` from `start` to `end` (aligned as
    /// VictoriaMetrics aligns them), built from the raw
    /// cumulative series of `PrometheusConfig::observation_queries`: each bucket and counter
    /// series reset-corrected, then summed over instances, an instance that has stopped
    /// counted at its last value ([`carried_sum_at`](canary_core::observation::carried_sum_at),
    /// so a scale-down is not a counter going down); the confidence as its query aggregates
    /// it. Each observation also holds its instances' own histograms and counters
    /// ([`Observation::instances`]), grouped by `instance_label` (or `instance`), at most
    /// `max_instances` of them (a fixed sample of a larger arm). An instant with nothing at
    /// all is left out.
    pub async fn observations(&self, q: &ObservationQuery) -> Result<Vec<Observation>> {
        let step_ms = i64::try_from(q.step.as_millis()).unwrap_or(i64::MAX);
        if step_ms < 1 || q.end < q.start {
            return Err(Error::InvalidConfig {
                field: "observation query",
                reason: "the step must be at least 1 ms and the end not before the start".into(),
            });
        }
        // The instants are the multiples of the step (in ms since the epoch) within the range:
        // VictoriaMetrics aligns a range query's start to its step whatever it is asked, and
        // Thanos's and Mimir's query frontends may; an unaligned grid would then find no point
        // at its own instants. Aligned, every store answers on the same grid, and so does every
        // question asked a few seconds apart.
        // Nothing after what the store answers completely (`query_delay`).
        let end_ms = q.end.min(self.now()).timestamp_millis();
        let start_ms = q.start.timestamp_millis();
        let (first, last) = (
            start_ms.div_euclid(step_ms) * step_ms
                + if start_ms.rem_euclid(step_ms) == 0 {
                    0
                } else {
                    step_ms
                },
            end_ms.div_euclid(step_ms) * step_ms,
        );
        // A range shorter than a step holds no instant; it is still asked, so that a store
        // that cannot answer says so.
        let grid = Utc
            .timestamp_millis_opt(first)
            .single()
            .zip(Utc.timestamp_millis_opt(last).single())
            .filter(|(start, end)| start <= end);
        let aligned = match grid {
            Some((start, end)) => ObservationQuery {
                start,
                end,
                ..q.clone()
            },
            None => q.clone(),
        };
        let q = &aligned;
        let label = self.label_for(&q.version, q.arm);
        let t = &self.observation_templates;
        let fetch = |metric: &'static str, template: &QueryTemplate| {
            let query = self.render(metric, template, &label, q.arm, q.step);
            let names = template.version_labels().to_vec();
            let label = &label;
            async move {
                let query = query?;
                let m = self
                    .range_matrix(metric, &query, q.start, q.end, q.step)
                    .await?;
                agrees(metric, &query, &m, &names, label, q, step_ms)?;
                Ok::<_, Error>(m)
            }
        };
        let (buckets, requests, errors, confidence) = futures::join!(
            fetch("latency_buckets", &t.latency_buckets),
            fetch("requests", &t.requests),
            fetch("errors", &t.errors),
            fetch("model_confidence", &t.model_confidence),
        );
        let (buckets, requests, errors, confidence) = (buckets?, requests?, errors?, confidence?);
        if grid.is_none() {
            return Ok(Vec::new());
        }
        let o = &self.config.observation_queries;
        let instances = crate::observe::Instances {
            label: &o.instance_label,
            max: o.max_instances,
        };
        Ok(crate::observe::assemble(
            q,
            step_ms,
            [&buckets, &requests, &errors],
            &confidence,
            &instances,
        ))
    }
}

#[async_trait]
impl ObservationSource for PrometheusSource {
    async fn observe(&self, query: &ObservationQuery) -> canary_core::Result<Vec<Observation>> {
        self.observations(query).await.map_err(|e| {
            canary_core::Error::source_failed(query.version.as_str(), e.is_retryable(), e)
        })
    }

    fn describe(&self, q: &ObservationQuery) -> Vec<(String, String)> {
        use canary_core::observation::names;
        let label = self.label_for(&q.version, q.arm);
        let t = &self.observation_templates;
        [
            (names::LATENCY, "latency_buckets", &t.latency_buckets),
            (names::REQUESTS, "requests", &t.requests),
            (names::ERRORS, "errors", &t.errors),
            (
                names::MODEL_CONFIDENCE,
                "model_confidence",
                &t.model_confidence,
            ),
        ]
        .into_iter()
        .filter_map(|(name, metric, template)| {
            let query = self.render(metric, template, &label, q.arm, q.step).ok()?;
            Some((name.to_owned(), query))
        })
        .collect()
    }
}

/// A range answer agrees with its question: no series labelled with another version, no
/// point outside the range asked for (a step of slack each side). Otherwise an error naming it.
pub(super) fn agrees(
    metric: &str,
    query: &str,
    m: &MatrixAnswer,
    names: &[String],
    label: &str,
    q: &ObservationQuery,
    step_ms: i64,
) -> Result<()> {
    let invalid = |reason: String| Error::InvalidResponse {
        metric: metric.to_owned(),
        query: query.to_owned(),
        reason,
    };
    let (lo, hi) = (
        q.start.timestamp_millis().saturating_sub(step_ms),
        q.end.timestamp_millis().saturating_add(step_ms),
    );
    for s in &m.series {
        for name in names {
            if let Some(got) = s.labels.get(name).filter(|got| *got != label) {
                return Err(invalid(format!(
                    "a series is labelled {name}={got:?}, but the query selects {name}={label:?}"
                )));
            }
        }
        if let Some(&(t, _)) = s.points.iter().find(|(t, _)| *t < lo || *t > hi) {
            return Err(invalid(format!(
                "a point is stamped {} ms since the epoch, outside the range asked for ({}..{})",
                t, q.start, q.end
            )));
        }
    }
    Ok(())
}
