//! The functions and classes that `python/canary` builds the guide's API from. Values cross
//! as JSON text; awaitables come from pyo3-async-runtimes on one shared tokio runtime.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::{
    Arm, BusinessCheck, BusinessVerdict, CanaryMetrics, CanarySpec, CanaryValidator, Deployer,
    Evaluation, MetricSpec, MetricsQuery, MetricsSource, Region, RollbackPolicy, RollbackTarget,
    RollbackThresholds, ScaledClock, TrafficWeight, ValidationRequest, ValidatorConfig, Version,
};
use canary_helm::{HelmConfig, HelmDeployer};
use canary_notify::SlackNotifier;
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use chrono::{TimeZone, Utc};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use serde::Deserialize;

use crate::errors;
use crate::pending::Pending;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(validate_thresholds, m)?)?;
    m.add_function(wrap_pyfunction!(validate_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(validate_version, m)?)?;
    m.add_function(wrap_pyfunction!(run_validation, m)?)?;
    m.add_class::<PyPrometheus>()?;
    m.add_class::<PyHelm>()?;
    m.add_class::<PySlack>()?;
    m.add_class::<Pending>()?;
    Ok(())
}

fn from_json<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> PyResult<T> {
    serde_json::from_str(text).map_err(|e| errors::json(what, e))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("canary's types always serialize")
}

/// A policy from thresholds, extra metric specs and metrics not to judge.
fn policy(thresholds: &str, extra_metrics: &str, without: Vec<String>) -> PyResult<RollbackPolicy> {
    let t: RollbackThresholds = from_json("thresholds", thresholds)?;
    let mut p = RollbackPolicy::new(t).map_err(errors::core)?;
    for spec in from_json::<Vec<MetricSpec>>("metric specs", extra_metrics)? {
        p = p.with_metric(spec).map_err(errors::core)?;
    }
    for name in without {
        p = p.without_metric(&name);
    }
    Ok(p)
}

/// Evaluates canary against baseline (both JSON `CanaryMetrics`); returns the `Evaluation` JSON.
#[pyfunction]
#[pyo3(signature = (baseline, canary, thresholds = "{}", extra_metrics = "[]", without_metrics = Vec::new()))]
fn evaluate(
    baseline: &str,
    canary: &str,
    thresholds: &str,
    extra_metrics: &str,
    without_metrics: Vec<String>,
) -> PyResult<String> {
    let p = policy(thresholds, extra_metrics, without_metrics)?;
    let b: CanaryMetrics = from_json("baseline metrics", baseline)?;
    let c: CanaryMetrics = from_json("canary metrics", canary)?;
    Ok(to_json(&p.evaluate(&b, &c)))
}

/// Raises `ValueError` naming the field if the thresholds (JSON) are invalid.
#[pyfunction]
fn validate_thresholds(thresholds: &str) -> PyResult<()> {
    from_json::<RollbackThresholds>("thresholds", thresholds)?
        .validate()
        .map_err(errors::core)
}

/// Raises `ValueError` naming the metric if a value is impossible.
#[pyfunction]
fn validate_metrics(metrics: &str) -> PyResult<()> {
    from_json::<CanaryMetrics>("metrics", metrics)?
        .validate()
        .map_err(errors::core)
}

/// Raises `ValueError` unless `version` is a valid image tag.
#[pyfunction]
fn validate_version(version: &str) -> PyResult<()> {
    Version::new(version).map(drop).map_err(errors::core)
}

fn arm(name: &str) -> PyResult<Arm> {
    match name {
        "baseline" => Ok(Arm::Baseline),
        "canary" => Ok(Arm::Canary),
        other => Err(PyValueError::new_err(format!(
            "arm must be 'baseline' or 'canary', not {other:?}"
        ))),
    }
}

fn window(seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d >= Duration::from_secs(1))
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "the window must be at least 1 second, not {seconds}"
            ))
        })
}

fn at(unix: Option<f64>) -> PyResult<Option<chrono::DateTime<Utc>>> {
    unix.map(|t| {
        Utc.timestamp_millis_opt((t * 1000.0) as i64)
            .single()
            .ok_or_else(|| PyValueError::new_err(format!("{t} is not a valid time")))
    })
    .transpose()
}

/// `MetricsSource` over Prometheus.
#[pyclass(name = "PrometheusSource", module = "canary._canary", frozen)]
struct PyPrometheus {
    source: Arc<PrometheusSource>,
}

