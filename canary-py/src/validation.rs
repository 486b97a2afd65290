//! `run_validation`: the guide's `CanaryValidator.validate_canary`, run by the core's
//! validator over the Rust objects the Python classes already hold (so `HelmManager.commands`
//! shows what a validation ran).

use std::sync::Arc;

use async_trait::async_trait;
use canary_core::observation::ObservationSource;
use canary_core::{
    BusinessCheck, BusinessVerdict, CanaryValidator, Evaluation, ManualReviewAction, Region,
    ScaledClock, ValidationReport, ValidationRequest, ValidatorConfig, Version,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_async_runtimes::TaskLocals;
use pythonize::pythonize;

use crate::adapters::{PyHelm, PyPrometheus, PySlack};
use crate::config::PySettings;
use crate::errors;
use crate::judges::judge_factory;
use crate::pending::Pending;
use crate::values::{minutes, reasoning_dict, PyPolicy};
use canary_helm::HelmDeployer;
use canary_prometheus::PrometheusSource;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_validation, m)?)?;
    m.add_function(wrap_pyfunction!(check_validator_options, m)?)?;
    m.add(
        "DEFAULT_PROGRESSIVE_WEIGHTS",
        // As ints: a Vec<u8> would become bytes.
        canary_core::DEFAULT_PROGRESSIVE_WEIGHTS
            .map(u32::from)
            .to_vec(),
    )?;
    Ok(())
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
        let pending = Python::attach(|py| -> PyResult<Result<Py<PyAny>, _>> {
            let reasoning = reasoning_dict(py, evaluation)?;
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

/// A finished validation, converted on the event loop's thread: `(report, reasoning)`.
struct Finished(ValidationReport);

impl<'py> IntoPyObject<'py> for Finished {
    type Target = pyo3::types::PyTuple;
    type Output = Bound<'py, pyo3::types::PyTuple>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        let report = pythonize(py, &self.0).map_err(|e| errors::config("report", e))?;
        let reasoning = match &self.0.evaluation {
            Some(e) => reasoning_dict(py, e)?,
            None => {
                // No analysis finished: the reasoning says why, in the guide's shape.
                let d = PyDict::new(py);
                d.set_item("decision", py.None())?;
                d.set_item("primary_reason", &self.0.reason)?;
                d.set_item("triggered_conditions", pyo3::types::PyList::empty(py))?;
                d.set_item("comparisons", pyo3::types::PyList::empty(py))?;
                d.set_item(
                    "recommendation",
                    "The validation did not reach a decision; see report['failure'].",
                )?;
                d
            }
        };
        pyo3::types::PyTuple::new(py, [report, reasoning.into_any()])
    }
}

/// The validator's configuration from the Python options (over a config file's, if any),
/// checked by the core.
fn validator_config(
    base: Option<&ValidatorConfig>,
    analysis_window_minutes: Option<&Bound<'_, PyAny>>,
    progressive_weights: Option<Vec<u8>>,
    on_manual_review: Option<&Bound<'_, PyAny>>,
    max_duration_minutes: Option<&Bound<'_, PyAny>>,
    baseline: Option<&Bound<'_, PyAny>>,
) -> PyResult<ValidatorConfig> {
    let mut config = base.cloned().unwrap_or_default();
    if let Some(b) = baseline.filter(|b| !b.is_none()) {
        config.baseline = pythonize::depythonize::<canary_core::BaselineArm>(b)
            .map_err(|e| errors::config("baseline ('production' or 'deployed')", e))?;
    }
    if let Some(m) = max_duration_minutes.filter(|m| !m.is_none()) {
        config.max_duration = minutes("max_duration_minutes", m)?;
    }
    if let Some(w) = analysis_window_minutes.filter(|w| !w.is_none()) {
        config.analysis_window = minutes("analysis_window_minutes", w)?;
    }
    if let Some(w) = progressive_weights {
        config.progressive_weights = w;
    }
    if let Some(action) = on_manual_review.filter(|a| !a.is_none()) {
        config.on_manual_review = pythonize::depythonize::<ManualReviewAction>(action)
            .map_err(|e| errors::config("on_manual_review ('hold' or 'rollback')", e))?;
    }
    config.validate().map_err(errors::core)?;
    Ok(config)
}

/// The region's source with the deployed baseline's matchers: the source's own
/// `baseline_matchers`, or helm's `baseline_values` (as the `canary` command does).
fn deployed_baseline_source(
    source: &Arc<PrometheusSource>,
    helm: &HelmDeployer,
) -> PyResult<Arc<PrometheusSource>> {
    let mut config = source.config().clone();
    if config.baseline_matchers.is_empty() {
        config
            .baseline_matchers
            .clone_from(&helm.config().baseline_values);
    }
    if config.baseline_matchers.is_empty() {
        return Err(errors::invalid(
            "baseline='deployed' needs baseline_matchers or helm baseline_values to tell its pods from production's",
        ));
    }
    PrometheusSource::new(config)
        .map(Arc::new)
        .map_err(errors::prometheus)
}

/// Checks `CanaryValidator`'s options when it is made, so a typo fails there.
#[pyfunction]
#[pyo3(signature = (
    analysis_window_minutes = None, progressive_weights = None, on_manual_review = None,
    max_duration_minutes = None, baseline = None
))]
fn check_validator_options(
    analysis_window_minutes: Option<&Bound<'_, PyAny>>,
    progressive_weights: Option<Vec<u8>>,
    on_manual_review: Option<&Bound<'_, PyAny>>,
    max_duration_minutes: Option<&Bound<'_, PyAny>>,
    baseline: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    validator_config(
        None,
        analysis_window_minutes,
        progressive_weights,
        on_manual_review,
        max_duration_minutes,
        baseline,
    )
    .map(drop)
}

