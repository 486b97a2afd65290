//! # canary-core
//!
//! Decides whether a canary deployment may be promoted, and drives the validation flow.
//!
//! This crate holds the domain: [`CanaryMetrics`], [`RollbackThresholds`], the
//! [`RollbackPolicy`] that turns two sets of metrics into an [`Evaluation`] with its evidence,
//! and the [`CanaryValidator`] that deploys, waits, analyses, promotes or rolls back, and
//! notifies. It does no I/O of its own: metrics, deployments and notifications go through
//! the traits [`MetricsSource`], [`Deployer`] and [`Notifier`], which the adapter crates
//! (`canary-prometheus`, `canary-helm`, `canary-notify`) implement.
//!
//! ```
//! use canary_core::{CanaryMetrics, RollbackDecision, RollbackPolicy};
//!
//! let baseline = CanaryMetrics::new("v1.0.0")
//!     .with_latency_p50_ms(40.0).with_latency_p95_ms(150.0).with_latency_p99_ms(1000.0)
//!     .with_error_rate_percent(1.0).with_model_confidence(0.9)
//!     .with_request_rate_rps(100.0).with_sample_count(5000.0);
//! let canary = CanaryMetrics { version: "v1.1.0".into(), ..baseline.clone() }
//!     .with_latency_p99_ms(1600.0);
//!
//! let evaluation = RollbackPolicy::default().evaluate(&baseline, &canary);
//! assert_eq!(evaluation.decision, RollbackDecision::RollbackAuto);
//! assert_eq!(evaluation.comparison("latency_p99").unwrap().ratio, Some(1.6));
//! println!("{}", evaluation.primary_reason);
//! ```
//!
//! The rules and their precedence are documented in [`policy`]. Judges that decide from
//! evidence over time ([`observation::Observation`]) implement [`judge::Judge`]; the guide's
//! policy is [`judge::ThresholdJudge`], and [`promql`] reproduces Prometheus's arithmetic.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `test-util` | no | [`test_util`]: in-memory fakes of the three traits, a manual clock, proptest strategies, mockall mocks and the conformance suites every adapter runs |

// The folders follow the flow: evidence (source -> observations) -> decision (judge, policy)
// -> outcome (deploy, notify, report), and the flow that runs them; what they all share stays
// at the root. Each module is re-exported, so its path stays `canary_core::<module>`.
mod decision;
mod evidence;
mod flow;
mod outcome;

#[doc(inline)]
pub use evidence::{metrics, observation, source, version};

#[doc(inline)]
pub use decision::{judge, policy, thresholds};

#[doc(inline)]
pub use outcome::{deployer, notifier, report};

#[doc(inline)]
pub use flow::{business, clock, progress, validator};

// A judge measured on a service's own history.
pub mod backtest;

// Shared: errors, formats, retries, secrets, statistics, Prometheus' arithmetic, telemetry.
pub mod duration;
pub mod error;
pub mod format;
pub mod promql;
pub mod retry;
pub mod seconds;
pub mod secret;
pub mod stats;
pub mod telemetry;

#[cfg(feature = "test-util")]
pub mod test_util;

pub use business::{business_check_fn, BusinessCheck, BusinessVerdict};
pub use clock::{Clock, ScaledClock, SystemClock};
pub use deployer::{
    CanarySpec, Deployer, DeploymentStatus, ReleaseState, RollbackTarget, TrafficWeight,
};
pub use error::{BoxError, Error, Result};
pub use metrics::{CanaryMetrics, Plausible};
pub use notifier::{DecisionEvent, Notifier};
pub use policy::{
    AnytimeInterval, ComparisonStatus, Condition, Criticality, Detectable, Direction, Evaluation,
    MetricComparison, MetricSpec, PodEvidence, RollbackDecision, RollbackPolicy, Rule,
};
pub use progress::{Progress, ProgressEvent, StepPlace};
pub use report::{Action, ActionRecord, Outcome, ValidationReport};
pub use retry::RetryPolicy;
pub use secret::{Redactor, Secret};
pub use source::{fetch_pair, Arm, MetricSeries, MetricsQuery, MetricsSource};
pub use telemetry::ValidationMetrics;
pub use thresholds::RollbackThresholds;
pub use validator::{
    BaselineArm, CanaryValidator, ManualReviewAction, Region, ValidationRequest, ValidatorConfig,
    DEFAULT_PROGRESSIVE_WEIGHTS,
};
pub use version::Version;
