//! The Rust adapters as Python classes: Prometheus, helm, Slack. Configuration comes in as
//! keyword arguments, converted directly into the adapters' own config types (their serde
//! definitions name the fields and hold the defaults); results go out as typed objects.

use std::sync::Arc;
use std::time::Duration;

use canary_core::{
    Arm, CanarySpec, Deployer, MetricsQuery, MetricsSource, RollbackTarget, TrafficWeight, Version,
};
use canary_helm::{HelmConfig, HelmDeployer};
use canary_notify::slack::alert_text;
use canary_notify::SlackNotifier;
use canary_prometheus::config::redact_url;
use canary_prometheus::{PrometheusConfig, PrometheusSource};
use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};
use pythonize::{depythonize, pythonize};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::errors;
use crate::pending::Pending;
use crate::values::{number, PyMetrics};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPrometheus>()?;
    m.add_class::<PyHelm>()?;
    m.add_class::<PySlack>()?;
    Ok(())
}

/// The guide's analyzer window: `CanaryAnalyzer(default_duration_minutes=10)`.
const DEFAULT_ANALYZER_WINDOW: Duration = Duration::from_secs(10 * 60);

/// A serializable value, converted to Python objects when a task's result is collected.
pub(crate) struct Pythonized<T>(pub(crate) T);

impl<'py, T: Serialize> IntoPyObject<'py> for Pythonized<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pythonize(py, &self.0).map_err(|e| errors::config("result", e))
    }
}

