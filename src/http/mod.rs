//! HTTP front: the accept loop, the connection limit and graceful shutdown, over a
//! hand-rolled hyper 1 service. `route` picks the handler; `reply` is the only place that
//! turns errors into statuses. Knows nothing of files or redb.

mod admin;
mod body;
mod cors;
mod read;
mod reply;
mod route;
mod webhook;

use crate::app::App;
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

/// Serves until `shutdown` resolves, then stops accepting and waits for in-flight requests.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(app.config.max_connections));
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
        let app = app.clone();
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            // A client gets this long to send its request headers (slowloris guard).
            .header_read_timeout(app.config.header_read_timeout)
            // hyper answers 431 to a request head that does not fit.
            .max_buf_size(app.config.max_header_bytes)
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| route::handle(app.clone(), req, peer.ip())),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("in-flight requests did not finish in time"),
    }
}