#[pymethods]
impl PyPrometheus {
    #[new]
    fn new(config: &str) -> PyResult<Self> {
        let config: PrometheusConfig = from_json("Prometheus configuration", config)?;
        Ok(PyPrometheus {
            source: Arc::new(PrometheusSource::new(config).map_err(errors::prometheus)?),
        })
    }

    /// Fetches one version's metrics; resolves to `CanaryMetrics` JSON.
    #[pyo3(signature = (version, arm_name, window_seconds, at_unix = None))]
    fn fetch(
        &self,
        version: String,
        arm_name: &str,
        window_seconds: f64,
        at_unix: Option<f64>,
    ) -> PyResult<Pending> {
        let version = Version::new(version).map_err(errors::core)?;
        let mut q = MetricsQuery::new(version, arm(arm_name)?, window(window_seconds)?);
        q.at = at(at_unix)?;
        let source = self.source.clone();
        Pending::spawn(
            async move {
                let m = source.fetch(&q).await.map_err(errors::core)?;
                Ok(to_json(&m))
            },
            None,
        )
    }

    /// Fetches baseline and canary concurrently; resolves to `[baseline JSON, canary JSON]`.
    #[pyo3(signature = (baseline, canary, window_seconds, at_unix = None))]
    fn fetch_pair(
        &self,
        baseline: String,
        canary: String,
        window_seconds: f64,
        at_unix: Option<f64>,
    ) -> PyResult<Pending> {
        let w = window(window_seconds)?;
        let when = at(at_unix)?.unwrap_or_else(Utc::now);
        let baseline = Version::new(baseline).map_err(errors::core)?;
        let canary = Version::new(canary).map_err(errors::core)?;
        let b = MetricsQuery::new(baseline, Arm::Baseline, w).at(when);
        let c = MetricsQuery::new(canary, Arm::Canary, w).at(when);
        let source = self.source.clone();
        Pending::spawn(
            async move {
                let (b, c) = canary_core::fetch_pair(source.as_ref(), &b, &c).await;
                Ok((
                    to_json(&b.map_err(errors::core)?),
                    to_json(&c.map_err(errors::core)?),
                ))
            },
            None,
        )
    }

    /// The current query templates, by metric.
    fn queries(&self) -> Vec<(String, String)> {
        self.source
            .queries()
            .iter()
            .map(|(m, t)| (m.to_owned(), t.as_str().to_owned()))
            .collect()
    }

    /// Sets one template; raises `ConfigError` if it does not parse.
    fn set_query(&self, metric: &str, template: &str) -> PyResult<()> {
        self.source
            .set_query(metric, template)
            .map_err(errors::prometheus)
    }

    /// Stops fetching a metric.
    fn remove_query(&self, metric: &str) {
        self.source.remove_query(metric)
    }
}

/// `Deployer` over helm.
#[pyclass(name = "HelmDeployer", module = "canary._canary", frozen)]
struct PyHelm {
    helm: Arc<HelmDeployer>,
}

#[pymethods]
impl PyHelm {
    #[new]
    fn new(config: &str) -> PyResult<Self> {
        let config: HelmConfig = from_json("helm configuration", config)?;
        Ok(PyHelm {
            helm: Arc::new(HelmDeployer::new(config).map_err(errors::helm)?),
        })
    }

    #[pyo3(signature = (version, values_file = None))]
    fn deploy_canary(&self, version: &str, values_file: Option<String>) -> PyResult<Pending> {
        let spec = CanarySpec {
            version: Version::new(version).map_err(errors::core)?,
            values_file: values_file.map(Into::into),
        };
        let helm = self.helm.clone();
        Pending::spawn(
            async move { helm.deploy(&spec).await.map_err(errors::helm) },
            None,
        )
    }

    fn set_canary_weight(&self, weight: i64) -> PyResult<Pending> {
        let w = u8::try_from(weight)
            .ok()
            .and_then(|w| TrafficWeight::new(w).ok());
        let w = w.ok_or_else(|| {
            PyValueError::new_err(format!("weight must be between 0 and 100, not {weight}"))
        })?;
        let helm = self.helm.clone();
        Pending::spawn(
            async move { helm.set_weight(w).await.map_err(errors::helm) },
            None,
        )
    }

    fn promote(&self, version: &str) -> PyResult<Pending> {
        let v = Version::new(version).map_err(errors::core)?;
        let helm = self.helm.clone();
        Pending::spawn(
            async move { helm.promote_version(&v).await.map_err(errors::helm) },
            None,
        )
    }

