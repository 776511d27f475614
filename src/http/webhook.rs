//! `POST /api/webhooks/custom`: the spec's contract. Checks, in order: API key (401), the
//! key's project's rate limit (429), content type (415), body size (413), body content (400),
//! project (403); then appends to the journal and answers 200 only once every sample is
//! fdatasync'd. Every answer past the key check carries the `X-RateLimit-*` headers of a
//! rate-limited project.

use super::reply::{raw, ApiError, Reply};
use crate::app::App;
use crate::auth::Bearer;
use crate::{auth, clock, ingest};
use hyper::body::Incoming;
use hyper::{header, Request, StatusCode};

pub async fn ingest(app: &App, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let owner = match auth::bearer(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    ) {
        Bearer::Missing => {
            return Err(ApiError::Unauthorized(
                "missing Authorization header; expected 'Authorization: Bearer YOUR_API_KEY'"
                    .into(),
            ))
        }
        Bearer::Malformed => {
            return Err(ApiError::Unauthorized(
                "malformed Authorization header; expected 'Authorization: Bearer YOUR_API_KEY'"
                    .into(),
            ))
        }
        Bearer::Token(key) => app
            .keys
            .lookup(key)
            .ok_or_else(|| ApiError::Unauthorized("invalid API key: unknown or revoked".into()))?,
    };
    if owner.scope != crate::store::Scope::Ingest {
        return Err(ApiError::Forbidden(
            "this is a read key: it can query its project but not send metrics; use the webhook's API key".into(),
        ));
    }
    // One clock read per request, at arrival: the rate limit and the default timestamp
    // share it.
    let now_ms = clock::now_ms();
    let Some(limit) = app.limiter.check(&owner.project_id, now_ms) else {
        return store(app, req, &owner, now_ms).await;
    };
    let mut reply = if limit.allowed {
        store(app, req, &owner, now_ms)
            .await
            .unwrap_or_else(ApiError::into_reply)
    } else {
        ApiError::TooManyRequests {
            message: format!(
                "rate limit of {} requests per hour for this project's tier exceeded; retry in {} s",
                limit.limit, limit.retry_after_s
            ),
            retry_after_s: limit.retry_after_s,
        }
        .into_reply()
    };
    let h = reply.headers_mut();
    h.insert("x-ratelimit-limit", limit.limit.into());
    h.insert("x-ratelimit-remaining", limit.remaining.into());
    h.insert("x-ratelimit-reset", limit.reset_unix_s.into());
    Ok(reply)
}

/// Everything after the key and rate checks: read, parse, check the project, append.
async fn store(
    app: &App,
    req: Request<Incoming>,
    owner: &auth::KeyOwner,
    now_ms: i64,
) -> Result<Reply, ApiError> {
    super::body::require_json(req.headers())?;
    let (parts, body) = req.into_parts();
    let mut bytes = super::body::read(&parts.headers, body, app.config.max_body_bytes).await?;
    let batch = ingest::parse_batch(&mut bytes, now_ms).map_err(|e| ApiError::BadRequest(e.0))?;
    if batch.project_id != owner.project_id {
        return Err(ApiError::Forbidden(format!(
            "projectId {:?} does not match this API key's project",
            batch.project_id
        )));
    }
    let waiting = app.memtable.pending_samples();
    if waiting >= app.config.max_pending_samples {
        return Err(ApiError::Unavailable(format!(
            "{waiting} samples are waiting for compaction; nothing was stored, retry shortly"
        )));
    }
    let n = batch.metrics.len();
    let durable = app.journal.append(&batch);
    drop(batch);
    drop(bytes);
    durable.await?;
    Ok(raw(
        StatusCode::OK,
        "application/json",
        format!("{{\"success\":true,\"metricsStored\":{n}}}").into_bytes(),
    ))
}
