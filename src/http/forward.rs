//! `GET /api/v1/admin/forward` (each target's cursor, lag, successes, errors, retries, dead
//! letters, released samples) and `POST /api/v1/admin/forward/replay[?target=URL]` (resend
//! the dead letters). Takes the forwarder only.

use super::reply::{json, ApiError, Reply};
use super::route::{AdminToken, Query};
use crate::forward::Forwarder;
use hyper::StatusCode;
use std::sync::Arc;

pub fn status(forwarder: Option<&Arc<Forwarder>>, _: AdminToken) -> Result<Reply, ApiError> {
    let targets = forwarder.map(|f| f.status()).unwrap_or_default();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"enabled": forwarder.is_some(), "targets": targets}),
    ))
}

pub async fn replay(
    forwarder: Option<&Arc<Forwarder>>,
    _: AdminToken,
    query: &Query,
) -> Result<Reply, ApiError> {
    query.reject_unknown(&["target"])?;
    let forwarder = forwarder.ok_or_else(|| {
        ApiError::Conflict("forwarding is off: start the server with --forward URL".into())
    })?;
    let target = query.get("target");
    let results = forwarder.replay(target).await.map_err(|e| match target {
        Some(t) if e.starts_with("no forward target") => {
            ApiError::NotFound(format!("target: no forward target {t}"))
        }
        _ => ApiError::Internal(e),
    })?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"targets": results}),
    ))
}
