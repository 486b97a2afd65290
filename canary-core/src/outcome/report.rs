//! What a validation did and why: [`ValidationReport`], as JSON and as Markdown.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::deployer::RollbackTarget;
use crate::format::{num, percent_change, value_text};
use crate::judge::SequencePoint;
use crate::policy::{
    ComparisonStatus, Criticality, Evaluation, MetricComparison, RollbackDecision,
};
use crate::source::{MetricSeries, MetricsQuery, MetricsSource};

/// What happened to the canary in the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The canary became production.
    Promoted,
    /// The canary was removed because the analysis said so.
    RolledBack,
    /// The canary was left as it is for a person to decide.
    HeldForReview,
    /// A step failed; the canary was rolled back where possible.
    Failed,
    /// The validation was cancelled; the canary was rolled back.
    Cancelled,
}

impl Outcome {
    /// `promoted`, `rolled_back`, `held_for_review`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled_back",
            Outcome::HeldForReview => "held_for_review",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One analysis: a region at a traffic weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The region, for multi-region validation.
    pub region: Option<String>,
    /// 1-based step number within the region.
    pub step: usize,
    /// The canary's traffic weight during the step, for progressive validation.
    pub weight: Option<u8>,
    /// When the warm-up of the step began.
    pub started_at: DateTime<Utc>,
    /// How long the step waited before the analysis.
    pub waited_seconds: f64,
    /// The judge that decided: `threshold` for the guide's single look, else the judge's name
    /// (e.g. `sequential`). Absent in reports written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    /// The analysis, with its evidence.
    pub evaluation: Evaluation,
    /// A sequential judge's evidence over time during the step: each statistic's estimate,
    /// interval and margin at the looks it kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<SequencePoint>,
    /// Each metric of both arms over the step's analysis, for charts (empty when the source
    /// has no series).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesPair>,
    /// Why the series are missing, when the source failed to give them (the decision does not
    /// depend on them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_error: Option<String>,
}

/// One metric of both arms over a step, as charts show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesPair {
    /// The metric's name.
    pub metric: String,
    /// Production's `[unix seconds, value]` points.
    pub baseline: Vec<[f64; 2]>,
    /// The canary's `[unix seconds, value]` points.
    pub canary: Vec<[f64; 2]>,
}

impl SeriesPair {
    /// Both arms' series from `source`, fetched concurrently, about 120 points each and never
    /// finer than `min_step` (the scrape interval), paired by metric.
    pub async fn fetch(
        source: &dyn MetricsSource,
        baseline: &MetricsQuery,
        canary: &MetricsQuery,
        min_step: std::time::Duration,
    ) -> crate::Result<Vec<SeriesPair>> {
        let step = (baseline.window / 120).max(min_step);
        let (b, c) = futures::join!(
            source.fetch_series(baseline, step),
            source.fetch_series(canary, step)
        );
        Ok(SeriesPair::pair(b?, c?))
    }

    /// Pairs two arms' series by metric, in the order of `baseline`'s; a metric either arm
    /// lacks keeps an empty side.
    pub fn pair(baseline: Vec<MetricSeries>, canary: Vec<MetricSeries>) -> Vec<SeriesPair> {
        let mut out: Vec<SeriesPair> = baseline
            .into_iter()
            .map(|b| SeriesPair {
                metric: b.metric,
                baseline: b.points,
                canary: Vec::new(),
            })
            .collect();
        for c in canary {
            match out.iter_mut().find(|p| p.metric == c.metric) {
                Some(p) => p.canary = c.points,
                None => out.push(SeriesPair {
                    metric: c.metric,
                    baseline: Vec::new(),
                    canary: c.points,
                }),
            }
        }
        out
    }
}

/// An operation the validator carried out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Action {
    /// Read the production version to compare against.
    ResolveBaseline,
    /// Installed or upgraded the canary.
    DeployCanary {
        /// The canary's version.
        version: String,
    },
    /// Changed the canary's share of traffic.
    SetWeight {
        /// The new weight, in percent.
        percent: u8,
    },
    /// Promoted the canary to production.
    Promote {
        /// The promoted version.
        version: String,
    },
    /// Rolled back.
    Rollback {
        /// What was rolled back.
        target: RollbackTarget,
    },
    /// Left the canary in place for a person to decide.
    HoldForReview,
    /// Installed or upgraded the deployed baseline.
    DeployBaseline {
        /// The baseline's version (production's).
        version: String,
    },
    /// Removed the deployed baseline.
    RemoveBaseline,
}

