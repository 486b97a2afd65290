//! Rust logs reach Python's `logging`, under the logger `canary`.

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

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
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
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
pub(crate) fn install(py: Python<'_>) {
    let Ok(logger) = py
        .import("logging")
        .and_then(|l| l.call_method1("getLogger", ("canary",)))
    else {
        return;
    };
    let subscriber = tracing_subscriber::registry().with(PythonLogging {
        logger: logger.unbind(),
    });
    let _ = tracing::subscriber::set_global_default(subscriber);
}
