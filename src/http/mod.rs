//! HTTP front: the accept loop, the connection limit and graceful shutdown, over a
//! hand-rolled hyper 1 service. `route` picks the handler; `reply` is the only place that
//! turns errors into statuses. Knows nothing of files or redb: handlers get the `service`
//! they use, and `app` builds both.

mod alerts;
mod body;
mod cors;
mod dashboards;
mod events;
mod forward;
mod keys;
mod maintenance;
mod metrics;
mod pages;
mod projects;
mod prom;
mod push;
mod read;
mod reply;
mod route;
mod session;
mod share;
pub mod tls;
mod webhook;
mod widgets;

pub use body::BodyLimits;
pub use route::REFUSED_ADDRESS_DELAY;
pub use session::cookie_name as session_cookie;

use crate::service::Services;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long in-flight requests get to finish after shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the front needs of the configuration (built by `app` from `Config`).
#[derive(Clone)]
pub struct Settings {
    /// Set when serving HTTPS (`--tls-cert`/`--tls-key`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub max_connections: usize,
    /// A client gets this long to send its request headers (and a TLS handshake).
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub body: BodyLimits,
    /// `--trust-proxy`: take the client address from the last `X-Forwarded-For` entry.
    pub trust_proxy: bool,
    /// `--cors-origin`: origins whose pages may call the API.
    pub cors_origins: Vec<String>,
}

/// The services and settings every request of one server sees.
struct Front {
    services: Arc<Services>,
    settings: Settings,
}

/// Serves one connection (plain or TLS) until it closes or shutdown drains it.
async fn serve_connection<I>(
    front: Arc<Front>,
    io: I,
    peer: std::net::IpAddr,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        // A client gets this long to send its request headers (slowloris guard).
        .header_read_timeout(front.settings.header_read_timeout)
        // hyper answers 431 to a request head that does not fit.
        .max_buf_size(front.settings.max_header_bytes)
        .serve_connection(
            io,
            service_fn({
                let front = front.clone();
                move |req| route::handle(front.clone(), req, peer)
            }),
        );
    let _ = watcher.watch(conn).await;
}

/// Serves until `shutdown` resolves, then stops accepting and waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    services: Arc<Services>,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let front = Arc::new(Front { services, settings });
    tokio::pin!(shutdown);
    loop {
        // Wait for a free connection slot first: at the limit, new connections queue in the
        // kernel's backlog instead of being accepted and starved.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("BUG: the connection semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match front.settings.tls.clone() {
                None => serve_connection(front, TokioIo::new(stream), peer.ip(), watcher).await,
                Some(tls) => {
                    // The handshake gets the same time as a request head (slowloris guard).
                    let timeout = front.settings.header_read_timeout;
                    match tokio::time::timeout(timeout, tls.accept(stream)).await {
                        Ok(Ok(s)) => {
                            serve_connection(front, TokioIo::new(s), peer.ip(), watcher).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("in-flight requests did not finish in time"),
    }
}
