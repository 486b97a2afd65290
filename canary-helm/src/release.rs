//! Releases: helm's naming rules, and its JSON outputs (`status`, `history`, `get values`).

use canary_core::ReleaseState;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The longest release name helm accepts.
pub const MAX_RELEASE_NAME: usize = 53;

/// The suffix of the canary release: production is `<release>`, the canary `<release>-canary`.
pub const CANARY_SUFFIX: &str = "-canary";

/// The suffix of the deployed baseline's release (`validator.baseline: deployed`).
pub const BASELINE_SUFFIX: &str = "-baseline";

/// Checks a release name against helm's rules: lower-case DNS labels separated by dots, at
/// most 53 characters.
pub fn validate_release_name(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidReleaseName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("a release name must not be empty");
    }
    if name.len() > MAX_RELEASE_NAME {
        return invalid("a release name is at most 53 characters");
    }
    for label in name.split('.') {
        let ok_chars = label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let ok_ends = label.starts_with(|c: char| c.is_ascii_alphanumeric())
            && label.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok_chars || !ok_ends {
            return invalid("a release name is lower-case letters, digits, '-' and '.', starting and ending with a letter or digit");
        }
    }
    Ok(())
}

/// `helm status -o json`, the parts this library reads.
#[derive(Debug, Deserialize)]
pub struct StatusJson {
    /// The release name.
    pub name: String,
    /// Release info.
    pub info: InfoJson,
    /// The revision.
    pub version: u32,
}

/// `info` of `helm status -o json`.
#[derive(Debug, Deserialize)]
pub struct InfoJson {
    /// `deployed`, `failed`, `pending-upgrade`, ...
    pub status: String,
    /// Description of the last operation.
    #[serde(default)]
    pub description: String,
}

/// One entry of `helm history -o json`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct HistoryEntry {
    /// The revision.
    pub revision: u32,
    /// Its status: `deployed`, `superseded`, `failed`, ...
    pub status: String,
    /// The chart, e.g. `apex-inference-0.1.0`.
    #[serde(default)]
    pub chart: String,
    /// What happened.
    #[serde(default)]
    pub description: String,
}

/// Maps helm's status names onto the core's states.
pub(crate) fn release_state(status: &str) -> ReleaseState {
    match status {
        "deployed" => ReleaseState::Deployed,
        "failed" => ReleaseState::Failed,
        s if s.starts_with("pending-") || s == "uninstalling" => ReleaseState::Pending,
        "uninstalled" => ReleaseState::Absent,
        other => ReleaseState::Other(other.to_owned()),
    }
}

/// The revision to roll production back to: the last one before the current that was
/// deployed (now `superseded`). Failed revisions are skipped.
pub(crate) fn previous_deployed_revision(history: &[HistoryEntry]) -> Option<u32> {
    let current = history
        .iter()
        .filter(|e| e.status == "deployed")
        .map(|e| e.revision)
        .max()?;
    history
        .iter()
        .filter(|e| e.revision < current && matches!(e.status.as_str(), "superseded" | "deployed"))
        .map(|e| e.revision)
        .max()
}

/// `image.tag` from `helm get values -o json` (which prints `null` when nothing was set).
pub(crate) fn image_tag(values: &serde_json::Value) -> Option<String> {
    values.get("image")?.get("tag")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names_follow_helms_rules() {
        for ok in ["apex-inference", "a", "app.v2", "x1-canary"] {
            validate_release_name(ok).unwrap();
        }
        for bad in [
            "",
            "Apex",
            "-app",
            "app-",
            "a_b",
            "a..b",
            "app;rm",
            &"a".repeat(54),
        ] {
            assert!(validate_release_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rollback_skips_failed_revisions() {
        let h: Vec<HistoryEntry> = serde_json::from_str(
            r#"[{"revision":1,"updated":"t","status":"superseded","chart":"c-0.1.0","app_version":"1","description":"Install complete"},
                {"revision":2,"updated":"t","status":"failed","chart":"c-0.1.0","app_version":"1","description":"Upgrade failed"},
                {"revision":3,"updated":"t","status":"superseded","chart":"c-0.1.0","app_version":"1","description":"Upgrade complete"},
                {"revision":4,"updated":"t","status":"deployed","chart":"c-0.1.0","app_version":"1","description":"Upgrade complete"}]"#,
        )
        .unwrap();
        assert_eq!(previous_deployed_revision(&h), Some(3));
        assert_eq!(previous_deployed_revision(&h[..1]), None);
        assert_eq!(previous_deployed_revision(&[]), None);
    }

    #[test]
    fn image_tag_is_read_from_values() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"image":{"tag":"v1.2.0"},"canary":{"enabled":false}}"#)
                .unwrap();
        assert_eq!(image_tag(&v).as_deref(), Some("v1.2.0"));
        assert_eq!(image_tag(&serde_json::Value::Null), None);
        assert_eq!(release_state("pending-upgrade"), ReleaseState::Pending);
    }
}
