//! Parsing Prometheus API responses. Pure functions over bytes, so they can be fuzzed.
//!
//! Every answer becomes a value, a "no data" with its reason, or a typed error. An empty
//! result, `NaN`, `+Inf` and `-Inf` are no data, never 0.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// What a query answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The value, if there is one.
    pub value: Option<f64>,
    /// Why there is no value (`no series`, `NaN`, ...).
    pub no_data: Option<String>,
    /// Prometheus' `warnings`, kept for the evidence.
    pub warnings: Vec<String>,
}

/// A range query's one series.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeAnswer {
    /// `(unix seconds, value)`; a `NaN` or infinite point is `None`.
    pub points: Vec<(f64, Option<f64>)>,
    /// Prometheus' `warnings`.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Envelope {
    status: Option<String>,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: serde_json::Map<String, Value>,
    value: Option<(f64, String)>,
    values: Option<Vec<(f64, String)>>,
    /// A native histogram's samples (`--enable-feature=native-histograms`, Prometheus 3).
    histograms: Option<Vec<(f64, NativeSample)>>,
}

/// One native histogram sample as the API writes it: counts and bounds as strings, each
/// bucket `[boundary rule, lower, upper, count]`.
#[derive(Deserialize)]
struct NativeSample {
    count: String,
    #[serde(default)]
    buckets: Vec<(u8, String, String, String)>,
}

struct Ctx<'a> {
    metric: &'a str,
    query: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidResponse {
            metric: self.metric.to_owned(),
            query: self.query.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Parses the envelope and checks the status; returns the data and warnings.
fn envelope(ctx: &Ctx<'_>, http_status: u16, body: &[u8]) -> Result<(Data, Vec<String>)> {
    let parsed: std::result::Result<Envelope, _> = serde_json::from_slice(body);
    if !(200..300).contains(&http_status) {
        let (error_type, message) = match parsed {
            Ok(e) => (e.error_type, e.error.unwrap_or_default()),
            Err(_) => (None, snippet(body)),
        };
        return Err(Error::Status {
            metric: ctx.metric.to_owned(),
            query: ctx.query.to_owned(),
            status: http_status,
            error_type,
            message,
            attempts: 1,
            elapsed: std::time::Duration::ZERO,
        });
    }
    let envelope =
        parsed.map_err(|e| ctx.invalid(format!("not a Prometheus API response: {e}")))?;
    match envelope.status.as_deref() {
        Some("success") => {}
        Some("error") => {
            return Err(Error::QueryFailed {
                metric: ctx.metric.to_owned(),
                query: ctx.query.to_owned(),
                error_type: envelope.error_type,
                message: envelope.error.unwrap_or_default(),
            })
        }
        other => return Err(ctx.invalid(format!("unexpected status {other:?}"))),
    }
    let data = envelope
        .data
        .ok_or_else(|| ctx.invalid("success without data"))?;
    Ok((data, envelope.warnings))
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_owned()
}

/// A sample value: Prometheus sends numbers as strings, including `NaN` and `±Inf`.
fn sample(ctx: &Ctx<'_>, text: &str) -> Result<std::result::Result<f64, String>> {
    match text {
        "NaN" => Ok(Err(
            "the value is NaN (e.g. a quantile or ratio over zero traffic)".into(),
        )),
        "+Inf" | "Inf" => Ok(Err("the value is +Inf".into())),
        "-Inf" => Ok(Err("the value is -Inf".into())),
        t => match t.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Ok(v)),
            Ok(v) => Ok(Err(format!("the value is {v}"))),
            Err(_) => Err(ctx.invalid(format!("sample {t:?} is not a number"))),
        },
    }
}

fn labels(metric: &serde_json::Map<String, Value>) -> String {
    let inner: Vec<String> = metric.iter().map(|(k, v)| format!("{k}={}", v)).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Parses an instant query's answer (`/api/v1/query`), expecting one series or a scalar.
pub fn parse_instant(metric: &str, query: &str, http_status: u16, body: &[u8]) -> Result<Answer> {
    parse_instant_parts(metric, query, http_status, body).map(|(answer, _)| answer)
}

/// What an instant query's answer must agree with: an answer that contradicts its question
/// (another version's series, a sample from another time, a scalar where only a vector can
/// come back) is an error naming what was wrong, never data.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected<'a> {
    /// Labels the query selects with `=`: an answer's series may drop them (aggregation) but
    /// never carry another value.
    pub labels: &'a [(String, String)],
    /// The evaluation time asked for, in unix seconds.
    pub at_unix: f64,
    /// Whether the query can answer a scalar (it is `scalar(...)`, `time()` or a number).
    pub scalar: bool,
}

