//! Python bindings for canary: the module `canary._canary`.
//!
//! This layer is thin on purpose: it converts values (typed classes and direct conversion,
//! never JSON text), maps errors to exceptions, and bridges async: tasks run on
//! pyo3-async-runtimes' shared tokio runtime and complete through a pipe that Python awaits
//! (see `pending`). Every default, rule and message is `canary-core`'s or an adapter's; the
//! guide's async classes in `python/canary` only delegate.

use pyo3::prelude::*;

mod adapters;
mod backtest;
mod cli;
mod config;
mod errors;
mod judges;
mod logging;
mod pending;
mod validation;
mod values;

/// The compiled part of the `canary` package.
#[pymodule]
fn _canary(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    values::register(m)?;
    adapters::register(m)?;
    judges::register(m)?;
    validation::register(m)?;
    cli::register(m)?;
    backtest::register(m)?;
    config::register(m)?;
    m.add_class::<pending::Pending>()?;
    logging::install(m)?;
    Ok(())
}
