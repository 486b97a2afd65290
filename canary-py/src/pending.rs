//! Awaitables whose completion never touches Python from a tokio thread.
//!
//! A Rust task runs on pyo3-async-runtimes' shared tokio runtime, stores its result in a slot
//! and writes one byte to a pipe. Python waits on the pipe's read end with `loop.add_reader`
//! and collects the result on the event loop's own thread. A worker thread therefore never
//! holds the GIL when the interpreter shuts down: completing the asyncio future from a tokio
//! thread, as `future_into_py` does, can crash a process at exit (pyo3-async-runtimes issue 40).

use std::future::Future;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

type Convert = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;
type Cancel = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    result: Mutex<Option<PyResult<Convert>>>,
    cancel: Mutex<Option<Cancel>>,
}

/// A running Rust task. Await it with `canary._bridge.wait(pending)`.
#[pyclass(module = "canary._canary", frozen)]
pub(crate) struct Pending {
    state: Arc<State>,
    reader: std::io::PipeReader,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pending {
    /// Runs `fut` on the shared runtime; `cancel` says how to stop it (default: abort the task).
    pub(crate) fn spawn<F, T>(fut: F, cancel: Option<Cancel>) -> PyResult<Pending>
    where
        F: Future<Output = PyResult<T>> + Send + 'static,
        T: for<'py> IntoPyObject<'py> + Send + 'static,
    {
        let (reader, mut writer) = std::io::pipe()?;
        let state = Arc::new(State::default());
        let slot = state.clone();
        let handle = pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
            let out = fut
                .await
                .map(|value| -> Convert { Box::new(move |py| value.into_py_any(py)) });
            *lock(&slot.result) = Some(out);
            // The reader may be gone (nobody awaits); that is fine.
            let _ = writer.write_all(&[1]);
        });
        let cancel = cancel.unwrap_or_else(|| Box::new(move || handle.abort()));
        *lock(&state.cancel) = Some(cancel);
        Ok(Pending { state, reader })
    }
}

#[pymethods]
impl Pending {
    /// The file descriptor that becomes readable when the task ends (or is aborted).
    fn fileno(&self) -> i32 {
        self.reader.as_raw_fd()
    }

    /// Whether a result is ready.
    fn done(&self) -> bool {
        lock(&self.state.result).is_some()
    }

    /// Asks the task to stop: aborts it, or, for a validation, rolls the canary back first.
    fn cancel(&self) {
        if let Some(cancel) = lock(&self.state.cancel).take() {
            cancel();
        }
    }

    /// The task's value, or its exception. Raises `RuntimeError` if it ended without one
    /// (it was aborted).
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match lock(&self.state.result).take() {
            Some(Ok(convert)) => convert(py),
            Some(Err(e)) => Err(e),
            None => Err(PyRuntimeError::new_err(
                "the task was cancelled before it finished",
            )),
        }
    }
}