impl Action {
    /// A short sentence for people.
    pub fn describe(&self) -> String {
        match self {
            Action::ResolveBaseline => "read the production version".into(),
            Action::DeployCanary { version } => format!("deployed canary {version}"),
            Action::SetWeight { percent } => format!("set canary weight to {percent}%"),
            Action::Promote { version } => format!("promoted {version} to production"),
            Action::Rollback {
                target: RollbackTarget::Canary,
            } => "rolled back the canary".into(),
            Action::Rollback {
                target: RollbackTarget::Production { revision },
            } => match revision {
                Some(r) => format!("rolled production back to revision {r}"),
                None => "rolled production back to its previous revision".into(),
            },
            Action::HoldForReview => "left the canary in place for manual review".into(),
            Action::DeployBaseline { version } => format!("deployed baseline {version}"),
            Action::RemoveBaseline => "removed the baseline".into(),
        }
    }
}

/// An action and how it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// When it finished.
    pub at: DateTime<Utc>,
    /// The region, for multi-region validation.
    pub region: Option<String>,
    /// What was done.
    pub action: Action,
    /// Whether it succeeded.
    pub ok: bool,
    /// The error and all its causes, if it failed.
    pub error: Option<String>,
}

/// A notification attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// The notifier's name (never its URL).
    pub notifier: String,
    /// Whether the event was accepted.
    pub delivered: bool,
    /// The error and all its causes, if not.
    pub error: Option<String>,
}

/// The step that failed, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The region, for multi-region validation.
    pub region: Option<String>,
    /// What was being done, e.g. "fetch metrics".
    pub step: String,
    /// The error and all its causes.
    pub error: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
}

/// The outcome of the user's business check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BusinessCheckRecord {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its explanation.
    pub details: String,
}

/// When things happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// When the validation began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// From the first deploy to the decision, if a decision was reached.
    pub analysis_seconds: Option<f64>,
    /// Time spent in warm-up waits (the longest region, for multi-region).
    pub waited_seconds: f64,
    /// From start to end.
    pub total_seconds: f64,
}

/// Everything a validation did, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The canary's version.
    pub version: String,
    /// The baseline's version, if known.
    pub baseline_version: Option<String>,
    /// What the canary was compared with: production, or a baseline deployed for the run.
    #[serde(default)]
    pub baseline_arm: crate::validator::BaselineArm,
    /// What happened to the canary.
    pub outcome: Outcome,
    /// True exactly when the canary was promoted.
    pub success: bool,
    /// The analysis' decision, if one was reached.
    pub decision: Option<RollbackDecision>,
    /// The main reason, for people.
    pub reason: String,
    /// The deciding evaluation: the most cautious region's last step.
    pub evaluation: Option<Evaluation>,
    /// Every analysis, in order.
    pub steps: Vec<StepReport>,
    /// The business check, if one ran.
    pub business_check: Option<BusinessCheckRecord>,
    /// Every action, in the order it finished.
    pub actions: Vec<ActionRecord>,
    /// Every notification attempt.
    pub notifications: Vec<NotificationRecord>,
    /// The failure, when `outcome` is `failed`.
    pub failure: Option<FailureRecord>,
    /// Timings.
    pub timings: Timings,
    /// A dry run: the deployer printed its commands and ran none, so no action took effect.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl ValidationReport {
    /// What a successful action's line says: `ok`, or that a dry run only printed it.
    pub fn done(&self) -> &'static str {
        if self.dry_run {
            "printed, not run (dry run)"
        } else {
            "ok"
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The report for people: the decision first, then the evidence, then the actions.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let decision = self.decision.map(|d| d.as_str()).unwrap_or("none");
        let _ = writeln!(
            md,
            "## Canary {} vs {}: {} (decision: {})\n",
            self.version,
            self.baseline_version
                .as_deref()
                .unwrap_or("unknown baseline"),
            self.outcome.as_str().replace('_', " ").to_uppercase(),
            decision
        );
        if self.dry_run {
            md.push_str(
                "**Dry run:** the helm commands were printed, not run; nothing was deployed.\n\n",
            );
        }
        let _ = writeln!(md, "**Reason:** {}\n", md_text(&self.reason));
        if self.baseline_arm == crate::validator::BaselineArm::Deployed {
            let _ = writeln!(
                md,
                "**Baseline:** a deployed baseline of {} (the canary's size, share and age), not production's pods\n",
                self.baseline_version.as_deref().unwrap_or("production's version")
            );
        }
        let mut judges: Vec<&str> = Vec::new();
        for j in self.steps.iter().filter_map(|s| s.judge.as_deref()) {
            if !judges.contains(&j) {
                judges.push(j);
            }
        }
        if !judges.is_empty() {
            let _ = writeln!(md, "**Judge:** {}\n", md_text(&judges.join(", ")));
        }
        if let Some(e) = &self.evaluation {
            let _ = writeln!(md, "**Recommendation:** {}\n", md_text(&e.recommendation));
        }
        if let Some(f) = &self.failure {
            let region = f
                .region
                .as_deref()
                .map(|r| format!(" in {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "**Failed step:** {}{region}: {}\n",
                f.step,
                md_text(&f.error)
            );
        }
        if !self.steps.is_empty() {
            md.push_str("### Evidence\n\n");
            md.push_str("| Region | Step | Weight | Metric | Baseline | Canary | Ratio | Change | Threshold | Status |\n");
            md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
            for s in &self.steps {
                for c in &s.evaluation.comparisons {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} |",
                        s.region.as_deref().unwrap_or("—"),
                        s.step,
                        s.weight
                            .map(|w| format!("{w}%"))
                            .unwrap_or_else(|| "—".into()),
                        comparison_cells(c).join(" | ")
                    );
                }
                let samples = |v: Option<f64>| v.map(num).unwrap_or_else(|| "no data".into());
                let _ = writeln!(
                    md,
                    "| {} | {} | | samples | {} | {} | | | {} | |",
                    s.region.as_deref().unwrap_or("—"),
                    s.step,
                    samples(s.evaluation.baseline_samples),
                    samples(s.evaluation.canary_samples),
                    minimum_text(s.evaluation.min_sample_count)
                );
            }
            md.push('\n');
            write_sequences(&mut md, &self.steps);
            if let Some(e) = &self.evaluation {
                e.write_conditions_and_queries(&mut md);
            }
            if let Some(b) = &self.business_check {
                let _ = writeln!(
                    md,
                    "Business check `{}`: {} ({})\n",
                    b.name,
                    if b.passed { "passed" } else { "did not pass" },
                    md_text(&b.details)
                );
            }
        }
        // A heading needs a blank line before it, whatever came last.
        while !md.ends_with("\n\n") {
            md.push('\n');
        }
        md.push_str("### Actions\n\n");
        if self.actions.is_empty() {
            md.push_str("None.\n");
        }
        for (i, a) in self.actions.iter().enumerate() {
            let region = a
                .region
                .as_deref()
                .map(|r| format!("[{r}] "))
                .unwrap_or_default();
            let result = match &a.error {
                None => self.done().to_owned(),
                Some(e) => format!("FAILED: {e}"),
            };
            let _ = writeln!(
                md,
                "{}. {} {region}{} — {result}",
                i + 1,
                a.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                a.action.describe()
            );
        }
        if !self.notifications.is_empty() {
            md.push_str("\n### Notifications\n\n");
            for n in &self.notifications {
                match &n.error {
                    None => {
                        let _ = writeln!(md, "- {}: delivered", n.notifier);
                    }
                    Some(e) => {
                        let _ = writeln!(md, "- {}: NOT delivered: {e}", n.notifier);
                    }
                }
            }
        }
        let t = &self.timings;
        let _ = writeln!(
            md,
            "\n_Started {}, took {} s ({} s waiting{})._",
            t.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            num(t.total_seconds),
            num(t.waited_seconds),
            t.analysis_seconds
                .map(|a| format!(", {} s to decision", num(a)))
                .unwrap_or_default()
        );
        md
    }
}

