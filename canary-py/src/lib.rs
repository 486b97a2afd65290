//! Python bindings for canary: the module `canary._canary`.
//!
//! This layer is thin on purpose: it converts values (JSON across the boundary), maps errors
//! to exceptions, and bridges async through pyo3-async-runtimes on one shared tokio runtime.
//! Every decision is made by `canary-core`; the guide's Python API lives in `python/canary`.

use pyo3::prelude::*;

mod bridge;
mod errors;
mod logging;

/// The compiled part of the `canary` package.
#[pymodule]
fn _canary(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    bridge::register(m)?;
    logging::install(m.py());
    Ok(())
}
