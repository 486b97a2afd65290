//! `RollbackThresholds`: the guide's limits, immutable, with the core's defaults.

use canary_core::RollbackThresholds;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PyTuple};
use pythonize::{depythonize, pythonize};

use super::number;
use crate::errors;

/// The guide's `RollbackThresholds`, immutable; the defaults are the core's.
#[pyclass(name = "RollbackThresholds", module = "canary", frozen)]
#[derive(Clone)]
pub(crate) struct PyThresholds {
    pub(crate) inner: RollbackThresholds,
}

/// The thresholds' field names, in order, from the core's own serialization.
fn threshold_fields(py: Python<'_>) -> PyResult<Vec<String>> {
    let d = pythonize(py, &RollbackThresholds::default())
        .map_err(|e| errors::config("thresholds", e))?;
    d.cast::<PyDict>()?.keys().extract()
}

#[pymethods]
impl PyThresholds {
    /// Keyword arguments override the defaults (positional ones follow the reference
    /// implementation's order). Invalid values raise `canary.InvalidInput` naming the field.
    #[new]
    #[pyo3(signature = (*args, **kwargs))]
    fn new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let fields = threshold_fields(py)?;
        let values = pythonize(py, &RollbackThresholds::default())
            .map_err(|e| errors::config("thresholds", e))?;
        let values = values.cast::<PyDict>()?;
        if args.len() > fields.len() {
            return Err(PyTypeError::new_err(format!(
                "RollbackThresholds takes at most {} positional arguments",
                fields.len()
            )));
        }
        let mut given = Vec::new();
        for (field, v) in fields.iter().zip(args.iter()) {
            given.push((field.clone(), v));
        }
        if let Some(kw) = kwargs {
            for (k, v) in kw.iter() {
                let k: String = k.extract()?;
                if !fields.contains(&k) {
                    return Err(PyTypeError::new_err(format!(
                        "RollbackThresholds got an unexpected keyword argument {k:?}"
                    )));
                }
                if given.iter().any(|(f, _)| *f == k) {
                    return Err(PyTypeError::new_err(format!(
                        "RollbackThresholds got multiple values for {k:?}"
                    )));
                }
                given.push((k, v));
            }
        }
        for (field, v) in given {
            let x = number(&field, &v)?;
            values.set_item(field, x)?;
        }
        let inner: RollbackThresholds =
            depythonize(values.as_any()).map_err(|e| errors::config("thresholds", e))?;
        inner.validate().map_err(errors::core)?;
        Ok(PyThresholds { inner })
    }

    /// Every field, by name.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pythonize(py, &self.inner).map_err(|e| errors::config("thresholds", e))
    }

    /// For `copy` and `pickle`: every field as a keyword argument.
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let kwargs = self.to_dict(py)?;
        PyTuple::new(py, [PyTuple::empty(py).into_any(), kwargs])
    }

    /// Roll back when canary p99 / baseline p99 exceeds this.
    #[getter]
    fn latency_p99_threshold(&self) -> f64 {
        self.inner.latency_p99_threshold
    }
    /// Roll back when canary / baseline error rate exceeds this.
    #[getter]
    fn error_rate_threshold(&self) -> f64 {
        self.inner.error_rate_threshold
    }
    /// Roll back when canary / baseline confidence falls below this.
    #[getter]
    fn confidence_threshold(&self) -> f64 {
        self.inner.confidence_threshold
    }
    /// Critical metrics within this ratio count as stable.
    #[getter]
    fn proceed_tolerance(&self) -> f64 {
        self.inner.proceed_tolerance
    }
    /// p95 beyond this ratio needs manual review.
    #[getter]
    fn latency_p95_warning(&self) -> f64 {
        self.inner.latency_p95_warning
    }
    /// Error rate beyond this ratio needs manual review.
    #[getter]
    fn error_rate_warning(&self) -> f64 {
        self.inner.error_rate_warning
    }
    /// p50 beyond this ratio needs manual review.
    #[getter]
    fn latency_p50_warning(&self) -> f64 {
        self.inner.latency_p50_warning
    }
    /// Fewer requests than this in either arm is insufficient data.
    #[getter]
    fn min_sample_count(&self) -> f64 {
        self.inner.min_sample_count
    }
    /// Latency ratios are taken against at least this many ms.
    #[getter]
    fn latency_floor_ms(&self) -> f64 {
        self.inner.latency_floor_ms
    }
    /// Error-rate ratios are taken against at least this many percent.
    #[getter]
    fn error_rate_floor_percent(&self) -> f64 {
        self.inner.error_rate_floor_percent
    }
    /// Confidence ratios are taken against at least this confidence.
    #[getter]
    fn confidence_floor(&self) -> f64 {
        self.inner.confidence_floor
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<PyThresholds>() else {
            return Ok(py.NotImplemented());
        };
        let same = self.inner == other.get().inner;
        match op {
            CompareOp::Eq => Ok(same.into_pyobject(py)?.to_owned().into_any().unbind()),
            CompareOp::Ne => Ok((!same).into_pyobject(py)?.to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let d = pythonize(py, &self.inner).map_err(|e| errors::config("thresholds", e))?;
        let parts: Vec<String> = d
            .cast::<PyDict>()?
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        Ok(format!("RollbackThresholds({})", parts.join(", ")))
    }
}
