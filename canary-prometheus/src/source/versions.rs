//! Which versions the store knows: a version with no series at all is a typo or a label
//! mismatch, a configuration error, not a canary that needs more traffic.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

use super::{unix, PrometheusSource};

/// What the store says about one version's label value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownVersions {
    /// The label the requests query selects the version by, e.g. `version`.
    pub label: String,
    /// The value the version is selected by (the version through the label template).
    pub value: String,
    /// Whether any series in the store carries it between the start and end asked.
    pub known: bool,
    /// The label's values the store has then, sorted (at most 20: enough to spot a typo).
    pub values: Vec<String>,
}

impl PrometheusSource {
    /// Whether the store has any series labelled with `version` for `arm` between `start`
    /// and `end` (the label values API, `/api/v1/label/<label>/values`), and which values
    /// it has. `None` when the requests query selects the version by no `label="…"` matcher,
    /// so there is no label to ask about.
    pub async fn known_versions(
        &self,
        version: &canary_core::Version,
        arm: canary_core::Arm,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Option<KnownVersions>> {
        let Some(label) = self.observation_templates.requests.version_labels().first() else {
            return Ok(None);
        };
        // Label names are [a-zA-Z_][a-zA-Z0-9_]*, safe in a path; anything else is not asked.
        if label.is_empty()
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Ok(None);
        }
        let path = format!("/api/v1/label/{label}/values");
        let params = [("start", unix(start)), ("end", unix(end))];
        let (status, body) = self
            .send_as(crate::QueryMethod::Get, &path, "versions", &path, &params)
            .await?;
        let invalid = |reason: String| Error::InvalidResponse {
            metric: "versions".into(),
            query: path.clone(),
            reason,
        };
        if status != 200 {
            return Err(invalid(format!("HTTP {status}")));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()))?;
        let mut values: Vec<String> = v["data"]
            .as_array()
            .ok_or_else(|| invalid("no data list".into()))?
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
        values.sort();
        let value = self.label_for(version, arm);
        let known = values.contains(&value);
        values.truncate(20);
        Ok(Some(KnownVersions {
            label: label.clone(),
            value,
            known,
            values,
        }))
    }
}
