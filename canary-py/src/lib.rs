//! Python bindings for canary: the module `canary._canary`.
//!
//! This layer is thin on purpose: it converts values (JSON across the boundary), maps errors
//! to exceptions, and bridges async: tasks run on pyo3-async-runtimes' shared tokio runtime and complete through
//! a pipe that Python awaits (see `pending`).
//! Every decision is made by `canary-core`; the guide's Python API lives in `python/canary`.

use pyo3::prelude::*;

mod bridge;
mod errors;
mod logging;
mod pending;

/// The compiled part of the `canary` package.
#[pymodule]
fn _canary(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    bridge::register(m)?;
    logging::install(m)?;
    Ok(())
}
