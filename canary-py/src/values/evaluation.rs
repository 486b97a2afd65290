//! The evidence behind a decision: the `(decision, reasoning)` pair and the lazily built
//! `reasoning` dict.

use canary_core::Evaluation;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};
use pythonize::pythonize;

use super::decision_member;
use crate::errors;

/// A Python class of `canary._reasoning`, looked up once.
fn reasoning_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyType>> {
    cell.import(py, "canary._reasoning", name)
}

static REASONING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONDITION: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `(decision, reasoning)` for an evaluation, the reasoning built lazily.
pub(crate) fn evaluation_pair(
    py: Python<'_>,
    evaluation: Evaluation,
) -> PyResult<Bound<'_, PyTuple>> {
    let decision = decision_member(py, evaluation.decision)?;
    let reasoning = lazy_reasoning(py, evaluation)?;
    PyTuple::new(py, [decision.into_bound(py), reasoning])
}

/// A `canary._reasoning.Reasoning` dict over `evaluation`. It holds the decision and the
/// primary reason at once (so the dict is never empty, which `json.dumps` relies on) and
/// materializes the rest on first read.
pub(crate) fn lazy_reasoning(py: Python<'_>, evaluation: Evaluation) -> PyResult<Bound<'_, PyAny>> {
    let cls = reasoning_class(py, &REASONING, "Reasoning")?;
    let r = cls.call0()?;
    {
        let d = r.cast::<PyDict>()?;
        d.set_item(
            intern!(py, "decision"),
            PyString::intern(py, evaluation.decision.as_str()),
        )?;
        d.set_item(intern!(py, "primary_reason"), &evaluation.primary_reason)?;
    }
    r.setattr(
        intern!(py, "_evaluation"),
        Py::new(py, PyEvaluation { inner: evaluation })?,
    )?;
    Ok(r)
}

/// The evidence behind a decision; `canary._reasoning.Reasoning` reads it on demand.
#[pyclass(name = "Evaluation", module = "canary", frozen)]
pub(crate) struct PyEvaluation {
    pub(crate) inner: Evaluation,
}

#[pymethods]
impl PyEvaluation {
    /// The decision.
    #[getter]
    fn decision(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        decision_member(py, self.inner.decision)
    }

    /// The full reasoning dict: the guide's keys, conditions that print as their message,
    /// and comparisons with both our names and the reference implementation's.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        reasoning_dict(py, &self.inner)
    }

    /// The evaluation for people (Markdown): decision, evidence table, rules, queries.
    fn to_markdown(&self) -> String {
        self.inner.to_markdown()
    }
}

/// The whole reasoning of `e` as a plain dict.
pub(crate) fn reasoning_dict<'py>(py: Python<'py>, e: &Evaluation) -> PyResult<Bound<'py, PyDict>> {
    let d = pythonize(py, e).map_err(|e| errors::config("evaluation", e))?;
    let d = d.cast_into::<PyDict>()?;
    let condition = reasoning_class(py, &CONDITION, "Condition")?;
    let conditions = PyList::empty(py);
    for c in &e.triggered_conditions {
        let rule = pythonize(py, &c.rule).map_err(|e| errors::config("rule", e))?;
        conditions.append(condition.call1((c.message.as_str(), rule, c.metric.as_deref()))?)?;
    }
    d.set_item("triggered_conditions", conditions)?;
    if let Some(list) = d.get_item("comparisons")? {
        for item in list.cast::<PyList>()?.iter() {
            let c = item.cast::<PyDict>()?;
            // The reference implementation's names for the same values.
            for (alias, key) in [
                ("metric_name", "metric"),
                ("baseline_value", "baseline"),
                ("canary_value", "canary"),
            ] {
                if let Some(v) = c.get_item(key)? {
                    c.set_item(alias, v)?;
                }
            }
        }
    }
    Ok(d)
}
