//! Export of canary's own metrics to a Pushgateway. A CI job has no scrape endpoint, so
//! pushing is how its metrics get out.

use std::time::Duration;

use prometheus_client::registry::Registry;

use canary_core::Redactor;

use crate::error::{Error, Result};
use crate::source::same_origin_redirects;

/// Pushes a registry to one Pushgateway group (`job` plus grouping labels).
#[derive(Debug)]
pub struct Pushgateway {
    client: reqwest::Client,
    url: reqwest::Url,
    job: String,
    redactor: Redactor,
}

impl Pushgateway {
    /// A pusher for `job` at the Pushgateway `url`.
    pub fn new(url: &str, job: &str) -> Result<Self> {
        let invalid = |field, reason: String| Error::InvalidConfig { field, reason };
        let base = crate::config::parse_http_url(url).map_err(|e| invalid("pushgateway url", e))?;
        if job.is_empty() {
            return Err(invalid("job", "a job name must not be empty".into()));
        }
        let mut pg = Pushgateway {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(same_origin_redirects())
                .build()
                .map_err(|e| invalid("pushgateway client", e.to_string()))?,
            url: base,
            job: job.to_owned(),
            redactor: Redactor::default(),
        };
        // Credentials in the URL travel as basic auth; a gateway may echo them back.
        pg.redactor.add_url_credentials(url);
        pg.url
            .path_segments_mut()
            .map_err(|()| invalid("pushgateway url", "cannot be a base URL".into()))?
            .pop_if_empty()
            .push("metrics");
        pg.push_segment("job", job);
        Ok(pg)
    }

    /// Adds a grouping label, e.g. `("service", "apex-inference")`.
    pub fn with_grouping(mut self, label: &str, value: &str) -> Result<Self> {
        let valid = label
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || label == "job" {
            return Err(Error::InvalidConfig {
                field: "grouping label",
                reason: format!("{label:?} is not a label name"),
            });
        }
        self.push_segment(label, value);
        Ok(self)
    }

    fn push_segment(&mut self, label: &str, value: &str) {
        let mut segments = self.url.path_segments_mut().expect("checked in new");
        // Values with '/' or empty ones need the base64 form of the grouping key.
        if value.is_empty() || value.contains('/') {
            segments
                .push(&format!("{label}@base64"))
                .push(&base64url(value.as_bytes()));
        } else {
            segments.push(label).push(value);
        }
    }

    /// Replaces the group's metrics with `registry`'s (HTTP PUT).
    pub async fn push(&self, registry: &Registry) -> Result<()> {
        let body = to_text_format(&canary_core::telemetry::encode(registry));
        let request = self
            .client
            .put(self.url.clone())
            .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            .body(body);
        self.send(request).await
    }

    /// Deletes the group.
    pub async fn delete(&self) -> Result<()> {
        self.send(self.client.delete(self.url.clone())).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<()> {
        let failed = |status, message: String| Error::Push {
            job: self.job.clone(),
            status,
            message: self.redactor.scrub(&message),
        };
        let response = request
            .send()
            .await
            .map_err(|e| failed(0, canary_core::error::chain(&e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(failed(status.as_u16(), body.chars().take(300).collect()))
    }
}

/// Converts OpenMetrics text (what `prometheus-client` writes) to the Prometheus text format
/// 0.0.4 that every Pushgateway reads: counter families are renamed to their `_total` sample
/// name, so they stay counters, and `# EOF` and `# UNIT` lines are dropped.
pub fn to_text_format(openmetrics: &str) -> String {
    let mut counters = Vec::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.push(name.to_owned());
            }
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# TYPE ", "# HELP "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            (counters.iter().any(|c| c == name) && !name.ends_with("_total"))
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        for _ in chunk.len()..3 {
            out.push('=');
        }
    }
    if out.is_empty() {
        out.push('=');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_keep_their_type_in_the_text_format() {
        let om = "# HELP canary_rollback Rollbacks.\n# TYPE canary_rollback counter\ncanary_rollback_total 1\n# HELP g G.\n# TYPE g gauge\ng 0\n# EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP canary_rollback_total Rollbacks.\n# TYPE canary_rollback_total counter\ncanary_rollback_total 1\n# HELP g G.\n# TYPE g gauge\ng 0\n"
        );
    }

    #[test]
    fn grouping_keys_are_encoded() {
        let pg = Pushgateway::new("http://127.0.0.1:9091", "canary").unwrap();
        let pg = pg
            .with_grouping("service", "a b")
            .unwrap()
            .with_grouping("path", "x/y")
            .unwrap();
        assert_eq!(
            pg.url.path(),
            "/metrics/job/canary/service/a%20b/path@base64/eC95"
        );
        assert!(Pushgateway::new("http://h", "").is_err());
        let pg = Pushgateway::new("http://h", "j").unwrap();
        assert!(pg.with_grouping("bad-name", "v").is_err());
        assert_eq!(base64url(b""), "=");
        assert_eq!(base64url(b"ab"), "YWI=");
    }
}