/// How far an instant answer's timestamp may be from the evaluation time asked for (Prometheus
/// answers exactly that time; the slack is for proxies that round).
pub const MAX_TIMESTAMP_SKEW_SECONDS: f64 = 60.0;

/// [`parse_instant`], then checked against what was asked ([`Expected`]).
pub fn parse_instant_expecting(
    metric: &str,
    query: &str,
    http_status: u16,
    body: &[u8],
    expected: &Expected<'_>,
) -> Result<Answer> {
    let ctx = Ctx { metric, query };
    let (answer, shape) = parse_instant_parts(metric, query, http_status, body)?;
    let Some(shape) = shape else {
        return Ok(answer);
    };
    if shape.scalar && !expected.scalar {
        return Err(ctx.invalid(
            "Prometheus answered a scalar to a query that selects series (a vector was expected)",
        ));
    }
    for (name, want) in expected.labels {
        if let Some(got) = shape.labels.get(name).and_then(Value::as_str) {
            if got != want {
                return Err(ctx.invalid(format!(
                    "the answer's series is labelled {name}={got:?}, but the query selects {name}={want:?}"
                )));
            }
        }
    }
    if !shape.at.is_finite() || (shape.at - expected.at_unix).abs() > MAX_TIMESTAMP_SKEW_SECONDS {
        return Err(ctx.invalid(format!(
            "the answer's sample is stamped {}, not the evaluation time {} asked for",
            stamp(shape.at),
            stamp(expected.at_unix)
        )));
    }
    Ok(answer)
}

/// Unix seconds as RFC 3339 when representable, else as a short number.
fn stamp(unix: f64) -> String {
    chrono::DateTime::from_timestamp_millis((unix * 1000.0) as i64)
        .filter(|_| unix.is_finite() && unix.abs() < 1e11)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| canary_core::format::num(unix))
}

/// What an instant answer's one value came with.
struct Shape {
    labels: serde_json::Map<String, Value>,
    at: f64,
    scalar: bool,
}

fn parse_instant_parts(
    metric: &str,
    query: &str,
    http_status: u16,
    body: &[u8],
) -> Result<(Answer, Option<Shape>)> {
    let ctx = Ctx { metric, query };
    let (data, warnings) = envelope(&ctx, http_status, body)?;
    let (text, shape) = match data.result_type.as_str() {
        "vector" => {
            let series: Vec<Series> = serde_json::from_value(data.result)
                .map_err(|e| ctx.invalid(format!("a vector result of the wrong shape: {e}")))?;
            match <[Series; 1]>::try_from(series) {
                Ok([one]) => {
                    let (at, v) = one
                        .value
                        .ok_or_else(|| ctx.invalid("a vector sample without a value"))?;
                    let shape = Shape {
                        labels: one.metric,
                        at,
                        scalar: false,
                    };
                    (v, shape)
                }
                Err(series) if series.is_empty() => {
                    return Ok((
                        Answer {
                            value: None,
                            no_data: Some("no series matched".into()),
                            warnings,
                        },
                        None,
                    ))
                }
                Err(many) => {
                    return Err(Error::MultipleSeries {
                        metric: metric.to_owned(),
                        query: query.to_owned(),
                        series: many.iter().map(|s| labels(&s.metric)).collect(),
                    })
                }
            }
        }
        "scalar" => {
            let (at, v): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| ctx.invalid(format!("a scalar result of the wrong shape: {e}")))?;
            let shape = Shape {
                labels: serde_json::Map::new(),
                at,
                scalar: true,
            };
            (v, shape)
        }
        other => {
            return Err(ctx.invalid(format!("expected a vector or scalar result, got {other:?}")))
        }
    };
    let answer = match sample(&ctx, &text)? {
        Ok(v) => Answer {
            value: Some(v),
            no_data: None,
            warnings,
        },
        Err(reason) => Answer {
            value: None,
            no_data: Some(reason),
            warnings,
        },
    };
    Ok((answer, Some(shape)))
}

/// A range query's series and warnings, checked to be a matrix.
fn matrix(ctx: &Ctx<'_>, http_status: u16, body: &[u8]) -> Result<(Vec<Series>, Vec<String>)> {
    let (data, warnings) = envelope(ctx, http_status, body)?;
    if data.result_type != "matrix" {
        return Err(ctx.invalid(format!(
            "expected a matrix result, got {:?}",
            data.result_type
        )));
    }
    let series = serde_json::from_value(data.result)
        .map_err(|e| ctx.invalid(format!("a matrix result of the wrong shape: {e}")))?;
    Ok((series, warnings))
}

