//! Rust logs reach Python's `logging`, under the logger `canary`.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Set by an `atexit` hook: once Python is shutting down, no thread may take the GIL again.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Registered with `atexit`: stops forwarding before the interpreter finalizes.
#[pyfunction]
fn _stop_logging() {
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
}

/// Only canary's own events go to Python; the HTTP stack's are not worth the GIL.
fn ours(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("canary")
}

/// Forwards tracing events to `logging.getLogger("canary")`.
struct PythonLogging {
    logger: Py<PyAny>,
}

#[derive(Default)]
struct Message {
    text: String,
    fields: Vec<String>,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.text = format!("{value:?}");
        } else {
            self.fields.push(format!("{}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text = value.to_owned();
        } else {
            self.fields.push(format!("{}={value}", field.name()));
        }
    }
}

fn python_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        _ => 10,
    }
}

impl<S: Subscriber> Layer<S> for PythonLogging {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        ours(metadata)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if SHUTTING_DOWN.load(Ordering::SeqCst) || !ours(event.metadata()) {
            return;
        }
        let level = python_level(event.metadata().level());
        Python::attach(|py| {
            let logger = self.logger.bind(py);
            if !logger
                .call_method1("isEnabledFor", (level,))
                .and_then(|b| b.is_truthy())
                .unwrap_or(false)
            {
                return;
            }
            let mut m = Message::default();
            event.record(&mut m);
            let line = if m.fields.is_empty() {
                m.text
            } else {
                format!("{} ({})", m.text, m.fields.join(", "))
            };
            let _ = logger.call_method1("log", (level, line));
        });
    }
}

/// Installs the bridge as the global subscriber, unless the process already has one.
pub(crate) fn install(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let stop = wrap_pyfunction!(_stop_logging, m)?;
    py.import("atexit")?.call_method1("register", (stop,))?;
    let logger = py
        .import("logging")?
        .call_method1("getLogger", ("canary",))?;
    let subscriber = tracing_subscriber::registry().with(PythonLogging {
        logger: logger.unbind(),
    });
    let _ = tracing::subscriber::set_global_default(subscriber);
    Ok(())
}