    fn rollback_canary(&self) -> PyResult<Pending> {
        let helm = self.helm.clone();
        Pending::spawn(
            async move {
                helm.rollback(&RollbackTarget::Canary)
                    .await
                    .map_err(errors::core)
            },
            None,
        )
    }

    #[pyo3(signature = (revision = None))]
    fn rollback_production(&self, revision: Option<u32>) -> PyResult<Pending> {
        let helm = self.helm.clone();
        Pending::spawn(
            async move {
                helm.rollback_production(revision)
                    .await
                    .map_err(errors::helm)
            },
            None,
        )
    }

    /// Resolves to the `DeploymentStatus` JSON.
    fn status(&self) -> PyResult<Pending> {
        let helm = self.helm.clone();
        Pending::spawn(
            async move { Ok(to_json(&helm.status().await.map_err(errors::core)?)) },
            None,
        )
    }

    /// Resolves to production's image tag, or `None`.
    fn production_version(&self) -> PyResult<Pending> {
        let helm = self.helm.clone();
        Pending::spawn(
            async move {
                Ok(helm
                    .production_version()
                    .await
                    .map_err(errors::core)?
                    .map(String::from))
            },
            None,
        )
    }

    /// The helm commands run (or, in dry-run, printed) so far.
    fn commands(&self) -> Vec<Vec<String>> {
        self.helm.commands()
    }
}

/// Slack incoming webhook.
#[pyclass(name = "SlackNotifier", module = "canary._canary", frozen)]
struct PySlack {
    slack: Arc<SlackNotifier>,
}

#[pymethods]
impl PySlack {
    #[new]
    #[pyo3(signature = (webhook, dashboard_url = None))]
    fn new(webhook: String, dashboard_url: Option<String>) -> PyResult<Self> {
        let mut s = SlackNotifier::new(webhook).map_err(errors::notify)?;
        if let Some(d) = dashboard_url {
            s = s.with_dashboard(d);
        }
        Ok(PySlack { slack: Arc::new(s) })
    }

    fn send_alert(&self, message: String, color: String) -> PyResult<Pending> {
        let slack = self.slack.clone();
        Pending::spawn(
            async move {
                slack
                    .send_alert(&message, &color)
                    .await
                    .map_err(errors::notify)
            },
            None,
        )
    }

    fn __repr__(&self) -> String {
        "SlackNotifier(webhook=[redacted])".into()
    }
}

/// One region of a validation request.
#[derive(Deserialize)]
struct RegionConfig {
    name: Option<String>,
    prometheus: PrometheusConfig,
    helm: HelmConfig,
}

/// The Slack notifier of a validation request.
#[derive(Deserialize)]
struct SlackConfig {
    webhook: String,
    dashboard_url: Option<String>,
}

/// What `CanaryValidator.validate_canary` asks for.
#[derive(Deserialize)]
struct RunConfig {
    regions: Vec<RegionConfig>,
    #[serde(default)]
    thresholds: serde_json::Value,
    #[serde(default)]
    extra_metrics: Vec<MetricSpec>,
    #[serde(default)]
    without_metrics: Vec<String>,
    #[serde(default)]
    validator: ValidatorConfig,
    slack: Option<SlackConfig>,
    version: String,
    baseline_version: Option<String>,
    values_file: Option<String>,
}

/// A Python callable (plain or async) as the business check.
struct PyBusinessCheck {
    callable: Py<PyAny>,
    locals: TaskLocals,
}

#[derive(Debug)]
struct CheckError(String);
impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for CheckError {}

fn check_error(e: PyErr) -> canary_core::Error {
    let text = Python::attach(|py| {
        e.value(py)
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| e.to_string())
    });
    canary_core::Error::BusinessCheck {
        check: "python".into(),
        source: Box::new(CheckError(text)),
    }
}

#[async_trait]
impl BusinessCheck for PyBusinessCheck {
    fn name(&self) -> String {
        Python::attach(|py| {
            self.callable
                .bind(py)
                .getattr("__name__")
                .and_then(|n| n.extract::<String>())
                .unwrap_or_else(|_| "business_check".into())
        })
    }

