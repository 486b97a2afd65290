//! Queries of canary's metrics: instant, range and matrix queries, and every configured
//! metric of one version (`MetricsSource`).

use std::time::Duration;

use async_trait::async_trait;
use canary_core::{CanaryMetrics, MetricSeries, MetricsQuery, MetricsSource};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::response::{
    parse_instant, parse_instant_expecting, parse_matrix, parse_range, Answer, Expected,
    MatrixAnswer, RangeAnswer,
};

use super::{unix, PrometheusSource};

impl PrometheusSource {
    /// Runs one range query over `[start, end]` every `step`, keeping every series.
    pub async fn range_matrix(
        &self,
        metric: &str,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<MatrixAnswer> {
        let (status, body) = self.send_range(metric, query, start, end, step).await?;
        let mut answer =
            parse_matrix(metric, query, status, &body).map_err(|e| e.scrub(&self.redactor))?;
        answer.warnings = self.warnings_that_count(answer.warnings);
        Ok(answer)
    }

    /// Sends one `/api/v1/query_range` over `[start, end]` every `step`, with retries.
    pub(super) async fn send_range(
        &self,
        metric: &str,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<(u16, Vec<u8>)> {
        let params = vec![
            ("query", query.to_owned()),
            ("start", unix(start)),
            ("end", unix(end)),
            ("step", format!("{}", step.as_secs_f64().max(0.001))),
        ];
        self.send("/api/v1/query_range", metric, query, &params)
            .await
    }

    /// Runs one instant query at `at`, with retries.
    pub async fn instant(&self, metric: &str, query: &str, at: DateTime<Utc>) -> Result<Answer> {
        let params = vec![("query", query.to_owned()), ("time", unix(at))];
        let (status, body) = self.send("/api/v1/query", metric, query, &params).await?;
        parse_instant(metric, query, status, &body)
            .map(|a| self.scrub_answer(a))
            .map_err(|e| e.scrub(&self.redactor))
    }

    /// Runs one instant query at `at` and checks that the answer agrees with the question
    /// ([`Expected`]): another version's series, a sample from another time, or a scalar the
    /// query cannot return is an error.
    pub async fn instant_expecting(
        &self,
        metric: &str,
        query: &str,
        at: DateTime<Utc>,
        expected_labels: &[(String, String)],
        scalar: bool,
    ) -> Result<Answer> {
        let params = vec![("query", query.to_owned()), ("time", unix(at))];
        let (status, body) = self.send("/api/v1/query", metric, query, &params).await?;
        let expected = Expected {
            labels: expected_labels,
            at_unix: at.timestamp_millis() as f64 / 1000.0,
            scalar,
        };
        parse_instant_expecting(metric, query, status, &body, &expected)
            .map(|a| self.scrub_answer(a))
            .map_err(|e| e.scrub(&self.redactor))
    }

    /// Runs one range query over `[at - window, at]` every `step`, with retries.
    pub async fn range(
        &self,
        metric: &str,
        query: &str,
        at: DateTime<Utc>,
        window: Duration,
        step: Duration,
    ) -> Result<RangeAnswer> {
        let start = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| at.checked_sub_signed(w))
            .ok_or_else(|| Error::InvalidConfig {
                field: "window",
                reason: format!("{window:?} reaches before any representable time"),
            })?;
        let (status, body) = self.send_range(metric, query, start, at, step).await?;
        parse_range(metric, query, status, &body).map_err(|e| e.scrub(&self.redactor))
    }

    /// The series of one configured metric of one version over the window, for reports and
    /// judges that need more than a single number.
    pub async fn metric_range(
        &self,
        metric: &str,
        query: &MetricsQuery,
        step: Duration,
    ) -> Result<RangeAnswer> {
        let template = self
            .queries()
            .get(metric)
            .cloned()
            .ok_or_else(|| Error::InvalidConfig {
                field: "queries",
                reason: format!("no query is configured for {metric}"),
            })?;
        let q = self.render(
            metric,
            &template,
            &self.label_value(query),
            query.arm,
            query.window,
        )?;
        self.range(
            metric,
            &q,
            query.at.unwrap_or_else(Utc::now),
            query.window,
            step,
        )
        .await
    }

    /// Fetches every configured metric of one version, concurrently.
    pub async fn fetch_metrics(&self, query: &MetricsQuery) -> Result<CanaryMetrics> {
        let coalesce = &self.config.coalesce;
        let at = match query.at {
            Some(at) => at,
            None if coalesce.enabled => crate::coalesce::round_down(self.now(), coalesce.step),
            None => self.now(),
        };
        let label = self.label_value(query);
        let queries = self.queries();
        let mut rendered = Vec::new();
        for (metric, template) in queries.iter() {
            rendered.push(self.render(metric, template, &label, query.arm, query.window)?);
        }
        let results = futures::future::join_all(queries.iter().zip(rendered).map(
            |((metric, template), q)| {
                let expected: Vec<(String, String)> = template
                    .version_labels()
                    .iter()
                    .map(|name| (name.clone(), label.clone()))
                    .collect();
                let scalar = template.can_be_scalar();
                async move {
                    let ask = || self.instant_expecting(metric, &q, at, &expected, scalar);
                    let answer = if coalesce.enabled {
                        self.coalescer.get(&q, at, coalesce.ttl, ask).await
                    } else {
                        ask().await
                    };
                    (metric, q, answer)
                }
            },
        ))
        .await;
        let mut metrics = CanaryMetrics::at(&query.version, at);
        for (metric, q, answer) in results {
            let answer = answer?;
            metrics.set_value(metric, answer.value);
            let store_warnings: Vec<String> = answer
                .warnings
                .into_iter()
                .map(|w| format!("{metric}: {w}"))
                .collect();
            metrics.warnings.extend(store_warnings.iter().cloned());
            metrics.store_warnings.extend(store_warnings);
            if let Some(reason) = answer.no_data {
                metrics
                    .warnings
                    .push(format!("{metric}: no data: {reason}"));
            }
            metrics.queries.insert(metric.to_owned(), q);
        }
        // An arm that served requests in the window: does any series of them still report at
        // its end? A store that marks stale series (a target that stopped answering) has none
        // left; one that does not (backfilled data) keeps a series for its lookback.
        if metrics.sample_count.is_some_and(|n| n > 0.0) {
            let t = &self.observation_templates.requests;
            let selector = self.render("requests", t, &label, query.arm, query.window)?;
            let q = format!("max(timestamp({selector}))");
            let ask = || self.instant("latest_sample", &q, at);
            let answer = if coalesce.enabled {
                self.coalescer.get(&q, at, coalesce.ttl, ask).await?
            } else {
                ask().await?
            };
            if answer.value.is_none() {
                metrics.stopped_reporting = Some(format!(
                    "it served requests in the window, but no series of them reports at {at} \
                     ({q} is empty): its pods stopped, or its target is down"
                ));
            }
        }
        Ok(metrics)
    }
}

#[async_trait]
impl MetricsSource for PrometheusSource {
    async fn fetch(&self, query: &MetricsQuery) -> canary_core::Result<CanaryMetrics> {
        let metrics = self
            .fetch_metrics(query)
            .await
            .map_err(|e| canary_core::Error::source_failed(&query.version, e.is_retryable(), e))?;
        metrics.validate()?;
        Ok(metrics)
    }

