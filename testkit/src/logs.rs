//! Captures `tracing` output in a test, to check what reaches the logs (and what never does).
//!
//! One process-wide subscriber, interested in every level, writes each event to the buffer of
//! the thread that logged it. A per-thread scoped subscriber would be simpler, but `tracing`
//! caches each callsite's interest process-wide: a callsite first hit on another test's thread
//! while this thread's subscriber is being installed can stay disabled, and the event is lost.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

/// Everything logged on this thread while the guard lives.
#[derive(Clone, Debug, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// The text logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// Writes to this thread's capture, or nowhere.
struct ThreadWriter(Option<Captured>);

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(c) => c.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stops capturing on this thread when dropped.
#[derive(Debug)]
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Captures every level of `tracing` output on this thread (use a current-thread runtime)
/// until the guard is dropped.
///
/// # Panics
/// If another global subscriber was installed first: the capture would silently see nothing.
pub fn capture() -> (Captured, CaptureGuard) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| ThreadWriter(CURRENT.with(|c| c.borrow().clone())))
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("testkit::logs owns the process's global subscriber");
    });
    let logs = Captured::default();
    CURRENT.with(|c| *c.borrow_mut() = Some(logs.clone()));
    (logs, CaptureGuard(()))
}
