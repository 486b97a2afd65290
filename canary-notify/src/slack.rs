//! Slack incoming webhooks: one Block Kit message per decision, with a plain-text fallback.

use std::collections::BTreeMap;

use async_trait::async_trait;
use canary_core::{ComparisonStatus, Criticality, DecisionEvent, Notifier, Outcome, Secret};
use serde_json::{json, Value};

use crate::delivery::{check_url, DeliveryPolicy, Sender};
use crate::error::Result;

/// Slack's limit on blocks per message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on a section's text.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Slack's limit on a header's text.
pub const MAX_HEADER_TEXT: usize = 150;
/// A safe limit for the fallback `text`.
pub const MAX_FALLBACK_TEXT: usize = 4000;

/// Posts decisions to a Slack incoming webhook. The webhook URL is a secret: it is redacted
/// from `Debug`, logs and errors.
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    webhook: Secret,
    dashboard_url: Option<String>,
    sender: Sender,
}

impl SlackNotifier {
    /// A notifier posting to `webhook`.
    pub fn new(webhook: impl Into<Secret>) -> Result<Self> {
        Self::with_policy(webhook, DeliveryPolicy::default())
    }

    /// A notifier with its own retry policy.
    pub fn with_policy(webhook: impl Into<Secret>, policy: DeliveryPolicy) -> Result<Self> {
        let webhook = webhook.into();
        check_url("slack", &webhook)?;
        Ok(SlackNotifier {
            webhook,
            dashboard_url: None,
            sender: Sender::new("slack", policy)?,
        })
    }

    /// Links every message to a dashboard.
    pub fn with_dashboard(mut self, url: impl Into<String>) -> Self {
        self.dashboard_url = Some(url.into());
        self
    }

    /// Posts a free-form message as an attachment of `color` (`good`, `warning`, `danger` or
    /// a hex colour), like the guide's `send_alert(message, color)`.
    pub async fn send_alert(&self, message: &str, color: &str) -> Result<()> {
        let text = truncate(&escape(message), MAX_SECTION_TEXT);
        let body = json!({
            "text": truncate(message, MAX_FALLBACK_TEXT),
            "attachments": [{ "color": color, "text": text, "mrkdwn_in": ["text"] }],
        });
        self.sender
            .post(&self.webhook, &BTreeMap::new(), &body)
            .await
    }

    /// The dashboard every message links to, if any.
    pub fn dashboard_url(&self) -> Option<&str> {
        self.dashboard_url.as_deref()
    }

    /// The message for `event`, as posted.
    pub fn message(&self, event: &DecisionEvent) -> Value {
        message(event, self.dashboard_url.as_deref())
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn name(&self) -> String {
        "slack".into()
    }

    async fn notify(&self, event: &DecisionEvent) -> canary_core::Result<()> {
        Ok(self
            .sender
            .post(&self.webhook, &BTreeMap::new(), &self.message(event))
            .await?)
    }
}

/// The guide's free-form alert texts (`AlertManager.notify_*`), with their colours. The same
/// headlines as the Block Kit messages the validator sends.
pub mod alert_text {
    use canary_core::CanaryMetrics;

    /// A promotion: `("good", text)`.
    pub fn success(version: &str, reason: Option<&str>) -> (&'static str, String) {
        let reason = reason.unwrap_or("all checks passed");
        ("good", format!("✅ Canary {version} promoted\n{reason}"))
    }

    /// A request for review: `("warning", text)`.
    pub fn manual_review(version: &str, reason: Option<&str>) -> (&'static str, String) {
        let reason = reason.unwrap_or_default();
        (
            "warning",
            format!("⚠️ Canary {version} needs manual review\n{reason}"),
        )
    }

    /// The guide's "enhanced alert message" for an automatic rollback: `("danger", text)`.
    pub fn rollback(
        version: &str,
        metrics: Option<(&CanaryMetrics, &CanaryMetrics)>,
        reason: Option<&str>,
        dashboard_url: Option<&str>,
    ) -> (&'static str, String) {
        let mut lines = vec![format!("🚨 Automatic rollback triggered for {version}")];
        if let Some(r) = reason {
            lines.push(format!("Reason: {r}"));
        }
        if let Some((baseline, canary)) = metrics {
            let f = |v: Option<f64>, unit: &str, digits: usize| match v {
                None => "no data".to_owned(),
                Some(v) => format!("{v:.digits$}{unit}"),
            };
            lines.push(String::new());
            lines.push("Metrics:".into());
            lines.push(format!(
                "- P99 Latency: {} (was {})",
                f(canary.latency_p99_ms, "ms", 1),
                f(baseline.latency_p99_ms, "ms", 1)
            ));
            lines.push(format!(
                "- Error Rate: {} (was {})",
                f(canary.error_rate_percent, "%", 2),
                f(baseline.error_rate_percent, "%", 2)
            ));
            lines.push(format!(
                "- Confidence: {} (was {})",
                f(canary.model_confidence, "", 2),
                f(baseline.model_confidence, "", 2)
            ));
        }
        lines.push(String::new());
        lines.push("Action: Investigation required".into());
        if let Some(d) = dashboard_url {
            lines.push(format!("Dashboard: {d}"));
        }
        ("danger", lines.join("\n"))
    }
}

/// Escapes `&`, `<` and `>`, as Slack's mrkdwn requires.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn headline(event: &DecisionEvent) -> (&'static str, String) {
    let v = event.version();
    match event.outcome() {
        Outcome::Promoted => ("good", format!("✅ Canary {v} promoted")),
        Outcome::RolledBack
            if event.decision() == Some(canary_core::RollbackDecision::RollbackAuto) =>
        {
            ("danger", format!("🚨 Automatic rollback triggered for {v}"))
        }
        Outcome::RolledBack => ("danger", format!("↩️ Canary {v} rolled back after review")),
        Outcome::HeldForReview => ("warning", format!("⚠️ Canary {v} needs manual review")),
        Outcome::Failed => ("danger", format!("❌ Canary validation of {v} failed")),
        Outcome::Cancelled => ("warning", format!("⏹️ Canary validation of {v} cancelled")),
        other => ("warning", format!("Canary {v}: {}", other.as_str())),
    }
}

