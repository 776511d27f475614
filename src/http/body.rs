//! Request bodies: size limits that hold for chunked bodies too (counted while reading, not
//! taken from Content-Length), content type checks, and gzip decoding bounded by the same
//! limit.

use super::reply::ApiError;
use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use std::io::Read;

/// Refuses a `Content-Type` that is present and not JSON. A missing one is accepted: some
/// HTTP tools omit it, and the body is checked as JSON anyway.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json, not {essence:?}"
        )))
    }
}

/// After a body is found too large, up to this much more is read and thrown away (for at
/// most `DRAIN_TIMEOUT`) before answering 413: closing a socket with unread data makes the
/// kernel reset the connection, and the client would see "connection reset" while still
/// sending instead of the 413 that says why. A body declared larger than the limit plus
/// this is answered at once (clients sending that much use `Expect: 100-continue`, which
/// then sends nothing); reading it would only burn CPU for whoever sends it.
pub const DRAIN_MAX_BYTES: u64 = 16 << 20;
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Drains at once, server-wide: past this, an oversized body is answered without one, so
/// many clients sending huge bodies cannot make the server spend its CPU reading them.
pub const MAX_CONCURRENT_DRAINS: usize = 2;
static DRAINS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_DRAINS);

/// How much of a request body is read, and for how long (`--max-body-bytes`,
/// `--body-read-timeout-secs`).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// After gzip decoding; larger → 413.
    pub max_bytes: usize,
    /// A body slower than that → 408.
    pub read_timeout: std::time::Duration,
}

/// Reads the whole body, at most `limits.max_bytes` after decoding, within
/// `limits.read_timeout` (a client trickling its body slowly holds a connection and a
/// buffer: 408 after that long).
pub async fn read(
    headers: &HeaderMap,
    body: Incoming,
    limits: BodyLimits,
) -> Result<Vec<u8>, ApiError> {
    let (max_bytes, timeout) = (limits.max_bytes, limits.read_timeout);
    match tokio::time::timeout(timeout, read_within(headers, body, max_bytes)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} s",
            timeout.as_secs_f64()
        ))),
    }
}

async fn read_within(
    headers: &HeaderMap,
    mut body: Incoming,
    max_bytes: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("request body is larger than {max_bytes} bytes"));
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let encoding = headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let mut bytes =
        BytesMut::with_capacity(declared.map_or(16 << 10, |n| n.min(max_bytes as u64) as usize));
    let mut over = declared.is_some_and(|n| n > max_bytes as u64);
    while !over {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if bytes.len() + data.len() > max_bytes {
                        over = true;
                    } else {
                        bytes.extend_from_slice(&data);
                    }
                }
            }
            Some(Err(e)) => {
                return Err(ApiError::BadRequest(format!(
                    "could not read the request body: {e}"
                )))
            }
        }
    }
    let worth_draining = declared.is_none_or(|n| n <= max_bytes as u64 + DRAIN_MAX_BYTES);
    let permit = if over && worth_draining {
        DRAINS.try_acquire().ok()
    } else {
        None
    };
    if over && permit.is_some() {
        let drain = async {
            let mut drained = 0u64;
            while let Some(Ok(frame)) = body.frame().await {
                drained += frame.data_ref().map_or(0, |d| d.len() as u64);
                if drained > DRAIN_MAX_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
    }
    if over {
        return Err(too_large());
    }
    let bytes = bytes.freeze();
    match encoding.as_str() {
        // Zero-copy when the body arrived in one piece.
        "" | "identity" => Ok(Vec::from(bytes)),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(bytes.len() * 4);
            let mut dec = flate2::read::GzDecoder::new(&bytes[..]).take(max_bytes as u64 + 1);
            dec.read_to_end(&mut out)
                .map_err(|e| ApiError::BadRequest(format!("invalid gzip body: {e}")))?;
            if out.len() > max_bytes {
                return Err(too_large());
            }
            Ok(out)
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported; use gzip or none"
        ))),
    }
}
