//! PromQL query templates: placeholders, escaping, and the guide's default queries.
//!
//! A template names a version with `{version}` (or the guide's `%s`) and the analysis window
//! with `{window}`. A version placeholder must sit inside a double-quoted label value, where
//! it is escaped by PromQL string rules, so a version such as `v1"} or vector(1) or {x="`
//! stays one label value and cannot change the query. Templates are parsed with
//! `promql-parser` when they are configured: a broken one fails at once, naming its metric.

use std::collections::BTreeMap;
use std::time::Duration;

use canary_core::metrics::names;

use crate::error::{Error, Result};

/// The label that selects a version, in the guide's instrumentation.
pub const VERSION_LABEL: &str = "version";

/// A checked query template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryTemplate {
    text: String,
    // Derived from `text` once, not on every query.
    version_labels: Vec<String>,
    scalar: bool,
}

/// A piece of a template: literal text, or a placeholder.
enum Piece<'a> {
    Text(&'a str),
    Version,
    Window,
}

impl QueryTemplate {
    /// Checks `template` for `metric`: placeholders in the right places, and valid PromQL.
    pub fn new(metric: &str, template: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidTemplate {
            metric: metric.to_owned(),
            template: template.to_owned(),
            reason,
        };
        let pieces = split(template).map_err(invalid)?;
        if !pieces.iter().any(|p| matches!(p, Piece::Version)) {
            return Err(invalid(
                "it has no {version} (or %s) placeholder, so it would not tell the versions apart"
                    .into(),
            ));
        }
        let t = QueryTemplate {
            version_labels: version_labels(template),
            scalar: can_be_scalar(template),
            text: template.to_owned(),
        };
        let probe = t.render("v1.0.0-probe", Duration::from_secs(300));
        promql_parser::parser::parse(&probe)
            .map_err(|e| invalid(format!("not valid PromQL: {e}")))?;
        Ok(t)
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The labels that select the version with `=` (`version="{version}"` gives `version`):
    /// an answer's series may drop them, but must not carry another value.
    pub fn version_labels(&self) -> &[String] {
        &self.version_labels
    }

    /// Whether the query can answer a scalar: it is `scalar(...)`, `time()` or a number.
    pub fn can_be_scalar(&self) -> bool {
        self.scalar
    }

    /// The query for `version` over `window`, with the version escaped.
    pub fn render(&self, version: &str, window: Duration) -> String {
        self.render_selecting(version, window, &BTreeMap::new())
            .expect("no extra matchers to place")
    }

    /// [`render`](Self::render) with `matchers` (label, value; values escaped) added next to
    /// every `name="{version}"` matcher, so that the same query selects a subset of the
    /// version's series (a deployed baseline's pods, say). `None` when `matchers` is not empty
    /// and the template has no such matcher to put them next to: the query could not be
    /// narrowed, and must not run unnarrowed.
    pub fn render_selecting(
        &self,
        version: &str,
        window: Duration,
        matchers: &BTreeMap<String, String>,
    ) -> Option<String> {
        let pieces = split(&self.text).expect("checked when the template was made");
        let version = escape_label_value(version);
        let window = format_window(window);
        let extra: String = matchers
            .iter()
            .map(|(k, v)| format!(",{k}=\"{}\"", escape_label_value(v)))
            .collect();
        let mut out = String::with_capacity(self.text.len() + 32 + extra.len());
        let mut placed = false;
        let mut previous: Option<&str> = None;
        for (i, p) in pieces.iter().enumerate() {
            match p {
                Piece::Text(t) => {
                    // The text right after a whole-value `name="{version}`: its closing quote,
                    // then the extra matchers.
                    let after_version = i > 0 && matches!(pieces[i - 1], Piece::Version);
                    let opens = previous.is_some_and(opens_whole_value);
                    match t.strip_prefix('"') {
                        Some(rest) if after_version && opens && !extra.is_empty() => {
                            out.push('"');
                            out.push_str(&extra);
                            out.push_str(rest);
                            placed = true;
                        }
                        _ => out.push_str(t),
                    }
                    previous = Some(t);
                }
                Piece::Version => out.push_str(&version),
                Piece::Window => {
                    out.push_str(&window);
                    previous = None;
                }
            }
        }
        (extra.is_empty() || placed).then_some(out)
    }
}

/// Whether `text` ends a label matcher's opening `name="` with `=` (not `!=`, `=~`, `!~`).
fn opens_whole_value(text: &str) -> bool {
    let Some(before) = text.strip_suffix('"') else {
        return false;
    };
    let before = before.trim_end();
    let Some(name) = before.strip_suffix('=') else {
        return false;
    };
    !name.ends_with(['!', '=', '~'])
        && name
            .trim_end()
            .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
}

/// See [`QueryTemplate::version_labels`].
fn version_labels(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at: Vec<usize> = text.match_indices("{version}").map(|(i, _)| i).collect();
    at.extend(text.match_indices("%s").map(|(i, _)| i));
    for i in at {
        let before = text[..i].trim_end_matches(|c: char| c != '"');
        // Only a placeholder that opens its label value: `name="{version}`.
        let Some(before) = before.strip_suffix('"') else {
            continue;
        };
        if before.len() + 1 != i {
            continue;
        }
        let before = before.trim_end();
        let Some(name) = before.strip_suffix('=') else {
            continue;
        };
        if name.ends_with(['!', '=', '~']) {
            continue;
        }
        let name = name.trim_end();
        let start = name
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |p| p + 1);
        let label = &name[start..];
        if !label.is_empty() && !out.iter().any(|l| l == label) {
            out.push(label.to_owned());
        }
    }
    out
}

