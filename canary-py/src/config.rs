//! `CanaryValidator.from_config`: the `canary` command's config file, read by the same Rust
//! code (`canary_cli::config`), as the objects the Python API holds.

use std::path::PathBuf;
use std::sync::Arc;

use canary_cli::JudgeName;
use canary_core::{Notifier, ValidatorConfig};
use canary_helm::HelmDeployer;
use canary_notify::SlackNotifier;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::adapters::{PyHelm, PyPrometheus, PySlack};
use crate::errors;
use crate::judges::judge_object;
use crate::values::PyPolicy;

/// What the file configures beyond the objects the validator exposes: the whole validator
/// configuration (the warm-up and the judge's step included) and the webhooks and
/// Alertmanager it notifies besides Slack.
#[pyclass(name = "ConfigSettings", module = "canary._canary", frozen)]
pub(crate) struct PySettings {
    pub(crate) validator: ValidatorConfig,
    pub(crate) notifiers: Vec<Arc<dyn Notifier>>,
}

#[pymethods]
impl PySettings {
    fn __repr__(&self) -> String {
        format!(
            "ConfigSettings(warmup_minutes={}, notifiers={:?})",
            self.validator.warmup.as_secs_f64() / 60.0,
            self.notifiers.iter().map(|n| n.name()).collect::<Vec<_>>()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySettings>()?;
    m.add_function(wrap_pyfunction!(load_config, m)?)?;
    Ok(())
}

/// Reads and checks a `canary.yaml`; the parts as a dict: `source`, `helm`, `slack`, `policy`,
/// `regions` (name to region options), the validator's options (`progressive_weights`,
/// `on_manual_review`, `analysis_window_minutes`, `max_duration_minutes`), `judge` and
/// `settings`. A bad file raises `InvalidInput` with the file, line and column.
#[pyfunction]
fn load_config<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let file = canary_cli::config::load(&path).map_err(errors::invalid)?;
    let policy = file.policy().map_err(errors::invalid)?;
    let chain =
        |e: &(dyn std::error::Error + 'static)| errors::invalid(canary_core::error::chain(e));
    let slack = canary_cli::config::slack_webhook(Some(&file))
        .map(|hook| SlackNotifier::new(hook).map(Arc::new))
        .transpose()
        .map_err(|e| chain(&e))?;
    let notifiers = file.notifiers().map_err(errors::invalid)?;
    let v = &file.validator;
    let out = PyDict::new(py);
    out.set_item(
        "source",
        PyPrometheus::from_config(file.prometheus.clone())?,
    )?;
    out.set_item(
        "helm",
        PyHelm {
            helm: Arc::new(HelmDeployer::new(file.helm.clone()).map_err(errors::helm)?),
        },
    )?;
    out.set_item("slack", PySlack { slack })?;
    out.set_item("policy", PyPolicy::from_policy(py, policy)?)?;
    let regions = PyDict::new(py);
    for r in &file.regions {
        let spec = PyDict::new(py);
        spec.set_item(
            "prometheus_url",
            r.prometheus_url.as_deref().unwrap_or(&file.prometheus.url),
        )?;
        spec.set_item("kube_context", &r.kube_context)?;
        spec.set_item("namespace", &r.namespace)?;
        spec.set_item(
            "kubeconfig",
            r.kubeconfig.as_ref().map(|k| k.display().to_string()),
        )?;
        regions.set_item(&r.name, spec)?;
    }
    out.set_item("regions", regions)?;
    let weights: Vec<u32> = v
        .progressive_weights
        .iter()
        .copied()
        .map(u32::from)
        .collect();
    out.set_item("progressive_weights", weights)?;
    out.set_item(
        "on_manual_review",
        pythonize::pythonize(py, &v.on_manual_review)
            .map_err(|e| errors::config("validator", e))?,
    )?;
    out.set_item(
        "analysis_window_minutes",
        v.analysis_window.as_secs_f64() / 60.0,
    )?;
    out.set_item("max_duration_minutes", v.max_duration.as_secs_f64() / 60.0)?;
    out.set_item("baseline", v.baseline.as_str())?;
    out.set_item(
        "judge",
        judge_object(
            py,
            file.judge.unwrap_or(JudgeName::Threshold),
            &file.sequential,
        )?,
    )?;
    out.set_item(
        "settings",
        PySettings {
            validator: v.clone(),
            notifiers,
        },
    )?;
    Ok(out)
}
