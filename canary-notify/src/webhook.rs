//! A generic JSON webhook: posts the report, the evaluation, or the event.

use std::collections::BTreeMap;

use async_trait::async_trait;
use canary_core::{DecisionEvent, Notifier, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::delivery::{check_url, DeliveryPolicy, Sender};
use crate::error::Result;

/// What the webhook body holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookPayload {
    /// `{"kind": "canary_report", "region": ..., "report": ValidationReport}`.
    #[default]
    Report,
    /// `{"kind": "canary_evaluation", "evaluation": Evaluation, ...}`; the report when no
    /// analysis finished.
    Evaluation,
}

/// Posts decisions as JSON to any HTTP endpoint. The URL and header values are secrets.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    name: String,
    url: Secret,
    headers: BTreeMap<String, Secret>,
    payload: WebhookPayload,
    sender: Sender,
}

impl WebhookNotifier {
    /// A webhook named `name` (for reports and logs) posting to `url`.
    pub fn new(name: &str, url: impl Into<Secret>) -> Result<Self> {
        let url = url.into();
        check_url(name, &url)?;
        Ok(WebhookNotifier {
            name: name.into(),
            url,
            headers: BTreeMap::new(),
            payload: WebhookPayload::Report,
            sender: Sender::new(name, DeliveryPolicy::default())?,
        })
    }

    /// Adds a header, e.g. `Authorization`; its value is redacted everywhere.
    pub fn with_header(mut self, name: &str, value: impl Into<Secret>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Chooses the body.
    pub fn with_payload(mut self, payload: WebhookPayload) -> Self {
        self.payload = payload;
        self
    }

    /// Uses this retry policy.
    pub fn with_policy(mut self, policy: DeliveryPolicy) -> Result<Self> {
        self.sender = Sender::new(&self.name, policy)?;
        Ok(self)
    }

    /// The body posted for `event`.
    pub fn body(&self, event: &DecisionEvent) -> Value {
        match (self.payload, event.evaluation()) {
            (WebhookPayload::Evaluation, Some(evaluation)) => json!({
                "kind": "canary_evaluation",
                "outcome": event.outcome(),
                "version": event.version(),
                "baseline_version": event.baseline_version(),
                "region": event.region,
                "evaluation": evaluation,
            }),
            _ => json!({ "kind": "canary_report", "region": event.region, "report": event.report }),
        }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn notify(&self, event: &DecisionEvent) -> canary_core::Result<()> {
        Ok(self
            .sender
            .post(&self.url, &self.headers, &self.body(event))
            .await?)
    }
}
