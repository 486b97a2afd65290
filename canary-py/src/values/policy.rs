//! `RollbackPolicy`: thresholds plus the metrics they judge.

use canary_core::{Direction, MetricSpec, Plausible, RollbackPolicy, RollbackThresholds};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pythonize::{depythonize, pythonize};

use super::{evaluation_pair, PyMetrics, PyThresholds};
use crate::errors;

/// The guide's `RollbackPolicy`: thresholds plus the metrics they judge.
#[pyclass(name = "RollbackPolicy", module = "canary", subclass)]
pub(crate) struct PyPolicy {
    pub(crate) policy: RollbackPolicy,
    thresholds: Py<PyThresholds>,
}

impl PyPolicy {
    /// A Python policy over a policy built in Rust (a config file's).
    pub(crate) fn from_policy(py: Python<'_>, policy: RollbackPolicy) -> PyResult<Self> {
        let thresholds = Py::new(
            py,
            PyThresholds {
                inner: policy.thresholds().clone(),
            },
        )?;
        Ok(PyPolicy { policy, thresholds })
    }
}

#[pymethods]
impl PyPolicy {
    /// A policy with `thresholds` (default: the guide's).
    #[new]
    #[pyo3(signature = (thresholds = None))]
    fn new(py: Python<'_>, thresholds: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let t = match thresholds.filter(|t| !t.is_none()) {
            None => Py::new(
                py,
                PyThresholds {
                    inner: RollbackThresholds::default(),
                },
            )?,
            Some(t) => t
                .cast::<PyThresholds>()
                .map_err(|_| PyTypeError::new_err("thresholds must be a RollbackThresholds"))?
                .clone()
                .unbind(),
        };
        let policy = RollbackPolicy::new(t.get().inner.clone()).map_err(errors::core)?;
        Ok(PyPolicy {
            policy,
            thresholds: t,
        })
    }

    /// The thresholds.
    #[getter]
    fn thresholds(&self, py: Python<'_>) -> Py<PyThresholds> {
        self.thresholds.clone_ref(py)
    }

    /// The names of the judged metrics, in report order.
    #[getter]
    fn metrics(&self) -> Vec<String> {
        self.policy
            .metrics()
            .iter()
            .map(|m| m.name.clone())
            .collect()
    }

    /// Judges a metric of your own (from `CanaryMetrics.custom[name]`) exactly like a built-in
    /// one. Returns the policy, for chaining. A bad spec raises `canary.InvalidInput` here.
    #[pyo3(signature = (
        name, *, higher_is_better = false, critical = false, rollback_ratio = None,
        warning_ratio = None, proceed_tolerance = None, floor = None, unit = None,
        plausible_range = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_metric(
        mut slf: PyRefMut<'_, Self>,
        name: String,
        higher_is_better: bool,
        critical: bool,
        rollback_ratio: Option<f64>,
        warning_ratio: Option<f64>,
        proceed_tolerance: Option<f64>,
        floor: Option<f64>,
        unit: Option<String>,
        plausible_range: Option<(f64, f64)>,
    ) -> PyResult<PyRefMut<'_, Self>> {
        let direction = if higher_is_better {
            Direction::HigherIsBetter
        } else {
            Direction::LowerIsBetter
        };
        let mut spec = MetricSpec::new(name, direction);
        if critical {
            spec = spec.critical();
        }
        spec.rollback_ratio = rollback_ratio;
        spec.warning_ratio = warning_ratio;
        spec.proceed_tolerance = proceed_tolerance;
        if let Some(f) = floor {
            spec.floor = f;
        }
        if let Some(u) = unit {
            spec.unit = u;
        }
        if let Some((lo, hi)) = plausible_range {
            spec.plausible_range = Plausible::new(lo, hi);
        }
        slf.policy = slf.policy.clone().with_metric(spec).map_err(errors::core)?;
        Ok(slf)
    }

    /// Stops judging a metric, e.g. `model_confidence` for a service without a model. A name
    /// the policy does not judge raises `canary.InvalidInput` (a typo must not go unnoticed).
    fn without_metric<'a>(mut slf: PyRefMut<'a, Self>, name: &str) -> PyResult<PyRefMut<'a, Self>> {
        if slf.policy.metric(name).is_none() {
            let known: Vec<&str> = slf
                .policy
                .metrics()
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            return Err(errors::invalid(format!(
                "the policy does not judge a metric named {name:?}; it judges {}",
                known.join(", ")
            )));
        }
        slf.policy = slf.policy.clone().without_metric(name);
        Ok(slf)
    }

    /// Judges `v2_metrics` (canary) against `v1_metrics` (baseline): `(decision, reasoning)`.
    ///
    /// `reasoning` is a dict with the guide's keys (`decision`, `primary_reason`,
    /// `triggered_conditions`, `comparisons`, `recommendation`) and the whole evidence, built
    /// when first read. An impossible or implausible value raises `canary.InvalidInput`.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        v1_metrics: &Bound<'py, PyAny>,
        v2_metrics: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let arg = |name: &str, v: &Bound<'py, PyAny>| -> PyResult<PyRef<'py, PyMetrics>> {
            v.cast::<PyMetrics>().map(|m| m.borrow()).map_err(|_| {
                PyTypeError::new_err(format!(
                    "{name} must be CanaryMetrics, not {}",
                    v.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })
        };
        let (b, c) = (
            arg("v1_metrics", v1_metrics)?,
            arg("v2_metrics", v2_metrics)?,
        );
        let evaluation = self
            .policy
            .try_evaluate(&b.inner, &c.inner)
            .map_err(errors::core)?;
        evaluation_pair(py, evaluation)
    }

    fn __repr__(&self) -> String {
        format!("RollbackPolicy(metrics={:?})", self.metrics())
    }

    /// For `copy` and `pickle`: the whole policy (thresholds and every metric spec), rebuilt
    /// and validated by the core's deserialization.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let state = pythonize(py, &slf.borrow().policy).map_err(|e| errors::config("policy", e))?;
        let rebuild = slf.get_type().getattr("_from_state")?;
        PyTuple::new(py, [rebuild, PyTuple::new(py, [state])?.into_any()])
    }

    /// Rebuilds a policy that `__reduce__` saved.
    #[staticmethod]
    fn _from_state(py: Python<'_>, state: &Bound<'_, PyAny>) -> PyResult<Self> {
        let policy: RollbackPolicy = depythonize(state).map_err(|e| errors::config("policy", e))?;
        PyPolicy::from_policy(py, policy)
    }
}
