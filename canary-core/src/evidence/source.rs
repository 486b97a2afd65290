//! Where metrics come from: the [`MetricsSource`] trait.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::metrics::CanaryMetrics;
use crate::version::Version;

/// Which side of the comparison a query is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// Production, the version being compared against.
    Baseline,
    /// The new version.
    Canary,
}

/// What to fetch: one version's metrics over one window.
///
/// The version is a validated [`Version`]: an empty or blank label would select every series
/// that has no `version` label at all (`version=""` matches a missing label in PromQL), so no
/// source can ever be asked for one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsQuery {
    /// The version label to select series by.
    pub version: Version,
    /// Which arm this is; a source may select the canary by a different label template.
    pub arm: Arm,
    /// The analysis window that rates and quantiles are taken over.
    #[serde(with = "crate::seconds")]
    pub window: Duration,
    /// Evaluation time; `None` means "now". Set it to replay a past analysis.
    pub at: Option<DateTime<Utc>>,
}

impl MetricsQuery {
    /// A query for `version` over `window`, evaluated now.
    pub fn new(version: Version, arm: Arm, window: Duration) -> Self {
        MetricsQuery {
            version,
            arm,
            window,
            at: None,
        }
    }

    /// Evaluates the query at `at` instead of now.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self
    }
}

/// A source of [`CanaryMetrics`], such as Prometheus.
///
/// # Contract
///
/// - **What a call promises.** `fetch` returns the metrics of `query.version` over
///   `query.window` ending at `query.at` (or now). A metric the source could not measure — no
///   series, an empty result, a NaN or infinite sample — is `None` in the result, never 0, and
///   the returned metrics pass [`CanaryMetrics::validate`]. The query that produced each value
///   goes into [`CanaryMetrics::queries`], and any warning the backend gave into
///   [`CanaryMetrics::warnings`].
/// - **Errors.** [`crate::Error::Source`] when the backend cannot answer at all (unreachable,
///   an error status, an unparsable body); `retryable` is true for timeouts, 5xx and refused
///   connections. A partial failure may be reported either as an error or as `None` for the
///   affected metrics; it must never become a number.
/// - **Idempotence.** A fetch only reads. Two fetches with the same explicit `at` over
///   unchanged data return the same values.
/// - **Cancellation.** Safe to cancel at any await point: dropping the future abandons the
///   request and changes nothing.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// Fetches the metrics of one version. See the trait's contract.
    async fn fetch(&self, query: &MetricsQuery) -> Result<CanaryMetrics>;

    /// The same metrics over time: `query.window` ending at `query.at` (or now), one point
    /// every `step`, for a report's charts. Optional: the default has none (an empty list).
    /// Errors as for [`fetch`](Self::fetch). A chart is never evidence: the validator records
    /// a failure here and decides as before.
    async fn fetch_series(
        &self,
        query: &MetricsQuery,
        step: Duration,
    ) -> Result<Vec<MetricSeries>> {
        let _ = (query, step);
        Ok(Vec::new())
    }
}

/// One metric of one version over time, as a report charts it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    /// The metric's name.
    pub metric: String,
    /// `[unix seconds, value]`, oldest first; a point the source had no finite value for is
    /// left out.
    pub points: Vec<[f64; 2]>,
}

/// Fetches baseline and canary concurrently, with one shared window and evaluation time.
pub async fn fetch_pair(
    source: &dyn MetricsSource,
    baseline: &MetricsQuery,
    canary: &MetricsQuery,
) -> (Result<CanaryMetrics>, Result<CanaryMetrics>) {
    futures::join!(source.fetch(baseline), source.fetch(canary))
}
