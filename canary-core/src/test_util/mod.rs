//! Test support for this crate and downstream crates (feature `test-util`).
//!
//! - In-memory fakes: [`ScriptedSource`], [`ScriptedObservations`] (with
//!   [`steady_observations`]), [`RecordingDeployer`], [`RecordingNotifier`], [`ManualClock`].
//! - mockall mocks: [`MockMetricsSource`], [`MockDeployer`], [`MockNotifier`].
//! - proptest strategies: [`strategies`].
//! - One conformance suite per trait that every implementation runs: [`conformance`].

mod fakes;
mod observations;

pub mod conformance;
pub mod strategies;

pub use fakes::{
    healthy_metrics, DeployerCall, DeployerOp, ManualClock, RecordingDeployer, RecordingNotifier,
    ScriptedError, ScriptedSource,
};
pub use observations::{
    every_judge, judge_pairs, steady_observations, ScriptedObservations, HEALTHY_SHARES,
};

pub use crate::deployer::MockDeployer;
pub use crate::notifier::MockNotifier;
pub use crate::observation::MockObservationSource;
pub use crate::source::MockMetricsSource;
