//! The server loop: binding, TLS, connection limits and deadlines, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::routes::router;
use crate::{Judging, ServeConfig};

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    grace: Duration,
    header_timeout: Duration,
    connections: Arc<Semaphore>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Binds `config.listen` (TLS when configured) for the routes over `judging`.
pub async fn serve(config: ServeConfig, judging: Judging) -> Result<Server, String> {
    config.validate()?;
    if judging.max_duration < Duration::from_secs(1) || judging.judge_step < Duration::from_secs(1)
    {
        return Err("validator.max_duration and validator.judge_step: must be at least 1 s".into());
    }
    if judging.judge.is_some() && config.start_lookback < judging.max_duration {
        return Err(format!(
            "serve.start_lookback: {} is shorter than the judge's maximum duration {} \
             (validator.max_duration): a run older than the look-back would never end",
            canary_core::format::duration(config.start_lookback.as_secs_f64()),
            canary_core::format::duration(judging.max_duration.as_secs_f64()),
        ));
    }
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    Ok(Server {
        listener,
        grace: config.shutdown_grace,
        header_timeout: config.header_timeout,
        connections: Arc::new(Semaphore::new(config.max_connections)),
        router: router(config, judging),
        tls,
    })
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use tokio_rustls::rustls;
    // A regular file of at most 1 MiB: a FIFO would hang the start, /dev/zero fill memory.
    let read = |p: &std::path::Path| {
        let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        if !meta.is_file() || meta.len() > 1 << 20 {
            return Err(format!(
                "{} is not a regular file of at most 1 MiB",
                p.display()
            ));
        }
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate: {e}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| format!("{}: not a PEM key: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key in it", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("TLS: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Server {
    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` completes; then refuses new connections and lets in-flight
    /// requests finish (up to the grace period).
    ///
    /// At most `max_connections` are served at once (more wait in the kernel's listen queue),
    /// each must send a request head within `header_timeout`, and a failing `accept` (out of
    /// file descriptors) backs off and is logged once a second at most.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::service::TowerToHyperService;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.header_timeout)
            .keep_alive_timeout(self.header_timeout);
        let header_timeout = self.header_timeout;
        tokio::pin!(shutdown);
        info!(address = %self.local_addr(), tls = self.tls.is_some(), "canary serve: listening");
        let mut backoff = AcceptBackoff::default();
        loop {
            let permit = tokio::select! {
                p = self.connections.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        backoff.succeeded();
                        stream
                    }
                    Err(e) => {
                        let wait = backoff.failed(&e);
                        tokio::select! {
                            () = tokio::time::sleep(wait) => continue,
                            () = &mut shutdown => break,
                        }
                    }
                },
                () = &mut shutdown => break,
            };
            let service = TowerToHyperService::new(self.router.clone());
            match &self.tls {
                None => {
                    let stream = FirstByteWithin::new(stream, header_timeout);
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                        drop(permit);
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let handshake =
                            tokio::time::timeout(header_timeout, acceptor.accept(stream));
                        let Ok(Ok(tls)) = handshake.await else {
                            return;
                        };
                        let tls = FirstByteWithin::new(tls, header_timeout);
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls), service)
                            .into_owned();
                        let _ = watcher.watch(conn).await;
                        drop(permit);
                    });
                }
            }
        }
        drop(self.listener);
        info!("canary serve: shutting down; finishing requests in flight");
        if tokio::time::timeout(self.grace, graceful.shutdown())
            .await
            .is_err()
        {
            warn!("requests still in flight after the grace period; stopping anyway");
        }
        Ok(())
    }
}

/// A connection that must send its first byte within a deadline: hyper's header timeout only
/// starts once it knows the protocol, and telling HTTP/1 from HTTP/2 waits for bytes, so an
/// idle connection would otherwise be held forever.
struct FirstByteWithin<S> {
    inner: S,
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> FirstByteWithin<S> {
    fn new(inner: S, within: Duration) -> Self {
        FirstByteWithin {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for FirstByteWithin<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let before = buf.filled().len();
        let me = &mut *self;
        match std::pin::Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    me.deadline = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let expired = me
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "no request in time");
                    Poll::Ready(Err(e))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for FirstByteWithin<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How the accept loop waits after a failed `accept` (e.g. `EMFILE`): doubling from 10 ms to
/// a second, so it neither spins nor floods the log; one line a second at most, with the
/// number of failures it stands for.
#[derive(Debug, Default)]
struct AcceptBackoff {
    wait: Duration,
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl AcceptBackoff {
    fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.wait = (self.wait * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.unlogged += 1;
        if self
            .logged_at
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            warn!(
                error = %error,
                failures = self.unlogged,
                retry_in_ms = self.wait.as_millis() as u64,
                "accept failed; backing off"
            );
            self.unlogged = 0;
            self.logged_at = Some(Instant::now());
        }
        self.wait
    }

    fn succeeded(&mut self) {
        self.wait = Duration::ZERO;
    }
}
