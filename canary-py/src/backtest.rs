//! `canary.backtest(...)`: `canary backtest` for deploy scripts, returning the same data as its
//! JSON output. Every rule (the judges' parameters, the gate, the calibration, the errors) is
//! canary-cli's and canary-core's; this only converts.

use std::path::PathBuf;

use canary_cli::backtest::{measure, since as parse_since, Setup};
use canary_cli::JudgeName;
use canary_core::backtest::{BacktestConfig, Injection};
use canary_core::{ValidatorConfig, Version};
use canary_prometheus::PrometheusSource;
use chrono::{DateTime, Utc};
use pyo3::prelude::*;

use crate::adapters::Pythonized;
use crate::errors;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(backtest, m)?)
}

/// A judge's name (`threshold`, `sequential`, `flagger`, `argo`, `kayenta`).
pub(crate) fn judge_name(name: &Bound<'_, PyAny>) -> PyResult<JudgeName> {
    pythonize::depythonize(name).map_err(|_| {
        errors::invalid(format!(
            "judge: {} is not one of threshold, sequential, flagger, argo, kayenta",
            name.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        ))
    })
}

/// Backtests judges on `version`'s history from Prometheus; returns the JSON output's data.
#[pyfunction]
#[pyo3(signature = (
    version, since, *, until = None, prometheus_url = None, config = None, judges = None,
    canary_pods = 1, runs = 500, seed = 7, inject = None, calibrate = None,
    max_false_rollback = None
))]
#[allow(clippy::too_many_arguments)]
fn backtest<'py>(
    py: Python<'py>,
    version: &str,
    since: &Bound<'py, PyAny>,
    until: Option<DateTime<Utc>>,
    prometheus_url: Option<String>,
    config: Option<PathBuf>,
    judges: Option<Vec<Bound<'py, PyAny>>>,
    canary_pods: usize,
    runs: usize,
    seed: u64,
    inject: Option<&str>,
    calibrate: Option<f64>,
    max_false_rollback: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let version = Version::new(version).map_err(errors::core)?;
    let file = config
        .as_deref()
        .map(canary_cli::config::load)
        .transpose()
        .map_err(|e| errors::config("config file", e))?;
    let mut prometheus = file
        .as_ref()
        .map(|f| f.prometheus.clone())
        .unwrap_or_default();
    match (prometheus_url, &file) {
        (Some(url), _) => prometheus.url = url,
        (None, Some(_)) => {}
        (None, None) => {
            return Err(errors::invalid(
                "prometheus_url (or a config file) is required",
            ))
        }
    }
    let until = until.unwrap_or_else(Utc::now);
    let since = match since.extract::<String>() {
        Ok(text) => parse_since(&text, until).map_err(errors::invalid)?,
        Err(_) => since.extract::<DateTime<Utc>>().map_err(|_| {
            errors::invalid("since: a span like \"14d\" or a timezone-aware datetime")
        })?,
    };
    let names = judges
        .unwrap_or_default()
        .iter()
        .map(judge_name)
        .collect::<PyResult<Vec<_>>>()?;
    let settings = BacktestConfig {
        runs,
        canary_pods,
        seed,
        injections: inject
            .map(Injection::parse_list)
            .transpose()
            .map_err(errors::core)?
            .unwrap_or_default(),
        ..BacktestConfig::default()
    };
    let setup = Setup::new(
        file.as_ref(),
        &names,
        settings,
        calibrate,
        max_false_rollback,
    )
    .map_err(errors::invalid)?;
    let step = file
        .as_ref()
        .map_or_else(ValidatorConfig::default, |f| f.validator.clone())
        .judge_step;
    let answer = py.detach(|| {
        let source = PrometheusSource::new(prometheus).map_err(errors::prometheus)?;
        let history = pyo3_async_runtimes::tokio::get_runtime()
            .block_on(source.history(&version, since, until, step, &|_, _| {}))
            .map_err(errors::prometheus)?;
        let link = |pods: &[String], metric: Option<&str>, start, end| {
            source.graph_link(&version, pods, metric, start, end)
        };
        measure(&history, &setup, &link, &|_, _, _| {}).map_err(errors::core)
    })?;
    Pythonized(answer).into_pyobject(py)
}
