//! PrometheusSource against a real Prometheus (Debian package) on loopback, loaded with
//! deterministic traffic through `promtool tsdb create-blocks-from openmetrics`.

use std::time::Duration;

use canary_core::test_util::conformance;
use canary_core::{
    Arm, CanaryMetrics, MetricsQuery, MetricsSource, RollbackDecision, RollbackPolicy, Version,
};
use canary_prometheus::PrometheusSource;
use chrono::{DateTime, TimeZone, Utc};
use testkit::services::{self, Service};
use testkit::traffic::{now_secs, openmetrics, Traffic};

const WINDOW: Duration = Duration::from_secs(300);
const HOSTILE: &str = r#"v1"} or vector(1) or {x=""#;

fn regressed_p99(version: &str) -> Traffic {
    // 2 % of requests now land in (1, 2.5] s: p99 moves from 944 ms to 1750 ms.
    Traffic {
        cumulative: [0.5, 0.8, 0.95, 0.98, 1.0, 1.0, 1.0],
        ..Traffic::healthy(version, 20.0)
    }
}

fn scenario() -> Vec<Traffic> {
    vec![
        Traffic::healthy("v1", 100.0),
        Traffic::healthy("v2-healthy", 12.0),
        regressed_p99("v3-slow"),
        Traffic {
            error_ratio: 0.05,
            ..Traffic::healthy("v4-errors", 20.0)
        },
        Traffic {
            confidence: Some(0.6),
            ..Traffic::healthy("v5-unsure", 20.0)
        },
        Traffic {
            rps: 0.0,
            confidence: None,
            ..Traffic::healthy("v6-idle", 0.0)
        },
        Traffic::healthy(HOSTILE, 7.0),
    ]
}

struct World {
    _prometheus: Service,
    source: PrometheusSource,
    at: DateTime<Utc>,
}

fn world() -> World {
    // Data ends a few seconds ago, so it also answers at "now".
    let end = now_secs() - 3;
    let prometheus = services::prometheus(&openmetrics(&scenario(), 1200, 15, end));
    let source = PrometheusSource::at_url(&prometheus.url).unwrap();
    World {
        _prometheus: prometheus,
        source,
        at: Utc.timestamp_opt(end, 0).unwrap(),
    }
}

async fn fetch(w: &World, version: &str, arm: Arm) -> CanaryMetrics {
    let q = MetricsQuery::new(Version::new(version).unwrap(), arm, WINDOW).at(w.at);
    w.source
        .fetch(&q)
        .await
        .unwrap_or_else(|e| panic!("{version}: {}", canary_core::error::chain(&e)))
}

fn close(actual: Option<f64>, expected: f64, rel: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() <= rel * expected.abs().max(1e-9))
}

