//! Rust errors as Python exceptions. Every exception is a `canary.CanaryError`; invalid input
//! (`canary.InvalidInput`, and `canary.ConfigError` under it) is also a `ValueError`, as
//! pydantic-core's `ValidationError` is. All of them are shown as `canary.…`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

create_exception!(
    canary,
    CanaryError,
    PyException,
    "Base class of every canary error."
);
create_exception!(
    canary,
    InvalidInput,
    CanaryError,
    "A value canary was given is invalid: a version, a metric, a threshold. Also a ValueError."
);
create_exception!(
    canary,
    ConfigError,
    InvalidInput,
    "The configuration is invalid. Also a ValueError."
);
create_exception!(
    canary,
    PrometheusError,
    CanaryError,
    "Prometheus could not answer, or answered badly."
);
create_exception!(canary, HelmError, CanaryError, "helm failed.");
create_exception!(
    canary,
    NotifyError,
    CanaryError,
    "A notification could not be delivered."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // `InvalidInput` is a `ValueError` too. Both bases share the exception layout, so the
    // bases of the (heap) type can be set after it is made.
    let invalid = py.get_type::<InvalidInput>();
    let bases = PyTuple::new(
        py,
        [
            py.get_type::<CanaryError>().into_any(),
            py.get_type::<PyValueError>().into_any(),
        ],
    )?;
    invalid.setattr("__bases__", bases)?;
    m.add("CanaryError", py.get_type::<CanaryError>())?;
    m.add("InvalidInput", invalid)?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("PrometheusError", py.get_type::<PrometheusError>())?;
    m.add("HelmError", py.get_type::<HelmError>())?;
    m.add("NotifyError", py.get_type::<NotifyError>())?;
    Ok(())
}

fn text(e: &(dyn std::error::Error + 'static)) -> String {
    canary_core::error::chain(e)
}

/// Invalid input, as `canary.InvalidInput`.
pub(crate) fn invalid(message: impl Into<String>) -> PyErr {
    InvalidInput::new_err(message.into())
}

/// A core error as the matching exception.
pub(crate) fn core(e: canary_core::Error) -> PyErr {
    use canary_core::Error as E;
    let message = text(&e);
    match e {
        E::InvalidMetric { .. } | E::InvalidThreshold { .. } | E::InvalidVersion { .. } => {
            InvalidInput::new_err(message)
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

/// A value that does not fit a Rust configuration type: `ConfigError`, naming `what`.
pub(crate) fn config(what: &str, e: impl std::fmt::Display) -> PyErr {
    ConfigError::new_err(format!("invalid {what}: {e}"))
}
