//! Rust errors as Python exceptions: `CanaryError` and one subclass per kind of failure;
//! invalid input is a `ValueError`, as Python users expect.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _canary,
    CanaryError,
    PyException,
    "Base class of every canary error."
);
create_exception!(
    _canary,
    PrometheusError,
    CanaryError,
    "Prometheus could not answer, or answered badly."
);
create_exception!(_canary, HelmError, CanaryError, "helm failed.");
create_exception!(
    _canary,
    NotifyError,
    CanaryError,
    "A notification could not be delivered."
);
create_exception!(
    _canary,
    ConfigError,
    CanaryError,
    "The configuration is invalid."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CanaryError", py.get_type::<CanaryError>())?;
    m.add("PrometheusError", py.get_type::<PrometheusError>())?;
    m.add("HelmError", py.get_type::<HelmError>())?;
    m.add("NotifyError", py.get_type::<NotifyError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    Ok(())
}

fn text(e: &(dyn std::error::Error + 'static)) -> String {
    canary_core::error::chain(e)
}

/// A core error as the matching exception.
pub(crate) fn core(e: canary_core::Error) -> PyErr {
    use canary_core::Error as E;
    let message = text(&e);
    match e {
        E::InvalidMetric { .. } | E::InvalidThreshold { .. } | E::InvalidVersion { .. } => {
            PyValueError::new_err(message)
        }
        E::InvalidConfig { .. } => ConfigError::new_err(message),
        E::Source { .. } => PrometheusError::new_err(message),
        E::Deploy { .. } => HelmError::new_err(message),
        E::Notify { .. } => NotifyError::new_err(message),
        _ => CanaryError::new_err(message),
    }
}

/// A Prometheus error as the matching exception.
pub(crate) fn prometheus(e: canary_prometheus::Error) -> PyErr {
    let message = text(&e);
    match e {
        canary_prometheus::Error::InvalidConfig { .. }
        | canary_prometheus::Error::InvalidTemplate { .. } => ConfigError::new_err(message),
        _ => PrometheusError::new_err(message),
    }
}

/// A helm error as the matching exception.
pub(crate) fn helm(e: canary_helm::Error) -> PyErr {
    let message = text(&e);
    match e {
        canary_helm::Error::InvalidConfig { .. }
        | canary_helm::Error::InvalidReleaseName { .. } => ConfigError::new_err(message),
        _ => HelmError::new_err(message),
    }
}

/// A notifier error as the matching exception.
pub(crate) fn notify(e: canary_notify::Error) -> PyErr {
    let message = text(&e);
    match e {
        canary_notify::Error::InvalidConfig { .. } => ConfigError::new_err(message),
        _ => NotifyError::new_err(message),
    }
}

/// Bad JSON from the Python layer: a `ValueError` naming what was being read.
pub(crate) fn json(what: &str, e: serde_json::Error) -> PyErr {
    PyValueError::new_err(format!("invalid {what}: {e}"))
}
