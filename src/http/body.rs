//! Request bodies: size limits that hold for chunked bodies too (`Limited`), content type
//! checks, and gzip decoding bounded by the same limit.

use super::reply::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
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

/// Reads the whole body, at most `max_bytes` after decoding.
pub async fn read(
    headers: &HeaderMap,
    body: Incoming,
    max_bytes: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("request body is larger than {max_bytes} bytes"));
    if let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > max_bytes as u64 {
            return Err(too_large());
        }
    }
    let encoding = headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let bytes: Bytes = match Limited::new(body, max_bytes).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "could not read the request body: {e}"
            )))
        }
    };
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
