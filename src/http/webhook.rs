//! `POST /api/webhooks/custom`: the spec's contract. Checks, in order: API key (401), the
//! key's project's rate limit (429), content type (415), body size (413), body content (400),
//! project (403); then appends to the journal and answers 200 only once every sample is
//! fdatasync'd. Every answer past the key check carries the `X-RateLimit-*` headers of a
//! rate-limited project.

use super::reply::{raw, ApiError, Reply};
use super::BodyLimits;
use crate::auth::usage::{Notice, Reason};
use crate::auth::Bearer;
use crate::service::Ingest;
use crate::{auth, clock, ingest};
use hyper::body::Incoming;
use hyper::{header, Request, StatusCode};
use std::net::IpAddr;

/// Answers one webhook request from `client`, and counts it in its key's usage.
pub async fn ingest(
    ingest: &Ingest,
    limits: BodyLimits,
    req: Request<Incoming>,
    client: IpAddr,
) -> Result<Reply, ApiError> {
    let key = match auth::bearer(
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
        Bearer::Token(key) => key,
    };
    // One clock read per request, at arrival: the rate limit, the default timestamp and
    // the usage counters share it.
    let now_ms = clock::now_ms();
    let owner = owner_of(ingest, key, client, now_ms)?;
    // A refcount bump; the printable prefix is made only if a warning needs it.
    let presented = req.headers().get(header::AUTHORIZATION).cloned();
    let stored = store(ingest, limits, req, &owner, now_ms);
    Ok(
        admit(ingest, &owner, presented, client, now_ms, stored, |n| {
            raw(
                StatusCode::OK,
                "application/json",
                format!("{{\"success\":true,\"metricsStored\":{n}}}").into_bytes(),
            )
        })
        .await,
    )
}

/// The owner of an ingest or read `key` (scope is `admit`'s check), or the 401; a retired
/// key still in use is counted and warned about.
pub(super) fn owner_of(
    ingest: &Ingest,
    key: &str,
    client: IpAddr,
    now_ms: i64,
) -> Result<auth::KeyOwner, ApiError> {
    if let Some(owner) = ingest.keys.lookup(key) {
        return Ok(owner);
    }
    if let Some(old) = ingest.keys.retired(key) {
        if ingest
            .usage
            .record_retired_use(&old.webhook_id, client, now_ms)
        {
            tracing::warn!(key_id = %old.webhook_id, key_prefix = %old.key_prefix,
                reason = %old.reason, address = %client,
                "a revoked or rotated-out API key is still in use");
        }
    }
    Err(ApiError::Unauthorized(
        "invalid API key: unknown or revoked".into(),
    ))
}

/// Everything every ingest route does after the key lookup, around its `stored` future
/// (which does nothing until awaited): the scope check, the rate limit, then `stored`; the
/// reply (`ok` for a success) with the `X-RateLimit-*` headers; the outcome counted in the
/// key's usage.
pub(super) async fn admit(
    ingest: &Ingest,
    owner: &auth::KeyOwner,
    presented: Option<header::HeaderValue>,
    client: IpAddr,
    now_ms: i64,
    stored: impl std::future::Future<Output = Result<u64, ApiError>>,
    ok: impl FnOnce(u64) -> Reply,
) -> Reply {
    let (reply, stored) = accept(ingest, owner, now_ms, stored, ok).await;
    let status = reply.status().as_u16();
    let (outcome, error) = match stored {
        Ok(n) => (Ok(n), None),
        Err(message) => (Err(Reason::of_status(status)), Some(message)),
    };
    if let Some(Notice::VolumeJump {
        this_hour,
        mean_per_hour,
    }) = ingest
        .usage
        .record(&owner.webhook_id, outcome, client, now_ms, status, error)
    {
        let key_prefix = super::route::presented_key_prefix(presented.as_ref());
        tracing::warn!(key_id = %owner.webhook_id, %key_prefix,
            samples_this_hour = this_hour, mean_per_hour, address = %client,
            "sudden jump in volume for this API key");
    }
    reply
}

/// Scope, rate limit, then `stored`. Returns the reply and, for a success, the samples
/// stored, else the error message sent (for the request log).
async fn accept(
    ingest: &Ingest,
    owner: &auth::KeyOwner,
    now_ms: i64,
    stored: impl std::future::Future<Output = Result<u64, ApiError>>,
    ok: impl FnOnce(u64) -> Reply,
) -> (Reply, Result<u64, String>) {
    if owner.scope != crate::store::Scope::Ingest {
        let e = ApiError::Forbidden(
            "this is a read key: it can query its project but not send metrics; use the webhook's API key".into(),
        );
        return e.reply_and_message();
    }
    let limit = ingest.limiter.check(&owner.project_id, now_ms);
    let result = match limit {
        Some(d) if !d.allowed => Err(ApiError::TooManyRequests {
            message: format!(
                "rate limit of {} requests per hour for this project's tier exceeded; retry in {} s",
                d.limit, d.retry_after_s
            ),
            retry_after_s: d.retry_after_s,
        }),
        _ => stored.await,
    };
    let (mut reply, stored) = match result {
        Ok(n) => (ok(n), Ok(n)),
        Err(e) => e.reply_and_message(),
    };
    if let Some(d) = limit {
        let h = reply.headers_mut();
        h.insert("x-ratelimit-limit", d.limit.into());
        h.insert("x-ratelimit-remaining", d.remaining.into());
        h.insert("x-ratelimit-reset", d.reset_unix_s.into());
    }
    (reply, stored)
}

/// Refuses a write while the compactor is far behind: memory must not grow without bound.
pub(super) fn check_backlog(ingest: &Ingest) -> Result<(), ApiError> {
    let waiting = ingest.memtable.pending_samples();
    if waiting >= ingest.max_pending_samples {
        return Err(ApiError::Unavailable(format!(
            "{waiting} samples are waiting for compaction; nothing was stored, retry shortly"
        )));
    }
    Ok(())
}

/// Read, parse, check the project, append; the number of samples once they are durable.
async fn store(
    ingest: &Ingest,
    limits: BodyLimits,
    req: Request<Incoming>,
    owner: &auth::KeyOwner,
    now_ms: i64,
) -> Result<u64, ApiError> {
    super::body::require_json(req.headers())?;
    let (parts, body) = req.into_parts();
    let mut bytes = super::body::read(&parts.headers, body, limits).await?;
    let batch = match ingest::parse_batch(&mut bytes, now_ms) {
        Ok(batch) => batch,
        Err(e) => return Err(ApiError::BadRequest(e.explain(&bytes))),
    };
    if batch.project_id != owner.project_id {
        return Err(ApiError::Forbidden(format!(
            "projectId {:?} does not match this API key's project",
            batch.project_id
        )));
    }
    check_backlog(ingest)?;
    let n = batch.metrics.len() as u64;
    let durable = ingest.journal.append(&batch);
    if ingest.changes.listening(batch.project_id) {
        // A live page listens: the batch (borrowing the body) is kept until the 200 so
        // its metricIds can be announced without copying them first.
        durable.await?;
        ingest
            .changes
            .publish(&owner.project_id, batch.metrics.iter().map(|m| m.metric_id));
    } else {
        drop(batch);
        drop(bytes);
        durable.await?;
    }
    Ok(n)
}