/// Parses a range query's answer (`/api/v1/query_range`), expecting at most one series.
pub fn parse_range(
    metric: &str,
    query: &str,
    http_status: u16,
    body: &[u8],
) -> Result<RangeAnswer> {
    let ctx = Ctx { metric, query };
    let (series, warnings) = matrix(&ctx, http_status, body)?;
    let points = match series.as_slice() {
        [] => Vec::new(),
        [one] => {
            let values = one.values.as_ref().ok_or_else(|| {
                ctx.invalid(if one.histograms.is_some() {
                    "a native histogram where one number per instant was asked for"
                } else {
                    "a matrix series without values"
                })
            })?;
            let mut points = Vec::with_capacity(values.len());
            for (t, v) in values {
                points.push((*t, sample(&ctx, v)?.ok()));
            }
            points
        }
        many => {
            return Err(Error::MultipleSeries {
                metric: metric.to_owned(),
                query: query.to_owned(),
                series: many.iter().map(|s| labels(&s.metric)).collect(),
            })
        }
    };
    Ok(RangeAnswer { points, warnings })
}

/// One labelled series of a matrix: `(unix milliseconds, value)` points, NaN and ±Inf left
/// out.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledSeries {
    /// The series' labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its finite points, in time order.
    pub points: Vec<(i64, f64)>,
}

/// A range query's answer with any number of series.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixAnswer {
    /// The series.
    pub series: Vec<LabelledSeries>,
    /// Prometheus' `warnings`.
    pub warnings: Vec<String>,
}

/// Parses a range query's answer (`/api/v1/query_range`) with any number of series, keeping
/// each series' labels: raw cumulative series, one per instance or bucket.
pub fn parse_matrix(
    metric: &str,
    query: &str,
    http_status: u16,
    body: &[u8],
) -> Result<MatrixAnswer> {
    let ctx = Ctx { metric, query };
    let (raw, warnings) = matrix(&ctx, http_status, body)?;
    if raw.iter().any(|s| s.histograms.is_some()) {
        let series = native_as_cumulative(&ctx, raw)?;
        return Ok(MatrixAnswer { series, warnings });
    }
    let mut series = Vec::with_capacity(raw.len());
    for s in raw {
        let values = s
            .values
            .ok_or_else(|| ctx.invalid("a matrix series without values"))?;
        let mut points = Vec::with_capacity(values.len());
        for (t, v) in values {
            if let Ok(v) = sample(&ctx, &v)? {
                points.push(((t * 1000.0).round() as i64, v));
            }
        }
        let labels = s
            .metric
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            .collect();
        series.push(LabelledSeries { labels, points });
    }
    Ok(MatrixAnswer { series, warnings })
}