async fn judge(w: &World, canary: &str) -> canary_core::Evaluation {
    let b = fetch(w, "v1", Arm::Baseline).await;
    let c = fetch(w, canary, Arm::Canary).await;
    RollbackPolicy::default().evaluate(&b, &c)
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_canary_values_match_the_generator_and_proceed() {
    let w = world();
    let m = fetch(&w, "v2-healthy", Arm::Canary).await;
    let t = Traffic::healthy("v2-healthy", 12.0);
    for (name, q) in [
        ("latency_p50", 0.5),
        ("latency_p95", 0.95),
        ("latency_p99", 0.99),
    ] {
        assert!(
            close(m.value(name), t.quantile_ms(q), 1e-6),
            "{name}: {:?} vs {}",
            m.value(name),
            t.quantile_ms(q)
        );
    }
    assert!(
        close(m.error_rate_percent, 1.0, 1e-6),
        "{:?}",
        m.error_rate_percent
    );
    assert!(
        close(m.model_confidence, 0.9, 1e-9),
        "{:?}",
        m.model_confidence
    );
    assert!(
        close(m.request_rate_rps, 12.0, 1e-6),
        "{:?}",
        m.request_rate_rps
    );
    assert!(
        close(m.sample_count, 12.0 * 300.0, 0.02),
        "{:?}",
        m.sample_count
    );
    assert!(m.queries["error_rate"].contains("version=\"v2-healthy\""));
    assert_eq!(m.timestamp, w.at);

    let e = judge(&w, "v2-healthy").await;
    assert_eq!(
        e.decision,
        RollbackDecision::Proceed,
        "{}",
        e.primary_reason
    );
    assert!(e
        .comparison("latency_p99")
        .unwrap()
        .canary_query
        .as_ref()
        .unwrap()
        .contains("histogram_quantile(0.99"));
}

#[tokio::test(flavor = "multi_thread")]
async fn p99_regression_rolls_back() {
    let w = world();
    let e = judge(&w, "v3-slow").await;
    assert_eq!(
        e.decision,
        RollbackDecision::RollbackAuto,
        "{}",
        e.primary_reason
    );
    let c = e.comparison("latency_p99").unwrap();
    assert!(
        close(c.canary, regressed_p99("x").quantile_ms(0.99), 1e-6),
        "{:?}",
        c.canary
    );
    assert_eq!(
        e.triggered_conditions[0].metric.as_deref(),
        Some("latency_p99")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn error_spike_rolls_back() {
    let w = world();
    let e = judge(&w, "v4-errors").await;
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert!(close(e.comparison("error_rate").unwrap().canary, 5.0, 1e-6));
}

#[tokio::test(flavor = "multi_thread")]
async fn confidence_drop_rolls_back() {
    let w = world();
    let e = judge(&w, "v5-unsure").await;
    assert_eq!(e.decision, RollbackDecision::RollbackAuto);
    assert!(close(
        e.comparison("model_confidence").unwrap().canary,
        0.6,
        1e-9
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_without_series_is_no_data_never_zero() {
    let w = world();
    let m = fetch(&w, "v7-never-deployed", Arm::Canary).await;
    for name in canary_core::metrics::names::ALL {
        assert_eq!(m.value(name), None, "{name}");
    }
    assert!(
        m.warnings.iter().any(|w| w.contains("no series matched")),
        "{:?}",
        m.warnings
    );
    let e = judge(&w, "v7-never-deployed").await;
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(
        e.primary_reason.starts_with("insufficient data"),
        "{}",
        e.primary_reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_traffic_gives_nan_quantiles_and_insufficient_data() {
    let w = world();
    let m = fetch(&w, "v6-idle", Arm::Canary).await;
    assert_eq!(m.latency_p99_ms, None, "a NaN quantile is no data");
    assert_eq!(m.error_rate_percent, None, "0/0 is no data");
    assert_eq!(m.sample_count, Some(0.0));
    assert!(
        m.warnings.iter().any(|w| w.contains("NaN")),
        "{:?}",
        m.warnings
    );
    let e = judge(&w, "v6-idle").await;
    assert_eq!(e.decision, RollbackDecision::RollbackManual);
    assert!(
        e.primary_reason.contains("0 requests"),
        "{}",
        e.primary_reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn label_injection_matches_only_its_own_series() {
    let w = world();
    // A hostile version cannot even become a query: the entry point refuses it.
    assert!(Version::new(HOSTILE).is_err());
    assert!(Version::new("").is_err());
    // Below that, templates escape whatever label they are given (a label template may add
    // text of its own). The hostile label has series of its own at 7 req/s; v1 has 100.
    let rate = |label: &'static str| {
        let w = &w;
        async move {
            let template = w.source.queries().get("request_rate").cloned().unwrap();
            let q = template.render(label, WINDOW);
            w.source
                .instant("request_rate", &q, w.at)
                .await
                .unwrap()
                .value
        }
    };
    assert!(close(rate(HOSTILE).await, 7.0, 1e-6));
    // A hostile label with no series matches nothing at all (not v1, not vector(1)).
    assert_eq!(rate(r#"nope"} or vector(1) or {x=""#).await, None);
    assert_eq!(rate(r#"v1\"#).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_at_now_see_the_backfilled_data() {
    let w = world();
    let q = MetricsQuery::new(Version::new("v1").unwrap(), Arm::Baseline, WINDOW);
    let m = w.source.fetch(&q).await.unwrap();
    assert!(
        close(m.request_rate_rps, 100.0, 0.05),
        "{:?}",
        m.request_rate_rps
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_queries_and_label_templates_apply_on_the_next_fetch() {
    let w = world();
    w.source
        .set_query(
            "request_rate",
            "sum(rate(http_requests_total{version=\"%s\",status=\"200\"}[{window}]))",
        )
        .unwrap();
    let m = fetch(&w, "v1", Arm::Baseline).await;
    assert!(
        close(m.request_rate_rps, 99.0, 1e-6),
        "{:?}",
        m.request_rate_rps
    );
    assert!(w.source.set_query("request_rate", "sum(rate(").is_err());

    let mut config = canary_prometheus::PrometheusConfig::new(&w.source.config().url);
    config.canary_label_template = "v2-{version}".into();
    let source = PrometheusSource::new(config).unwrap();
    let m = source
        .fetch(&MetricsQuery::new(Version::new("healthy").unwrap(), Arm::Canary, WINDOW).at(w.at))
        .await
        .unwrap();
    assert!(
        close(m.request_rate_rps, 12.0, 1e-6),
        "selected v2-healthy: {:?}",
        m.request_rate_rps
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn range_queries_return_the_window() {
    let w = world();
    let q = MetricsQuery::new(Version::new("v1").unwrap(), Arm::Baseline, WINDOW).at(w.at);
    let r = w
        .source
        .metric_range("request_rate", &q, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(r.points.len(), 6, "{:?}", r.points);
    assert!(
        r.points.iter().all(|(_, v)| close(*v, 100.0, 1e-6)),
        "{:?}",
        r.points
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_source_passes_the_conformance_suite() {
    let w = world();
    conformance::metrics_source(&w.source, "v1", "v-absent", WINDOW, w.at).await;

    // Nothing listens on the port: a retryable Error::Source naming the version.
    let mut config = canary_prometheus::PrometheusConfig::new(format!(
        "http://127.0.0.1:{}",
        testkit::free_port()
    ));
    config.retry.max_attempts = 1;
    let down = PrometheusSource::new(config).unwrap();
    conformance::failing_metrics_source(&down, "v1", true).await;
    conformance::failing_observation_source(&down, "v1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn series_for_charts_cover_every_configured_metric_over_the_window() {
    let w = world();
    let q = MetricsQuery::new(Version::new("v1").unwrap(), Arm::Baseline, WINDOW).at(w.at);
    let step = Duration::from_secs(15);
    let series = w.source.fetch_series(&q, step).await.unwrap();
    let mut names: Vec<&str> = series.iter().map(|s| s.metric.as_str()).collect();
    names.sort_unstable();
    let mut configured: Vec<String> = w
        .source
        .queries()
        .iter()
        .map(|(m, _)| m.to_owned())
        .collect();
    configured.sort_unstable();
    assert_eq!(names, configured);
    let steps = (WINDOW.as_secs() / step.as_secs()) as usize + 1;
    for s in &series {
        assert_eq!(s.points.len(), steps, "{}: one point per step", s.metric);
    }
    // A steady baseline: the chart's points sit on the analysed value.
    let m = fetch(&w, "v1", Arm::Baseline).await;
    let rate = series.iter().find(|s| s.metric == "request_rate").unwrap();
    assert!(
        rate.points
            .iter()
            .all(|[_, v]| close(Some(*v), m.request_rate_rps.unwrap(), 1e-6)),
        "{:?}",
        rate.points
    );
    // A version with no data has empty series, never zeros.
    let absent = MetricsQuery::new(Version::new("v-absent").unwrap(), Arm::Canary, WINDOW).at(w.at);
    let none = w.source.fetch_series(&absent, step).await.unwrap();
    assert!(none.iter().all(|s| s.points.is_empty()), "{none:?}");
}

/// Queries Prometheus says it answered on `/api/v1/query`, from its own metrics.
fn queries_answered(prometheus: &Service) -> f64 {
    let (_, text) = services::get(prometheus.port, "/metrics").unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("prometheus_http_requests_total{")
                && l.contains("handler=\"/api/v1/query\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_analyses_share_the_baselines_queries() {
    let end = now_secs() - 3;
    let prometheus = services::prometheus(&openmetrics(&scenario(), 1200, 15, end));
    let prometheus = &prometheus;
    let run = |coalesce: bool| {
        let mut config = canary_prometheus::PrometheusConfig::new(&prometheus.url);
        config.coalesce.enabled = coalesce;
        let source = PrometheusSource::new(config).unwrap();
        async move {
            let before = queries_answered(prometheus);
            // Twenty analyses of the same production version at one instant (an explicit one:
            // "now" is rounded to the step, and a test must not straddle a step).
            let at = Utc.timestamp_opt(end, 0).unwrap();
            let q = MetricsQuery::new(Version::new("v1").unwrap(), Arm::Baseline, WINDOW).at(at);
            let fetched = futures::future::join_all((0..20).map(|_| source.fetch(&q))).await;
            let values: Vec<_> = fetched
                .into_iter()
                .map(|m| m.unwrap().request_rate_rps)
                .collect();
            assert!(
                values.iter().all(|v| v.is_some() && *v == values[0]),
                "{values:?}"
            );
            queries_answered(prometheus) - before
        }
    };
    let shared = run(true).await;
    let separate = run(false).await;
    // One query per metric, and one asking whether the arm still reports.
    let per_fetch = PrometheusSource::at_url(&prometheus.url)
        .unwrap()
        .queries()
        .iter()
        .count() as f64
        + 1.0;
    assert_eq!(shared, per_fetch, "one query per metric for all twenty");
    assert_eq!(
        separate,
        20.0 * per_fetch,
        "without coalescing, every analysis asks"
    );
}
