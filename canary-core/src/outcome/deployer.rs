//! How versions reach the cluster: the [`Deployer`] trait.

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::version::Version;

/// A share of traffic in percent, 0..=100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct TrafficWeight(u8);

impl TrafficWeight {
    /// Validates a percentage.
    pub fn new(percent: u8) -> Result<Self> {
        if percent > 100 {
            return Err(Error::InvalidConfig {
                field: "traffic weight".into(),
                reason: format!("{percent} is not a percentage between 0 and 100"),
            });
        }
        Ok(TrafficWeight(percent))
    }

    /// The percentage.
    pub fn percent(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for TrafficWeight {
    type Error = Error;
    fn try_from(v: u8) -> Result<Self> {
        TrafficWeight::new(v)
    }
}

impl From<TrafficWeight> for u8 {
    fn from(w: TrafficWeight) -> u8 {
        w.0
    }
}

impl fmt::Display for TrafficWeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// What to deploy as the canary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanarySpec {
    /// The version (image tag) of the canary.
    pub version: Version,
    /// A values file for the canary release, such as the guide's `values-canary.yaml`.
    pub values_file: Option<PathBuf>,
}

/// What a rollback undoes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "target")]
pub enum RollbackTarget {
    /// Remove the canary; production is untouched.
    Canary,
    /// Return production to a revision: the given one, or the last deployed one before the
    /// current.
    Production {
        /// The revision to return to.
        revision: Option<u32>,
    },
}

/// The lifecycle state of a release, as the deployment tool reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Running as deployed.
    Deployed,
    /// The last operation failed.
    Failed,
    /// An install, upgrade or rollback is under way.
    Pending,
    /// Removed, or never installed.
    Absent,
    /// A state this library does not know, verbatim.
    Other(String),
}

/// The state of production and canary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    /// Production's state.
    pub production: ReleaseState,
    /// Production's revision, if the tool numbers them.
    pub production_revision: Option<u32>,
    /// The canary's state.
    pub canary: ReleaseState,
    /// The canary's version, if one is deployed.
    pub canary_version: Option<Version>,
}

/// Deploys, shifts traffic, promotes and rolls back, as helm does.
///
/// # Contract
///
/// - **What a call promises.** When a call returns `Ok`, the operation is done: the canary
///   runs `spec.version` (`deploy_canary`), receives the given share of traffic
///   (`set_canary_weight`), production runs the version and the canary is gone (`promote`), or
///   the target is rolled back (`rollback`). `status` and `production_version` only read.
/// - **Errors.** [`crate::Error::Deploy`], with the tool's own error under `source`;
///   `retryable` is true when the same call may work later (another operation in progress, a
///   timeout). After an error the state is unknown: callers roll back the canary.
/// - **Idempotence.** Every operation is idempotent: deploying the same spec twice, setting
///   the same weight twice, or rolling back a canary that is already gone succeeds and changes
///   nothing more.
/// - **Cancellation.** Reads are safe to cancel. A mutating call that is cancelled may or may
///   not have taken effect; because calls are idempotent, the safe follow-up is to roll back
///   the canary.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait Deployer: Send + Sync {
    /// Installs or upgrades the canary release.
    async fn deploy_canary(&self, spec: &CanarySpec) -> Result<()>;
    /// Sends `weight` of the traffic to the canary.
    async fn set_canary_weight(&self, weight: TrafficWeight) -> Result<()>;
    /// Makes `version` production and removes the canary.
    async fn promote(&self, version: &Version) -> Result<()>;
    /// Rolls back the canary or production.
    async fn rollback(&self, target: &RollbackTarget) -> Result<()>;
    /// Reads the state of production and canary.
    async fn status(&self) -> Result<DeploymentStatus>;
    /// The version production runs, or `None` if nothing is deployed.
    async fn production_version(&self) -> Result<Option<Version>>;

    /// Installs or upgrades a baseline next to the canary (`validator.baseline: deployed`,
    /// Spinnaker's practice): `spec.version` is production's version, deployed with the
    /// canary's values (its replica count and share of traffic), its pods labelled so that the
    /// queries tell them from production's. Idempotent, like the rest. The default refuses: a
    /// deployer that cannot deploy one is an error, never a quiet comparison with production.
    async fn deploy_baseline(&self, spec: &CanarySpec) -> Result<()> {
        let _ = spec;
        Err(Error::InvalidConfig {
            field: "validator.baseline".into(),
            reason: "this deployer cannot deploy a baseline; use `production`".into(),
        })
    }

    /// Removes the baseline [`deploy_baseline`](Deployer::deploy_baseline) installed.
    /// Idempotent: with none deployed it succeeds and does nothing (the default).
    async fn remove_baseline(&self) -> Result<()> {
        Ok(())
    }
}
