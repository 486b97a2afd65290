//! The guide's values as Python classes over the core types: `CanaryMetrics`,
//! `RollbackThresholds`, `RollbackPolicy`, and the evaluation behind a `reasoning` dict.
//!
//! Values cross the boundary as these objects, or by direct conversion (pythonize); there is
//! no JSON text in either direction, and every default, name, rule and message is the core's.

use std::collections::BTreeMap;

use canary_core::metrics::names;
use canary_core::{
    CanaryMetrics, Direction, Evaluation, MetricSpec, Plausible, RollbackDecision, RollbackPolicy,
    RollbackThresholds,
};
use chrono::{DateTime, FixedOffset, Utc};
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple, PyType};
use pythonize::{depythonize, pythonize};

use crate::errors;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMetrics>()?;
    m.add_class::<PyThresholds>()?;
    m.add_class::<PyPolicy>()?;
    m.add_class::<PyEvaluation>()?;
    m.add_function(wrap_pyfunction!(register_decisions, m)?)?;
    m.add(
        "DECISIONS",
        DECISIONS.map(RollbackDecision::as_str).to_vec(),
    )?;
    m.add("METRIC_NAMES", names::ALL.to_vec())?;
    m.add("DEFAULT_FLOOR", MetricSpec::DEFAULT_FLOOR)?;
    Ok(())
}

const DECISIONS: [RollbackDecision; 3] = [
    RollbackDecision::Proceed,
    RollbackDecision::RollbackAuto,
    RollbackDecision::RollbackManual,
];

/// The Python `RollbackDecision` members, in the order of `DECISIONS`.
static DECISION_MEMBERS: PyOnceLock<[Py<PyAny>; 3]> = PyOnceLock::new();

/// Called once by `canary.policy` with its `RollbackDecision` enum: the members are looked up
/// by the core's values, so Python and Rust cannot drift apart (an import would fail).
#[pyfunction]
#[pyo3(name = "_register_decisions")]
fn register_decisions(py: Python<'_>, cls: &Bound<'_, PyAny>) -> PyResult<()> {
    let member = |d: RollbackDecision| -> PyResult<Py<PyAny>> {
        let m = cls.call1((d.as_str(),))?;
        let name: String = m.getattr("name")?.extract()?;
        if name.to_lowercase() != d.as_str() {
            return Err(errors::invalid(format!(
                "RollbackDecision.{name} has the value {:?}",
                d.as_str()
            )));
        }
        Ok(m.unbind())
    };
    let members = [
        member(DECISIONS[0])?,
        member(DECISIONS[1])?,
        member(DECISIONS[2])?,
    ];
    let _ = DECISION_MEMBERS.set(py, members);
    Ok(())
}

/// The Python member of `d`.
pub(crate) fn decision_member(py: Python<'_>, d: RollbackDecision) -> PyResult<Py<PyAny>> {
    let members = match DECISION_MEMBERS.get(py) {
        Some(m) => m,
        None => {
            // Importing canary.policy registers them.
            py.import("canary.policy")?;
            DECISION_MEMBERS
                .get(py)
                .ok_or_else(|| errors::invalid("canary.policy did not register its decisions"))?
        }
    };
    let i = DECISIONS.iter().position(|x| *x == d).unwrap_or(0);
    Ok(members[i].clone_ref(py))
}

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

/// A number for a message: never 309 digits.
pub(crate) fn short(x: f64) -> String {
    if x.is_finite() && x.abs() < 1e9 {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// A number from Python: an int or a float (or anything with `__float__`), never a bool or a
/// string. The error names the field.
pub(crate) fn number(field: &str, v: &Bound<'_, PyAny>) -> PyResult<f64> {
    let refuse = || {
        PyTypeError::new_err(format!(
            "{field} must be a number or None, not {}",
            v.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    };
    if v.is_instance_of::<PyBool>() || v.is_instance_of::<PyString>() {
        return Err(refuse());
    }
    v.extract::<f64>().map_err(|_| refuse())
}

fn optional_number(field: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => number(field, v).map(Some),
    }
}

fn timestamp(v: &Bound<'_, PyAny>) -> PyResult<DateTime<Utc>> {
    if v.getattr("tzinfo").map(|t| t.is_none()).unwrap_or(true) {
        if v.hasattr("tzinfo")? {
            return Err(errors::invalid(
                "timestamp must be timezone-aware (e.g. datetime.now(timezone.utc))",
            ));
        }
        return Err(PyTypeError::new_err("timestamp must be a datetime"));
    }
    let t: DateTime<FixedOffset> = v.extract()?;
    Ok(t.with_timezone(&Utc))
}

/// Python's datetime has microseconds; keeping more would make equal values differ.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

fn custom_values(v: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    if let Some(v) = v.filter(|v| !v.is_none()) {
        let d = v
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("custom must be a dict of metric name to number"))?;
        for (k, value) in d.iter() {
            let k: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err("custom metric names are str"))?;
            let x = number(&format!("custom[{k:?}]"), &value)?;
            out.insert(k, x);
        }
    }
    Ok(out)
}

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