/// The least sample count a decision needs, for people: `min 100`, or `no minimum` for a judge
/// that sets none (Flagger's, Argo's).
pub fn minimum_text(min: f64) -> String {
    if min > 0.0 {
        format!("min {}", num(min))
    } else {
        "no minimum".into()
    }
}

/// The cells of one evidence row: metric, baseline, canary, ratio, change, threshold, status.
/// One comparison as the evidence table's cells, for people: metric, baseline, canary, ratio,
/// change, threshold, status (`**degraded**` and `**no data**` in Markdown bold).
pub fn comparison_cells(c: &MetricComparison) -> [String; 7] {
    // "no data" only where the lack of data is the finding; a value a judge does not read
    // (Flagger's baseline) or has not reached yet (a warm-up) is a dash.
    let measured = |v: Option<f64>| match v {
        None if c.status != ComparisonStatus::NoData => "—".to_owned(),
        v => value_text(v, &c.unit),
    };
    let threshold = match (c.rollback_threshold, c.warning_threshold) {
        _ if c.rule.is_some() => c.rule.clone().unwrap_or_default(),
        (Some(r), _) => format!(
            "rollback {}×, proceed {}×",
            num(r),
            num(c.proceed_tolerance)
        ),
        (None, Some(w)) => format!("warn {}×", num(w)),
        (None, None) => "—".into(),
    };
    let status = match c.status {
        _ if c.criticality == Criticality::Informational => "not judged",
        ComparisonStatus::Improved => "improved",
        ComparisonStatus::Degraded => "**degraded**",
        ComparisonStatus::Stable => "stable",
        ComparisonStatus::NoData => "**no data**",
        ComparisonStatus::Open => "open",
    };
    [
        c.metric.clone(),
        measured(c.baseline),
        measured(c.canary),
        c.ratio_text().unwrap_or_else(|| "—".into()),
        c.change_percent
            .map(percent_change)
            .unwrap_or_else(|| "—".into()),
        threshold,
        status.to_owned(),
    ]
}

