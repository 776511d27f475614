//! CORS: closed unless `--cors-origin` names the origins that may call the API from a
//! browser. An allowed origin gets its preflight answered and `Access-Control-Allow-Origin`
//! on every reply; any other origin gets no CORS headers at all, so browsers refuse to hand
//! it the response. Credentials are bearer tokens sent explicitly, never cookies, so
//! `Allow-Credentials` is never set.

use super::reply::Reply;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE_S: u32 = 600;

/// The request's `Origin` if it is allowed (`*` in the list allows any).
pub fn allowed_origin(allowed: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    if allowed.is_empty() {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`), if `req` is
/// one.
pub fn preflight(origin: &HeaderValue, req: &Request<Incoming>) -> Option<Reply> {
    if req.method() != Method::OPTIONS
        || !req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let mut reply = super::reply::raw(StatusCode::NO_CONTENT, "text/plain", Vec::new());
    let h = reply.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, Content-Encoding, Accept"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(PREFLIGHT_MAX_AGE_S),
    );
    allow(&mut reply, origin.clone());
    Some(reply)
}

/// Adds the headers that let a browser page from `origin` read `reply`.
pub fn allow(reply: &mut Reply, origin: HeaderValue) {
    let h = reply.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset",
        ),
    );
}
