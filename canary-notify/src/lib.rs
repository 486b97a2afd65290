//! # canary-notify
//!
//! Notifiers for canary decisions, each implementing `canary_core::Notifier`:
//!
//! - [`SlackNotifier`]: one Block Kit message per decision, with a plain-text fallback,
//!   modelled on the guide's "Enhanced alert message": the decision, the version and the
//!   baseline, the metrics that regressed with their baseline values, the reason, the actions
//!   and a dashboard link. Text is escaped and kept within Slack's limits.
//! - [`WebhookNotifier`]: posts the `ValidationReport` (or the evaluation, or the event) as JSON.
//! - [`AlertmanagerNotifier`]: `POST /api/v2/alerts`, resolved by the next promotion.
//!
//! Delivery retries 5xx, 429 and transport errors with jittered backoff. A failure is an
//! error that the validator records in the report; it never blocks or reverses a rollback.
//! Webhook URLs and header values are secrets: never in `Debug` output, logs or errors.
//!
//! ```no_run
//! use std::sync::Arc;
//! use canary_notify::SlackNotifier;
//! # fn run(validator: canary_core::CanaryValidator) -> Result<(), canary_notify::Error> {
//! let slack = SlackNotifier::new(std::env::var("SLACK_WEBHOOK_URL").unwrap_or_default())?
//!     .with_dashboard("https://grafana.example/d/canary-analysis");
//! let validator = validator.with_notifier(Arc::new(slack));
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! This crate has no optional features.

pub mod alertmanager;
pub mod delivery;
pub mod error;
pub mod slack;
pub mod webhook;

pub use alertmanager::AlertmanagerNotifier;
pub use delivery::DeliveryPolicy;
pub use error::{Error, Result};
pub use slack::SlackNotifier;
pub use webhook::{WebhookNotifier, WebhookPayload};