/// See [`QueryTemplate::can_be_scalar`].
fn can_be_scalar(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("scalar(") || t.starts_with("time()") || t.parse::<f64>().is_ok()
}

/// Splits a template into text and placeholders, checking that each version placeholder is
/// inside a double-quoted string and each window placeholder outside any string.
fn split(template: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let bytes = template.as_bytes();
    let mut pieces = Vec::new();
    let mut quote: Option<u8> = None;
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        let rest = &template[i..];
        let placeholder = if rest.starts_with("{version}") {
            Some((Piece::Version, "{version}".len()))
        } else if rest.starts_with("%s") {
            Some((Piece::Version, 2))
        } else if rest.starts_with("{window}") {
            Some((Piece::Window, "{window}".len()))
        } else {
            None
        };
        if let Some((piece, len)) = placeholder {
            match (&piece, quote) {
                (Piece::Version, Some(b'"')) | (Piece::Window, None) => {}
                (Piece::Version, _) => {
                    return Err(format!(
                        "the version placeholder at byte {i} must be inside a double-quoted label value, e.g. {VERSION_LABEL}=\"{{version}}\""
                    ))
                }
                (Piece::Window, _) => {
                    return Err(format!("the window placeholder at byte {i} must not be inside a string"))
                }
                (Piece::Text(_), _) => unreachable!(),
            }
            pieces.push(Piece::Text(&template[start..i]));
            pieces.push(piece);
            i += len;
            start = i;
            continue;
        }
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q != b'`' => i += 1, // skip the escaped byte
            Some(q) if b == q => quote = None,
            None if matches!(b, b'"' | b'\'' | b'`') => quote = Some(b),
            _ => {}
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("a string is not closed".into());
    }
    pieces.push(Piece::Text(&template[start..]));
    Ok(pieces)
}

