//! Ctrl-C, SIGTERM and SIGHUP, as futures a run or the service stops on.

use std::sync::Arc;

/// Which signal cancelled the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Interrupt,
    Terminate,
}

/// Completes on Ctrl-C or SIGTERM, saying which.
pub(crate) async fn cancelled(which: Arc<std::sync::Mutex<Option<Signal>>>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let signal = tokio::select! {
        _ = interrupt => Signal::Interrupt,
        () = terminate => Signal::Terminate,
    };
    if let Ok(mut w) = which.lock() {
        *w = Some(signal);
    }
}

/// Completes on Ctrl-C, SIGTERM or SIGHUP: the service drains on each.
pub(crate) async fn cancelled_or_hangup(which: Arc<std::sync::Mutex<Option<Signal>>>) {
    #[cfg(unix)]
    let hangup = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let hangup = std::future::pending::<()>();
    tokio::select! {
        () = cancelled(which) => {}
        () = hangup => tracing::info!("SIGHUP: draining as for SIGTERM"),
    }
}
