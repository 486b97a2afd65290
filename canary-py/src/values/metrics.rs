//! `CanaryMetrics`: what was measured about one version.

use std::collections::BTreeMap;

use canary_core::metrics::names;
use canary_core::CanaryMetrics;
use chrono::{DateTime, Utc};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use super::{custom_values, micros, optional_number, timestamp};
use crate::errors;

/// The guide's `CanaryMetrics`: what was measured about one version.
#[pyclass(name = "CanaryMetrics", module = "canary", subclass)]
#[derive(Clone)]
pub(crate) struct PyMetrics {
    pub(crate) inner: CanaryMetrics,
}

impl PyMetrics {
    fn set(&mut self, name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let v = optional_number(name, value)?;
        let mut next = self.inner.clone();
        next.set_value(name, v);
        next.validate().map_err(errors::core)?;
        self.inner = next;
        Ok(())
    }

    /// Wraps fetched metrics, exactly as Rust has them (no rounding).
    pub(crate) fn from_core(mut inner: CanaryMetrics) -> Self {
        inner.timestamp = micros(inner.timestamp);
        PyMetrics { inner }
    }
}

#[pymethods]
impl PyMetrics {
    /// Metrics of one version. A metric that was not given is `None`: not measured, never 0.
    /// NaN and infinities are refused with an error that names the field.
    #[new]
    #[pyo3(signature = (
        latency_p50 = None, latency_p95 = None, latency_p99 = None, error_rate = None,
        model_confidence = None, request_rate = None, timestamp = None, version = None,
        sample_count = None, *, custom = None, queries = None, warnings = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        latency_p50: Option<&Bound<'_, PyAny>>,
        latency_p95: Option<&Bound<'_, PyAny>>,
        latency_p99: Option<&Bound<'_, PyAny>>,
        error_rate: Option<&Bound<'_, PyAny>>,
        model_confidence: Option<&Bound<'_, PyAny>>,
        request_rate: Option<&Bound<'_, PyAny>>,
        timestamp: Option<&Bound<'_, PyAny>>,
        version: Option<&Bound<'_, PyAny>>,
        sample_count: Option<&Bound<'_, PyAny>>,
        custom: Option<&Bound<'_, PyAny>>,
        queries: Option<BTreeMap<String, String>>,
        warnings: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let version: String = match version {
            None => String::new(),
            Some(v) => v
                .extract()
                .map_err(|_| PyTypeError::new_err("version must be a str"))?,
        };
        let at = match timestamp.filter(|t| !t.is_none()) {
            None => micros(Utc::now()),
            Some(t) => self::timestamp(t)?,
        };
        let mut m = CanaryMetrics::at(version, at);
        for (name, v) in [
            (names::LATENCY_P50, latency_p50),
            (names::LATENCY_P95, latency_p95),
            (names::LATENCY_P99, latency_p99),
            (names::ERROR_RATE, error_rate),
            (names::MODEL_CONFIDENCE, model_confidence),
            (names::REQUEST_RATE, request_rate),
            (names::SAMPLE_COUNT, sample_count),
        ] {
            m.set_value(name, optional_number(name, v)?);
        }
        m.custom = custom_values(custom)?;
        m.queries = queries.unwrap_or_default();
        m.warnings = warnings.unwrap_or_default();
        m.validate().map_err(errors::core)?;
        Ok(PyMetrics { inner: m })
    }

    /// Median latency in milliseconds, or `None`.
    #[getter]
    fn latency_p50(&self) -> Option<f64> {
        self.inner.latency_p50_ms
    }
    #[setter]
    fn set_latency_p50(&mut self, v: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.set(names::LATENCY_P50, v)
    }
    /// 95th percentile latency in milliseconds, or `None`.
    #[getter]
    fn latency_p95(&self) -> Option<f64> {
        self.inner.latency_p95_ms
    }
    #[setter]
    fn set_latency_p95(&mut self, v: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.set(names::LATENCY_P95, v)
    }
    /// 99th percentile latency in milliseconds, or `None`.
    #[getter]
    fn latency_p99(&self) -> Option<f64> {
        self.inner.latency_p99_ms
    }
    #[setter]
    fn set_latency_p99(&mut self, v: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.set(names::LATENCY_P99, v)
    }
    /// Failed requests in percent (0-100), or `None`.
    #[getter]
    fn error_rate(&self) -> Option<f64> {
        self.inner.error_rate_percent
    }
    #[setter]
    fn set_error_rate(&mut self, v: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.set(names::ERROR_RATE, v)
    }
    /// Mean model confidence (0-1), or `None`.
    #[getter]
    fn model_confidence(&self) -> Option<f64> {
        self.inner.model_confidence
    }
    #[setter]
    fn set_model_confidence(&mut self, v: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.set(names::MODEL_CONFIDENCE, v)
    }
    /// Requests per second, or `None`.
    #[getter]
    fn request_rate(&self) -> Option<f64> {
        self.inner.request_rate_rps
    }
    #[setter]
    fn set_request_rate(&mut self, v: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.set(names::REQUEST_RATE, v)
    }
    /// Requests in the window, exactly as measured (Prometheus' `increase` extrapolates, so it
    /// may have a fraction), or `None`.
    #[getter]
    fn sample_count(&self) -> Option<f64> {
        self.inner.sample_count
    }
    #[setter]
    fn set_sample_count(&mut self, v: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.set(names::SAMPLE_COUNT, v)
    }
    /// When the metrics were taken (timezone-aware, UTC).
    #[getter]
    fn timestamp(&self) -> DateTime<Utc> {
        self.inner.timestamp
    }
    #[setter]
    fn set_timestamp(&mut self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.timestamp = timestamp(v)?;
        Ok(())
    }
    /// The version label the metrics were selected by.
    #[getter]
    fn version(&self) -> &str {
        &self.inner.version
    }
    #[setter]
    fn set_version(&mut self, v: String) {
        self.inner.version = v;
    }
    /// Your own metrics by name (a copy: assign a new dict to change them).
    #[getter]
    fn custom(&self) -> BTreeMap<String, f64> {
        self.inner.custom.clone()
    }
    #[setter]
    fn set_custom(&mut self, v: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mut next = self.inner.clone();
        next.custom = custom_values(v)?;
        next.validate().map_err(errors::core)?;
        self.inner = next;
        Ok(())
    }
    /// The query behind each metric, for the evidence.
    #[getter]
    fn queries(&self) -> BTreeMap<String, String> {
        self.inner.queries.clone()
    }
    /// Warnings the source gave.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }

    /// The metrics with the guide's names; the timestamp as an ISO 8601 string.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for name in names::ALL {
            d.set_item(name, self.inner.value(name))?;
        }
        d.set_item("timestamp", self.inner.timestamp.to_rfc3339())?;
        d.set_item("version", &self.inner.version)?;
        d.set_item("custom", self.inner.custom.clone())?;
        Ok(d)
    }

    /// Reads what [`to_dict`] wrote. Unknown keys are refused.
    #[classmethod]
    fn from_dict<'py>(
        cls: &Bound<'py, PyType>,
        data: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let kwargs = PyDict::new(py);
        for (k, v) in data.iter() {
            let key: String = k.extract()?;
            let known = names::ALL.contains(&key.as_str())
                || matches!(key.as_str(), "timestamp" | "version" | "custom");
            if !known {
                return Err(errors::invalid(format!(
                    "unknown CanaryMetrics field {key:?}; fields are {}, timestamp, version and custom",
                    names::ALL.join(", ")
                )));
            }
            let v = if key == "timestamp" && v.is_instance_of::<PyString>() {
                let text: String = v.extract()?;
                let t = DateTime::parse_from_rfc3339(&text.replace(' ', "T"))
                    .map_err(|e| errors::invalid(format!("timestamp {text:?}: {e}")))?;
                t.with_timezone(&Utc).into_pyobject(py)?.into_any()
            } else {
                v
            };
            kwargs.set_item(key, v)?;
        }
        cls.call((), Some(&kwargs))
    }

    /// For `copy` and `pickle`: the constructor's arguments, evidence included.
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let m = &self.inner;
        let args = (
            m.latency_p50_ms,
            m.latency_p95_ms,
            m.latency_p99_ms,
            m.error_rate_percent,
            m.model_confidence,
            m.request_rate_rps,
            m.timestamp,
            m.version.clone(),
            m.sample_count,
        )
            .into_pyobject(py)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("custom", m.custom.clone())?;
        kwargs.set_item("queries", m.queries.clone())?;
        kwargs.set_item("warnings", m.warnings.clone())?;
        PyTuple::new(py, [args.into_any(), kwargs.into_any()])
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
        let py = other.py();
        let Ok(other) = other.cast::<PyMetrics>() else {
            return Ok(py.NotImplemented());
        };
        let (a, b) = (&self.inner, &other.borrow().inner);
        // As a dataclass would compare: every field but the evidence (queries, warnings).
        let same = a.version == b.version
            && a.timestamp == b.timestamp
            && a.custom == b.custom
            && names::ALL.iter().all(|n| a.value(n) == b.value(n));
        match op {
            CompareOp::Eq => Ok(same.into_pyobject(py)?.to_owned().into_any().unbind()),
            CompareOp::Ne => Ok((!same).into_pyobject(py)?.to_owned().into_any().unbind()),
            _ => Ok(py.NotImplemented()),
        }
    }

    fn __repr__(&self) -> String {
        let v = |x: Option<f64>| x.map(|x| format!("{x:?}")).unwrap_or_else(|| "None".into());
        let m = &self.inner;
        format!(
            "CanaryMetrics(latency_p50={}, latency_p95={}, latency_p99={}, error_rate={}, model_confidence={}, request_rate={}, timestamp={:?}, version={:?}, sample_count={}, custom={:?})",
            v(m.latency_p50_ms),
            v(m.latency_p95_ms),
            v(m.latency_p99_ms),
            v(m.error_rate_percent),
            v(m.model_confidence),
            v(m.request_rate_rps),
            m.timestamp.to_rfc3339(),
            m.version,
            v(m.sample_count),
            m.custom
        )
    }
}