impl Evaluation {
    /// The evaluation for people: decision and reason first, then the evidence table, the
    /// rules that fired, and the queries.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "## {} vs {}: {}\n\n**Reason:** {}\n\n**Recommendation:** {}\n",
            self.canary_version,
            self.baseline_version,
            self.decision.as_str().to_uppercase(),
            md_text(&self.primary_reason),
            md_text(&self.recommendation)
        );
        // A hold before any metric was judged has no rows and no sample count to show.
        if !self.comparisons.is_empty() || self.min_sample_count > 0.0 {
            md.push_str("| Metric | Baseline | Canary | Ratio | Change | Threshold | Status |\n");
            md.push_str("|---|---|---|---|---|---|---|\n");
            for c in &self.comparisons {
                let _ = writeln!(md, "| {} |", comparison_cells(c).join(" | "));
            }
            let samples = |v: Option<f64>| v.map(num).unwrap_or_else(|| "no data".into());
            let _ = writeln!(
                md,
                "| samples | {} | {} | | | {} | |\n",
                samples(self.baseline_samples),
                samples(self.canary_samples),
                minimum_text(self.min_sample_count)
            );
        }
        self.write_conditions_and_queries(&mut md);
        md
    }

    fn write_conditions_and_queries(&self, md: &mut String) {
        if !self.triggered_conditions.is_empty() {
            md.push_str("Rules that fired:\n\n");
            for c in &self.triggered_conditions {
                let rule = serde_json::to_value(c.rule).ok();
                let rule = rule.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
                let _ = writeln!(md, "- `{rule}`: {}", md_text(&c.message));
            }
            md.push('\n');
        }
        let queries: Vec<_> = self
            .comparisons
            .iter()
            .filter_map(|c| c.canary_query.as_ref().map(|q| (c, q)))
            .collect();
        if !queries.is_empty() {
            md.push_str("Queries (canary):\n\n");
            for (c, q) in queries {
                let _ = writeln!(md, "- {}: `{}`", c.metric, q);
            }
            md.push('\n');
        }
        for w in &self.warnings {
            let _ = writeln!(md, "- warning: {}", md_text(w));
        }
    }
}

/// Rows of evidence over time each metric shows at most per step: evenly spaced looks, the
/// last one always included.
const SEQUENCE_ROWS: usize = 8;

/// The sequential judges' evidence over time, per step and statistic: estimate, interval and
/// margin at evenly spaced looks.
fn write_sequences(md: &mut String, steps: &[StepReport]) {
    if steps.iter().all(|s| s.sequence.is_empty()) {
        return;
    }
    md.push_str("### Evidence over time\n\n");
    md.push_str("| Region | Step | Minute | Metric | Statistic | Estimate | Interval | Margin |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    for s in steps {
        let mut by_metric: Vec<(&str, Vec<&SequencePoint>)> = Vec::new();
        for p in &s.sequence {
            match by_metric.iter_mut().find(|(m, _)| *m == p.metric) {
                Some((_, v)) => v.push(p),
                None => by_metric.push((&p.metric, vec![p])),
            }
        }
        for (metric, points) in by_metric {
            let n = points.len();
            let picked: std::collections::BTreeSet<usize> = (0..SEQUENCE_ROWS.min(n))
                .map(|i| (i + 1) * n / SEQUENCE_ROWS.min(n) - 1)
                .collect();
            for p in picked.into_iter().map(|i| points[i]) {
                let v = |x: Option<f64>| x.map(num).unwrap_or_else(|| "—".into());
                let i = &p.interval;
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {metric} | {} | {} | [{}, {}] | {} |",
                    s.region.as_deref().unwrap_or("—"),
                    s.step,
                    num(p.seconds / 60.0),
                    i.statistic,
                    v(i.estimate),
                    v(i.lower),
                    v(i.upper),
                    num(i.margin)
                );
            }
        }
    }
    md.push('\n');
}

/// Text from anywhere (an error body, a server's warning) made inert in Markdown: GitHub
/// renders a subset of HTML in job summaries and comments, so `<`, `>` and `&` are escaped,
/// and a line break cannot start a block of its own.
fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod markdown_tests {
    use super::md_text;

    #[test]
    fn raw_html_in_a_reason_is_inert_in_markdown() {
        let hostile = "Prometheus answered 502: <script>alert(1)</script><img src=x onerror=alert(1)>\n# heading";
        let md = md_text(hostile);
        assert!(!md.contains('<') && !md.contains('>'), "{md}");
        assert!(md.contains("&lt;script&gt;"), "{md}");
        assert!(!md.contains('\n'), "{md}");
    }
}