/// Escapes `value` for a double-quoted PromQL string.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A window as a PromQL duration: `5m`, `1h`, `90s`.
pub fn format_window(window: Duration) -> String {
    let s = window.as_secs().max(1);
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The guide's queries, with both sides of the error-rate division aggregated.
pub fn default_templates() -> BTreeMap<String, String> {
    let q = |p: f64| {
        format!(
            "histogram_quantile({p}, sum by (le) (rate(http_request_duration_seconds_bucket{{version=\"{{version}}\"}}[{{window}}]))) * 1000"
        )
    };
    BTreeMap::from([
        (names::LATENCY_P50.to_owned(), q(0.5)),
        (names::LATENCY_P95.to_owned(), q(0.95)),
        (names::LATENCY_P99.to_owned(), q(0.99)),
        (
            names::ERROR_RATE.to_owned(),
            // A 5xx series exists only from the first failure on: none while the requests
            // series are there means no failures (0), never a fabricated zero without them.
            "(sum(rate(http_requests_total{version=\"{version}\",status=~\"5..\"}[{window}])) or on() (0 * sum(rate(http_requests_total{version=\"{version}\"}[{window}])))) / sum(rate(http_requests_total{version=\"{version}\"}[{window}])) * 100".to_owned(),
        ),
        (
            names::MODEL_CONFIDENCE.to_owned(),
            "avg(avg_over_time(model_prediction_confidence{version=\"{version}\"}[{window}]))".to_owned(),
        ),
        (
            names::REQUEST_RATE.to_owned(),
            "sum(rate(http_requests_total{version=\"{version}\"}[{window}]))".to_owned(),
        ),
        (
            names::SAMPLE_COUNT.to_owned(),
            "sum(increase(http_requests_total{version=\"{version}\"}[{window}]))".to_owned(),
        ),
    ])
}

/// Checked templates by metric name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuerySet {
    templates: BTreeMap<String, QueryTemplate>,
}

impl Default for QuerySet {
    fn default() -> Self {
        QuerySet::from_templates(default_templates()).expect("the default templates are valid")
    }
}

impl QuerySet {
    /// Checks every template; the first bad one fails, named.
    pub fn from_templates(templates: BTreeMap<String, String>) -> Result<Self> {
        let mut set = QuerySet {
            templates: BTreeMap::new(),
        };
        for (metric, t) in templates {
            set.set(&metric, &t)?;
        }
        Ok(set)
    }

    /// Adds or replaces the template of `metric`, after checking it.
    pub fn set(&mut self, metric: &str, template: &str) -> Result<()> {
        let t = QueryTemplate::new(metric, template)?;
        self.templates.insert(metric.to_owned(), t);
        Ok(())
    }

    /// Stops fetching `metric`.
    pub fn remove(&mut self, metric: &str) {
        self.templates.remove(metric);
    }

    /// The template of `metric`.
    pub fn get(&self, metric: &str) -> Option<&QueryTemplate> {
        self.templates.get(metric)
    }

    /// Every metric and template.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &QueryTemplate)> {
        self.templates.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many metrics are fetched.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether no metric is fetched.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_matchers_go_next_to_every_whole_version_matcher() {
        let m = BTreeMap::from([("track".to_owned(), "base\"line".to_owned())]);
        let t = QueryTemplate::new(
            "x",
            r#"sum(rate(a{version="{version}",code=~"5.."}[{window}])) / sum(rate(a{ version = "{version}" }[{window}]))"#,
        )
        .unwrap();
        let q = t
            .render_selecting("v1", Duration::from_secs(60), &m)
            .unwrap();
        assert_eq!(
            q,
            r#"sum(rate(a{version="v1",track="base\"line",code=~"5.."}[1m])) / sum(rate(a{ version = "v1",track="base\"line" }[1m]))"#
        );
        promql_parser::parser::parse(&q).expect("still PromQL");
        // No extra matchers: the plain rendering.
        assert_eq!(
            t.render_selecting("v1", Duration::from_secs(60), &BTreeMap::new()),
            Some(t.render("v1", Duration::from_secs(60)))
        );
        // A regex or negative version matcher, or a version inside a longer value, cannot take
        // them: None, never an unnarrowed query.
        for text in [
            r#"a{version=~"{version}"}"#,
            r#"a{version!="{version}"}"#,
            r#"a{version="{version}-canary"}"#,
        ] {
            let t = QueryTemplate::new("x", text).unwrap();
            assert_eq!(
                t.render_selecting("v1", Duration::from_secs(60), &m),
                None,
                "{text}"
            );
        }
    }

