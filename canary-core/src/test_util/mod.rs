//! Test support for this crate and downstream crates (feature `test-util`).
//!
//! - In-memory fakes: [`ScriptedSource`], [`RecordingDeployer`], [`RecordingNotifier`],
//!   [`ManualClock`].
//! - mockall mocks: [`MockMetricsSource`], [`MockDeployer`], [`MockNotifier`].
//! - proptest strategies: [`strategies`].
//! - One conformance suite per trait that every implementation runs: [`conformance`].

mod fakes;

pub mod conformance;
pub mod strategies;

pub use fakes::{
    healthy_metrics, DeployerCall, DeployerOp, ManualClock, RecordingDeployer, RecordingNotifier,
    ScriptedError, ScriptedSource,
};

pub use crate::deployer::MockDeployer;
pub use crate::notifier::MockNotifier;
pub use crate::source::MockMetricsSource;