/// The Block Kit message for `event`: decision, versions, the regressed metrics with their
/// baselines, the reason, the actions and a dashboard link. Within Slack's limits.
pub fn message(event: &DecisionEvent, dashboard_url: Option<&str>) -> Value {
    let (_, title) = headline(event);
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&title, MAX_HEADER_TEXT), "emoji": true }
    })];
    let mut fields = vec![
        format!("*Version:*\n{}", escape(event.version())),
        format!(
            "*Baseline:*\n{}",
            escape(event.baseline_version().unwrap_or("unknown"))
        ),
        format!(
            "*Decision:*\n{}",
            event.decision().map(|d| d.as_str()).unwrap_or("none")
        ),
        format!("*Outcome:*\n{}", event.outcome().as_str()),
    ];
    if let Some(region) = &event.region {
        fields.push(format!("*Region:*\n{}", escape(region)));
    }
    blocks.push(json!({
        "type": "section",
        "fields": fields.iter().map(|f| json!({"type": "mrkdwn", "text": f})).collect::<Vec<_>>()
    }));
    blocks.push(section(&format!("*Reason:* {}", escape(event.reason()))));

    let mut metric_lines = Vec::new();
    if let Some(e) = event.evaluation() {
        for c in &e.comparisons {
            let regressed = matches!(
                c.status,
                ComparisonStatus::Degraded | ComparisonStatus::NoData
            ) && c.criticality != Criticality::Informational;
            if regressed {
                let ratio = c.ratio_text().map(|r| format!(", {r}")).unwrap_or_default();
                metric_lines.push(format!(
                    "• *{}*: {} (was {}{ratio})",
                    escape(&c.metric),
                    escape(&c.canary_text()),
                    escape(&c.baseline_text())
                ));
            }
        }
    }
    if !metric_lines.is_empty() {
        blocks.push(section(&format!(
            "*Metrics that regressed:*\n{}",
            join_within(&metric_lines, MAX_SECTION_TEXT - 40)
        )));
    } else if event.evaluation().is_some() {
        blocks.push(section("*Metrics:* no metric regressed beyond tolerance"));
    }
    if let Some(e) = event.evaluation() {
        blocks.push(section(&format!(
            "*Recommendation:* {}",
            escape(&e.recommendation)
        )));
    }
    let actions = event.action_lines();
    if !actions.is_empty() {
        let lines: Vec<String> = actions.iter().map(|a| format!("• {}", escape(a))).collect();
        blocks.push(section(&format!(
            "*Actions:*\n{}",
            join_within(&lines, MAX_SECTION_TEXT - 20)
        )));
    }
    if let Some(url) = dashboard_url {
        blocks.push(json!({
            "type": "actions",
            "elements": [{ "type": "button", "text": { "type": "plain_text", "text": "Open dashboard" }, "url": url }]
        }));
    }
    blocks.truncate(MAX_BLOCKS);

    let mut fallback = format!("{title}\n{}", event.reason());
    for line in &metric_lines {
        fallback.push('\n');
        fallback.push_str(&line.replace('*', ""));
    }
    if let Some(url) = dashboard_url {
        fallback.push_str(&format!("\nDashboard: {url}"));
    }
    json!({ "text": truncate(&fallback, MAX_FALLBACK_TEXT), "blocks": blocks })
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT) } })
}

/// Joins lines until `max` characters, then says how many were left out.
fn join_within(lines: &[String], max: usize) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if out.chars().count() + line.chars().count() + 1 > max {
            out.push_str(&format!("\n… and {} more", lines.len() - i));
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_truncation() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        let lines: Vec<String> = (0..100).map(|i| format!("line {i:03}")).collect();
        let joined = join_within(&lines, 50);
        assert!(
            joined.chars().count() <= 70 && joined.ends_with("more"),
            "{joined}"
        );
    }

    #[test]
    fn webhook_urls_must_be_http() {
        assert!(SlackNotifier::new("not a url").is_err());
        let e = SlackNotifier::new("ftp://hooks.slack.com/services/SECRET").unwrap_err();
        assert!(!e.to_string().contains("SECRET"));
        let n = SlackNotifier::new("https://hooks.slack.com/services/T0/B0/SECRET").unwrap();
        assert!(!format!("{n:?}").contains("SECRET"));
    }
}
