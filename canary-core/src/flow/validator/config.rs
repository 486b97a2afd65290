//! What the validator is asked to do, and how: requests, regions and configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::deployer::Deployer;
use crate::error::{Error, Result};
use crate::observation::ObservationSource;
use crate::source::MetricsSource;
use crate::version::Version;

/// The guide's progressive traffic weights, in percent.
pub const DEFAULT_PROGRESSIVE_WEIGHTS: [u8; 4] = [5, 10, 25, 50];

/// What to do with the canary when the decision is `RollbackManual`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ManualReviewAction {
    /// Leave the canary as it is and notify: a person decides.
    #[default]
    Hold,
    /// Roll the canary back, and notify.
    Rollback,
}

/// What the canary is compared with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BaselineArm {
    /// Production as it runs: its long-running pods, most of the traffic (the guide's way).
    #[default]
    Production,
    /// A baseline deployed for the run (`<release>-baseline`): production's version, the
    /// canary's size, traffic share and age, its pods labelled apart (Spinnaker's practice).
    /// It removes the age bias of fresh pods against old ones (warm caches, slow leaks), not
    /// the spread between pods. Removed at the end, whatever the end.
    Deployed,
}

impl BaselineArm {
    /// `production` or `deployed`.
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineArm::Production => "production",
            BaselineArm::Deployed => "deployed",
        }
    }
}

/// How the validator runs. Plain data, with defaults, that deserializes from YAML or TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorConfig {
    /// Wait before each analysis, so the canary warms up and collects samples (seconds).
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub warmup: Duration,
    /// The window rates and quantiles are taken over (seconds).
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub analysis_window: Duration,
    /// Traffic weights of a progressive canary, increasing. Empty: one analysis at the weight
    /// the deploy sets.
    pub progressive_weights: Vec<u8>,
    /// What `RollbackManual` does to the canary.
    pub on_manual_review: ManualReviewAction,
    /// With a judge: how often it is fed observations (the scrape interval).
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub judge_step: Duration,
    /// With a judge: when it must decide (`Judge::finish`), counted from the step's start.
    #[serde(with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::seconds::Schema"))]
    pub max_duration: Duration,
    /// What the canary is compared with: `production` (default) or a `deployed` baseline.
    pub baseline: BaselineArm,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            warmup: Duration::from_secs(600),
            analysis_window: Duration::from_secs(300),
            progressive_weights: Vec::new(),
            on_manual_review: ManualReviewAction::Hold,
            judge_step: Duration::from_secs(15),
            max_duration: Duration::from_secs(3600),
            baseline: BaselineArm::Production,
        }
    }
}

impl ValidatorConfig {
    /// The default configuration with the guide's progressive weights 5, 10, 25, 50.
    pub fn progressive() -> Self {
        ValidatorConfig {
            progressive_weights: DEFAULT_PROGRESSIVE_WEIGHTS.to_vec(),
            ..Default::default()
        }
    }

    /// The longest warm-up: a week. Longer is a unit mistake.
    pub const MAX_WARMUP: Duration = Duration::from_secs(7 * 24 * 3600);
    /// The longest analysis window: 31 days.
    pub const MAX_ANALYSIS_WINDOW: Duration = crate::duration::MAX_WINDOW;

    /// Checks the configuration; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.analysis_window < Duration::from_secs(1)
            || self.analysis_window > Self::MAX_ANALYSIS_WINDOW
        {
            return Err(Error::InvalidConfig {
                field: "analysis_window".into(),
                reason: "must be between 1 s and 31 days".into(),
            });
        }
        if self.judge_step < Duration::from_secs(1) || self.judge_step > self.max_duration {
            return Err(Error::InvalidConfig {
                field: "judge_step".into(),
                reason: "must be at least 1 s and at most max_duration".into(),
            });
        }
        if self.max_duration > Self::MAX_WARMUP {
            return Err(Error::InvalidConfig {
                field: "max_duration".into(),
                reason: "must be at most a week".into(),
            });
        }
        if self.warmup > Self::MAX_WARMUP {
            return Err(Error::InvalidConfig {
                field: "warmup".into(),
                reason: "must be at most a week".into(),
            });
        }
        let weights = &self.progressive_weights;
        if let Some(w) = weights.iter().find(|&&w| w == 0 || w > 100) {
            return Err(Error::InvalidConfig {
                field: "progressive_weights".into(),
                reason: format!("{w} is not a weight between 1 and 100"),
            });
        }
        if weights.windows(2).any(|p| p[0] >= p[1]) {
            return Err(Error::InvalidConfig {
                field: "progressive_weights".into(),
                reason: format!("{weights:?} must increase strictly"),
            });
        }
        Ok(())
    }
}

/// Where a canary runs: one metrics source and one deployer, optionally named.
#[derive(Clone)]
pub struct Region {
    /// The region's name; `None` for a single-region validation.
    pub name: Option<String>,
    /// Its metrics.
    pub source: Arc<dyn MetricsSource>,
    /// Its deployments.
    pub deployer: Arc<dyn Deployer>,
    /// Its evidence over time, for a validator that runs a judge
    /// ([`CanaryValidator::with_judge`](crate::CanaryValidator::with_judge)).
    pub observations: Option<Arc<dyn ObservationSource>>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Region {
    /// A named region.
    pub fn new(
        name: impl Into<String>,
        source: Arc<dyn MetricsSource>,
        deployer: Arc<dyn Deployer>,
    ) -> Self {
        Region {
            name: Some(name.into()),
            source,
            deployer,
            observations: None,
        }
    }

    /// Gives the region a source of observations, for judges.
    pub fn with_observations(mut self, observations: Arc<dyn ObservationSource>) -> Self {
        self.observations = Some(observations);
        self
    }
}

/// What to validate.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidationRequest {
    /// The canary's version.
    pub version: Version,
    /// The version to compare with; `None` asks each region's deployer for production's.
    pub baseline_version: Option<Version>,
    /// A values file for the canary deploy (the guide's `values-canary.yaml`).
    pub values_file: Option<PathBuf>,
    /// Overrides the configured warm-up for this run (the guide's `wait_time_minutes`).
    pub warmup: Option<Duration>,
}

impl ValidationRequest {
    /// Validates `version` against production.
    pub fn new(version: Version) -> Self {
        ValidationRequest {
            version,
            baseline_version: None,
            values_file: None,
            warmup: None,
        }
    }
    /// Compares with `baseline` instead of asking the deployer.
    pub fn with_baseline(mut self, baseline: Version) -> Self {
        self.baseline_version = Some(baseline);
        self
    }
    /// Deploys the canary with this values file.
    pub fn with_values_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.values_file = Some(path.into());
        self
    }
    /// Waits this long before each analysis.
    pub fn with_warmup(mut self, warmup: Duration) -> Self {
        self.warmup = Some(warmup);
        self
    }
}
