//! The guide's values as Python classes over the core types: `CanaryMetrics`,
//! `RollbackThresholds`, `RollbackPolicy`, and the evaluation behind a `reasoning` dict.
//!
//! Values cross the boundary as these objects, or by direct conversion (pythonize); there is
//! no JSON text in either direction, and every default, name, rule and message is the core's.

use std::collections::BTreeMap;

use canary_core::metrics::names;
use canary_core::{MetricSpec, RollbackDecision};
use chrono::{DateTime, FixedOffset, Utc};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyString};

use crate::errors;

mod evaluation;
mod metrics;
mod policy;
mod thresholds;

pub(crate) use evaluation::{evaluation_pair, reasoning_dict, PyEvaluation};
pub(crate) use metrics::PyMetrics;
pub(crate) use policy::PyPolicy;
pub(crate) use thresholds::PyThresholds;

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

pub(super) fn optional_number(field: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => number(field, v).map(Some),
    }
}

pub(super) fn timestamp(v: &Bound<'_, PyAny>) -> PyResult<DateTime<Utc>> {
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
pub(super) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

pub(super) fn custom_values(v: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, f64>> {
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

/// `v` minutes as a duration; `field` names the argument in the error.
pub(crate) fn minutes(field: &str, v: &Bound<'_, PyAny>) -> PyResult<std::time::Duration> {
    let m = number(field, v)?;
    std::time::Duration::try_from_secs_f64(m * 60.0).map_err(|_| {
        errors::invalid(format!(
            "{field} must be a number of minutes >= 0, not {}",
            short(m)
        ))
    })
}
