//! # canary-helm
//!
//! [`HelmDeployer`] implements `canary_core::Deployer` over the helm CLI, v3 or v4.
//! Production is the release `<release>`, the canary the release `<release>-canary` of the same
//! chart, as in the integration guide.
//!
//! | operation | helm command |
//! |---|---|
//! | deploy canary | `upgrade --install <release>-canary <chart> -f <values> --set-string image.tag=<version> --set canary.enabled=true` with wait, roll-back-on-failure and timeout |
//! | set canary weight | `upgrade <release>-canary <chart> --reuse-values --set canary.weight=N` |
//! | promote | `upgrade <release> <chart> --reuse-values --set-string image.tag=<version> --set canary.enabled=false`, then `uninstall <release>-canary --ignore-not-found` |
//! | roll back canary | `uninstall <release>-canary --ignore-not-found` |
//! | roll back production | `rollback <release> <rev>`, `<rev>` from `history -o json` |
//! | status | `status <release> -o json`, `status <release>-canary -o json` |
//! | production version | `get values <release> -o json` → `image.tag` |
//!
//! helm 4 gets `--wait=watcher` and `--rollback-on-failure`; helm 3 gets `--wait` and
//! `--atomic`. The version is asked once with `helm version`.
//!
//! Safety: helm runs as an argument vector through `tokio::process`, never a shell. Versions
//! are validated image tags and go in with `--set-string`, so `v1,canary.enabled=false` never
//! reaches helm as a second value. Every command is bounded by `timeout + kill_grace`; a helm
//! that hangs gets SIGTERM (so it can mark the release failed), then SIGKILL.
//!
//! ```no_run
//! use canary_core::{CanaryValidator, ValidationRequest, Version};
//! use canary_helm::{HelmConfig, HelmDeployer};
//! # async fn run(source: std::sync::Arc<dyn canary_core::MetricsSource>) -> Result<(), Box<dyn std::error::Error>> {
//! let helm = HelmDeployer::new(HelmConfig {
//!     release: "apex-inference".into(),
//!     chart: "./chart".into(),
//!     namespace: Some("prod".into()),
//!     ..Default::default()
//! })?;
//! let validator = CanaryValidator::new(source, std::sync::Arc::new(helm));
//! let report = validator
//!     .validate(ValidationRequest::new(Version::new("v1.3.0")?).with_values_file("values-canary.yaml"))
//!     .await;
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! This crate has no optional features.

pub mod deployer;
pub mod error;
pub mod release;

pub use deployer::{HelmConfig, HelmDeployer, WaitStrategy};
pub use error::{Error, Result};
