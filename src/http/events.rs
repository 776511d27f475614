//! `GET /api/v1/projects/{p}/events`: a Server-Sent Events stream of change notices for
//! live pages. Each `change` event names the metricIds that acknowledged requests wrote
//! since the last one (`service::ChangeFeed`); events are at least `MIN_EVENT_GAP` apart, so
//! a busy project sends a few a second, not one per request. A comment every
//! `KEEPALIVE` keeps proxies from closing an idle stream and finds closed connections.
//! A share link's stream (`share.rs`) is narrowed by a `Gate`: only its dashboard's
//! metrics, and closed once the link is revoked.

use super::reply::{streamed, ApiError, Reply};
use super::route::ReadAccess;
use crate::service::Reader;
use bytes::Bytes;
use std::time::Duration;

const MIN_EVENT_GAP: Duration = Duration::from_millis(200);
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Given the metricIds that changed, those the listener may hear of; None once its grant
/// has ended, which closes the stream. Asked at every event and every keepalive.
pub type Gate = Box<dyn Fn(Vec<String>) -> Option<Vec<String>> + Send + Sync>;

pub fn stream(reader: &Reader, access: &ReadAccess, project: &str) -> Result<Reply, ApiError> {
    access.check(project)?;
    if reader.store.project(project)?.is_none() {
        return Err(ApiError::NotFound(format!("no project {project:?}")));
    }
    Ok(open(reader, project, None))
}

/// The stream of `project`'s change notices, narrowed by `gate` when given.
pub fn open(reader: &Reader, project: &str, gate: Option<Gate>) -> Reply {
    let pass = move |ids: Vec<String>| match &gate {
        None => Some(ids),
        Some(g) => g(ids),
    };
    let sub = reader.changes.subscribe(project);
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::spawn(async move {
        let feed = sub.project_feed.clone();
        // Tells the browser how soon to reconnect after a drop.
        if tx
            .send(Ok(Bytes::from_static(b"retry: 2000\n\n")))
            .await
            .is_err()
        {
            return;
        }
        let mut seen = feed.generation();
        loop {
            // Registered before the generation is read, so a publish in between still wakes.
            let notified = feed.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if feed.generation() == seen {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(KEEPALIVE) => {
                        if pass(Vec::new()).is_none() {
                            return;
                        }
                        if tx.send(Ok(Bytes::from_static(b": keepalive\n\n"))).await.is_err() {
                            return;
                        }
                        continue;
                    }
                }
            }
            let (ids, now) = feed.changed_since(seen);
            seen = now;
            let Some(ids) = pass(ids) else {
                return;
            };
            if !ids.is_empty() {
                let data = serde_json::json!({ "metricIds": ids });
                let event = format!("event: change\ndata: {data}\n\n");
                if tx.send(Ok(Bytes::from(event))).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(MIN_EVENT_GAP).await;
        }
    });
    let mut r = streamed("text/event-stream", rx);
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}