/// `defaults` with `options` applied by field name, through the type's own serde definition:
/// an unknown option or a wrong type is a `ConfigError` naming it.
fn configure<T: Serialize + DeserializeOwned + Clone>(
    py: Python<'_>,
    what: &str,
    defaults: &T,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<T> {
    let Some(options) = options.filter(|o| !o.is_empty()) else {
        return Ok(defaults.clone());
    };
    let d = pythonize(py, defaults).map_err(|e| errors::config(what, e))?;
    let d = d.cast::<PyDict>()?;
    for (k, v) in options.iter() {
        let key: String = k.extract()?;
        if !d.contains(&key)? {
            let known: Vec<String> = d.keys().extract()?;
            return Err(errors::config(
                what,
                format!("unknown option {key:?}; options are {}", known.join(", ")),
            ));
        }
        d.set_item(key, v)?;
    }
    depythonize(d.as_any()).map_err(|e| errors::config(what, e))
}

fn seconds(field: &str, v: &Bound<'_, PyAny>, unit: f64, max: Duration) -> PyResult<Duration> {
    let x = number(field, v)? * unit;
    Duration::try_from_secs_f64(x)
        .ok()
        .filter(|d| *d <= max)
        .ok_or_else(|| {
            errors::invalid(format!(
                "{field} must be between 0 and {} seconds, not {}",
                max.as_secs(),
                crate::values::short(x)
            ))
        })
}

fn version(v: &str) -> PyResult<Version> {
    Version::new(v).map_err(errors::core)
}

/// `MetricsSource` over Prometheus, with the analyzer's default window.
#[pyclass(name = "PrometheusSource", module = "canary._canary", frozen)]
pub(crate) struct PyPrometheus {
    pub(crate) source: Arc<PrometheusSource>,
    default_window: Duration,
}

impl PyPrometheus {
    /// A source from a whole configuration (a config file's), with the analyzer's default
    /// window.
    pub(crate) fn from_config(config: PrometheusConfig) -> PyResult<Self> {
        Ok(PyPrometheus {
            source: Arc::new(PrometheusSource::new(config).map_err(errors::prometheus)?),
            default_window: DEFAULT_ANALYZER_WINDOW,
        })
    }

    fn window(&self, minutes: Option<&Bound<'_, PyAny>>) -> PyResult<Duration> {
        match minutes.filter(|m| !m.is_none()) {
            None => Ok(self.default_window),
            Some(m) => {
                let w = seconds(
                    "duration_minutes",
                    m,
                    60.0,
                    canary_core::ValidatorConfig::MAX_ANALYSIS_WINDOW,
                )?;
                if w < Duration::from_secs(1) {
                    return Err(errors::invalid(
                        "duration_minutes must be at least one second",
                    ));
                }
                Ok(w)
            }
        }
    }
}

#[pymethods]
impl PyPrometheus {
    /// A source at `url` (default: the guide's `http://prometheus:9090`); `options` are the
    /// fields of `PrometheusConfig` (bearer_token, headers, basic_auth, ca_cert_file, ...).
    #[new]
    #[pyo3(signature = (url = None, timeout = None, default_duration_minutes = None, **options))]
    fn new(
        py: Python<'_>,
        url: Option<String>,
        timeout: Option<&Bound<'_, PyAny>>,
        default_duration_minutes: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut config: PrometheusConfig = configure(
            py,
            "Prometheus configuration",
            &PrometheusConfig::default(),
            options,
        )?;
        if let Some(u) = url {
            config.url = u;
        }
        if let Some(t) = timeout.filter(|t| !t.is_none()) {
            config.timeout = seconds("timeout", t, 1.0, Duration::from_secs(24 * 3600))?;
        }
        let mut me = PyPrometheus {
            source: Arc::new(PrometheusSource::new(config).map_err(errors::prometheus)?),
            default_window: DEFAULT_ANALYZER_WINDOW,
        };
        me.default_window = me.window(default_duration_minutes)?;
        Ok(me)
    }

    /// The same source at another URL (another region), with the current queries.
    fn with_url(&self, url: String) -> PyResult<Self> {
        let mut config = self.source.config().clone();
        config.url = url;
        config.queries = self
            .source
            .queries()
            .iter()
            .map(|(m, t)| (m.to_owned(), t.as_str().to_owned()))
            .collect();
        Ok(PyPrometheus {
            source: Arc::new(PrometheusSource::new(config).map_err(errors::prometheus)?),
            default_window: self.default_window,
        })
    }

    /// The URL as given, with any credentials redacted.
    #[getter]
    fn url(&self) -> String {
        let url = &self.source.config().url;
        match canary_prometheus::config::url_credentials(url) {
            Some(_) => redact_url(url),
            None => url.clone(),
        }
    }

    /// The per-request timeout, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.source.config().timeout.as_secs_f64()
    }

    /// The default analysis window, in minutes.
    #[getter]
    fn default_duration_minutes(&self) -> f64 {
        self.default_window.as_secs_f64() / 60.0
    }

    /// Fetches one version's metrics; resolves to `CanaryMetrics`.
    #[pyo3(signature = (version, duration_minutes = None, at = None))]
    fn fetch(
        &self,
        version: &str,
        duration_minutes: Option<&Bound<'_, PyAny>>,
        at: Option<DateTime<Utc>>,
    ) -> PyResult<Pending> {
        let mut q = MetricsQuery::new(
            self::version(version)?,
            Arm::Baseline,
            self.window(duration_minutes)?,
        );
        q.at = at;
        let source = self.source.clone();
        Pending::spawn(
            async move {
                let m = source.fetch(&q).await.map_err(errors::core)?;
                Ok(PyMetrics::from_core(m))
            },
            None,
        )
    }

    /// Fetches baseline and canary concurrently at one time; resolves to a pair.
    #[pyo3(signature = (baseline, canary, duration_minutes = None, at = None))]
    fn fetch_pair(
        &self,
        baseline: &str,
        canary: &str,
        duration_minutes: Option<&Bound<'_, PyAny>>,
        at: Option<DateTime<Utc>>,
    ) -> PyResult<Pending> {
        let w = self.window(duration_minutes)?;
        let when = at.unwrap_or_else(Utc::now);
        let b = MetricsQuery::new(version(baseline)?, Arm::Baseline, w).at(when);
        let c = MetricsQuery::new(version(canary)?, Arm::Canary, w).at(when);
        let source = self.source.clone();
        Pending::spawn(
            async move {
                let (b, c) = canary_core::fetch_pair(source.as_ref(), &b, &c).await;
                Ok((
                    PyMetrics::from_core(b.map_err(errors::core)?),
                    PyMetrics::from_core(c.map_err(errors::core)?),
                ))
            },
            None,
        )
    }

    /// `canary analyze`'s JSON data: one look at the window with the guide's policy, or with
    /// `judge` the canary's run replayed through it from `since` (default: where its series
    /// begin) to `until` (or `at`, or now).
    #[pyo3(signature = (baseline, canary, duration_minutes = None, at = None, judge = None, since = None, until = None))]
    #[allow(clippy::too_many_arguments)]
    fn analyze(
        &self,
        baseline: &str,
        canary: &str,
        duration_minutes: Option<&Bound<'_, PyAny>>,
        at: Option<DateTime<Utc>>,
        judge: Option<&Bound<'_, PyAny>>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> PyResult<Pending> {
        let (baseline, canary) = (version(baseline)?, version(canary)?);
        let source = self.source.clone();
        let judge = judge
            .filter(|j| !j.is_none())
            .map(crate::backtest::judge_name)
            .transpose()?;
        let Some(judge) = judge else {
            if since.is_some() || until.is_some() {
                return Err(errors::invalid("since and until need a judge"));
            }
            let w = self.window(duration_minutes)?;
            let when = at.unwrap_or_else(Utc::now);
            let b = MetricsQuery::new(baseline, Arm::Baseline, w).at(when);
            let c = MetricsQuery::new(canary, Arm::Canary, w).at(when);
            return Pending::spawn(
                async move {
                    let (b, c) = canary_core::fetch_pair(source.as_ref(), &b, &c).await;
                    let (b, c) = (b.map_err(errors::core)?, c.map_err(errors::core)?);
                    let e = canary_core::RollbackPolicy::default()
                        .try_evaluate(&b, &c)
                        .map_err(errors::core)?;
                    Ok(Pythonized(e))
                },
                None,
            );
        };
        if duration_minutes.is_some_and(|d| !d.is_none()) {
            return Err(errors::invalid(
                "duration_minutes does not apply with a judge: it judges the run from since",
            ));
        }
        let until = until.or(at).unwrap_or_else(Utc::now);
        Pending::spawn(
            async move {
                let r = canary_cli::retrospective::judge_run(
                    source.as_ref(),
                    None,
                    judge,
                    &baseline,
                    &canary,
                    since,
                    until,
                )
                .await
                .map_err(errors::core)?;
                Ok(Pythonized(
                    canary_cli::retrospective::to_json(&r)
                        .map_err(|e| errors::config("result", e))?,
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

    fn __repr__(&self) -> String {
        format!("PrometheusSource(url={:?})", self.url())
    }
}

/// `Deployer` over helm.
#[pyclass(name = "HelmDeployer", module = "canary._canary", frozen)]
pub(crate) struct PyHelm {
    pub(crate) helm: Arc<HelmDeployer>,
}

#[pymethods]
impl PyHelm {
    /// Drives helm for `release` (default `apex-inference`) and `<release>-canary`; `options`
    /// are the fields of `HelmConfig` (kube_context, helm_binary, timeout, wait, dry_run, ...).
    #[new]
    #[pyo3(signature = (release = None, chart = None, namespace = None, **options))]
    fn new(
        py: Python<'_>,
        release: Option<String>,
        chart: Option<String>,
        namespace: Option<String>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut config: HelmConfig =
            configure(py, "helm configuration", &HelmConfig::default(), options)?;
        if let Some(r) = release {
            config.release = r;
        }
        if let Some(c) = chart {
            config.chart = c;
        }
        if namespace.is_some() {
            config.namespace = namespace;
        }
        Ok(PyHelm {
            helm: Arc::new(HelmDeployer::new(config).map_err(errors::helm)?),
        })
    }

    /// The same deployer for another cluster or namespace (another region).
    #[pyo3(signature = (kube_context = None, namespace = None, kubeconfig = None))]
    fn with_overrides(
        &self,
        kube_context: Option<String>,
        namespace: Option<String>,
        kubeconfig: Option<String>,
    ) -> PyResult<Self> {
        let mut config = self.helm.config().clone();
        if kube_context.is_some() {
            config.kube_context = kube_context;
        }
        if namespace.is_some() {
            config.namespace = namespace;
        }
        if let Some(k) = kubeconfig {
            config.kubeconfig = Some(k.into());
        }
        Ok(PyHelm {
            helm: Arc::new(HelmDeployer::new(config).map_err(errors::helm)?),
        })
    }

    /// The production release.
    #[getter]
    fn release(&self) -> String {
        self.helm.config().release.clone()
    }

    /// The chart.
    #[getter]
    fn chart(&self) -> String {
        self.helm.config().chart.clone()
    }

    /// The namespace, if any.
    #[getter]
    fn namespace(&self) -> Option<String> {
        self.helm.config().namespace.clone()
    }

    #[pyo3(signature = (version, values_file = None))]
    fn deploy_canary(&self, version: &str, values_file: Option<String>) -> PyResult<Pending> {
        let spec = CanarySpec {
            version: self::version(version)?,
            values_file: values_file.map(Into::into),
        };
        let helm = self.helm.clone();
        Pending::spawn(
            async move { helm.deploy(&spec).await.map_err(errors::helm) },
            None,
        )
    }

    fn set_canary_weight(&self, weight: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let w = number("weight", weight)?;
        let w = (w.fract() == 0.0 && (0.0..=100.0).contains(&w))
            .then(|| TrafficWeight::new(w as u8).ok())
            .flatten()
            .ok_or_else(|| {
                errors::invalid(format!(
                    "weight must be a whole percentage between 0 and 100, not {}",
                    crate::values::short(w)
                ))
            })?;
        let helm = self.helm.clone();
        Pending::spawn(
            async move { helm.set_weight(w).await.map_err(errors::helm) },
            None,
        )
    }

    /// Promotes `version`, or, without one, the version the canary runs.
    #[pyo3(signature = (version = None))]
    fn promote_canary(&self, version: Option<&str>) -> PyResult<Pending> {
        let given = version.map(self::version).transpose()?;
        let helm = self.helm.clone();
        Pending::spawn(
            async move {
                let v = match given {
                    Some(v) => v,
                    None => helm
                        .status()
                        .await
                        .map_err(errors::core)?
                        .canary_version
                        .ok_or_else(|| {
                            errors::HelmError::new_err(format!(
                                "no canary of {} is deployed, so there is nothing to promote",
                                helm.config().release
                            ))
                        })?,
                };
                helm.promote_version(&v).await.map_err(errors::helm)
            },
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

    /// Resolves to production's and the canary's state, as a dict.
    fn status(&self) -> PyResult<Pending> {
        let helm = self.helm.clone();
        Pending::spawn(
            async move { Ok(Pythonized(helm.status().await.map_err(errors::core)?)) },
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

    /// The helm commands run (or, in dry-run, printed) so far, by this deployer and by every
    /// validation that used it.
    fn commands(&self) -> Vec<Vec<String>> {
        self.helm.commands()
    }
}

/// Slack, best-effort: a message that cannot be delivered is logged and reported as `False`.
#[pyclass(name = "SlackNotifier", module = "canary._canary", frozen)]
pub(crate) struct PySlack {
    pub(crate) slack: Option<Arc<SlackNotifier>>,
}

/// The reason to show: a `reasoning` mapping's `primary_reason`, or a plain string (the
/// reference implementation passes the reason itself).
fn primary_reason(reasoning: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(r) = reasoning.filter(|r| !r.is_none()) else {
        return Ok(None);
    };
    if let Ok(text) = r.cast::<pyo3::types::PyString>() {
        return Ok(Some(text.to_string()));
    }
    let m = r
        .cast::<PyMapping>()
        .map_err(|_| pyo3::exceptions::PyTypeError::new_err("reasoning must be a mapping"))?;
    match m.get_item("primary_reason") {
        Ok(v) if !v.is_none() => Ok(Some(v.str()?.to_string())),
        _ => Ok(None),
    }
}

impl PySlack {
    fn send(&self, message: String, color: &'static str) -> PyResult<Pending> {
        self.send_owned(message, color.to_owned())
    }

    fn send_owned(&self, message: String, color: String) -> PyResult<Pending> {
        let slack = self.slack.clone();
        Pending::spawn(
            async move {
                let Some(slack) = slack else {
                    tracing::info!(target: "canary", "no Slack webhook configured; not sent: {message}");
                    return Ok(false);
                };
                match slack.send_alert(&message, &color).await {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        tracing::warn!(target: "canary", "Slack alert not delivered: {}", canary_core::error::chain(&e));
                        Ok(false)
                    }
                }
            },
            None,
        )
    }
}

#[pymethods]
impl PySlack {
    /// Posts to `webhook`; without one, messages are only logged.
    #[new]
    #[pyo3(signature = (webhook = None, dashboard_url = None))]
    fn new(webhook: Option<String>, dashboard_url: Option<String>) -> PyResult<Self> {
        let Some(webhook) = webhook.filter(|w| !w.is_empty()) else {
            return Ok(PySlack { slack: None });
        };
        let mut s = SlackNotifier::new(webhook).map_err(errors::notify)?;
        if let Some(d) = dashboard_url {
            s = s.with_dashboard(d);
        }
        Ok(PySlack {
            slack: Some(Arc::new(s)),
        })
    }

    /// Whether a webhook is configured.
    #[getter]
    fn enabled(&self) -> bool {
        self.slack.is_some()
    }

    /// The dashboard messages link to.
    #[getter]
    fn dashboard_url(&self) -> Option<String> {
        self.slack
            .as_ref()
            .and_then(|s| s.dashboard_url().map(str::to_owned))
    }

    /// Posts `message` as an attachment of `color`; resolves to whether Slack accepted it.
    fn send_alert(&self, message: String, color: String) -> PyResult<Pending> {
        self.send_owned(message, color)
    }

    /// Announces a promotion.
    #[pyo3(signature = (version, reasoning = None))]
    fn notify_success(
        &self,
        version: &str,
        reasoning: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let (color, text) = alert_text::success(version, primary_reason(reasoning)?.as_deref());
        self.send(text, color)
    }

    /// Asks a person to review the canary.
    #[pyo3(signature = (version, reasoning = None))]
    fn notify_manual_review(
        &self,
        version: &str,
        reasoning: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let (color, text) =
            alert_text::manual_review(version, primary_reason(reasoning)?.as_deref());
        self.send(text, color)
    }

    /// Announces an automatic rollback with the guide's enhanced message. As in the reference
    /// implementation, the second argument may be the reason itself (a `str`).
    #[pyo3(signature = (version, v1_metrics = None, v2_metrics = None, reasoning = None))]
    fn notify_rollback(
        &self,
        version: &str,
        v1_metrics: Option<&Bound<'_, PyAny>>,
        v2_metrics: Option<&Bound<'_, PyAny>>,
        reasoning: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Pending> {
        let (v1_metrics, reasoning) = match v1_metrics {
            Some(r) if r.is_instance_of::<pyo3::types::PyString>() && reasoning.is_none() => {
                (None, Some(r))
            }
            other => (other, reasoning),
        };
        let arm = |name: &str, v: Option<&Bound<'_, PyAny>>| -> PyResult<Option<PyMetrics>> {
            match v.filter(|v| !v.is_none()) {
                None => Ok(None),
                Some(v) => v
                    .cast::<PyMetrics>()
                    .map(|m| Some(m.borrow().clone()))
                    .map_err(|_| {
                        pyo3::exceptions::PyTypeError::new_err(format!(
                            "{name} must be CanaryMetrics"
                        ))
                    }),
            }
        };
        let (b, c) = (
            arm("v1_metrics", v1_metrics)?,
            arm("v2_metrics", v2_metrics)?,
        );
        let metrics = match (&b, &c) {
            (Some(b), Some(c)) => Some((&b.inner, &c.inner)),
            _ => None,
        };
        let dashboard = self.dashboard_url();
        let (color, text) = alert_text::rollback(
            version,
            metrics,
            primary_reason(reasoning)?.as_deref(),
            dashboard.as_deref(),
        );
        self.send(text, color)
    }

    fn __repr__(&self) -> String {
        let hook = if self.slack.is_some() {
            "[redacted]"
        } else {
            "None"
        };
        format!("SlackNotifier(webhook={hook})")
    }
}