    async fn fetch_series(
        &self,
        query: &MetricsQuery,
        step: Duration,
    ) -> canary_core::Result<Vec<MetricSeries>> {
        self.series(query, step)
            .await
            .map_err(|e| canary_core::Error::source_failed(&query.version, e.is_retryable(), e))
    }
}

impl PrometheusSource {
    /// Every configured metric of one version as range queries: `query.window` ending at
    /// `query.at`, one point per `step`, rates over four steps (at least a minute) so the
    /// chart shows movement the analysis window would smooth away.
    pub(super) async fn series(
        &self,
        query: &MetricsQuery,
        step: Duration,
    ) -> Result<Vec<MetricSeries>> {
        let at = query.at.unwrap_or_else(Utc::now);
        let rate_window = (step * 4).max(Duration::from_secs(60));
        let label = self.label_value(query);
        let queries = self.queries();
        let ranges = queries.iter().map(|(metric, template)| {
            let q = self.render(metric, template, &label, query.arm, rate_window);
            async move {
                let q = q?;
                let answer = self.range(metric, &q, at, query.window, step).await?;
                Ok::<_, Error>(MetricSeries {
                    metric: metric.to_owned(),
                    points: answer
                        .points
                        .into_iter()
                        .filter_map(|(t, v)| v.filter(|v| v.is_finite()).map(|v| [t, v]))
                        .collect(),
                })
            }
        });
        futures::future::try_join_all(ranges).await
    }
}