/// Native histogram series as the cumulative `le` series a classic histogram has, so that
/// everything downstream (reset correction, sums over pods, the judges' bounds) reads them
/// alike: for each series, one series per bucket bound with the count at or below it, and
/// `+Inf` with the total. Every series gets the same bounds (the union over the answer), so a
/// sum over pods never misses a pod's share at a bound where that pod had no bucket yet. A
/// bound that falls inside another sample's bucket (the resolution changed, or pods differ in
/// schema) is left out: the count at or below it is not known there. Float and native samples
/// in one answer are refused: summing a classic pod's buckets with a native pod's is not
/// possible without guessing.
fn native_as_cumulative(ctx: &Ctx<'_>, raw: Vec<Series>) -> Result<Vec<LabelledSeries>> {
    // A bucket's upper bound may be +Inf (a custom layout's last bucket); nothing else may.
    let number = |text: &str, what: &str, infinite_ok: bool| -> Result<f64> {
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() || (infinite_ok && v == f64::INFINITY) => Ok(v),
            _ => Err(ctx.invalid(format!(
                "a native histogram's {what} {text:?} is not a finite number"
            ))),
        }
    };
    // Every sample as (time in ms, count, buckets (lower, upper, count)).
    type Parsed = (i64, f64, Vec<(f64, f64, f64)>);
    let mut parsed: Vec<(std::collections::BTreeMap<String, String>, Vec<Parsed>)> = Vec::new();
    for s in raw {
        if s.values.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(ctx.invalid(format!(
                "the series {} has float samples beside native histograms: a fleet partly on \
                 classic and partly on native histograms cannot be summed; expose one kind for \
                 every pod of both versions",
                labels(&s.metric)
            )));
        }
        let mut samples = Vec::new();
        for (t, h) in s.histograms.unwrap_or_default() {
            let count = number(&h.count, "count", false)?;
            let mut buckets = Vec::with_capacity(h.buckets.len());
            for (_, lower, upper, c) in &h.buckets {
                buckets.push((
                    number(lower, "lower bound", false)?,
                    number(upper, "upper bound", true)?,
                    number(c, "bucket count", false)?,
                ));
            }
            samples.push(((t * 1000.0).round() as i64, count, buckets));
        }
        let labels = s
            .metric
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            .collect();
        parsed.push((labels, samples));
    }
    // The distinct buckets of the whole answer: far fewer than pods × points × buckets.
    let mut layout: Vec<(f64, f64)> = parsed
        .iter()
        .flat_map(|(_, s)| s.iter().flat_map(|(_, _, b)| b.iter()))
        .map(|&(lower, upper, _)| (lower, upper))
        .collect();
    layout.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
    layout.dedup();
    let mut bounds: Vec<f64> = layout
        .iter()
        .map(|b| b.1)
        .filter(|u| u.is_finite())
        .collect();
    bounds.dedup();
    // Only bounds no bucket straddles: there, the count at or below is exact in every sample.
    bounds.retain(|&b| !layout.iter().any(|&(lower, upper)| lower < b && b < upper));
    let mut out = Vec::with_capacity(parsed.len() * (bounds.len() + 1));
    for (labels, samples) in &parsed {
        for &bound in bounds.iter().chain(std::iter::once(&f64::INFINITY)) {
            let mut labels = labels.clone();
            let le = if bound.is_finite() {
                format!("{bound}")
            } else {
                "+Inf".to_owned()
            };
            labels.insert("le".into(), le);
            let points = samples
                .iter()
                .map(|(t, count, buckets)| {
                    let at_or_below = if bound.is_finite() {
                        // From +0.0: an empty `sum` of floats is -0.0.
                        buckets
                            .iter()
                            .filter(|b| b.1 <= bound)
                            .fold(0.0, |a, b| a + b.2)
                    } else {
                        *count
                    };
                    (*t, at_or_below)
                })
                .collect();
            out.push(LabelledSeries { labels, points });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_keeps_every_series_and_its_labels() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"le":"0.1","instance":"a"},"values":[[1700000000,"1"],[1700000015.5,"NaN"],[1700000030,"3"]]},
            {"metric":{"le":"+Inf","instance":"a"},"values":[[1700000000,"2"]]}]}}"#;
        let m = parse_matrix("latency", "q", 200, body.as_bytes()).unwrap();
        assert_eq!(m.series.len(), 2);
        assert_eq!(m.series[0].labels["le"], "0.1");
        assert_eq!(
            m.series[0].points,
            vec![(1_700_000_000_000, 1.0), (1_700_000_030_000, 3.0)]
        );
        let e = parse_matrix(
            "latency",
            "q",
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        );
        assert!(e.is_err());
    }

    fn instant(status: u16, body: &str) -> Result<Answer> {
        parse_instant("latency_p99", "q", status, body.as_bytes())
    }

    #[test]
    fn one_series_is_a_value() {
        let a = instant(200, r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12.5"]}]}}"#).unwrap();
        assert_eq!(a.value, Some(12.5));
        let a = instant(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#,
        )
        .unwrap();
        assert_eq!(a.value, Some(3.0));
    }

    #[test]
    fn empty_nan_and_infinities_are_no_data() {
        let empty = instant(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .unwrap();
        assert_eq!(
            (empty.value, empty.no_data.as_deref()),
            (None, Some("no series matched"))
        );
        for v in ["NaN", "+Inf", "-Inf"] {
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{v}"]}}]}}}}"#
            );
            let a = instant(200, &body).unwrap();
            assert_eq!(a.value, None, "{v}");
            assert!(
                a.no_data.unwrap().contains(v.trim_start_matches('+')),
                "{v}"
            );
        }
    }

    #[test]
    fn several_series_name_their_labels() {
        let e = instant(200, r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"1"]},{"metric":{"pod":"b"},"value":[1,"2"]}]}}"#).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::MultipleSeries { .. }));
        assert!(
            text.contains(r#"{pod="a"}"#) && text.contains(r#"{pod="b"}"#),
            "{text}"
        );
    }

    #[test]
    fn error_status_keeps_error_type_and_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        let e = instant(400, body).unwrap_err();
        assert!(
            matches!(&e, Error::Status { status: 400, error_type: Some(t), .. } if t == "bad_data")
        );
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("parse error at char 3"));
        let e = instant(200, body).unwrap_err();
        assert!(matches!(e, Error::QueryFailed { .. }));
        let e = instant(503, "Service Unavailable").unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().contains("503") && e.to_string().contains("Service Unavailable"));
    }

    #[test]
    fn warnings_are_kept() {
        let a = instant(200, r#"{"status":"success","warnings":["partial response"],"data":{"resultType":"vector","result":[]}}"#).unwrap();
        assert_eq!(a.warnings, vec!["partial response".to_owned()]);
    }

    #[test]
    fn malformed_bodies_are_invalid_responses() {
        for body in [
            "",
            "{",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12.5"]}"#,
            r#"{"status":"success"}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#,
            r#"{"status":"weird","data":{"resultType":"vector","result":[]}}"#,
            "<html>oops</html>",
        ] {
            let e = instant(200, body).unwrap_err();
            assert!(matches!(e, Error::InvalidResponse { .. }), "{body}: {e}");
        }
    }

    #[test]
    fn ranges_keep_gaps_as_none() {
        let r = parse_range("m", "q", 200, br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"NaN"],[3,"3"]]}]}}"#).unwrap();
        assert_eq!(
            r.points,
            vec![(1.0, Some(1.0)), (2.0, None), (3.0, Some(3.0))]
        );
        let r = parse_range(
            "m",
            "q",
            200,
            br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
        .unwrap();
        assert!(r.points.is_empty());
    }

    #[test]
    fn native_histograms_read_as_cumulative_bounds_shared_by_every_series() {
        // Two pods; pod b has no bucket at 0.25 yet, and at its second sample its resolution
        // halved (one bucket (0.125, 0.5] straddles 0.25): 0.25 is then left out for everyone.
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a"},"histograms":[[1,{"count":"6","sum":"1","buckets":[[0,"0.0625","0.125","2"],[0,"0.125","0.25","3"],[0,"0.25","0.5","1"]]}]]},
            {"metric":{"pod":"b"},"histograms":[[1,{"count":"2","sum":"1","buckets":[[0,"0.25","0.5","2"]]}],[2,{"count":"5","sum":"1","buckets":[[0,"0.125","0.5","5"]]}]]}]}}"#;
        let m = parse_matrix("latency", "q", 200, body).unwrap();
        let at = |pod: &str, le: &str| {
            m.series
                .iter()
                .find(|s| s.labels["pod"] == pod && s.labels["le"] == le)
                .map(|s| s.points.clone())
        };
        assert_eq!(at("a", "0.125"), Some(vec![(1000, 2.0)]));
        assert_eq!(at("a", "0.5"), Some(vec![(1000, 6.0)]));
        assert_eq!(at("a", "+Inf"), Some(vec![(1000, 6.0)]));
        assert_eq!(at("b", "0.125"), Some(vec![(1000, 0.0), (2000, 0.0)]));
        assert_eq!(at("b", "0.5"), Some(vec![(1000, 2.0), (2000, 5.0)]));
        assert_eq!(at("a", "0.25"), None, "straddled by pod b's coarser bucket");
        assert_eq!(m.series.len(), 2 * 3);
    }

    #[test]
    fn a_fleet_half_classic_half_native_is_refused_not_summed() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a"},"histograms":[[1,{"count":"6","sum":"1","buckets":[[0,"0.0625","0.125","6"]]}]]},
            {"metric":{"pod":"b","le":"0.1"},"values":[[1,"3"]]}]}}"#;
        let e = parse_matrix("latency", "q", 200, body).unwrap_err();
        assert!(e.to_string().contains("cannot be summed"), "{e}");
        // A native histogram where one number was asked for is named, not "no values".
        let one = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"histograms":[[1,{"count":"1","sum":"1","buckets":[]}]]}]}}"#;
        let e = parse_range("p99", "q", 200, one).unwrap_err();
        assert!(e.to_string().contains("native histogram"), "{e}");
        // A count that is not a number is an error, never a value.
        let bad = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"histograms":[[1,{"count":"NaN","sum":"1","buckets":[]}]]}]}}"#;
        assert!(parse_matrix("latency", "q", 200, bad).is_err());
    }
}