    const W: Duration = Duration::from_secs(300);

    #[test]
    fn the_labels_that_select_the_version_are_known_once() {
        let t =
            QueryTemplate::new("m", r#"sum(rate(x{version="{version}", pod=~".+"}[5m]))"#).unwrap();
        assert_eq!(t.version_labels(), ["version"]);
        assert!(!t.can_be_scalar());
        let regex = QueryTemplate::new("m", r#"sum(x{version=~"{version}.*"})"#).unwrap();
        assert!(
            regex.version_labels().is_empty(),
            "a regex match may carry other values"
        );
        let guide = QueryTemplate::new("m", r#"scalar(sum(x{app_version="%s"}))"#).unwrap();
        assert_eq!(guide.version_labels(), ["app_version"]);
        assert!(guide.can_be_scalar());
    }

    #[test]
    fn renders_the_guides_queries() {
        let set = QuerySet::default();
        assert_eq!(
            set.get("latency_p99").unwrap().render("v1.3.0", W),
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{version=\"v1.3.0\"}[5m]))) * 1000"
        );
        let err = set.get("error_rate").unwrap().render("v2", W);
        assert_eq!(
            err.matches("version=\"v2\"").count(),
            3,
            "the failures, the zero they default to, and the requests select the version"
        );
        assert!(err.starts_with("(sum(rate("), "the numerator is aggregated");
        assert!(
            err.contains(" or on() (0 * sum(rate("),
            "no failure series while there are requests is 0 %"
        );
        assert!(err.contains("/ sum(rate("), "the denominator is aggregated");
    }

    #[test]
    fn the_guides_percent_s_form_works_twice() {
        let t = QueryTemplate::new(
            "error_rate",
            r#"(sum(rate(http_requests_total{version="%s",status=~"5.."}[5m])) / sum(rate(http_requests_total{version="%s"}[5m]))) * 100"#,
        )
        .unwrap();
        assert_eq!(t.render("v9", W).matches("version=\"v9\"").count(), 2);
    }

    #[test]
    fn hostile_versions_stay_one_label_value() {
        let t = QuerySet::default().get("request_rate").unwrap().clone();
        for hostile in [
            r#"v1"} or vector(1) or {x=""#,
            "v1\\",
            "a\nb",
            "x\"}[5m])) or on() vector(100",
        ] {
            let q = t.render(hostile, W);
            let expr = promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
            // An injected `or` would make the top a binary expression; it stays `sum(...)`.
            assert!(
                matches!(expr, promql_parser::parser::Expr::Aggregate(_)),
                "{q} parsed as {expr:?}"
            );
            let printed = expr.to_string();
            assert_eq!(
                printed.matches("http_requests_total").count(),
                1,
                "{printed}"
            );
        }
    }

    #[test]
    fn broken_templates_fail_at_once_naming_the_metric() {
        let cases = [
            (
                "p99",
                "histogram_quantile(0.99, sum(rate(x{version=\"{version}\"}[5m]))",
            ),
            ("p99", "rate(x[5m])"),
            ("p99", "rate(x{version={version}}[5m])"),
            ("p99", "rate(x{version='{version}'}[5m])"),
            ("p99", "rate(x{version=\"{version}\"}[\"{window}\"])"),
            ("p99", "rate(x{version=\"{version}}[5m])"),
        ];
        for (metric, template) in cases {
            let err = QueryTemplate::new(metric, template).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("invalid query template for p99"), "{text}");
        }
    }

    #[test]
    fn windows_read_like_promql() {
        assert_eq!(format_window(Duration::from_secs(300)), "5m");
        assert_eq!(format_window(Duration::from_secs(7200)), "2h");
        assert_eq!(format_window(Duration::from_secs(90)), "90s");
        assert_eq!(format_window(Duration::from_millis(10)), "1s");
    }

    #[test]
    fn escaping_follows_promql_string_rules() {
        assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("a\nb"), "a\\nb");
    }
}