/// Runs a whole validation; resolves to `(report, reasoning)`. Cancelling it rolls the canary
/// back before the task ends.
#[pyfunction]
#[pyo3(signature = (
    version, *, regions, policy, slack = None, wait_time_minutes = None,
    analysis_window_minutes = None, progressive_weights = None, on_manual_review = None,
    production_version = None, values_file = None, business_check = None, judge = None,
    max_duration_minutes = None, settings = None, baseline = None
))]
#[allow(clippy::too_many_arguments)]
fn run_validation(
    py: Python<'_>,
    version: &str,
    regions: Vec<(Option<String>, PyRef<'_, PyPrometheus>, PyRef<'_, PyHelm>)>,
    policy: PyRef<'_, PyPolicy>,
    slack: Option<PyRef<'_, PySlack>>,
    wait_time_minutes: Option<&Bound<'_, PyAny>>,
    analysis_window_minutes: Option<&Bound<'_, PyAny>>,
    progressive_weights: Option<Vec<u8>>,
    on_manual_review: Option<&Bound<'_, PyAny>>,
    production_version: Option<&str>,
    values_file: Option<String>,
    business_check: Option<Py<PyAny>>,
    judge: Option<&Bound<'_, PyAny>>,
    max_duration_minutes: Option<&Bound<'_, PyAny>>,
    settings: Option<PyRef<'_, PySettings>>,
    baseline: Option<&Bound<'_, PyAny>>,
) -> PyResult<Pending> {
    let config = validator_config(
        settings.as_ref().map(|s| &s.validator),
        analysis_window_minutes,
        progressive_weights,
        on_manual_review,
        max_duration_minutes,
        baseline,
    )?;
    let deployed = config.baseline == canary_core::BaselineArm::Deployed;
    let mut regions: Vec<Region> = regions
        .iter()
        .map(|(name, source, helm)| {
            let source = if deployed {
                deployed_baseline_source(&source.source, &helm.helm)?
            } else {
                source.source.clone()
            };
            Ok(Region {
                name: name.clone(),
                source: source.clone(),
                deployer: helm.helm.clone(),
                observations: Some(source as Arc<dyn ObservationSource>),
            })
        })
        .collect::<PyResult<_>>()?;
    let mut validator = match regions.len() {
        0 => return Err(errors::invalid("at least one region is needed")),
        1 if regions[0].name.is_none() => CanaryValidator::for_region(regions.remove(0)),
        _ => CanaryValidator::multi_region(regions).map_err(errors::core)?,
    };
    validator = validator
        .with_policy(policy.policy.clone())
        .map_err(errors::core)?
        .with_config(config)
        .map_err(errors::core)?
        .with_clock(Arc::new(ScaledClock::from_env().map_err(errors::core)?));
    if let Some(j) = judge.filter(|j| !j.is_none()) {
        validator = validator.with_judge(judge_factory(j)?);
    }
    if let Some(s) = slack.as_ref().and_then(|s| s.slack.clone()) {
        validator = validator.with_notifier(s);
    }
    for n in settings.iter().flat_map(|s| s.notifiers.iter()) {
        validator = validator.with_notifier(n.clone());
    }
    if let Some(callable) = business_check.filter(|c| !c.is_none(py)) {
        validator = validator.with_business_check(Arc::new(PyBusinessCheck {
            callable,
            locals: pyo3_async_runtimes::tokio::get_current_locals(py)?,
        }));
    }
    let mut request = ValidationRequest::new(Version::new(version).map_err(errors::core)?);
    if let Some(b) = production_version {
        request = request.with_baseline(Version::new(b).map_err(errors::core)?);
    }
    if let Some(f) = values_file {
        request = request.with_values_file(f);
    }
    if let Some(w) = wait_time_minutes.filter(|w| !w.is_none()) {
        let warmup = minutes("wait_time_minutes", w)?;
        if warmup > ValidatorConfig::MAX_WARMUP {
            return Err(errors::invalid(
                "wait_time_minutes must be at most a week (10080)",
            ));
        }
        request = request.with_warmup(warmup);
    } else if let Some(s) = &settings {
        // The file's warm-up, where the call names none.
        request = request.with_warmup(s.validator.warmup);
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
            Ok(Finished(validator.validate_until(request, signal).await))
        },
        Some(cancel),
    )
}
