//! Alertmanager v2: a firing alert for every decision that is not a promotion, resolved by
//! the next promotion.
//!
//! Alerts are identified by their labels: `alertname="CanaryValidationFailed"`, a
//! `severity` (`critical` for rollbacks and failures, `warning` for manual review and
//! cancellation), the configured static labels (e.g. `service`) and the region. Versions and
//! reasons go into annotations, so the next promotion resolves the alert whatever version
//! raised it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use canary_core::{DecisionEvent, Notifier, Outcome, Secret};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::delivery::{check_url, DeliveryPolicy, Sender};
use crate::error::Result;

/// The alert's name.
pub const ALERT_NAME: &str = "CanaryValidationFailed";

/// Posts alerts to Alertmanager's `POST /api/v2/alerts`.
#[derive(Debug, Clone)]
pub struct AlertmanagerNotifier {
    endpoint: Secret,
    labels: BTreeMap<String, String>,
    generator_url: Option<String>,
    sender: Sender,
}

impl AlertmanagerNotifier {
    /// A notifier for the Alertmanager at `url` (e.g. `http://alertmanager:9093`).
    pub fn new(url: &str) -> Result<Self> {
        let endpoint = Secret::new(format!("{}/api/v2/alerts", url.trim_end_matches('/')));
        check_url("alertmanager", &endpoint)?;
        Ok(AlertmanagerNotifier {
            endpoint,
            labels: BTreeMap::new(),
            generator_url: None,
            sender: Sender::new("alertmanager", DeliveryPolicy::default())?,
        })
    }

    /// Adds a static label to every alert, e.g. `("service", "apex-inference")`.
    pub fn with_label(mut self, name: &str, value: &str) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Links alerts back to a dashboard or CI run.
    pub fn with_generator_url(mut self, url: &str) -> Self {
        self.generator_url = Some(url.into());
        self
    }

    fn labels(&self, event: &DecisionEvent, severity: &str) -> Value {
        let mut labels = self.labels.clone();
        labels.insert("alertname".into(), ALERT_NAME.into());
        labels.insert("severity".into(), severity.into());
        if let Some(region) = &event.region {
            labels.insert("region".into(), region.clone());
        }
        json!(labels)
    }

    /// The alerts posted for `event`: one firing alert, or, on promotion, the resolution of
    /// both severities.
    pub fn alerts(&self, event: &DecisionEvent) -> Value {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut annotations = BTreeMap::from([
            ("summary".to_owned(), summary(event)),
            ("description".to_owned(), event.reason().to_owned()),
            ("version".to_owned(), event.version().to_owned()),
            ("outcome".to_owned(), event.outcome().as_str().to_owned()),
        ]);
        if let Some(b) = event.baseline_version() {
            annotations.insert("baseline_version".into(), b.to_owned());
        }
        if let Some(d) = event.decision() {
            annotations.insert("decision".into(), d.as_str().into());
        }
        if let Some(e) = event.evaluation() {
            annotations.insert("recommendation".into(), e.recommendation.clone());
        }
        let with_url = |mut alert: Value| {
            if let Some(url) = &self.generator_url {
                alert["generatorURL"] = json!(url);
            }
            alert
        };
        match event.outcome() {
            Outcome::Promoted => json!(["critical", "warning"]
                .iter()
                .map(|sev| with_url(json!({
                    "labels": self.labels(event, sev),
                    "annotations": annotations,
                    "startsAt": now,
                    "endsAt": now,
                })))
                .collect::<Vec<_>>()),
            outcome => {
                let severity = match outcome {
                    Outcome::HeldForReview | Outcome::Cancelled => "warning",
                    _ => "critical",
                };
                json!([with_url(json!({
                    "labels": self.labels(event, severity),
                    "annotations": annotations,
                    "startsAt": now,
                }))])
            }
        }
    }
}

fn summary(event: &DecisionEvent) -> String {
    match event.outcome() {
        Outcome::Promoted => format!("Canary {} promoted", event.version()),
        Outcome::RolledBack => format!("Canary {} rolled back", event.version()),
        Outcome::HeldForReview => format!("Canary {} needs manual review", event.version()),
        Outcome::Failed => format!("Canary validation of {} failed", event.version()),
        Outcome::Cancelled => format!("Canary validation of {} cancelled", event.version()),
        other => format!("Canary {}: {}", event.version(), other.as_str()),
    }
}

#[async_trait]
impl Notifier for AlertmanagerNotifier {
    fn name(&self) -> String {
        "alertmanager".into()
    }

    async fn notify(&self, event: &DecisionEvent) -> canary_core::Result<()> {
        Ok(self
            .sender
            .post(&self.endpoint, &BTreeMap::new(), &self.alerts(event))
            .await?)
    }
}