    async fn check(
        &self,
        version: &Version,
        evaluation: &Evaluation,
    ) -> canary_core::Result<BusinessVerdict> {
        let evaluation = to_json(evaluation);
        let pending = Python::attach(|py| -> PyResult<Result<Py<PyAny>, _>> {
            let reasoning = py.import("json")?.call_method1("loads", (evaluation,))?;
            let out = self
                .callable
                .bind(py)
                .call1((version.as_str(), reasoning))?;
            if py
                .import("inspect")?
                .call_method1("isawaitable", (&out,))?
                .is_truthy()?
            {
                Ok(Err(pyo3_async_runtimes::into_future_with_locals(
                    &self.locals,
                    out,
                )?))
            } else {
                Ok(Ok(out.unbind()))
            }
        })
        .map_err(check_error)?;
        let value = match pending {
            Ok(v) => v,
            Err(fut) => fut.await.map_err(check_error)?,
        };
        Python::attach(|py| -> PyResult<BusinessVerdict> {
            let v = value.bind(py);
            if let Ok(passed) = v.extract::<bool>() {
                return Ok(BusinessVerdict {
                    passed,
                    details: if passed {
                        "passed".into()
                    } else {
                        "did not pass".into()
                    },
                });
            }
            if let Ok((passed, details)) = v.extract::<(bool, String)>() {
                return Ok(BusinessVerdict { passed, details });
            }
            Err(PyTypeError::new_err(format!(
                "a business check returns a bool or (bool, str), not {}",
                v.get_type().name()?
            )))
        })
        .map_err(check_error)
    }
}

fn build_validator(
    config: &RunConfig,
    business: Option<Arc<dyn BusinessCheck>>,
) -> PyResult<CanaryValidator> {
    let mut regions = Vec::new();
    for r in &config.regions {
        let source =
            Arc::new(PrometheusSource::new(r.prometheus.clone()).map_err(errors::prometheus)?);
        let helm = Arc::new(HelmDeployer::new(r.helm.clone()).map_err(errors::helm)?);
        regions.push(Region {
            name: r.name.clone(),
            source,
            deployer: helm,
        });
    }
    let mut validator = match regions.len() {
        0 => return Err(PyValueError::new_err("at least one region is needed")),
        1 if regions[0].name.is_none() => {
            let r = regions.remove(0);
            CanaryValidator::new(r.source, r.deployer)
        }
        _ => CanaryValidator::multi_region(regions).map_err(errors::core)?,
    };
    let thresholds = if config.thresholds.is_null() {
        "{}".to_owned()
    } else {
        config.thresholds.to_string()
    };
    validator = validator
        .with_policy(policy(
            &thresholds,
            &to_json(&config.extra_metrics),
            config.without_metrics.clone(),
        )?)
        .with_config(config.validator.clone())
        .map_err(errors::core)?
        .with_clock(Arc::new(ScaledClock::from_env().map_err(errors::core)?));
    if let Some(s) = &config.slack {
        let mut slack = SlackNotifier::new(s.webhook.clone()).map_err(errors::notify)?;
        if let Some(d) = &s.dashboard_url {
            slack = slack.with_dashboard(d.clone());
        }
        validator = validator.with_notifier(Arc::new(slack));
    }
    if let Some(b) = business {
        validator = validator.with_business_check(b);
    }
    Ok(validator)
}

/// Runs a whole validation; resolves to the `ValidationReport` JSON. Cancelling it rolls the
/// canary back before the task ends.
#[pyfunction]
#[pyo3(signature = (config, business_check = None))]
fn run_validation<'py>(
    py: Python<'py>,
    config: &str,
    business_check: Option<Py<PyAny>>,
) -> PyResult<Pending> {
    let config: RunConfig = from_json("validation request", config)?;
    let business: Option<Arc<dyn BusinessCheck>> = match business_check {
        None => None,
        Some(callable) => Some(Arc::new(PyBusinessCheck {
            callable,
            locals: pyo3_async_runtimes::tokio::get_current_locals(py)?,
        })),
    };
    let validator = build_validator(&config, business)?;
    let mut request = ValidationRequest::new(Version::new(&config.version).map_err(errors::core)?);
    if let Some(b) = &config.baseline_version {
        request = request.with_baseline(Version::new(b).map_err(errors::core)?);
    }
    if let Some(f) = &config.values_file {
        request = request.with_values_file(f);
    }
    // Cancelling signals the validator, which rolls the canary back and reports `cancelled`.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cancel: Box<dyn FnOnce() + Send> = Box::new(move || {
        let _ = tx.send(());
    });
    Pending::spawn(
        async move {
            let signal = async move {
                if rx.await.is_err() {
                    // The sender is gone without a cancel: never cancel.
                    futures::future::pending::<()>().await;
                }
            };
            let report = validator.validate_until(request, signal).await;
            Ok(to_json(&report))
        },
        Some(cancel),
    )
}
