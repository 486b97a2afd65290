//! The `canary` command inside the wheel: `pip install` puts a `canary` console script on PATH
//! that runs the same Rust code as the `canary` binary (`canary-cli`), so Python shops need no
//! Rust toolchain for it.

use pyo3::prelude::*;

/// Runs the `canary` command line `argv` (the first item is the program's name) and returns
/// its exit code. The GIL is released while it runs.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| canary_cli::run(argv))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cli_main, m)?)
}
